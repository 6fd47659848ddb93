//go:build cgo

// Package cgo is the one package of filecache that crosses into C: it loads
// the embedded BPF object through libbpfgo (a statically linked libbpf) and
// runs its query program with BPF_PROG_TEST_RUN. Everything it returns is
// plain Go (bpf.Result), so the rest of filecache is tested without root.
package cgo

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/aquasecurity/libbpfgo"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/bpf/btfmin"
)

// Options tune Load.
type Options struct {
	// BTFPath is a kernel BTF file for kernels without /sys/kernel/btf/vmlinux.
	BTFPath string
	// Method forces one of the Method* programs; "" picks the best the
	// kernel runs: bpf_loop, else the bounded loop, and where the kernel
	// cannot test-run raw_tp programs, the attached one.
	Method string
}

// Module is a loaded filecache object ready to answer queries. It is not
// safe for concurrent use: the parameter and result maps hold one batch.
type Module struct {
	mod     *libbpfgo.Module
	memfds  []*os.File
	prog    *libbpfgo.BPFProg
	params  *libbpfgo.BPFMap
	results *libbpfgo.BPFMap
	method  string
	link    *libbpfgo.BPFLink // the attached program's, while attached
}

// LoadError is a failed load, with what libbpf printed (the verifier log).
type LoadError struct {
	Err error
	Log []string
}

func (e *LoadError) Error() string { return e.Err.Error() }
func (e *LoadError) Unwrap() error { return e.Err }

// LoadLog is what libbpf printed while loading, the verifier's log included.
func (e *LoadError) LoadLog() []string { return e.Log }

// libbpfDebug is LIBBPF_DEBUG: chatter about sections and relocations. Warnings
// (the verifier log among them) and info are kept.
const libbpfDebug = 2

// libbpf prints through one process-wide callback; collect while loading.
var (
	logMu sync.Mutex
	logs  []string
)

func init() {
	libbpfgo.SetLoggerCbs(libbpfgo.Callbacks{
		Log: func(level int, msg string) {
			if level >= libbpfDebug {
				return
			}
			logMu.Lock()
			defer logMu.Unlock()
			logs = append(logs, strings.Split(strings.TrimRight(msg, "\n"), "\n")...)
			// The verifier log can be long; keep the tail, which says why.
			if len(logs) > 400 {
				logs = append(logs[:0], logs[len(logs)-200:]...)
			}
		},
	})
}

func takeLog() []string {
	logMu.Lock()
	defer logMu.Unlock()
	l := logs
	logs = nil
	return l
}

// Load loads the program the kernel can run (or opts.Method) and checks it
// answers. An automatic choice that the kernel cannot test-run falls back to
// the attached program.
func Load(opts Options) (*Module, error) {
	if opts.Method != "" {
		return loadMethod(opts, opts.Method)
	}
	method := bpf.MethodBounded
	if helperLoopSupported() {
		method = bpf.MethodLoop
	}
	m, err := loadMethod(opts, method)
	if err != nil {
		return nil, err
	}
	if _, err := m.Query(nil); err == nil {
		return m, nil
	} else if errors.Is(err, unix.EPERM) {
		m.Close()
		return nil, &LoadError{Err: fmt.Errorf("test run: %w", err)}
	}
	// Kernels before 5.10 cannot test-run raw_tp programs: attach instead.
	m.Close()
	return loadMethod(opts, bpf.MethodAttached)
}

// loadMethod opens the embedded object from anonymous memory files (nothing
// is written to disk) and loads the one program of method.
func loadMethod(opts Options, method string) (_ *Module, err error) {
	use, ok := programs[method]
	if !ok {
		return nil, fmt.Errorf("unknown BPF method %q", method)
	}
	m := &Module{method: method}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := m.open(opts, use, nil); err != nil {
		return nil, err
	}
	if m.params, err = m.bpfMap(mapParams); err != nil {
		return nil, err
	}
	if m.results, err = m.bpfMap(mapResults); err != nil {
		return nil, err
	}
	return m, nil
}

// bpfMap finds a map of the loaded object.
func (m *Module) bpfMap(name string) (*libbpfgo.BPFMap, error) {
	bm, err := m.mod.GetMap(name)
	if err != nil {
		return nil, &LoadError{Err: fmt.Errorf("find map %s: %w", name, err)}
	}
	return bm, nil
}

// open opens the embedded object and loads only the program use (m.prog)
// and the maps it uses, those named in sizes with that many entries.
// Errors are *LoadError, with what libbpf printed.
func (m *Module) open(opts Options, use string, sizes map[string]uint32) (err error) {
	takeLog()
	defer func() {
		if err != nil {
			err = &LoadError{Err: err, Log: takeLog()}
		}
	}()
	objPath, err := m.memfile("filecache.bpf.o", object)
	if err != nil {
		return err
	}
	// NewModuleFromBufferArgs (v0.8.0) always raises RLIMIT_MEMLOCK and fails
	// where that is not allowed; the file variant honours SkipMemlockBump,
	// and libbpf itself raises the limit on kernels that still need it.
	m.mod, err = libbpfgo.NewModuleFromFileArgs(libbpfgo.NewModuleArgs{
		BPFObjPath:      objPath,
		BTFObjPath:      m.minimalBTF(opts.BTFPath),
		SkipMemlockBump: true,
	})
	if err != nil {
		return fmt.Errorf("open BPF object: %w", err)
	}
	for _, name := range objectPrograms {
		if name == use {
			continue
		}
		p, err := m.mod.GetProgram(name)
		if err != nil {
			return fmt.Errorf("find program %s: %w", name, err)
		}
		if err := p.SetAutoload(false); err != nil {
			return fmt.Errorf("disable program %s: %w", name, err)
		}
	}
	used := map[string]bool{}
	for _, name := range programMaps[use] {
		used[name] = true
	}
	for _, names := range programMaps {
		for _, name := range names {
			bm, err := m.mod.GetMap(name)
			if err != nil {
				return fmt.Errorf("find map %s: %w", name, err)
			}
			if err := bm.SetAutocreate(used[name]); err != nil {
				return fmt.Errorf("map %s: set autocreate: %w", name, err)
			}
			if n, ok := sizes[name]; ok {
				if err := bm.SetMaxEntries(n); err != nil {
					return fmt.Errorf("size map %s: %w", name, err)
				}
			}
		}
	}
	if err := m.mod.BPFLoadObject(); err != nil {
		return fmt.Errorf("load BPF program %s: %w", use, err)
	}
	// Loaded, libbpf needs neither file again: their fds go, keeping a
	// loaded object's fds (one a map, whether created or not) few, within
	// the 64-slot fd table a process starts with (see scan's fdBatch).
	for _, f := range m.memfds {
		f.Close()
	}
	m.memfds = nil
	if m.prog, err = m.mod.GetProgram(use); err != nil {
		return fmt.Errorf("find program %s: %w", use, err)
	}
	takeLog()
	return nil
}

// minimalBTF returns a memory file with the few types of the kernel BTF at
// path (the running kernel's if "") that the object's relocations ask about:
// libbpf parses that in well under a millisecond, the whole 5 MB in ~19. If
// that fails it returns path, and libbpf reads the whole file itself, or
// says what is wrong with it.
func (m *Module) minimalBTF(path string) string {
	// A second load in this process (the dentry walk, then a query
	// program) uses the first one's.
	if min := minBTFs.get(path); min != nil {
		if p, err := m.memfile("vmlinux.btf", min); err == nil {
			return p
		}
	}
	var kernel []byte
	var err error
	src := path
	if src == "" {
		src = bpf.KernelBTF
		// Linux >= 6.16 maps its BTF read-only: copying the 5 MB costs more
		// in page faults (~4 ms) than minimizing them. Only this file is
		// mapped: a --btf file cut short under the mapping would fault.
		if kernel, err = mapFile(src); err == nil {
			defer unix.Munmap(kernel)
		}
	}
	if kernel == nil {
		kernel, err = os.ReadFile(src)
	}
	// overlayfs built as a module has its types in the module's BTF, which
	// libbpf does not read once given a BTF file: add them.
	var module []byte
	if path == "" {
		module, _ = os.ReadFile(overlayModuleBTF)
	}
	if err == nil {
		var min []byte
		if min, err = btfmin.MinimalBTFModule(kernel, module, object); err == nil {
			minBTFs.put(path, min)
			var p string
			if p, err = m.memfile("vmlinux.btf", min); err == nil {
				return p
			}
		}
	}
	// Shown only if the load then fails.
	logMu.Lock()
	logs = append(logs, fmt.Sprintf("filecache: minimal BTF of %s: %v; libbpf reads all of it", src, err))
	logMu.Unlock()
	return path
}

// minBTFs keeps the minimal BTF made for each BTF path ("" for the
// kernel's): it depends only on that file and the embedded object.
var minBTFs btfCache

type btfCache struct {
	mu  sync.Mutex
	min map[string][]byte
}

func (c *btfCache) get(path string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.min[path]
}

func (c *btfCache) put(path string, min []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.min == nil {
		c.min = map[string][]byte{}
	}
	c.min[path] = min
}

// overlayModuleBTF is the BTF of overlayfs when it is a loaded module.
const overlayModuleBTF = "/sys/kernel/btf/overlay"

// mapFile maps a whole file read-only.
func mapFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() <= 0 || st.Size() != int64(int(st.Size())) {
		return nil, fmt.Errorf("map %s: size %d", path, st.Size())
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	return b, nil
}

// memfile puts data in an anonymous memory file and returns a path libbpf
// can open; the file lives as long as the module.
func (m *Module) memfile(name string, data []byte) (string, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	m.memfds = append(m.memfds, f)
	if _, err := f.Write(data); err != nil {
		return "", fmt.Errorf("write %s to memfd: %w", name, err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), nil
}

// Method says which program was loaded (one of the Method* names).
func (m *Module) Method() string { return m.method }

// Close detaches and unloads everything. Links and programs are fds of this
// process, so the kernel drops them even if it dies first.
func (m *Module) Close() {
	if m.link != nil {
		m.link.Destroy()
		m.link = nil
	}
	if m.mod != nil {
		m.mod.Close()
		m.mod = nil
	}
	for _, f := range m.memfds {
		f.Close()
	}
	m.memfds = nil
}

// Query answers one batch of fds open in this process (at most bpf.Batch):
// result i describes the file behind fds[i].
func (m *Module) Query(fds []int32) ([]bpf.Result, error) {
	var zero uint32
	key := unsafe.Pointer(&zero)
	unset := bpf.UnsetResults()
	if err := m.results.Update(key, unsafe.Pointer(&unset[0])); err != nil {
		return nil, fmt.Errorf("reset results map: %w", err)
	}
	p := bpf.Params{FDs: fds}
	if m.method == bpf.MethodAttached {
		// The attached program answers only this thread's trigger syscall.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		p.TID, p.Trigger = uint32(unix.Gettid()), unix.SYS_GETPPID
	}
	step := len(fds)
	if m.method != bpf.MethodLoop {
		step = bpf.Step
	}
	// At least one run, so an empty batch still proves the program runs.
	for start := 0; ; start += step {
		p.Start = uint32(start)
		b, err := p.Encode()
		if err != nil {
			return nil, err
		}
		if err := m.params.Update(key, unsafe.Pointer(&b[0])); err != nil {
			return nil, fmt.Errorf("write params map: %w", err)
		}
		if err := m.run(); err != nil {
			return nil, err
		}
		if m.method == bpf.MethodAttached && start < len(fds) {
			if err := m.retryTrigger(key, start); err != nil {
				return nil, err
			}
		}
		if start+step >= len(fds) {
			break
		}
	}
	raw, err := m.results.GetValue(key)
	if err != nil {
		return nil, fmt.Errorf("read results map: %w", err)
	}
	return bpf.DecodeResults(raw, len(fds))
}

// retryTrigger makes the attached program's trigger syscall again while
// it has not answered slot start: a program attached a moment ago may not
// see the first one yet (seen once under emulation, 16 processes attaching
// and detaching at once). Never answered, the slots stay FC_UNSET and are
// reported as such.
func (m *Module) retryTrigger(key unsafe.Pointer, start int) error {
	for try := 0; try < 5; try++ {
		raw, err := m.results.GetValue(key)
		if err != nil {
			return fmt.Errorf("read results map: %w", err)
		}
		if rs, err := bpf.DecodeResults(raw, start+1); err != nil || rs[start].Status != bpf.StatusUnset {
			return err
		}
		time.Sleep(time.Millisecond << try)
		if err := m.run(); err != nil {
			return err
		}
	}
	return nil
}

// run asks the program once: a test run in this task, or one trigger
// syscall from this thread for the attached program. That one stays attached
// until Close (detaching waits for an RCU grace period, ~10 ms), answering
// nothing but this thread's trigger.
func (m *Module) run() error {
	if m.method == bpf.MethodAttached {
		if m.link == nil {
			link, err := m.prog.AttachRawTracepoint("sys_enter")
			if err != nil {
				return fmt.Errorf("attach to sys_enter: %w", err)
			}
			m.link = link
		}
		unix.Getppid()
		return nil
	}
	opts := libbpfgo.RunOpts{}
	if err := m.prog.Run(&opts); err != nil {
		return fmt.Errorf("test run: %w", err)
	}
	// 2 is an empty batch (start past count): nothing to answer, no fault.
	if opts.RetVal != 0 && opts.RetVal != 2 {
		return fmt.Errorf("test run: the program returned %d (its maps or this task's fd table were unreadable)", opts.RetVal)
	}
	return nil
}
