package exporter

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// gather scrapes e once, as the HTTP handler does, and returns every
// sample by name{label="value",...} (labels in the registry's order).
func gather(t *testing.T, e *Exporter) map[string]float64 {
	t.Helper()
	m, err := collect(e)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// collect is gather for goroutines other than the test's.
func collect(e *Exporter) (map[string]float64, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(e); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				// An empty label is no label, to Prometheus.
				if l.GetValue() != "" {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
			}
			key := mf.GetName()
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[key] = v
		}
	}
	return out, nil
}

// sum adds the samples of one metric.
func sum(m map[string]float64, name string) float64 {
	s := 0.0
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

func count(m map[string]float64, name string) int {
	n := 0
	for k := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			n++
		}
	}
	return n
}

func mount(point, fstype, source string, dev uint64) top.Mount {
	return top.Mount{Dev: dev, Root: "/", Point: point, FSType: fstype, Source: source}
}

func filesystem(point, fstype, source string, dev uint64) top.Filesystem {
	return top.Filesystem{Dev: dev, FSType: fstype, Source: source, Mounts: []top.Mount{mount(point, fstype, source, dev)}}
}

// machine is a snapshot with every kind of filesystem and row the
// exporter must turn into series.
func machine() top.Snapshot {
	root := filesystem("/", "ext4", "/dev/vda", unix.Mkdev(254, 0))
	shm := filesystem("/dev/shm", "tmpfs", "tmpfs", unix.Mkdev(0, 25))
	run := filesystem("/run", "tmpfs", "tmpfs", unix.Mkdev(0, 26))
	bad := filesystem("/mnt/bad", "xfs", "/dev/vdb", unix.Mkdev(254, 16))
	covered := filesystem("/mnt/covered", "ext4", "/dev/vdc", unix.Mkdev(254, 32))
	gone := filesystem("/mnt/gone", "tmpfs", "tmpfs", unix.Mkdev(0, 41))
	odd := filesystem("/mnt/\xffodd", "tmpfs", "tmpfs", unix.Mkdev(0, 40))
	shmem := top.Filesystem{Label: top.ShmemLabel, FSType: "shmem", Dev: unix.Mkdev(0, 1)}
	bdev := top.Filesystem{Label: top.BdevLabel, FSType: "bdev", Dev: unix.Mkdev(0, 2)}
	return top.Snapshot{
		Time:     time.Unix(1700000000, 0),
		PageSize: 4096,
		FS: []top.FSTotal{
			{FS: root, Pages: 1000, Inodes: 5000, Cached: 700, Complete: true},
			{FS: shm, Pages: 10, Inodes: 4, Cached: 2, Complete: true},                // below 1 MiB: folded
			{FS: run, Pages: 300, Inodes: 90, Cached: 40, Partial: "lost a race"},     // walked in part
			{FS: bad, Err: errors.New("open /mnt/bad: permission denied"), Pages: 77}, // failed: no figures
			{FS: covered, Err: top.ErrCovered},                                        // unreachable: not a series
			{FS: odd, Pages: 500, Inodes: 3, Cached: 1, Complete: true},               // a name that is not UTF-8
			{FS: shmem, Pages: 5, Inodes: 9, Cached: 1, Complete: true, Shmem: true},  // folded
			{FS: bdev, Pages: 400, Inodes: 2, Cached: 1, Complete: true},
			// Unmounted between reading the mount table and opening it: gone, not failed.
			{FS: gone, Err: fmt.Errorf("open /mnt/gone: %w", unix.ENOENT)},
		},
		Rows: []top.Row{
			{FS: 0, Path: "/usr/lib/big.so", Pages: 600, Ino: 11},
			{FS: 5, Path: "/mnt/\xffodd/f", Pages: 500, Ino: 12},
			{FS: 7, Path: "/dev/vda", Pages: 400, Ino: 13},
			// Two deleted files of one name: one series.
			{FS: 2, Path: "/run/log", Pages: 100, Ino: 14, Deleted: true},
			{FS: 2, Path: "/run/log", Pages: 50, Ino: 15, Deleted: true},
			{FS: 0, Pages: 30, Ino: 99, NoName: true},
			{FS: 0, Path: "/etc/small", Pages: 20, Ino: 16},
		},
		Mem: top.Meminfo{Cached: 8 << 30, Shmem: 1 << 30, Buffers: 2 << 20, Read: true},
	}
}

// healthy is machine with every filesystem walked.
func healthy() top.Snapshot {
	s := machine()
	s.FS[3].Err, s.FS[3].Complete = nil, true
	return s
}

func fixed(s top.Snapshot, err error) Walk {
	return func() (top.Snapshot, error) { return s, err }
}

func TestMetrics(t *testing.T) {
	e := New(fixed(machine(), nil), Config{N: 5, MinBytes: 1 << 20,
		Build: BuildInfo{Version: "v1", Revision: "abc", GoVersion: "go1.26", Libbpf: "v1.5"}})
	m := gather(t, e)
	const ps = 4096
	want := map[string]float64{
		`filecache_build_info{goversion="go1.26",libbpf="v1.5",revision="abc",version="v1"}`: 1,
		`filecache_walks_total`: 1,
		// /mnt/bad could not be walked.
		`filecache_scrape_error`: 1,

		`filecache_filesystem_cached_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"}`:                  1000 * ps,
		`filecache_filesystem_cached_inodes{device="/dev/vda",fstype="ext4",mountpoint="/"}`:                 700,
		`filecache_filesystem_walk_complete{device="/dev/vda",fstype="ext4",mountpoint="/"}`:                 1,
		`filecache_filesystem_cached_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/run"}`:                 300 * ps,
		`filecache_filesystem_walk_complete{device="tmpfs",fstype="tmpfs",mountpoint="/run"}`:                0,
		`filecache_filesystem_walk_complete{device="/dev/vdb",fstype="xfs",mountpoint="/mnt/bad"}`:           0,
		"filecache_filesystem_cached_bytes{device=\"tmpfs\",fstype=\"tmpfs\",mountpoint=\"/mnt/\uFFFDodd\"}": 500 * ps,
		`filecache_filesystem_cached_bytes{device="bdev",fstype="bdev",mountpoint="bdev"}`:                   400 * ps,
		// /dev/shm and the shmem mount hold less than 1 MiB.
		`filecache_filesystem_cached_bytes{device="(other)",fstype="(other)",mountpoint="(other)"}`:  15 * ps,
		`filecache_filesystem_cached_inodes{device="(other)",fstype="(other)",mountpoint="(other)"}`: 3,
		`filecache_filesystem_walk_complete{device="(other)",fstype="(other)",mountpoint="(other)"}`: 1,
		`filecache_filesystems_folded`: 2,

		`filecache_file_cached_bytes{mountpoint="/",path="/usr/lib/big.so"}`:                   600 * ps,
		"filecache_file_cached_bytes{mountpoint=\"/mnt/\uFFFDodd\",path=\"/mnt/\uFFFDodd/f\"}": 500 * ps,
		`filecache_file_cached_bytes{mountpoint="bdev",path="/dev/vda"}`:                       400 * ps,
		`filecache_file_cached_bytes{mountpoint="/run",path="/run/log (deleted)"}`:             150 * ps,
		`filecache_file_cached_bytes{mountpoint="/",path="(no name: inode 99 on 254:0)"}`:      30 * ps,
		`filecache_file_cached_bytes{mountpoint="(other)",path="(other)"}`:                     (2215 - 1680) * ps,
		`filecache_meminfo_cached_bytes`:                                                       8 << 30,
		`filecache_meminfo_shmem_bytes`:                                                        1 << 30,
		`filecache_meminfo_buffers_bytes`:                                                      2 << 20,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for k := range m {
		for _, absent := range []string{"/mnt/covered", "/mnt/gone", "/dev/shm", `mountpoint="shmem"`, "/etc/small"} {
			if strings.Contains(k, absent) {
				t.Errorf("%s: %s should not be a series of its own", k, absent)
			}
		}
		if strings.HasPrefix(k, "filecache_filesystem_cached_bytes") && strings.Contains(k, "/mnt/bad") {
			t.Errorf("%s: a filesystem that could not be walked has no figures", k)
		}
	}
	// The files sum to the filesystems: rows and the rest are the total.
	if f, fs := sum(m, "filecache_file_cached_bytes"), sum(m, "filecache_filesystem_cached_bytes"); f != fs {
		t.Errorf("files sum to %v, filesystems to %v", f, fs)
	}
	if n := count(m, "filecache_file_cached_bytes"); n != 6 {
		t.Errorf("%d file series, want 5 and the rest", n)
	}
	for _, k := range []string{"filecache_walk_duration_seconds", "filecache_last_walk_timestamp_seconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
}

// -n 0 lists no file; --min 0 folds no filesystem (only the empty rest).
func TestNoRowsNoFolding(t *testing.T) {
	m := gather(t, New(fixed(machine(), nil), Config{N: 0}))
	if n := count(m, "filecache_file_cached_bytes"); n != 1 || m[`filecache_file_cached_bytes{mountpoint="(other)",path="(other)"}`] != sum(m, "filecache_filesystem_cached_bytes") {
		t.Errorf("-n 0: %d file series; the rest must be every file", n)
	}
	if m["filecache_filesystems_folded"] != 0 || m[`filecache_filesystem_cached_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/dev/shm"}`] != 10*4096 {
		t.Errorf("--min 0 folded filesystems: %v", m)
	}
}

func TestRootFS(t *testing.T) {
	host := top.Filesystem{Dev: 1, FSType: "ext4", Source: "/dev/vda", Mounts: []top.Mount{
		{Dev: 1, Root: "/var/lib/kubelet/pods/p/etc-hosts", Point: "/etc/hosts"},
		{Dev: 1, Root: "/", Point: "/host"},
	}}
	own := filesystem("/dev", "tmpfs", "tmpfs", 2)
	shmem := top.Filesystem{Label: top.ShmemLabel, FSType: "shmem"}
	fss := Rooted([]top.Filesystem{host, own, shmem}, "/host/")
	if len(fss) != 3 || len(fss[0].Mounts) != 1 || fss[0].Name() != "/host" || fss[1].Name() != "/dev" || fss[2].Name() != "shmem" {
		t.Fatalf("Rooted: %+v", fss)
	}
	if p, _ := fss[0].Path([][]byte{[]byte("var"), []byte("lib"), []byte("kubelet"), []byte("pods"), []byte("p"), []byte("etc-hosts")}); p != "/host/var/lib/kubelet/pods/p/etc-hosts" {
		t.Errorf("a file of the host is named %q, want it under /host", p)
	}
	s := top.Snapshot{PageSize: 4096, FS: []top.FSTotal{{FS: fss[0], Pages: 3, Complete: true}, {FS: fss[1], Pages: 1, Complete: true}},
		Rows: []top.Row{{FS: 0, Path: "/host/usr/lib/x", Pages: 3}, {FS: 1, Path: "/dev/null", Pages: 1}}}
	m := gather(t, New(fixed(s, nil), Config{N: 5, RootFS: "/host"}))
	for _, k := range []string{
		`filecache_filesystem_cached_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"}`,
		`filecache_file_cached_bytes{mountpoint="/",path="/usr/lib/x"}`,
		`filecache_file_cached_bytes{mountpoint="/dev",path="/dev/null"}`,
	} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s in %v", k, m)
		}
	}
	if got := Rooted([]top.Filesystem{host}, ""); len(got[0].Mounts) != 2 {
		t.Errorf("no --path.rootfs: mounts changed: %+v", got)
	}
}

// gate is a walk that blocks until released and records how many runs
// overlapped.
type gate struct {
	release  chan struct{}
	started  chan struct{}
	walks    atomic.Int32
	in, most atomic.Int32
	snap     top.Snapshot
}

func newGate() *gate {
	return &gate{release: make(chan struct{}), started: make(chan struct{}, 100), snap: machine()}
}

func (g *gate) walk() (top.Snapshot, error) {
	n := g.in.Add(1)
	defer g.in.Add(-1)
	for {
		m := g.most.Load()
		if n <= m || g.most.CompareAndSwap(m, n) {
			break
		}
	}
	g.walks.Add(1)
	g.started <- struct{}{}
	<-g.release
	return g.snap, nil
}

// 50 scrapes arriving while a walk runs all wait for it and share it: one
// walk, 50 answers with its figures.
func TestConcurrentScrapesShareOneWalk(t *testing.T) {
	g := newGate()
	e := New(g.walk, Config{N: 5})
	var waiting sync.WaitGroup
	waiting.Add(49)
	e.waiting = waiting.Done
	results := make(chan map[string]float64, 50)
	for range 50 {
		go func() {
			m, err := collect(e)
			if err != nil {
				t.Error(err)
			}
			results <- m
		}()
	}
	<-g.started
	// The other 49 find the walk under way (or, broken, start their own:
	// then they never all wait, and the test fails instead of hanging).
	waited := make(chan struct{})
	go func() { waiting.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		close(g.release)
		t.Fatalf("after 10 s, not every scrape was waiting for the walk under way (%d walks started)", g.walks.Load())
	}
	close(g.release)
	var ends []float64
	for range 50 {
		m := <-results
		if m["filecache_walks_total"] != 1 || m["filecache_scrape_error"] != 1 || sum(m, "filecache_file_cached_bytes") == 0 {
			t.Fatalf("a scrape did not get the shared walk: %v", m)
		}
		ends = append(ends, m["filecache_last_walk_timestamp_seconds"])
	}
	if slices.Min(ends) != slices.Max(ends) {
		t.Errorf("scrapes report walks that ended at different times: %v", ends)
	}
	if g.walks.Load() != 1 {
		t.Errorf("%d walks for 50 concurrent scrapes, want 1", g.walks.Load())
	}
}

// Scrapes arriving at any time never make two walks run at once.
func TestOneWalkAtATime(t *testing.T) {
	g := newGate()
	close(g.release)
	g.started = make(chan struct{}, 10000)
	e := New(g.walk, Config{N: 5}) // MaxAge 0: every scrape wants a fresh walk
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if _, err := collect(e); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if g.most.Load() != 1 || g.walks.Load() == 0 || g.walks.Load() > 800 {
		t.Errorf("%d walks for 800 scrapes, at most %d at once; want at most 1 at once", g.walks.Load(), g.most.Load())
	}
}

func TestMaxAge(t *testing.T) {
	walks := 0
	s := healthy() // nothing failed: the walk may be reused
	e := New(func() (top.Snapshot, error) { walks++; return s, nil }, Config{N: 5, MaxAge: 5 * time.Second})
	now := time.Unix(1700000000, 0)
	e.now = func() time.Time { return now }
	for i, c := range []struct {
		after time.Duration
		walks int
	}{{0, 1}, {time.Second, 1}, {3 * time.Second, 1}, {time.Second, 2}, {4 * time.Second, 2}, {time.Second, 3}} {
		now = now.Add(c.after)
		m := gather(t, e)
		if walks != c.walks || m["filecache_walks_total"] != float64(c.walks) || m["filecache_scrape_error"] != 0 {
			t.Errorf("scrape %d (+%v): %d walks (metric %v, error %v), want %d", i, c.after, walks, m["filecache_walks_total"], m["filecache_scrape_error"], c.walks)
		}
	}
}

// A failed walk is reported and never reused: the next scrape walks again,
// however young the failure.
func TestFailedWalkRetried(t *testing.T) {
	good := healthy()
	partly := machine() // /mnt/bad failed
	walks := []struct {
		s   top.Snapshot
		err error
	}{{top.Snapshot{}, errors.New("mount table: no /proc")}, {partly, nil}, {good, nil}}
	n := 0
	e := New(func() (top.Snapshot, error) { w := walks[n]; n++; return w.s, w.err }, Config{N: 5, MaxAge: time.Hour})
	m := gather(t, e)
	if m["filecache_scrape_error"] != 1 || count(m, "filecache_filesystem_cached_bytes") != 0 || count(m, "filecache_walk_duration_seconds") != 0 {
		t.Errorf("walk failed: %v", m)
	}
	if m = gather(t, e); m["filecache_scrape_error"] != 1 || m["filecache_walks_total"] != 2 || count(m, "filecache_filesystem_cached_bytes") == 0 {
		t.Errorf("a filesystem failed: want the error and the others' figures: %v", m)
	}
	if m = gather(t, e); m["filecache_scrape_error"] != 0 || m["filecache_walks_total"] != 3 {
		t.Errorf("third walk: %v", m)
	}
	if m = gather(t, e); m["filecache_walks_total"] != 3 {
		t.Errorf("a good walk younger than --max-age was not reused: %v", m)
	}
}

// A walk that panics releases the scrapes waiting for it and is a failure;
// the exporter keeps serving.
func TestWalkPanics(t *testing.T) {
	n := 0
	e := New(func() (top.Snapshot, error) {
		n++
		if n == 1 {
			panic("index out of range")
		}
		return healthy(), nil
	}, Config{N: 5})
	if m := gather(t, e); m["filecache_scrape_error"] != 1 {
		t.Errorf("a walk that panicked: %v", m)
	}
	if m := gather(t, e); m["filecache_scrape_error"] != 0 || m["filecache_walks_total"] != 2 {
		t.Errorf("after a panic: %v", m)
	}
}

// Stop waits for the walk under way, and no walk starts after it.
func TestStop(t *testing.T) {
	g := newGate()
	e := New(g.walk, Config{N: 5})
	go collect(e)
	<-g.started
	stopped := make(chan struct{})
	go func() { e.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a walk was under way")
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	<-stopped
	if m := gather(t, e); m["filecache_scrape_error"] != 1 || g.walks.Load() != 1 {
		t.Errorf("after Stop: %d walks, %v", g.walks.Load(), m)
	}
}
