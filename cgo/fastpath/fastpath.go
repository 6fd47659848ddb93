//go:build cgo

// Package fastpath answers `filecache FILE...` before the Go runtime starts
// (fastpath.c): a constructor that glibc runs ahead of main measures a few
// regular files on local filesystems with cachestat(2), prints the table
// the Go path would print, and exits; in every other case it returns having
// done nothing, and filecache starts as usual. Importing the package is
// what links the constructor in (cmd/filecache/main.go only).
package fastpath

// #cgo CFLAGS: -O2 -Wall -Werror
// #cgo LDFLAGS: -lm
// #include <stdint.h>
// #include <stdlib.h>
// void fc_human(uint64_t n, char *out, size_t size);
// void fc_percent(uint64_t cached, uint64_t total, char *out, size_t size);
// size_t fc_table(int n, const char *const *names, const uint64_t *cached, const uint64_t *pages,
//                 const uint64_t *sizes, long page, char *buf, size_t cap);
import "C"

import "unsafe"

// The C formatting, exported for the test that holds it to the Go path's
// (cmd/filecache/fastpath_test.go, which may import the report package).

// Human is fc_human: units.Human in C.
func Human(n uint64) string {
	var b [64]C.char
	C.fc_human(C.uint64_t(n), &b[0], C.size_t(len(b)))
	return C.GoString(&b[0])
}

// Percent is fc_percent: the PERCENT column in C.
func Percent(cached, total uint64) string {
	var b [64]C.char
	C.fc_percent(C.uint64_t(cached), C.uint64_t(total), &b[0], C.size_t(len(b)))
	return C.GoString(&b[0])
}

// File is one row of table: a path and its figures.
type File struct {
	Path                string
	Cached, Pages, Size uint64
}

// Table is fc_table: the table the fast path prints.
func Table(files []File, page int) string {
	n := len(files)
	names := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(names)
	nums := make([]C.uint64_t, 3*n)
	ptrs := unsafe.Slice((**C.char)(names), n)
	for i, f := range files {
		ptrs[i] = C.CString(f.Path)
		defer C.free(unsafe.Pointer(ptrs[i]))
		nums[i], nums[n+i], nums[2*n+i] = C.uint64_t(f.Cached), C.uint64_t(f.Pages), C.uint64_t(f.Size)
	}
	buf := make([]byte, 1<<20)
	l := C.fc_table(C.int(n), (**C.char)(names), &nums[0], &nums[n], &nums[2*n], C.long(page),
		(*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	return string(buf[:l])
}
