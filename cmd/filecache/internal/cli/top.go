package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/filecache/filecache/cmd/filecache/internal/units"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// TopCmd lists the inodes holding the most page cache, system-wide.
type TopCmd struct {
	N          int      `short:"n" placeholder:"N" default:"-1" help:"Rows to list (default: what fits the terminal, else 20; 0: every inode with pages)."`
	Mount      []string `placeholder:"PATH" help:"Only the filesystem of PATH (repeatable)."`
	Min        string   `placeholder:"SIZE" help:"Only inodes holding at least SIZE of page cache (K, M, G, T)."`
	Watch      float64  `placeholder:"SECONDS" help:"Refresh every SECONDS, showing growth and shrinkage; --json and --ndjson then write one document or line each time."`
	Iterations int      `placeholder:"N" help:"With --watch, stop after N refreshes (0: until interrupted)."`
	Format     string   `enum:"table,prometheus" default:"table" help:"table, or prometheus: the text format of node_exporter's textfile collector."`
	Output     string   `placeholder:"FILE" help:"Write to FILE instead of standard output, each time whole: through a temporary file beside it, renamed over it (as the textfile collector expects)."`
	RunSteps   uint32   `name:"run-steps" hidden:"" placeholder:"N" help:"The bounded walk: list steps of one BPF test run at most (0: its most); for tests."`
	ByCgroup   bool     `name:"by-cgroup" help:"List the (memory cgroup, file) pairs holding the most page cache, and each cgroup's sum, with its container and pod: every cached page is walked (a cost per cached page)."`
	Cgroup     []string `name:"cgroup" placeholder:"PATH" help:"Only page cache charged to this memory cgroup and those below it (repeatable): its directory, or its path as /proc/PID/cgroup writes it."`
	Processes  bool     `help:"Also list, for each file shown, the processes that have it open or mapped."`
}

// Run lists the inodes holding the most page cache, once or every --watch.
func (o *TopCmd) Run(g *Globals) error {
	env := g.env
	if o.Format == "prometheus" && (g.JSON || g.NDJSON) {
		return usagef("--format prometheus cannot be combined with --json or --ndjson")
	}
	if o.Processes && o.Format == "prometheus" {
		return usagef("--processes: the Prometheus format has no processes (one series each would not stay put); use --json")
	}
	if g.Engine != "auto" && g.Engine != "bpf" {
		return usagef("top walks filesystems with the bpf engine only, not --engine %s", g.Engine)
	}
	if o.Watch < 0 || (o.Watch == 0 && o.Iterations != 0) {
		return usagef("--watch takes a positive number of seconds; --iterations needs --watch")
	}
	opts := top.Options{N: o.N, RunSteps: o.RunSteps}
	if o.N < 0 {
		opts.N = screenRows()
	}
	if o.Min != "" {
		n, err := units.ParseSize(o.Min)
		if err != nil {
			return usagef("--min %s: not a size", units.Display(o.Min))
		}
		opts.MinPages = units.PagesOf(n)
	}
	st := ExitOK
	fss, bad, err := filesystems(o.Mount, env.Stderr)
	if err != nil {
		return g.failed(err)
	}
	if bad > 0 {
		st = ExitFailed
	}
	if len(fss) == 0 {
		return exitStatus(ExitFailed)
	}
	cg, err := g.cgroupMode(o.ByCgroup, o.Cgroup)
	if err != nil {
		return g.failed(err)
	}
	var w top.Walker
	var closeW func()
	if cg != nil {
		var cw top.CgroupWalker
		cw, closeW, err = g.loadCgroupWalker(g.bpfMethod())
		opts.Cgroups = &top.Cgroups{Walker: cw, Pairs: o.ByCgroup}
	} else if env.LoadWalker == nil {
		err = errors.New("no BPF loader in this build")
	} else {
		err = g.checkedLoad(func() (err error) {
			w, closeW, err = env.LoadWalker(LoadOptions{BTF: g.BTF, Method: g.bpfMethod()})
			return err
		})
	}
	if err != nil {
		defer g.printLoadLog(err)
		return g.failed(fmt.Errorf("top needs the bpf engine, which cannot run here: %w", err))
	}
	defer closeW()

	stop := make(chan os.Signal, 1)
	if o.Watch > 0 {
		signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(stop)
	}
	var prev map[[2]uint64]uint64
	var prevFS map[uint64]uint64
	tty := env.Terminal && !g.JSON && !g.NDJSON && o.Format == "table" && o.Output == ""
	for i := 1; ; i++ {
		if cg != nil {
			if opts.Cgroups.Allow, err = cg.allow(); err != nil {
				return g.failed(fmt.Errorf("--cgroup: %w", err))
			}
		}
		s := top.Take(w, fss, opts)
		s.Prev, s.PrevFS, s.Restricted = prev, prevFS, len(o.Mount) > 0
		if cg != nil {
			s.Names, s.Filter = cg.names, cg.paths()
		}
		s.IdentifyNamespaces(procRoot)
		if o.Processes {
			idx, err := g.holders()
			if err != nil {
				return g.failed(err)
			}
			s.AttachHolders(idx)
		}
		top.Problems(env.Stderr, s)
		if err := o.emit(g, env.Stdout, s, tty && o.Watch > 0); err != nil {
			return g.failed(err)
		}
		for _, t := range s.FS {
			if t.Err != nil && !top.Skipped(t.Err) {
				st = ExitFailed
			}
		}
		if o.Watch == 0 || (o.Iterations > 0 && i >= o.Iterations) {
			return status(st)
		}
		prev, prevFS = s.Keys()
		select {
		case <-stop:
			return status(st)
		case <-time.After(time.Duration(o.Watch * float64(time.Second))):
		}
	}
}

// emit writes one snapshot to stdout, or replaces --output with it.
func (o *TopCmd) emit(g *Globals, stdout io.Writer, s top.Snapshot, redraw bool) error {
	if o.Output == "" {
		return o.write(g, stdout, s, redraw)
	}
	var b bytes.Buffer
	if err := o.write(g, &b, s, false); err != nil {
		return err
	}
	return replaceFile(o.Output, b.Bytes())
}

// write prints one snapshot; on a terminal under --watch it redraws the screen.
func (o *TopCmd) write(g *Globals, w io.Writer, s top.Snapshot, redraw bool) error {
	switch {
	case g.JSON || g.NDJSON:
		return top.JSON(w, s, g.NDJSON)
	case o.Format == "prometheus":
		return top.Prometheus(w, s)
	}
	if redraw {
		if _, err := io.WriteString(w, "\x1b[H\x1b[2J"); err != nil {
			return err
		}
	}
	return top.Table(w, s)
}

// filesystems lists what to walk: every filesystem, or those of --mount
// paths (a path that cannot be looked at is reported, the others walked).
func filesystems(mounts []string, stderr io.Writer) (_ []top.Filesystem, bad int, _ error) {
	ms, err := top.Mounts("/proc")
	if err != nil {
		return nil, 0, fmt.Errorf("top: %w", err)
	}
	all := top.Discover(ms)
	if len(mounts) == 0 {
		return all, 0, nil
	}
	var out []top.Filesystem
	for _, m := range mounts {
		var st unix.Stat_t
		if err := unix.Stat(m, &st); err != nil {
			fmt.Fprintf(stderr, "filecache: %s: %v\n", m, err)
			bad++
			continue
		}
		found := false
		for _, fs := range all {
			if fs.Dev == st.Dev && fs.Label == "" {
				found = true
				if !slices.ContainsFunc(out, func(o top.Filesystem) bool { return o.Dev == fs.Dev }) {
					out = append(out, fs)
				}
			}
		}
		if !found {
			fmt.Fprintf(stderr, "filecache: %s: its filesystem (%d:%d) is not in this mount namespace's mount table, or holds no page cache\n",
				m, unix.Major(st.Dev), unix.Minor(st.Dev))
			bad++
		}
	}
	return out, bad, nil
}

// screenRows is the default -n: the rows a terminal on stdout has left
// after the filesystem lines, else 20.
func screenRows() int {
	ws, err := unix.IoctlGetWinsize(1, unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 {
		return 20
	}
	return max(int(ws.Row)-12, 5)
}
