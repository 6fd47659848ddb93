package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
	"github.com/filecache/filecache/cmd/filecache/internal/exporter"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// ServeCmd serves what the page cache holds to Prometheus, walking it
// when scraped. Flag names follow node_exporter's.
type ServeCmd struct {
	ListenAddress string        `name:"web.listen-address" default:":9792" placeholder:"ADDR" help:"Address to listen on for scrapes (port 0: any free port, logged)."`
	TelemetryPath string        `name:"web.telemetry-path" default:"/metrics" placeholder:"PATH" help:"Path under which the metrics are served."`
	N             int           `short:"n" default:"20" placeholder:"N" help:"Files listed one by one, those holding the most (0 to 500); every other file is one series."`
	Min           string        `default:"1M" placeholder:"SIZE" help:"Filesystems holding less page cache are folded into one series, and files holding less are not listed (K, M, G, T; 0: none)."`
	MaxAge        time.Duration `name:"max-age" default:"5s" placeholder:"DURATION" help:"A walk younger than this is served again instead of walking (0: every scrape walks)."`
	RootFS        string        `name:"path.rootfs" placeholder:"PATH" help:"Where the host's root filesystem is mounted, in a container: mount points and paths under it are shown without it."`
	ByCgroup      bool          `name:"by-cgroup" help:"Serve each memory cgroup's page cache and the (cgroup, file) pairs holding the most, with container_id and pod_uid: every cached page is walked (a cost per cached page)."`
}

// Run loads the walk once and serves until SIGTERM or SIGINT, then stops
// serving, waits for a walk under way and unloads everything.
func (o *ServeCmd) Run(g *Globals) error {
	env := g.env
	switch {
	case g.JSON || g.NDJSON:
		return usagef("serve answers in the Prometheus format; --json and --ndjson do not apply")
	case g.Engine != "auto" && g.Engine != "bpf":
		return usagef("serve walks filesystems with the bpf engine only, not --engine %s", g.Engine)
	case o.N < 0 || o.N > exporter.MaxN:
		return usagef("-n %d: files listed must be 0 to %d (each is a series in every scrape)", o.N, exporter.MaxN)
	case o.MaxAge < 0:
		return usagef("--max-age %v: not a duration >= 0", o.MaxAge)
	case !strings.HasPrefix(o.TelemetryPath, "/"):
		return usagef("--web.telemetry-path %s: must start with /", units.Display(o.TelemetryPath))
	case o.RootFS != "" && !strings.HasPrefix(o.RootFS, "/"):
		return usagef("--path.rootfs %s: must be an absolute path", units.Display(o.RootFS))
	}
	minBytes, err := units.ParseSize(o.Min)
	if err != nil {
		return usagef("--min %s: not a size", units.Display(o.Min))
	}
	if env.LoadWalker == nil {
		return g.failed(errors.New("serve: no BPF loader in this build"))
	}
	// From here on a signal stops serve cleanly, even one that comes
	// while the program loads.
	sigs, stop := serveSignals(env)
	defer stop()
	var w top.Walker
	var closeW func()
	var cg *topCgroups
	opts := top.Options{N: max(o.N, 1), MinPages: units.PagesOf(minBytes)}
	if o.ByCgroup {
		if cg, err = o.cgroups(g); err != nil {
			return g.failed(err)
		}
		var cw top.CgroupWalker
		cw, closeW, err = g.loadCgroupWalker("")
		opts.Cgroups = &top.Cgroups{Walker: cw, Pairs: true}
	} else {
		err = g.checkedLoad(func() (err error) {
			w, closeW, err = env.LoadWalker(LoadOptions{BTF: g.BTF})
			return err
		})
	}
	if err != nil {
		defer g.printLoadLog(err)
		return g.failed(fmt.Errorf("serve needs the bpf engine, which cannot run here: %w", err))
	}
	defer closeW()

	log := slog.New(slog.NewTextHandler(env.Stderr, nil))
	// -n 0 lists no file: the walk keeps one, which the exporter drops.
	walk := func() (top.Snapshot, error) {
		ms, err := top.Mounts("/proc")
		if err != nil {
			return top.Snapshot{}, fmt.Errorf("mount table: %w", err)
		}
		s := top.Take(w, exporter.Rooted(top.Discover(ms), o.RootFS), opts)
		if cg != nil {
			s.Names = cg.names
		}
		s.IdentifyNamespaces("/proc")
		return s, nil
	}
	e := exporter.New(walk, exporter.Config{
		N: o.N, MinBytes: uint64(minBytes), MaxAge: o.MaxAge, RootFS: o.RootFS, Log: log,
		Build: exporter.BuildInfo{Version: env.Build.Version, Revision: env.Build.Commit, GoVersion: env.Build.Go, Libbpf: env.Build.Libbpf},
	})
	defer e.Stop()

	ln, err := net.Listen("tcp", o.ListenAddress)
	if err != nil {
		return g.failed(fmt.Errorf("serve: %w", err))
	}
	srv := exporter.Server(exporter.Handler(exporter.Registry(e), o.TelemetryPath, log), exporter.DefaultTimeouts, log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "address", ln.Addr().String(), "path", o.TelemetryPath, "version", env.Build.Version)
	if env.Serving != nil {
		env.Serving(ln.Addr().String())
	}

	select {
	case err := <-served:
		return g.failed(fmt.Errorf("serve: %w", err))
	case sig := <-sigs:
		log.Info("stopping", "signal", sig.String())
	}
	// Scrapes under way get shutdownGrace to finish; then every
	// connection is closed, a client stuck sending its request too (the
	// server would otherwise wait for its header timeout). Stop (deferred)
	// waits for a walk under way, and only then is the program unloaded.
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return g.failed(fmt.Errorf("serve: %w", err))
	}
	return nil
}

// cgroups finds the memory hierarchy that names cgroups: with
// --path.rootfs, the host's, mounted under it (a container's own cgroup
// namespace shows only its own cgroups), else this mount namespace's.
func (o *ServeCmd) cgroups(g *Globals) (*topCgroups, error) {
	if o.RootFS == "" || g.env.CgroupNames != nil {
		return g.cgroupMode(true, nil)
	}
	h, err := cgroups.FindUnder(o.RootFS)
	if err != nil {
		fmt.Fprintf(g.env.Stderr, "filecache: memory cgroups are shown by id only: %v\n", err)
		return &topCgroups{}, nil
	}
	n := &cgroups.Names{H: h}
	return &topCgroups{names: top.CgroupNames{Version: h.Version, Mount: h.Mount, Path: n.Path}}, nil
}

// shutdownGrace is how long scrapes under way may take once serve is told
// to stop: a walk of a million inodes takes a fraction of it.
const shutdownGrace = 2 * time.Second

// serveSignals is the channel whose first signal stops serving.
func serveSignals(env *Env) (<-chan os.Signal, func()) {
	if env.Signals != nil {
		return env.Signals, func() {}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGTERM, unix.SIGINT)
	return ch, func() { signal.Stop(ch) }
}
