// Package cli is filecache's command line: the kong grammar (one file per
// command, each with its Run method) and what the commands share: loading
// the BPF engine, the chain of engines, exit statuses. The BPF loader comes
// from main through Env, so all of it is tested without root.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// Exit statuses.
const (
	ExitOK     = 0 // every path answered
	ExitFailed = 1 // some path has no figures, or no engine could run
	ExitUsage  = 2 // the command line is wrong
)

// LoadOptions are the command line's say in loading the BPF engine.
type LoadOptions struct {
	BTF    string // --btf
	Method string // --bpf-method: "" (the kernel decides) or one of bpf.Methods
}

// LoadFunc loads the BPF engine; err may carry libbpf's log (LoadLog).
type LoadFunc func(LoadOptions) (pagecache.Engine, error)

// LoadLog is implemented by load errors that carry what libbpf printed.
type LoadLog interface{ LoadLog() []string }

// Env is what a run talks to.
type Env struct {
	Stdin          io.Reader // for --from -
	Stdout, Stderr io.Writer
	// Terminal says stderr is a terminal: a table run then shows progress.
	Terminal bool
	Build    Build // what --version and doctor say this binary is
	Load     LoadFunc
	// LoadWalker loads the filesystem walk of filecache top; close unloads it.
	// LoadOptions.Method picks the walk: bpf_loop's or the bounded one, else
	// (auto, attached) what WalkMethod says.
	LoadWalker func(LoadOptions) (w top.Walker, close func(), err error)
	// WalkMethod is the walk LoadWalker loads for a --bpf-method ("" for
	// auto): bpf_loop's where libbpf's probe finds the helper, else the
	// bounded one.
	WalkMethod func(method string) string
	// LoadPages loads the page walk of --by-cgroup.
	LoadPages LoadFunc
	// LoadCgroupWalker loads the cgroup walk of top and serve --by-cgroup
	// and --cgroup (LoadOptions.Method picks it as for LoadWalker).
	LoadCgroupWalker func(LoadOptions) (w top.CgroupWalker, close func(), err error)
	// LoadDirs loads the dentry walk that answers a tree's files without
	// an open each (nil: trees are walked without it).
	LoadDirs func(LoadOptions) (pagecache.DirWalker, error)
	// LoadRanges loads the page walk that lists cached pages (snapshot,
	// restore): an engine answering with Extents.
	LoadRanges LoadFunc
	// CgroupNames finds the memory cgroup hierarchy (nil: this machine's).
	CgroupNames func() (CgroupNames, error)
	// Caps and Stat default to this process's capabilities and os.Stat.
	Caps func() (pagecache.Caps, error)
	Stat func(string) error
	// Signals ends a lock run (nil: SIGTERM, SIGINT and SIGHUP).
	Signals <-chan os.Signal
	// Held, if set, is called once a lock run holds every page it will
	// hold, its pidfile written: the moment a test may look.
	Held func()
	// Serving, if set, is called with the address serve listens on once
	// it accepts scrapes.
	Serving func(addr string)
}

// CLI is the grammar: the flags every command takes, then the command.
type CLI struct {
	Globals

	Query  QueryCmd  `cmd:"" default:"withargs" help:"Measure files (the default command: filecache PATH... is filecache query PATH...)."`
	Doctor DoctorCmd `cmd:"" help:"Tell which engines and BPF methods work on this machine, and why the others do not."`
	Touch  TouchCmd  `cmd:"" help:"Bring files into the page cache (like vmtouch -t), showing the figures before and after."`
	Evict  EvictCmd  `cmd:"" help:"Drop files' clean pages from the page cache (like vmtouch -e), showing the figures before and after."`
	Lock   LockCmd   `cmd:"" help:"Map and lock files in memory (like vmtouch -l) until SIGTERM, SIGINT or SIGHUP, showing the figures before and after."`
	Top    TopCmd    `cmd:"" help:"List what fills the page cache across every mounted filesystem, without a list of files (needs the bpf engine)."`
	Serve  ServeCmd  `cmd:"" help:"Serve what fills the page cache to Prometheus, walking it when scraped (needs the bpf engine)."`
	// Warm restarts (snapshot.go, restore.go).
	Snapshot SnapshotCmd `cmd:"" help:"Save which pages of which files are cached, exactly, for restore (a warm restart)."`
	Restore  RestoreCmd  `cmd:"" help:"Bring back into the page cache exactly the pages a snapshot recorded, skipping files changed since."`
}

// Globals are the flags every command takes, and what the commands share.
type Globals struct {
	Version kong.VersionFlag `help:"Print the version and exit."`
	JSON    bool             `xor:"format" help:"Print one JSON document instead of a table (schema in README.md)."`
	NDJSON  bool             `name:"ndjson" xor:"format" help:"Print one JSON object a line as files are measured, every file of a tree included, then a summary line."`
	Verbose bool             `short:"v" help:"On a BPF load failure, also print the kernel verifier's last lines."`
	Engine  string           `enum:"auto,bpf,cachestat,mincore" default:"auto" help:"How to measure: ${enum}. auto takes bpf, then cachestat, then mincore, file by file."`
	BTF     string           `name:"btf" placeholder:"FILE" help:"Kernel BTF to load against, for kernels without /sys/kernel/btf/vmlinux."`
	Method  string           `name:"bpf-method" hidden:"" enum:"auto,${methods}" default:"auto" help:"Force the BPF program (${enum}), and with bpf_loop or bounded-loop top's walk; for tests."`

	env  *Env
	args []string // the command line as given, for lock --daemon to run again
}

const description = `Report how much of each file sits in the page cache, read from the kernel's
own per-file page count by a BPF program: O(1) per file whatever its size,
no read permission on the file needed. The bpf engine needs root (or CAP_BPF
and CAP_PERFMON) and kernel BTF; without them filecache falls back to
cachestat(2), then mincore(2), and says why.`

// exitStatus ends a run whose messages are already printed.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a command line that cannot run; Main prints it with a
// pointer to --help.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// status is the exit status of a command that printed its own messages.
func status(n int) error {
	if n == ExitOK {
		return nil
	}
	return exitStatus(n)
}

// kongExit carries kong's --help/--version exit through a panic, so tests
// and Main keep control instead of the process exiting inside the parser.
type kongExit int

// Main runs filecache with args (without the program name) and returns the
// exit status.
func Main(args []string, env Env) (code int) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	if env.Caps == nil {
		env.Caps = pagecache.OwnCaps
	}
	if env.Stat == nil {
		env.Stat = func(p string) error { _, err := os.Stat(p); return err }
	}
	c, ctx, err := parse(args, &env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v (see filecache --help)\n", err)
		return ExitUsage
	}
	err = ctx.Run(&c.Globals)
	var st exitStatus
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &st):
		return int(st)
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "filecache: %v (see filecache --help)\n", ue.error)
		return ExitUsage
	}
	fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
	return ExitFailed
}

// parse reads a command line into the grammar (see normalize for the
// conventions it follows); every string field holds its argument's exact
// bytes. kong's --help and --version panic with kongExit.
func parse(args []string, env *Env) (*CLI, *kong.Context, error) {
	c := &CLI{}
	parser, err := newParser(c, env)
	if err != nil {
		return nil, nil, err
	}
	argv, restore := normalize(parser.Model, args)
	ctx, err := parser.Parse(argv)
	if err != nil {
		return nil, nil, errors.New(restore.text(err.Error()))
	}
	restore.fields(c)
	c.env, c.args = env, args
	return c, ctx, nil
}

// newParser is the grammar's parser; the man page and the shell completions
// are generated from its model too (docs.go).
func newParser(c *CLI, env *Env) (*kong.Kong, error) {
	return kong.New(c,
		kong.Name("filecache"),
		kong.Description(description),
		kong.Vars{"version": env.Build.String(), "methods": joinMethods()},
		kong.Writers(env.Stdout, env.Stderr),
		kong.Exit(func(code int) { panic(kongExit(code)) }),
		kong.Bind(env),
	)
}

func joinMethods() string {
	s := ""
	for i, m := range bpf.Methods {
		if i > 0 {
			s += ","
		}
		s += m
	}
	return s
}

// loadBPF checks what the bpf engine needs, then loads it, turning a
// refusal into one line that says what is missing and how to get it.
func (g *Globals) loadBPF(method string) (pagecache.Engine, error) {
	var eng pagecache.Engine
	err := g.checkedLoad(func() (err error) {
		eng, err = g.env.Load(LoadOptions{BTF: g.BTF, Method: method})
		return err
	})
	return eng, err
}

// checkedLoad runs load (of a BPF program) after checking privileges and
// BTF, and explains a failure in one line.
func (g *Globals) checkedLoad(load func() error) error {
	caps, err := g.env.Caps()
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	if err := pagecache.CheckBPF(caps, g.BTF, g.env.Stat); err != nil {
		return err
	}
	if err := load(); errors.Is(err, bpf.ErrNoLoop) {
		return err // nothing to explain: the kernel is too old
	} else if err != nil {
		var log []string
		var ll LoadLog
		if errors.As(err, &ll) {
			log = ll.LoadLog()
		}
		lockdown, _ := os.ReadFile("/sys/kernel/security/lockdown")
		lc := pagecache.LoadContext{BTF: g.BTF, Log: log, Lockdown: string(lockdown)}
		if chargesMemlock() {
			var r unix.Rlimit
			if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &r) == nil {
				lc.Memlock = &r
			}
		}
		return &loadError{msg: pagecache.ExplainLoad(err, lc), err: err, log: log}
	}
	return nil
}

// chargesMemlock says whether this kernel charges BPF maps to
// RLIMIT_MEMLOCK: before Linux 5.11, which charges them to the memory
// cgroup instead.
func chargesMemlock() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	return major < 5 || major == 5 && minor < 11
}

// bpfMethod is --bpf-method as the loader takes it.
func (g *Globals) bpfMethod() string {
	if g.Method == "auto" {
		return ""
	}
	return g.Method
}

// stages are the engines --engine names, in the order auto tries them;
// rng, when set, is the part of each file to measure.
func (g *Globals) stages(rng *pagecache.Range) []pagecache.Stage {
	all := []pagecache.Stage{
		{Name: "bpf", Load: func() (pagecache.Engine, error) { return g.loadBPF(g.bpfMethod()) }},
		{Name: "cachestat", Load: func() (pagecache.Engine, error) { return pagecache.CachestatEngine{Range: rng}, nil }},
		{Name: "mincore", Load: func() (pagecache.Engine, error) { return pagecache.MincoreEngine{Range: rng}, nil }},
	}
	if rng != nil {
		all = all[1:] // nrpages counts whole files only
	}
	if g.Engine == "auto" {
		return all
	}
	for _, s := range all {
		if s.Name == g.Engine {
			return []pagecache.Stage{s}
		}
	}
	return nil
}

// chain is the engines --engine names, in order. When the automatic choice
// passes one over, it says why on stderr (with libbpf's log under -v) and in
// notes; a forced engine's failure ends the run with its own message.
func (g *Globals) chain(rng *pagecache.Range, notes *[]string) *pagecache.Chain {
	return &pagecache.Chain{
		Stages: g.stages(rng),
		Note: func(engine string, err error) {
			if g.Engine == "auto" {
				note := fmt.Sprintf("not using the %s engine: %v", engine, err)
				fmt.Fprintf(g.env.Stderr, "filecache: %s\n", note)
				g.printLoadLog(err)
				*notes = append(*notes, note)
			}
		},
	}
}

// parseRange reads --range for an engine choice: the bpf engine cannot
// measure part of a file.
func (g *Globals) parseRange(s string) (*pagecache.Range, error) {
	if s == "" {
		return nil, nil
	}
	rng, err := ParseRange(s)
	if err != nil {
		return nil, usageError{err}
	}
	if g.Engine == "bpf" {
		return nil, usagef("--range: the bpf engine counts whole files; use --engine cachestat or mincore")
	}
	return &rng, nil
}

// printLoadLog prints the tail of libbpf's log under -v.
func (g *Globals) printLoadLog(err error) {
	var ll LoadLog
	if g.Verbose && errors.As(err, &ll) {
		for _, l := range pagecache.LogTail(ll.LoadLog(), 20) {
			fmt.Fprintf(g.env.Stderr, "  %s\n", l)
		}
	}
}

// failed prints err as filecache's one line and returns the failed status.
func (g *Globals) failed(err error) error {
	fmt.Fprintf(g.env.Stderr, "filecache: %v\n", err)
	return exitStatus(ExitFailed)
}

type loadError struct {
	msg string
	err error
	log []string
}

func (e *loadError) Error() string     { return e.msg }
func (e *loadError) Unwrap() error     { return e.err }
func (e *loadError) LoadLog() []string { return e.log }
