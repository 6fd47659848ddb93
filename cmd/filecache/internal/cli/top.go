package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

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
}

// top runs filecache top.
func (c *CLI) top(env Env) int {
	o := c.Top
	if o.Format == "prometheus" && (c.JSON || c.NDJSON) {
		fmt.Fprintln(env.Stderr, "filecache: --format prometheus cannot be combined with --json or --ndjson (see filecache --help)")
		return ExitUsage
	}
	if c.Engine != "auto" && c.Engine != "bpf" {
		fmt.Fprintf(env.Stderr, "filecache: top walks filesystems with the bpf engine only, not --engine %s (see filecache --help)\n", c.Engine)
		return ExitUsage
	}
	if o.Watch < 0 || (o.Watch == 0 && o.Iterations != 0) {
		fmt.Fprintln(env.Stderr, "filecache: --watch takes a positive number of seconds; --iterations needs --watch (see filecache --help)")
		return ExitUsage
	}
	opts := top.Options{N: o.N}
	if o.N < 0 {
		opts.N = screenRows(env)
	}
	if o.Min != "" {
		n, err := parseSize(o.Min)
		if err != nil || n < 0 {
			fmt.Fprintf(env.Stderr, "filecache: --min %s: not a size (see filecache --help)\n", o.Min)
			return ExitUsage
		}
		opts.MinPages = uint64((n + int64(os.Getpagesize()) - 1) / int64(os.Getpagesize()))
	}
	status := ExitOK
	fss, bad, err := filesystems(o.Mount, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		return ExitFailed
	}
	if bad > 0 {
		status = ExitFailed
	}
	if len(fss) == 0 {
		return ExitFailed
	}
	if env.LoadWalker == nil {
		fmt.Fprintln(env.Stderr, "filecache: top: no BPF loader in this build")
		return ExitFailed
	}
	var w top.Walker
	var closeW func()
	err = c.checkedLoad(env, func() (err error) {
		w, closeW, err = env.LoadWalker(LoadOptions{BTF: c.BTF})
		return err
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: top needs the bpf engine, which cannot run here: %v\n", err)
		c.printLoadLog(env.Stderr, err)
		return ExitFailed
	}
	defer closeW()

	stop := make(chan os.Signal, 1)
	if o.Watch > 0 {
		signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(stop)
	}
	var prev map[[2]uint64]uint64
	var prevFS map[uint64]uint64
	tty := env.Terminal && !c.JSON && !c.NDJSON && o.Format == "table"
	for i := 1; ; i++ {
		s := top.Take(w, fss, opts)
		s.Prev, s.PrevFS, s.Restricted = prev, prevFS, len(o.Mount) > 0
		top.Problems(env.Stderr, s)
		if err := c.writeTop(env.Stdout, s, tty && o.Watch > 0); err != nil {
			if errors.Is(err, syscall.EPIPE) {
				return status
			}
			fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
			return ExitFailed
		}
		for _, t := range s.FS {
			if t.Err != nil && !top.Skipped(t.Err) {
				status = ExitFailed
			}
		}
		if o.Watch == 0 || (o.Iterations > 0 && i >= o.Iterations) {
			return status
		}
		prev, prevFS = s.Keys()
		select {
		case <-stop:
			return status
		case <-time.After(time.Duration(o.Watch * float64(time.Second))):
		}
	}
}

// writeTop prints one snapshot; on a terminal under --watch it redraws the screen.
func (c *CLI) writeTop(w io.Writer, s top.Snapshot, redraw bool) error {
	switch {
	case c.JSON || c.NDJSON:
		return top.JSON(w, s, c.NDJSON)
	case c.Top.Format == "prometheus":
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
func screenRows(env Env) int {
	ws, err := unix.IoctlGetWinsize(1, unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 {
		return 20
	}
	return max(int(ws.Row)-12, 5)
}
