// Package exporter is the Prometheus side of filecache serve: a collector
// that walks the page cache when it is scraped, and the HTTP server that
// serves it. One walk runs at a time: scrapes that arrive while it runs wait
// for it and share its figures, and a walk younger than MaxAge is served
// again without walking. Plain Go: the walk is injected (cli/serve.go wires
// the BPF walk in), so all of it is tested without root.
package exporter

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// MaxN caps the files listed: the walk's in-kernel heap holds 512
// (bpf.TopK), so one walk a filesystem finds them.
const MaxN = 500

// Walk takes one snapshot of the machine's page cache. err is a failure of
// the walk as a whole (no mount table); a filesystem that could not be
// walked is in the snapshot (FSTotal.Err).
type Walk func() (top.Snapshot, error)

// Config shapes what an exporter serves.
type Config struct {
	N        int           // files listed one by one (0..MaxN); the rest is one series
	MinBytes uint64        // filesystems holding less are folded into one series
	MaxAge   time.Duration // a walk that ended less than MaxAge ago is served again
	// RootFS is --path.rootfs: where the host's root is mounted in a
	// container; mount points and paths under it are shown without it.
	RootFS string
	Build  BuildInfo
	Log    *slog.Logger
}

// BuildInfo is what filecache_build_info says.
type BuildInfo struct {
	Version, Revision, GoVersion, Libbpf string
}

// ErrStopped answers scrapes that come after Stop.
var ErrStopped = errors.New("the exporter is stopping")

// Exporter is a prometheus.Collector that walks on scrape.
type Exporter struct {
	walk Walk
	cfg  Config
	now  func() time.Time

	mu      sync.Mutex
	last    *result // the newest walk that ended
	running *flight // the walk under way, nil when none
	walks   uint64  // walks ended
	stopped bool

	// waiting, if set, is called by a scrape about to wait for a walk
	// another scrape started (tests count the scrapes sharing a walk).
	waiting func()
}

// result is one walk's outcome.
type result struct {
	snap       top.Snapshot
	err        error // the walk as a whole failed
	failed     bool  // err, or some filesystem or /proc/meminfo failed
	start, end time.Time
}

type flight struct {
	done chan struct{}
	res  *result
}

// New returns an exporter walking with walk.
func New(walk Walk, cfg Config) *Exporter {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Exporter{walk: walk, cfg: cfg, now: time.Now}
}

// Stop waits for a walk under way to end; no walk starts afterwards, so
// the walker can be unloaded.
func (e *Exporter) Stop() {
	e.mu.Lock()
	e.stopped = true
	f := e.running
	e.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

// Describe sends every descriptor the exporter may collect.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect walks (or shares or reuses a walk) and sends its figures.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	r := e.result()
	e.mu.Lock()
	walks := e.walks
	e.mu.Unlock()
	e.metrics(r, walks, ch)
}

// result is the walk a scrape reports: the last one if it succeeded and is
// younger than MaxAge, else the one under way, else a new one. A failed
// walk is never served again: the next scrape walks.
func (e *Exporter) result() (r *result) {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return &result{err: ErrStopped, failed: true}
	}
	if r := e.last; r != nil && !r.failed && e.now().Sub(r.end) < e.cfg.MaxAge {
		e.mu.Unlock()
		return r
	}
	if f := e.running; f != nil {
		e.mu.Unlock()
		if e.waiting != nil {
			e.waiting()
		}
		<-f.done
		return f.res
	}
	f := &flight{done: make(chan struct{})}
	e.running = f
	e.mu.Unlock()

	r = &result{start: e.now()}
	defer func() {
		// Even a walk that panicked must release the scrapes waiting for it.
		if p := recover(); p != nil {
			r.err = fmt.Errorf("walk panicked: %v", p)
		}
		r.end = e.now()
		r.failed = r.err != nil || problems(r.snap) != nil
		e.logFailure(r)
		e.mu.Lock()
		e.walks++
		e.last, e.running = r, nil
		e.mu.Unlock()
		f.res = r
		close(f.done)
	}()
	r.snap, r.err = e.walk()
	return r
}

// unreachable says a filesystem's error is no failure: no mount shows it
// (covered, no block device), or it was unmounted between reading the
// mount table and opening its mount point, which on a node where pods
// come and go happens every day.
func unreachable(err error) bool {
	return top.Skipped(err) || errors.Is(err, os.ErrNotExist)
}

// problems is every failure in a snapshot: filesystems that could not be
// walked (not those unreachable) and /proc/meminfo.
func problems(s top.Snapshot) error {
	var errs []error
	for _, t := range s.FS {
		if t.Err != nil && !unreachable(t.Err) {
			errs = append(errs, fmt.Errorf("%s: %w", t.FS.Name(), t.Err))
		}
	}
	if s.MemErr != nil {
		errs = append(errs, fmt.Errorf("/proc/meminfo: %w", s.MemErr))
	}
	return errors.Join(errs...)
}

func (e *Exporter) logFailure(r *result) {
	switch {
	case r.err != nil:
		e.cfg.Log.Error("walk failed", "err", r.err)
	case r.failed:
		e.cfg.Log.Warn("walk incomplete", "err", problems(r.snap))
	}
}
