// Package cli is filecache's command line: the kong grammar, and the run
// that ties the scanner, the engine and the report together. The engine is
// injected (main passes the BPF loader), so all of it is tested without root.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/kong"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/pagecache"
	"github.com/filecache/filecache/cmd/filecache/report"
	"github.com/filecache/filecache/cmd/filecache/scan"
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
	Method string // --bpf-method: "" (the kernel decides), "bpf_loop" or "bounded-loop"
}

// LoadFunc loads the BPF engine; err may carry libbpf's log (LoadLog).
type LoadFunc func(LoadOptions) (pagecache.Engine, error)

// LoadLog is implemented by load errors that carry what libbpf printed.
type LoadLog interface{ LoadLog() []string }

// Env is what a run talks to.
type Env struct {
	Stdout, Stderr io.Writer
	Version        string
	Load           LoadFunc
	// Caps and Stat default to this process's capabilities and os.Stat.
	Caps func() (pagecache.Caps, error)
	Stat func(string) error
}

// CLI is the grammar.
type CLI struct {
	Version kong.VersionFlag `help:"Print the version and exit."`
	JSON    bool             `help:"Print one JSON document instead of a table (schema in README.md)."`
	Verbose bool             `short:"v" help:"On a BPF load failure, also print the kernel verifier's last lines."`
	BTF     string           `name:"btf" placeholder:"FILE" help:"Kernel BTF to load against, for kernels without /sys/kernel/btf/vmlinux."`
	Method  string           `name:"bpf-method" hidden:"" enum:"auto,bpf_loop,bounded-loop,attached" default:"auto" help:"Force the BPF program (${enum}); for tests."`
	Paths   []string         `arg:"" name:"path" help:"Files or block devices to measure. Symlinks are followed; use -- before paths that start with a dash."`
}

const description = `Report how much of each file sits in the page cache, read from the kernel's
own per-file page count by a BPF program: O(1) per file whatever its size,
no read permission on the file needed. Needs root (or CAP_BPF and
CAP_PERFMON) and kernel BTF.`

// protectArgs hides arguments that are not valid UTF-8 from the parser,
// which would replace their bad bytes with U+FFFD (kong v1.17), behind
// placeholders no real argument can hold (NUL); restore brings the exact
// bytes back.
func protectArgs(args []string) (safe []string, restore func(string) string) {
	hidden := map[string]string{}
	safe = make([]string, len(args))
	for i, a := range args {
		safe[i] = a
		if !utf8.ValidString(a) {
			// Keep a leading "--flag=" visible so flags with such values parse.
			prefix := ""
			if j := strings.IndexByte(a, '='); strings.HasPrefix(a, "--") && j > 0 && utf8.ValidString(a[:j+1]) {
				prefix, a = a[:j+1], a[j+1:]
			}
			key := fmt.Sprintf("\x00arg%d\x00", i)
			hidden[key] = a
			safe[i] = prefix + key
		}
	}
	return safe, func(s string) string {
		if v, ok := hidden[s]; ok {
			return v
		}
		return s
	}
}

// exitSignal carries kong's --help/--version exit through a panic, so tests
// and Main keep control instead of the process exiting inside the parser.
type exitSignal int

// Main runs filecache with args (without the program name) and returns the
// exit status.
func Main(args []string, env Env) (status int) {
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(exitSignal)
			if !ok {
				panic(r)
			}
			status = int(code)
		}
	}()
	var c CLI
	parser, err := kong.New(&c,
		kong.Name("filecache"),
		kong.Description(description),
		kong.Vars{"version": env.Version},
		kong.Writers(env.Stdout, env.Stderr),
		kong.Exit(func(code int) { panic(exitSignal(code)) }),
	)
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		return ExitUsage
	}
	safe, restore := protectArgs(args)
	if _, err := parser.Parse(safe); err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v (see filecache --help)\n", err)
		return ExitUsage
	}
	for i := range c.Paths {
		c.Paths[i] = restore(c.Paths[i])
	}
	c.BTF = restore(c.BTF)
	return c.run(env)
}

func (c *CLI) run(env Env) int {
	if env.Caps == nil {
		env.Caps = pagecache.OwnCaps
	}
	if env.Stat == nil {
		env.Stat = func(p string) error { _, err := os.Stat(p); return err }
	}
	s := &scan.Scanner{Engine: func() (pagecache.Engine, error) { return c.loadEngine(env) }}
	defer s.Close()

	r := report.Report{PageSize: unix.Getpagesize()}
	err := s.Scan(c.Paths, func(f scan.File) {
		if f.Err != nil {
			fmt.Fprintln(env.Stderr, report.ErrorLine(f))
		}
		r.Files = append(r.Files, f)
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		if c.Verbose {
			var ll LoadLog
			if errors.As(err, &ll) {
				for _, l := range pagecache.LogTail(ll.LoadLog(), 20) {
					fmt.Fprintf(env.Stderr, "  %s\n", l)
				}
			}
		}
		return ExitFailed
	}
	if eng := s.EngineInUse(); eng != nil {
		r.Engine, r.Method = eng.Name(), eng.Method()
	}
	if c.JSON {
		err = report.JSON(env.Stdout, r)
	} else {
		err = report.Table(env.Stdout, r)
	}
	if err != nil {
		if !errors.Is(err, unix.EPIPE) {
			fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		}
		return ExitFailed
	}
	if r.Failed() {
		return ExitFailed
	}
	return ExitOK
}

// loadEngine checks what the bpf engine needs, then loads it, turning a
// refusal into one line that says what is missing and how to get it.
func (c *CLI) loadEngine(env Env) (pagecache.Engine, error) {
	caps, err := env.Caps()
	if err != nil {
		return nil, fmt.Errorf("read capabilities: %w", err)
	}
	if err := pagecache.CheckBPF(caps, c.BTF, env.Stat); err != nil {
		return nil, err
	}
	opts := LoadOptions{BTF: c.BTF}
	if c.Method != "auto" {
		opts.Method = c.Method
	}
	eng, err := env.Load(opts)
	if err != nil {
		var log []string
		var ll LoadLog
		if errors.As(err, &ll) {
			log = ll.LoadLog()
		}
		lockdown, _ := os.ReadFile("/sys/kernel/security/lockdown")
		return nil, &loadError{msg: pagecache.ExplainLoad(err, c.BTF, log, string(lockdown)), err: err, log: log}
	}
	return eng, nil
}

type loadError struct {
	msg string
	err error
	log []string
}

func (e *loadError) Error() string     { return e.msg }
func (e *loadError) Unwrap() error     { return e.err }
func (e *loadError) LoadLog() []string { return e.log }
