//go:build cgo

// Package relocs asks libbpf itself how it relocates a BPF object against a
// given kernel BTF, so that tests can hold a BTF file (a minimal one, say) to
// the kernel's own: the same CO-RE answers give the same instructions. Only
// tests import it; it loads the programs, so it needs root.
package relocs

/*
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

// What libbpf prints while a call of Programs runs (the verifier's log on a
// failed load among it), its tail kept.
static char log_buf[1 << 20];
static size_t log_len;

static int log_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	va_list again;
	size_t room;
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	va_copy(again, args);
	n = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	if (n < 0)
		return n;
	// Drop the oldest bytes to make room; a message longer than the whole
	// buffer keeps its head.
	if (log_len + n >= sizeof(log_buf)) {
		size_t drop = log_len + n + 1 - sizeof(log_buf);

		if (drop > log_len)
			drop = log_len;
		memmove(log_buf, log_buf + drop, log_len - drop);
		log_len -= drop;
	}
	room = sizeof(log_buf) - log_len;
	vsnprintf(log_buf + log_len, room, fmt, args);
	log_len += (size_t)n < room ? (size_t)n : room - 1;
	return n;
}

static const char *log_taken(int *len)
{
	*len = log_len;
	return log_buf;
}

static libbpf_print_fn_t log_start(void)
{
	log_len = 0;
	return libbpf_set_print(log_print);
}

// open_with_btf opens the object in buf with the CO-RE target BTF at btf
// (libbpf's own choice, the running kernel's, if NULL).
static struct bpf_object *open_with_btf(const void *buf, size_t len, const char *btf, int *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts,
		.object_name = "relocs",
		.btf_custom_path = btf,
	);
	struct bpf_object *obj = bpf_object__open_mem(buf, len, &opts);

	*err = obj ? 0 : -errno;
	return obj;
}
*/
import "C"

import (
	"fmt"
	"syscall"
	"unsafe"
)

// Error is a failed open or load, with what libbpf printed meanwhile.
type Error struct {
	Err error
	Log string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func takeLog() string {
	var n C.int
	p := C.log_taken(&n)
	return C.GoStringN(p, n)
}

// InsnSize is the size of one BPF instruction (struct bpf_insn).
const InsnSize = 8

// Programs opens the BPF ELF object with btfPath as the CO-RE target BTF
// ("" for the running kernel's), loads every program into the kernel, and
// returns each program's instructions as libbpf loaded them: CO-RE
// relocated, subprograms appended, maps' fds in their ldimm64s.
func Programs(object []byte, btfPath string) (map[string][]byte, error) {
	if len(object) == 0 {
		return nil, fmt.Errorf("relocate: empty object")
	}
	// libbpf keeps reading the buffer after open: C memory, not Go's.
	buf := C.CBytes(object)
	defer C.free(buf)
	var cpath *C.char
	if btfPath != "" {
		cpath = C.CString(btfPath)
		defer C.free(unsafe.Pointer(cpath))
	}
	// libbpf prints through one process-wide function: ours while here.
	defer C.libbpf_set_print(C.log_start())
	var cerr C.int
	obj := C.open_with_btf(buf, C.size_t(len(object)), cpath, &cerr)
	if obj == nil {
		return nil, &Error{fmt.Errorf("open object with BTF %q: %w", btfPath, syscall.Errno(-cerr)), takeLog()}
	}
	defer C.bpf_object__close(obj)
	if rc := C.bpf_object__load(obj); rc != 0 {
		return nil, &Error{fmt.Errorf("load object with BTF %q: %w", btfPath, syscall.Errno(-rc)), takeLog()}
	}
	out := map[string][]byte{}
	for p := C.bpf_object__next_program(obj, nil); p != nil; p = C.bpf_object__next_program(obj, p) {
		name := C.GoString(C.bpf_program__name(p))
		n := C.bpf_program__insn_cnt(p)
		out[name] = C.GoBytes(unsafe.Pointer(C.bpf_program__insns(p)), C.int(n*InsnSize))
	}
	return out, nil
}
