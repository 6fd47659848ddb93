// Package cli is filecache's command line: the kong grammar, and the runs
// that tie the scanner, the engines and the reports together. The BPF loader
// is injected (main passes the real one), so all of it is tested without root.
package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/alecthomas/kong"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
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
	Method string // --bpf-method: "" (the kernel decides), "bpf_loop", "bounded-loop" or "attached"
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
	Version  string
	Load     LoadFunc
	// LoadWalker loads the filesystem walk of filecache top; close unloads it.
	LoadWalker func(LoadOptions) (w top.Walker, close func(), err error)
	// Caps and Stat default to this process's capabilities and os.Stat.
	Caps func() (pagecache.Caps, error)
	Stat func(string) error
	// Signals ends a lock run (nil: SIGTERM, SIGINT and SIGHUP).
	Signals <-chan os.Signal
}

// CLI is the grammar.
type CLI struct {
	Version kong.VersionFlag `help:"Print the version and exit."`
	JSON    bool             `xor:"format" help:"Print one JSON document instead of a table (schema in README.md)."`
	NDJSON  bool             `name:"ndjson" xor:"format" help:"Print one JSON object a line as files are measured, every file of a tree included, then a summary line."`
	Verbose bool             `short:"v" help:"On a BPF load failure, also print the kernel verifier's last lines."`
	Engine  string           `enum:"auto,bpf,cachestat,mincore" default:"auto" help:"How to measure: ${enum}. auto takes bpf, then cachestat, then mincore, file by file."`
	BTF     string           `name:"btf" placeholder:"FILE" help:"Kernel BTF to load against, for kernels without /sys/kernel/btf/vmlinux."`
	Method  string           `name:"bpf-method" hidden:"" enum:"auto,bpf_loop,bounded-loop,attached" default:"auto" help:"Force the BPF program (${enum}); for tests."`

	rng  *pagecache.Range // parsed --range
	args []string         // the command line, for lock --daemon to run again

	Query  QueryCmd  `cmd:"" default:"withargs" help:"Measure files (the default command: filecache PATH... is filecache query PATH...)."`
	Doctor DoctorCmd `cmd:"" help:"Tell which engines and BPF methods work on this machine, and why the others do not."`
	Touch  TouchCmd  `cmd:"" help:"Bring files into the page cache (like vmtouch -t), showing the figures before and after."`
	Evict  EvictCmd  `cmd:"" help:"Drop files' clean pages from the page cache (like vmtouch -e), showing the figures before and after."`
	Top    TopCmd    `cmd:"" help:"List what fills the page cache across every mounted filesystem, without a list of files (needs the bpf engine, Linux >= 5.17)."`
	Lock   LockCmd   `cmd:"" help:"Map and lock files in memory (like vmtouch -l) until SIGTERM, SIGINT or SIGHUP, showing the figures before and after."`
}

// QueryCmd measures paths.
type QueryCmd struct {
	Selection `embed:""`
	Files     bool     `help:"List every file found in a directory, not only the directory's sums."`
	Bytes     bool     `help:"Print exact byte counts in the table, not human sizes."`
	Sort      string   `enum:"none,cached,size,percent,path" default:"none" help:"Order the files listed: ${enum} (numbers largest first)."`
	Top       int      `placeholder:"N" help:"List the N files of each directory argument holding the most cached pages."`
	Detail    bool     `help:"Add dirty, writeback, evicted and recently evicted pages (cachestat(2), Linux >= 6.5)."`
	Map       bool     `help:"Draw which parts of each file are cached, like vmtouch -v: O all, o some, blank none."`
	Range     string   `placeholder:"OFFSET:LENGTH" help:"Measure only these bytes of each file (sizes take K, M, G, T; no LENGTH: to the end). Uses cachestat or mincore."`
	NoHead    bool     `name:"no-headings" help:"Print the table without its heading line."`
	Output    []string `placeholder:"COLUMNS" help:"The table's columns, comma-separated: cached, pages, size, percent, dirty, writeback, evicted, recent, engine, device, inode, path."`
}

// Selection is which files a command works on: paths, directories walked,
// and lists.
type Selection struct {
	From     string   `placeholder:"FILE" help:"Also measure the paths listed in FILE, one a line (- for standard input)."`
	Null     bool     `short:"0" help:"The --from list is separated by NUL bytes (find -print0), not newlines."`
	MaxDepth int      `name:"max-depth" placeholder:"N" help:"Descend at most N levels below a directory argument (1: its own files only; 0: no limit)."`
	XDev     bool     `name:"xdev" help:"Stay on the filesystem of each directory argument."`
	Follow   bool     `help:"Follow symlinks inside directories (loops are detected and reported)."`
	Include  []string `placeholder:"GLOB" help:"Measure only the files in directories whose name matches GLOB (repeatable)."`
	Exclude  []string `placeholder:"GLOB" help:"Skip files and directories whose name matches GLOB (repeatable)."`
	Paths    []string `arg:"" optional:"" name:"path" help:"Files, block devices or directories (walked recursively) to measure. Symlinks named here are followed; use -- before paths that start with a dash, ./ before a path named like a command."`
}

// DoctorCmd checks the machine.
type DoctorCmd struct{}

const description = `Report how much of each file sits in the page cache, read from the kernel's
own per-file page count by a BPF program: O(1) per file whatever its size,
no read permission on the file needed. The bpf engine needs root (or CAP_BPF
and CAP_PERFMON) and kernel BTF; without them filecache falls back to
cachestat(2), then mincore(2), and says why.`

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
	ctx, err := parser.Parse(safe)
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v (see filecache --help)\n", err)
		return ExitUsage
	}
	for _, sel := range []*Selection{&c.Query.Selection, &c.Touch.Selection, &c.Evict.Selection, &c.Lock.Selection} {
		for i := range sel.Paths {
			sel.Paths[i] = restore(sel.Paths[i])
		}
		sel.From = restore(sel.From)
	}
	c.BTF = restore(c.BTF)
	c.Lock.Pidfile = restore(c.Lock.Pidfile)
	c.args = args
	if env.Caps == nil {
		env.Caps = pagecache.OwnCaps
	}
	if env.Stat == nil {
		env.Stat = func(p string) error { _, err := os.Stat(p); return err }
	}
	usage := func(err error) int {
		fmt.Fprintf(env.Stderr, "filecache: %v (see filecache --help)\n", err)
		return ExitUsage
	}
	switch cmd := ctx.Command(); {
	case strings.HasPrefix(cmd, "doctor"):
		return c.doctor(env)
	case strings.HasPrefix(cmd, "top"):
		for i := range c.Top.Mount {
			c.Top.Mount[i] = restore(c.Top.Mount[i])
		}
		return c.top(env)
	case strings.HasPrefix(cmd, "touch"), strings.HasPrefix(cmd, "evict"), strings.HasPrefix(cmd, "lock"):
		verb := strings.Fields(cmd)[0]
		a := map[string]*Action{"touch": &c.Touch.Action, "evict": &c.Evict.Action, "lock": &c.Lock.Action}[verb]
		if err := a.Selection.check(); err != nil {
			return usage(err)
		}
		if err := c.setRange(a.Range); err != nil {
			return usage(err)
		}
		return c.act(env, verb, a)
	}
	if err := c.Query.Selection.check(); err != nil {
		return usage(err)
	}
	if err := c.setRange(c.Query.Range); err != nil {
		return usage(err)
	}
	if err := report.CheckColumns(c.Query.Output); err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v (see filecache --help)\n", err)
		return ExitUsage
	}
	return c.query(env)
}

// setRange parses a --range; the bpf engine cannot measure one.
func (c *CLI) setRange(s string) error {
	if s == "" {
		return nil
	}
	rng, err := ParseRange(s)
	if err != nil {
		return err
	}
	if c.Engine == "bpf" {
		return fmt.Errorf("--range: the bpf engine counts whole files; use --engine cachestat or mincore")
	}
	c.rng = &rng
	return nil
}

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

// loadBPF checks what the bpf engine needs, then loads it, turning a
// refusal into one line that says what is missing and how to get it.
func (c *CLI) loadBPF(env Env, method string) (pagecache.Engine, error) {
	var eng pagecache.Engine
	err := c.checkedLoad(env, func() (err error) {
		eng, err = env.Load(LoadOptions{BTF: c.BTF, Method: method})
		return err
	})
	return eng, err
}

// checkedLoad runs load (of a BPF program) after checking privileges and
// BTF, and explains a failure in one line.
func (c *CLI) checkedLoad(env Env, load func() error) error {
	caps, err := env.Caps()
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	if err := pagecache.CheckBPF(caps, c.BTF, env.Stat); err != nil {
		return err
	}
	if err := load(); errors.Is(err, top.ErrNoLoop) {
		return err // nothing to explain: the kernel is too old
	} else if err != nil {
		var log []string
		var ll LoadLog
		if errors.As(err, &ll) {
			log = ll.LoadLog()
		}
		lockdown, _ := os.ReadFile("/sys/kernel/security/lockdown")
		return &loadError{msg: pagecache.ExplainLoad(err, c.BTF, log, string(lockdown)), err: err, log: log}
	}
	return nil
}

// bpfMethod is --bpf-method as the loader takes it.
func (c *CLI) bpfMethod() string {
	if c.Method == "auto" {
		return ""
	}
	return c.Method
}

// stages are the engines --engine names, in the order auto tries them.
func (c *CLI) stages(env Env) []pagecache.Stage {
	all := []pagecache.Stage{
		{Name: "bpf", Load: func() (pagecache.Engine, error) { return c.loadBPF(env, c.bpfMethod()) }},
		{Name: "cachestat", Load: func() (pagecache.Engine, error) { return pagecache.CachestatEngine{Range: c.rng}, nil }},
		{Name: "mincore", Load: func() (pagecache.Engine, error) { return pagecache.MincoreEngine{Range: c.rng}, nil }},
	}
	if c.rng != nil {
		all = all[1:] // nrpages counts whole files only
	}
	if c.Engine == "auto" {
		return all
	}
	for _, s := range all {
		if s.Name == c.Engine {
			return []pagecache.Stage{s}
		}
	}
	return nil
}

// printLoadLog prints the tail of libbpf's log under -v.
func (c *CLI) printLoadLog(w io.Writer, err error) {
	var ll LoadLog
	if c.Verbose && errors.As(err, &ll) {
		for _, l := range pagecache.LogTail(ll.LoadLog(), 20) {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

type loadError struct {
	msg string
	err error
	log []string
}

func (e *loadError) Error() string     { return e.msg }
func (e *loadError) Unwrap() error     { return e.err }
func (e *loadError) LoadLog() []string { return e.log }

// writeErr reports a failed write of the output, except to a reader that has
// gone (a closed pipe ends filecache quietly).
func writeErrExit(w io.Writer, err error) int {
	if !errors.Is(err, unix.EPIPE) {
		fmt.Fprintf(w, "filecache: %v\n", err)
	}
	return ExitFailed
}

// ParseRange reads OFFSET:LENGTH, each a byte count with an optional K, M,
// G or T (powers of 1024); an empty LENGTH reaches the end of each file.
func ParseRange(s string) (pagecache.Range, error) {
	off, n, ok := strings.Cut(s, ":")
	if !ok {
		return pagecache.Range{}, fmt.Errorf("--range %q: want OFFSET:LENGTH", s)
	}
	var r pagecache.Range
	var err error
	if r.Off, err = parseSize(off); err != nil {
		return r, fmt.Errorf("--range %q: offset: %w", s, err)
	}
	if n != "" {
		if r.Len, err = parseSize(n); err != nil || r.Len == 0 {
			return r, fmt.Errorf("--range %q: length must be a size above 0", s)
		}
	}
	return r, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	if i := strings.IndexAny(s, "KMGTkmgt"); i >= 0 && i == len(s)-1 {
		mult = int64(1) << (10 * (1 + strings.IndexByte("KMGT", byte(unicode.ToUpper(rune(s[i]))))))
		s = s[:i]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}
