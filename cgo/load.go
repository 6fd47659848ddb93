// Package cgo is the one package of filecache that crosses into C: it loads
// the embedded BPF object through libbpfgo (a statically linked libbpf) and
// runs its query program with BPF_PROG_TEST_RUN. Everything it returns is
// plain Go (bpf.Result), so the rest of filecache is tested without root.
package cgo

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"github.com/aquasecurity/libbpfgo"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// Options tune Load.
type Options struct {
	// BTFPath is a kernel BTF file for kernels without /sys/kernel/btf/vmlinux.
	BTFPath string
	// Method forces MethodLoop or MethodBounded; "" picks what the kernel has.
	Method string
}

// Method names how the loaded program walks a batch.
const (
	MethodLoop    = "bpf_loop"     // one test run per batch (Linux >= 5.17)
	MethodBounded = "bounded-loop" // one test run per bpf.Step fds (older)
)

// Module is a loaded filecache object ready to answer queries. It is not
// safe for concurrent use: the parameter and result maps hold one batch.
type Module struct {
	mod     *libbpfgo.Module
	memfd   *os.File
	prog    *libbpfgo.BPFProg
	params  *libbpfgo.BPFMap
	results *libbpfgo.BPFMap
	method  string
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
			for _, l := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
				logs = append(logs, l)
			}
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

// Load opens the embedded object from an anonymous memory file (nothing is
// written to disk), picks the program the kernel can run, and loads it.
func Load(opts Options) (_ *Module, err error) {
	takeLog()
	defer func() {
		if err != nil {
			err = &LoadError{Err: err, Log: takeLog()}
		}
	}()
	fd, err := unix.MemfdCreate("filecache.bpf.o", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	memfd := os.NewFile(uintptr(fd), "filecache.bpf.o")
	if _, err := memfd.Write(bpf.Object); err != nil {
		memfd.Close()
		return nil, fmt.Errorf("write BPF object to memfd: %w", err)
	}
	// NewModuleFromBufferArgs (v0.8.0) always raises RLIMIT_MEMLOCK and fails
	// where that is not allowed; the file variant honours SkipMemlockBump,
	// and libbpf itself raises the limit on kernels that still need it.
	mod, err := libbpfgo.NewModuleFromFileArgs(libbpfgo.NewModuleArgs{
		BPFObjPath:      fmt.Sprintf("/proc/self/fd/%d", memfd.Fd()),
		BTFObjPath:      opts.BTFPath,
		SkipMemlockBump: true,
	})
	if err != nil {
		memfd.Close()
		return nil, fmt.Errorf("open BPF object: %w", err)
	}
	m := &Module{mod: mod, memfd: memfd}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()

	var loop bool
	switch opts.Method {
	case "":
		loop = helperLoopSupported()
	case MethodLoop:
		loop = true
	case MethodBounded:
	default:
		return nil, fmt.Errorf("unknown BPF method %q", opts.Method)
	}
	use, skip := "query_bounded", "query_loop"
	m.method = MethodBounded
	if loop {
		use, skip = skip, use
		m.method = MethodLoop
	}
	off, err := mod.GetProgram(skip)
	if err != nil {
		return nil, fmt.Errorf("find program %s: %w", skip, err)
	}
	if err := off.SetAutoload(false); err != nil {
		return nil, fmt.Errorf("disable program %s: %w", skip, err)
	}
	if err := mod.BPFLoadObject(); err != nil {
		return nil, fmt.Errorf("load BPF program %s: %w", use, err)
	}
	if m.prog, err = mod.GetProgram(use); err != nil {
		return nil, fmt.Errorf("find program %s: %w", use, err)
	}
	if m.params, err = mod.GetMap("params"); err != nil {
		return nil, fmt.Errorf("find map params: %w", err)
	}
	if m.results, err = mod.GetMap("results"); err != nil {
		return nil, fmt.Errorf("find map results: %w", err)
	}
	takeLog()
	return m, nil
}

// Method says which program was loaded (MethodLoop or MethodBounded).
func (m *Module) Method() string { return m.method }

// Close unloads everything; no program or map outlives the process.
func (m *Module) Close() {
	if m.mod != nil {
		m.mod.Close()
		m.mod = nil
	}
	if m.memfd != nil {
		m.memfd.Close()
		m.memfd = nil
	}
}

// Query answers one batch of fds open in this process (at most bpf.Batch):
// result i describes the file behind fds[i].
func (m *Module) Query(fds []int32) ([]bpf.Result, error) {
	params, err := bpf.EncodeParams(fds)
	if err != nil {
		return nil, err
	}
	var zero uint32
	key := unsafe.Pointer(&zero)
	if err := m.params.Update(key, unsafe.Pointer(&params[0])); err != nil {
		return nil, fmt.Errorf("write params map: %w", err)
	}
	unset := bpf.UnsetResults()
	if err := m.results.Update(key, unsafe.Pointer(&unset[0])); err != nil {
		return nil, fmt.Errorf("reset results map: %w", err)
	}
	step := len(fds)
	if m.method == MethodBounded {
		step = bpf.Step
	}
	for start := 0; start < len(fds); start += step {
		// raw_tp test-run context: args[0] is the first slot to answer.
		ctx := make([]byte, 8)
		ctx[0], ctx[1] = byte(start), byte(start>>8)
		opts := libbpfgo.RunOpts{CtxIn: ctx, CtxSizeIn: uint32(len(ctx))}
		if err := m.prog.Run(&opts); err != nil {
			return nil, fmt.Errorf("run BPF program: %w", err)
		}
		if opts.RetVal != 0 {
			return nil, fmt.Errorf("run BPF program: it returned %d (maps or fd table unreadable)", opts.RetVal)
		}
	}
	raw, err := m.results.GetValue(key)
	if err != nil {
		return nil, fmt.Errorf("read results map: %w", err)
	}
	return bpf.DecodeResults(raw, len(fds))
}
