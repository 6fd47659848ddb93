package bpf

import (
	"errors"

	"golang.org/x/sys/unix"
)

// KernelBTF is where kernels built with CONFIG_DEBUG_INFO_BTF publish their
// BTF, which the object's CO-RE relocations are resolved against.
const KernelBTF = "/sys/kernel/btf/vmlinux"

// How the query programs are asked (--bpf-method), one program each.
const (
	MethodLoop     = "bpf_loop"     // a test run, bpf_loop over the batch (Linux >= 5.17)
	MethodBounded  = "bounded-loop" // a test run, Step fds per run
	MethodAttached = "attached"     // attached to sys_enter, answering one syscall of ours
)

// Methods are the query methods in the order the automatic choice prefers.
var Methods = []string{MethodLoop, MethodBounded, MethodAttached}

// WalkPrograms are the filesystem walks of filecache top, by method: one
// test run with bpf_loop, or test runs of a bounded loop, each resuming
// where the last stopped. The attached method has no walk of its own.
var WalkPrograms = map[string]string{MethodLoop: "walk_sb", MethodBounded: "walk_sb_bounded"}

// ErrNoLoop: the kernel lacks the bpf_loop helper, which the bpf_loop walk
// of filecache top needs.
var ErrNoLoop = errors.New("the bpf_loop walk needs the bpf_loop helper (Linux >= 5.17), which this kernel lacks")

// Dev turns a dev_t as the kernel keeps it (major<<20 | minor, in records)
// into user space's encoding (st_dev).
func Dev(kdev uint32) uint64 { return unix.Mkdev(kdev>>20, kdev&(1<<20-1)) }
