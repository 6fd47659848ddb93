//go:build cgo

package cgo

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// DirWalker is the dentry walk (walk_dir, dir.bpf.c) loaded alone: a
// directory's regular files from its dentry's children, with no open per
// file. Its test runs go straight to bpf(2), so walks of different slots
// run at once from different goroutines.
type DirWalker struct {
	Module
	// mu lets Close wait for walks under way: they hold it for reading.
	mu      sync.RWMutex
	fd      int    // walk_dir's fd; 0 once closed
	state   []byte // dir_state, mapped read-only
	records []byte // dir_records, mapped read-only
	legacy  uint64 // FC_DIR_ARG_LEGACY for this kernel
	// between, if set, is called between two runs of one directory's
	// walk: tests change the directory there.
	between func()
}

// LoadDirWalker loads the dentry walk. Its nested bounded loops need no
// bpf_loop, so one program serves every kernel from 5.10.
func LoadDirWalker(opts Options) (_ *DirWalker, err error) {
	w := &DirWalker{Module: Module{method: bpf.MethodBounded}}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if err := w.open(opts, progWalkDir, nil); err != nil {
		return nil, err
	}
	w.fd = w.prog.FileDescriptor()
	if w.state, err = w.mapShared(mapDirState, bpf.DirSlots*bpf.DirStateSize); err != nil {
		return nil, err
	}
	if w.records, err = w.mapShared(mapDirRecords, bpf.DirSlots*bpf.DirCap*bpf.ChildSize); err != nil {
		return nil, err
	}
	if older, err := kernelBefore(6, 15); err != nil {
		return nil, &LoadError{Err: err}
	} else if older {
		w.legacy = 1
	}
	return w, nil
}

// mapShared maps the first size bytes of an mmapable array map read-only.
func (m *Module) mapShared(name string, size int) ([]byte, error) {
	bm, err := m.bpfMap(name)
	if err != nil {
		return nil, err
	}
	size = (size + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	b, err := unix.Mmap(bm.FileDescriptor(), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", name, err)
	}
	return b, nil
}

// Close waits for walks under way, then unmaps and unloads everything.
func (w *DirWalker) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range [][]byte{w.state, w.records} {
		if b != nil {
			unix.Munmap(b)
		}
	}
	w.state, w.records, w.fd = nil, nil, 0
	w.Module.Close()
}

// kernelBefore says whether the running kernel's version is below
// major.minor (uname's release, as libbpf reads it).
func kernelBefore(major, minor int) (bool, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false, fmt.Errorf("uname: %w", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false, fmt.Errorf("kernel release %q: no major.minor", rel)
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false, fmt.Errorf("kernel release %q: no major.minor", rel)
	}
	return maj < major || maj == major && min < minor, nil
}

// maxDirRuns bounds the runs of one directory's walk: bpf.DirSteps list
// steps each, 2^16 runs pass 2^30 children.
const maxDirRuns = 1 << 16

// ReadDir walks the children of the directory open at fd, in slot (0 to
// bpf.DirSlots-1: a slot serves one walk at a time), and calls each with
// every regular file the walk vouches for, in as many runs as the
// directory's list takes. The Child values are valid only during the call.
// What it returns is the last run's state: DirDone when every child was
// visited, else the records given so far stand and the rest is unknown.
func (w *DirWalker) ReadDir(fd, slot int, each func(bpf.Child)) (bpf.Dir, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.fd == 0 {
		return bpf.Dir{}, errors.New("dentry walk: closed")
	}
	if slot < 0 || slot >= bpf.DirSlots {
		return bpf.Dir{}, fmt.Errorf("dentry walk: slot %d, want 0..%d", slot, bpf.DirSlots-1)
	}
	args := new([bpf.DirArgs]uint64)
	args[bpf.DirArgFD] = uint64(fd)
	args[bpf.DirArgSlot] = uint64(slot)
	args[bpf.DirArgLegacy] = w.legacy
	for runs := 0; runs < maxDirRuns; runs++ {
		args[bpf.DirArgResume] = min(uint64(runs), 1)
		if err := testRun(w.fd, args[:]); err != nil {
			return bpf.Dir{}, fmt.Errorf("dentry walk: %w", err)
		}
		d, err := bpf.DecodeDir(w.state[slot*bpf.DirStateSize:])
		if err != nil {
			return d, err
		}
		recs := w.records[slot*bpf.DirCap*bpf.ChildSize:]
		for i := 0; i < int(d.Count); i++ {
			c, err := bpf.DecodeChild(recs[i*bpf.ChildSize:])
			if err != nil {
				return d, err
			}
			each(c)
		}
		if d.Status != bpf.DirMore {
			return d, nil
		}
		if w.between != nil {
			w.between()
		}
	}
	return bpf.Dir{}, fmt.Errorf("dentry walk: still going after %d runs", maxDirRuns)
}

// testRunAttr is union bpf_attr's test member (BPF_PROG_TEST_RUN).
type testRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

const bpfProgTestRun = 10 // BPF_PROG_TEST_RUN

// testRun runs a raw_tp program once with ctx as its arguments. It is
// bpf(2) itself, not libbpf's wrapper (which allocates per call), and the
// program's own return value must be 0. ctx must be on the heap: the kernel
// reads it while this goroutine is in the system call.
func testRun(prog int, ctx []uint64) error {
	attr := testRunAttr{
		progFD:    uint32(prog),
		ctxSizeIn: uint32(len(ctx) * 8),
		ctxIn:     uint64(uintptr(unsafe.Pointer(&ctx[0]))),
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgTestRun, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(ctx)
	if errno != 0 {
		return fmt.Errorf("test run: %w", errno)
	}
	if attr.retval != 0 {
		return fmt.Errorf("test run: the program returned %d (its maps or this task's fd table were unreadable)", attr.retval)
	}
	return nil
}
