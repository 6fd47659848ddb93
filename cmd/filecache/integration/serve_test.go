package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/scripts/deploy"
)

// filecache serve, run from the systemd unit's own command line with the
// unit's capabilities as an unprivileged user, scraped by its own HTTP
// client and (where the prometheus binary exists) by a real Prometheus
// loading scripts/deploy/prometheus.yml; its figures for known files are
// held to cachestat taken on both sides of the walk.

// serveKernel runs the serve tests once (they are engine-independent); on
// every kernel, since top's walk runs on every kernel filecache supports.
func serveKernel(t *testing.T, bin string) {
	t.Helper()
	once(t)
}

// syncBuffer collects a process's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type server struct {
	cmd    *exec.Cmd
	url    string // http://ADDR
	stderr *syncBuffer
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

// serveOpts say how to run serve.
type serveOpts struct {
	cred *syscall.Credential
	caps []uintptr // ambient capabilities (with cred: what the unit grants its user)
	// memlock, when not 0, is RLIMIT_MEMLOCK for serve (the unit's
	// LimitMEMLOCK, which systemd sets before it drops privileges).
	memlock uint64
}

var listening = regexp.MustCompile(`msg=listening address=(\S+)`)

// startServe runs bin with args and waits until it says where it listens.
// The process is stopped (SIGTERM) at the end of the test if still running.
func startServe(t *testing.T, o serveOpts, bin string, args ...string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, exited: make(chan struct{})}
	if o.cred != nil || len(o.caps) > 0 {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.cred, AmbientCaps: o.caps}
	}
	pr, pw := io.Pipe()
	s.cmd.Stderr = io.MultiWriter(s.stderr, pw)
	if o.memlock != 0 {
		// The child inherits the limit at fork; the suite's tests run one
		// at a time, so the test process lends it its own for the start.
		// Where even root may not raise it (this project's machines), a
		// kernel that charges BPF maps to the memory cgroup (>= 5.11)
		// does not need it.
		var was unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &was); err != nil {
			t.Fatal(err)
		}
		err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: o.memlock, Max: o.memlock})
		switch {
		case err == nil:
			defer unix.Setrlimit(unix.RLIMIT_MEMLOCK, &was)
		case kernelAtLeast(t, featMemcgBPF):
			t.Logf("RLIMIT_MEMLOCK %d: %v; Linux >= 5.11 charges BPF maps to the memory cgroup instead", o.memlock, err)
		default:
			t.Fatalf("RLIMIT_MEMLOCK %d (the unit's LimitMEMLOCK): %v", o.memlock, err)
		}
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		pw.Close()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stop(t, unix.SIGTERM) })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.exited:
		t.Fatalf("filecache %s exited before listening: %v\n%s", strings.Join(args, " "), s.err, s.stderr)
	case <-time.After(runTimeout):
		t.Fatalf("filecache %s did not listen within %v\n%s", strings.Join(args, " "), runTimeout, s.stderr)
	}
	return s
}

// stop sends sig and waits for the exit; it returns the exit status.
func (s *server) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Signal(sig)
		select {
		case <-s.exited:
		case <-time.After(runTimeout):
			s.cmd.Process.Kill()
			<-s.exited
			t.Errorf("filecache serve did not stop within %v of %v\n%s", runTimeout, sig, s.stderr)
		}
	}
	return s.cmd.ProcessState.ExitCode()
}

// unitCommand is the unit's ExecStart with this test's binary and a free
// local port in place of the installed path and port.
func unitCommand(t *testing.T, bin string) []string {
	t.Helper()
	argv, err := deploy.ExecStart()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, a := range argv {
		if strings.HasPrefix(a, "--web.listen-address=") {
			argv[i] = "--web.listen-address=127.0.0.1:0"
			n++
		}
	}
	if n != 1 || argv[1] != "serve" {
		t.Fatalf("ExecStart %q: want serve with one --web.listen-address=ADDR", argv)
	}
	return append([]string{bin}, argv[1:]...)
}

// unitMemlock is the unit's LimitMEMLOCK in bytes (systemd's K, M, G).
func unitMemlock(t *testing.T) uint64 {
	t.Helper()
	v := deploy.UnitValues("Service", "LimitMEMLOCK")
	if len(v) != 1 {
		t.Fatalf("the unit's LimitMEMLOCK: %q, want one value", v)
	}
	s, mult := v[0], uint64(1)
	if i := strings.IndexAny(s, "KMG"); i == len(s)-1 {
		mult = 1 << (10 * (1 + strings.IndexByte("KMG", s[i])))
		s = s[:i]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("the unit's LimitMEMLOCK %q: %v", v[0], err)
	}
	return n * mult
}

// unitCaps are the unit's capabilities, less those named in without.
func unitCaps(t *testing.T, without ...string) []uintptr {
	t.Helper()
	names, err := deploy.Capabilities()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]uintptr{"CAP_BPF": unix.CAP_BPF, "CAP_PERFMON": unix.CAP_PERFMON, "CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH}
	var caps []uintptr
	for _, n := range names {
		c, ok := byName[n]
		if !ok {
			t.Fatalf("the unit grants %s, which this test does not know", n)
		}
		if !slices.Contains(without, n) {
			caps = append(caps, c)
		}
	}
	return caps
}

// startUnit runs serve as the unit does: its command line, as a user of
// its own (nobody here; DynamicUser in the unit) holding the unit's
// capabilities less without.
func startUnit(t *testing.T, bin string, without ...string) *server {
	t.Helper()
	argv := unitCommand(t, binForAll(t, bin))
	return startServe(t, serveOpts{cred: nobody(), caps: unitCaps(t, without...), memlock: unitMemlock(t)}, argv[0], argv[1:]...)
}

type metrics map[string]*dto.MetricFamily

func fetch(u string) (metrics, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s\n%s", u, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: not the Prometheus text format: %w", u, err)
	}
	return mfs, nil
}

// fetchRaw scrapes and reads the answer without parsing it.
func fetchRaw(u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

func (s *server) scrape(t *testing.T) metrics {
	t.Helper()
	m, err := fetch(s.url + "/metrics")
	if err != nil {
		t.Fatalf("%v\nserve's log:\n%s", err, s.stderr)
	}
	return m
}

// get is the sample of name with exactly these labels, and whether there
// is one.
func (m metrics) get(name string, labels ...string) (float64, bool) {
	for _, s := range m[name].GetMetric() {
		if len(s.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for _, l := range s.GetLabel() {
			i := slices.Index(labels, l.GetName())
			if i < 0 || i%2 != 0 || labels[i+1] != l.GetValue() {
				match = false
			}
		}
		if match {
			return s.GetGauge().GetValue() + s.GetCounter().GetValue() + s.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func (m metrics) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := m.get(name, labels...)
	if !ok {
		t.Fatalf("no %s%q in the scrape", name, labels)
	}
	return v
}

func (m metrics) sum(name string) float64 {
	s := 0.0
	for _, x := range m[name].GetMetric() {
		s += x.GetGauge().GetValue()
	}
	return s
}

// walkSpan is when the walk behind a scrape ran.
func (m metrics) walkSpan(t *testing.T) (start, end float64) {
	t.Helper()
	end = m.must(t, "filecache_last_walk_timestamp_seconds")
	return end - m.must(t, "filecache_walk_duration_seconds"), end
}

func unixSeconds(tm time.Time) float64 { return float64(tm.UnixNano()) / 1e9 }

// knownFiles are the files whose figures the tests check: 64 MiB on a
// tmpfs of the test's own (never reclaimed) and 32 MiB on ext4 (which the
// host may reclaim at any time: its figure is bracketed by cachestat).
type knownFiles struct {
	tmpfsDir, tmpfs, ext4 string
}

func makeKnownFiles(t *testing.T) knownFiles {
	t.Helper()
	k := knownFiles{tmpfsDir: tmpfsDir(t), ext4: filepath.Join(ext4Dir(t), "ext4file")}
	k.tmpfs = filepath.Join(k.tmpfsDir, "tmpfsfile")
	writeAt(t, k.tmpfs, 0, 64*mib)
	writeAt(t, k.ext4, 0, 32*mib)
	return k
}

// fileFigure checks the row of path among a scrape's files (by path:
// mountpoint): present with want bytes, under a mount point that is one of
// its directories (mp, when given), if fewer than n files hold more; else
// rightly left out.
func fileFigure(files map[string]fileRow, n int, path, mp string, want float64) string {
	if r, ok := files[path]; ok {
		switch {
		case r.bytes != want:
			return fmt.Sprintf("%s: %v bytes, cachestat says %v", path, r.bytes, want)
		case mp != "" && r.mountpoint != mp:
			return fmt.Sprintf("%s: mountpoint %q, want %q", path, r.mountpoint, mp)
		case r.mountpoint != "/" && !strings.HasPrefix(path, r.mountpoint+"/"):
			return fmt.Sprintf("%s: mountpoint %q is not one of its directories", path, r.mountpoint)
		}
		return ""
	}
	more := 0
	for p, r := range files {
		if p != "(other)" && r.bytes > want {
			more++
		}
	}
	if more < n {
		return fmt.Sprintf("%s (%v bytes cached) is not listed, but only %d of the %d files listed hold more", path, want, more, len(files)-1)
	}
	return ""
}

type fileRow struct {
	mountpoint string
	bytes      float64
}

// The exporter's own HTTP client check, wherever the suite runs: a scrape
// of serve started as the unit starts it lists the known files with
// cachestat's figures, their tmpfs with exactly its file, every
// filesystem complete, the files summing to the filesystems, no error,
// and build information matching --version.
func TestServeMetrics(t *testing.T) {
	bin := filecacheBin(t)
	serveKernel(t, bin)
	k := makeKnownFiles(t)
	s := startUnit(t, bin)
	n := 20
	for try := 1; ; try++ {
		readAt(t, k.ext4, 0, 32*mib)
		before := time.Now()
		r1 := takeRefs(t, []string{k.tmpfs, k.ext4})
		var m metrics
		// A walk younger than --max-age is served again: scrape until the
		// figures come from a walk that started after r1.
		for {
			m = s.scrape(t)
			if start, _ := m.walkSpan(t); start > unixSeconds(before) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		r2 := takeRefs(t, []string{k.tmpfs, k.ext4})
		if ok, why := sameRefs([]string{k.tmpfs, k.ext4}, r1, r2); !ok {
			if try < retries {
				t.Logf("try %d: %s; again", try, why)
				continue
			}
			t.Fatalf("no stable measurement in %d tries: %s", try, why)
		}
		files := map[string]fileRow{}
		for _, x := range m["filecache_file_cached_bytes"].GetMetric() {
			var path, mp string
			for _, l := range x.GetLabel() {
				switch l.GetName() {
				case "path":
					path = l.GetValue()
				case "mountpoint":
					mp = l.GetValue()
				}
			}
			files[path] = fileRow{mp, x.GetGauge().GetValue()}
		}
		if len(files) > n+1 {
			t.Errorf("%d file series, want at most %d and the rest", len(files), n)
		}
		for _, c := range []struct {
			path, mp string
			ref      ref
		}{{k.tmpfs, k.tmpfsDir, r1[0]}, {k.ext4, "", r1[1]}} {
			if c.ref.Cache == 0 {
				t.Fatalf("%s: not cached when measured", c.path)
			}
			if why := fileFigure(files, n, c.path, c.mp, float64(c.ref.Cache*uint64(pageSize))); why != "" {
				t.Error(why)
			}
		}
		if v := m.must(t, "filecache_filesystem_cached_bytes", "device", "tmpfs", "mountpoint", k.tmpfsDir, "fstype", "tmpfs"); v != float64(64*mib) {
			t.Errorf("the test's tmpfs holds %v bytes in the scrape, 64 MiB in its only file", v)
		}
		for _, x := range m["filecache_filesystem_walk_complete"].GetMetric() {
			if x.GetGauge().GetValue() != 1 {
				t.Errorf("walk not complete: %v", x.GetLabel())
			}
		}
		if f, fs := m.sum("filecache_file_cached_bytes"), m.sum("filecache_filesystem_cached_bytes"); f != fs || f == 0 {
			t.Errorf("the files sum to %v, the filesystems to %v", f, fs)
		}
		if v := m.must(t, "filecache_scrape_error"); v != 0 {
			t.Errorf("filecache_scrape_error %v\n%s", v, s.stderr)
		}
		if m.must(t, "filecache_meminfo_cached_bytes") < m.sum("filecache_filesystem_cached_bytes")/2 {
			t.Errorf("meminfo Cached %v is less than half the walked figures", m.must(t, "filecache_meminfo_cached_bytes"))
		}
		// filecache VERSION (commit C, GO, libbpf L, ARCH)
		v := regexp.MustCompile(`^filecache (\S+) \(commit (\S+), (\S+), libbpf (\S+), \S+\)$`).FindStringSubmatch(strings.TrimSpace(run(t, bin, "--version").stdout))
		if v == nil {
			t.Fatalf("--version: %q", run(t, bin, "--version").stdout)
		}
		if _, ok := m.get("filecache_build_info", "version", v[1], "revision", v[2], "goversion", v[3], "libbpf", v[4]); !ok {
			t.Errorf("filecache_build_info %v; --version says %q", m["filecache_build_info"], v[0])
		}
		return
	}
}

// The unit's capabilities are the ones it needs: without CAP_BPF or
// CAP_PERFMON serve cannot load its program and says so; without
// CAP_DAC_READ_SEARCH a filesystem mounted under a directory its user may
// not search is not walked, which the error gauge shows, and the next
// scrape walks again: once the directory opens up, the figures are there
// and the gauge is 0. With the unit's set, the same mount is walked.
func TestServeUnitCapabilities(t *testing.T) {
	bin := filecacheBin(t)
	serveKernel(t, bin)
	for _, c := range []string{"CAP_BPF", "CAP_PERFMON"} {
		argv := unitCommand(t, binForAll(t, bin))
		res := runWith(t, runOpts{cred: nobody(), caps: unitCaps(t, c), ownEngine: true}, argv[0], argv[1:]...)
		if res.code != 1 || !strings.Contains(res.stderr, "CAP_BPF and CAP_PERFMON") {
			t.Errorf("without %s: want exit 1 naming the capabilities\n%s", c, res)
		}
	}

	private := filepath.Join(tempDir(t), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(private, "m")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	writeAt(t, filepath.Join(mnt, "f"), 0, 4*mib)
	labels := []string{"device", "tmpfs", "mountpoint", mnt, "fstype", "tmpfs"}

	s := startUnit(t, bin, "CAP_DAC_READ_SEARCH")
	m := s.scrape(t)
	if v := m.must(t, "filecache_scrape_error"); v != 1 {
		t.Errorf("without CAP_DAC_READ_SEARCH, %s under a 0700 directory cannot be reached: filecache_scrape_error %v, want 1", mnt, v)
	}
	if v := m.must(t, "filecache_filesystem_walk_complete", labels...); v != 0 {
		t.Errorf("walk_complete of the unreachable filesystem %v, want 0", v)
	}
	if _, ok := m.get("filecache_filesystem_cached_bytes", labels...); ok {
		t.Error("figures for a filesystem that could not be walked")
	}
	if !strings.Contains(s.stderr.String(), "permission denied") {
		t.Errorf("the log does not say why the walk failed:\n%s", s.stderr)
	}
	// A failed walk is not served again, however young.
	if err := os.Chmod(private, 0o755); err != nil {
		t.Fatal(err)
	}
	m2 := s.scrape(t)
	if w1, w2 := m.must(t, "filecache_walks_total"), m2.must(t, "filecache_walks_total"); w2 != w1+1 {
		t.Errorf("walks %v then %v: the scrape after a failed walk must walk again", w1, w2)
	}
	if v := m2.must(t, "filecache_scrape_error"); v != 0 {
		t.Errorf("filecache_scrape_error %v once the directory opened up\n%s", v, s.stderr)
	}
	if v := m2.must(t, "filecache_filesystem_cached_bytes", labels...); v != float64(4*mib) {
		t.Errorf("%s holds %v bytes in the scrape, 4 MiB in its file", mnt, v)
	}
	s.stop(t, unix.SIGTERM)

	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	s = startUnit(t, bin)
	m = s.scrape(t)
	if v := m.must(t, "filecache_filesystem_cached_bytes", labels...); v != float64(4*mib) || m.must(t, "filecache_scrape_error") != 0 {
		t.Errorf("with the unit's capabilities: %s holds %v bytes, error %v\n%s", mnt, v, m.must(t, "filecache_scrape_error"), s.stderr)
	}
}

// 50 scrapes at once are all answered, and their walks never overlap:
// each answer carries the end and duration of the walk it reports, every
// walk of the burst is reported by some answer (filecache_walks_total
// grew by exactly the walks seen), and no two walks' spans intersect.
// Scrapes that arrive during a walk share it, so fewer than 50 walks run.
func TestServeConcurrentScrapes(t *testing.T) {
	bin := filecacheBin(t)
	serveKernel(t, bin)
	s := startServe(t, serveOpts{}, bin, "serve", "--web.listen-address=127.0.0.1:0", "--max-age=0")
	before := s.scrape(t).must(t, "filecache_walks_total")
	const n = 50
	type answer struct {
		start, end, walks float64
		err               error
	}
	answers := make(chan answer, n)
	begin := make(chan struct{})
	for range n {
		go func() {
			<-begin
			m, err := fetch(s.url + "/metrics")
			if err != nil {
				answers <- answer{err: err}
				return
			}
			a := answer{}
			var ok1, ok2, ok3 bool
			var dur float64
			a.end, ok1 = m.get("filecache_last_walk_timestamp_seconds")
			dur, ok2 = m.get("filecache_walk_duration_seconds")
			a.walks, ok3 = m.get("filecache_walks_total")
			a.start = a.end - dur
			if !ok1 || !ok2 || !ok3 {
				a.err = errors.New("an answer without the walk's time, duration or count")
			}
			answers <- a
		}()
	}
	close(begin)
	spans := map[float64]float64{} // end -> start
	for range n {
		a := <-answers
		if a.err != nil {
			t.Fatalf("a scrape was not answered: %v\n%s", a.err, s.stderr)
		}
		spans[a.end] = a.start
	}
	after := s.scrape(t).must(t, "filecache_walks_total")
	walks := int(after - before - 1) // the last scrape walked too
	if walks != len(spans) {
		t.Errorf("%v walks ran during the burst, the answers report %d", walks, len(spans))
	}
	if walks >= n {
		t.Errorf("%d walks for %d concurrent scrapes: none shared a walk", walks, n)
	}
	ends := slices.Sorted(func(yield func(float64) bool) {
		for e := range spans {
			if !yield(e) {
				return
			}
		}
	})
	for i := 1; i < len(ends); i++ {
		if spans[ends[i]] < ends[i-1] {
			t.Errorf("two walks ran at once: one ended at %.6f, the next started at %.6f", ends[i-1], spans[ends[i]])
		}
	}
	t.Logf("%d concurrent scrapes answered from %d walks", n, walks)
}

// vmRSS is a process's resident memory in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// Memory stays flat: resident memory after 2,000 scrapes (walking at
// most every 200 ms: ten or more walks) is within 4 MiB of what it was after
// 20, and well under the unit's MemoryMax.
func TestServeMemoryFlat(t *testing.T) {
	bin := filecacheBin(t)
	serveKernel(t, bin)
	// The exporter's memory is the Go program's, the same on every
	// kernel; under emulation its 2,000 scrapes take minutes.
	hostOnly(t, "memory flatness is checked on the host (2,000 scrapes take minutes under emulation)")
	s := startServe(t, serveOpts{}, bin, "serve", "--web.listen-address=127.0.0.1:0", "--max-age=200ms")
	pid := s.cmd.Process.Pid
	scrapes := func(count, clients int) {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; i < count; i += clients {
					if err := fetchRaw(s.url + "/metrics"); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("scrape: %v\n%s", err, s.stderr)
		}
	}
	start := time.Now()
	scrapes(20, 1)
	rss20 := vmRSS(t, pid)
	scrapes(1980, 4)
	rss2000 := vmRSS(t, pid)
	walks := s.scrape(t).must(t, "filecache_walks_total")
	t.Logf("RSS after 20 scrapes %.1f MiB, after 2,000 %.1f MiB (%v walks, %v)", float64(rss20)/float64(mib), float64(rss2000)/float64(mib), walks, time.Since(start).Round(time.Millisecond))
	if rss2000-rss20 > 4*mib {
		t.Errorf("resident memory grew by %.1f MiB over 1,980 scrapes", float64(rss2000-rss20)/float64(mib))
	}
	mem := deploy.UnitValues("Service", "MemoryMax")
	if len(mem) != 1 {
		t.Fatalf("MemoryMax %q", mem)
	}
	limit, err := strconv.ParseInt(strings.TrimSuffix(mem[0], "M"), 10, 64)
	if err != nil || rss2000 > limit*mib/2 {
		t.Errorf("resident %.1f MiB: more than half the unit's MemoryMax=%s (%v)", float64(rss2000)/float64(mib), mem[0], err)
	}
	if walks < 5 {
		t.Errorf("only %v walks in 2,000 scrapes with --max-age=200ms: the walk path was hardly exercised", walks)
	}
}

// walkPrograms lists the walk programs (walk_sb, walk_sb_bounded) in the kernel.
func walkPrograms(t *testing.T) map[uint32]bool {
	t.Helper()
	out := map[uint32]bool{}
	for id := range bpfIDs(t, 11) {
		if n := progName(id); n == "walk_sb" || n == "walk_sb_bounded" {
			out[id] = true
		}
	}
	return out
}

// SIGTERM and SIGINT stop serve with status 0, even with scrapes under
// way, and its walk program leaves the kernel with it. A client that
// never finishes its request holds up neither another's scrape nor the
// stop (which would otherwise wait for the 5 s header timeout).
func TestServeStops(t *testing.T) {
	bin := filecacheBin(t)
	serveKernel(t, bin)
	progs := walkPrograms(t)
	for _, sig := range []syscall.Signal{unix.SIGTERM, unix.SIGINT} {
		s := startServe(t, serveOpts{}, bin, "serve", "--web.listen-address=127.0.0.1:0", "--max-age=0")
		if sig == unix.SIGTERM {
			hung, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer hung.Close()
			if _, err := io.WriteString(hung, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
				t.Fatal(err)
			}
		}
		s.scrape(t)
		loaded := 0
		for id := range walkPrograms(t) {
			if !progs[id] {
				loaded++
			}
		}
		if loaded != 1 {
			t.Fatalf("%d walk_sb programs of serve in the kernel while it serves, want 1", loaded)
		}
		// Scrapes under way when the signal comes.
		var wg sync.WaitGroup
		for range 5 {
			wg.Add(1)
			go func() { defer wg.Done(); fetch(s.url + "/metrics") }()
		}
		start := time.Now()
		if code := s.stop(t, sig); code != 0 {
			t.Errorf("%v: exit status %d, want 0\n%s", sig, code, s.stderr)
		}
		// Scrapes under way get 2 s, then every connection is closed;
		// 10 s leaves room for emulated guests and still catches a stop
		// that hangs on a connection or a walk.
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%v: serve took %v to stop", sig, took.Round(time.Millisecond))
		}
		wg.Wait()
		if !strings.Contains(s.stderr.String(), "msg=stopping signal=") {
			t.Errorf("%v: the log does not say it stopped:\n%s", sig, s.stderr)
		}
	}
	var left []uint32
	for try := 0; try < 50; try++ {
		left = nil
		for id := range walkPrograms(t) {
			if !progs[id] {
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			return
		}
		// Freeing a program waits for an RCU grace period.
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("walk_sb programs left in the kernel after serve stopped: %v", left)
}

// ---- a real Prometheus ----

// promQuery asks Prometheus's HTTP API for expr at time at and returns the
// samples.
func promQuery(base, expr string, at float64) ([]promSample, error) {
	q := url.Values{"query": {expr}, "time": {strconv.FormatFloat(at, 'f', 3, 64)}}
	resp, err := http.Get(base + "/api/v1/query?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	if r.Status != "success" || r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: %s %s (%s)", expr, r.Status, r.Error, r.Data.ResultType)
	}
	var out []promSample
	for _, x := range r.Data.Result {
		s, _ := x.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v", expr, x.Value)
		}
		out = append(out, promSample{x.Metric, v})
	}
	return out, nil
}

type promSample struct {
	Labels map[string]string
	Value  float64
}

func mustQuery(t *testing.T, base, expr string, at float64) []promSample {
	t.Helper()
	r, err := promQuery(base, expr, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func one(t *testing.T, base, expr string, at float64) float64 {
	t.Helper()
	r := mustQuery(t, base, expr, at)
	if len(r) != 1 {
		t.Fatalf("%s at %.3f: %d samples, want 1: %+v", expr, at, len(r), r)
	}
	return r[0].Value
}

// freePort is a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// scrapeConfig is scripts/deploy/prometheus.yml with its target set to
// target, under a global section scraping every second.
func scrapeConfig(t *testing.T, target string) (cfg []byte, job string) {
	t.Helper()
	var c map[string]any
	if err := yaml.Unmarshal([]byte(deploy.ScrapeConfig), &c); err != nil {
		t.Fatal(err)
	}
	jobs, _ := c["scrape_configs"].([]any)
	if len(jobs) != 1 {
		t.Fatalf("prometheus.yml: %d jobs, want 1", len(jobs))
	}
	j, _ := jobs[0].(map[any]any)
	statics, _ := j["static_configs"].([]any)
	if len(statics) != 1 {
		t.Fatalf("prometheus.yml: want one static_configs: %v", j)
	}
	statics[0].(map[any]any)["targets"] = []string{target}
	c["global"] = map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	job, _ = j["job_name"].(string)
	return b, job
}

// startPrometheus runs Prometheus as a child of the test, with its own
// storage in a temporary directory, on a free port, until ready.
func startPrometheus(t *testing.T, prom string, cfg []byte) string {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	for try := 1; ; try++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		log := &syncBuffer{}
		cmd := exec.Command(prom, "--config.file="+file, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			cmd.Process.Signal(unix.SIGTERM)
			select {
			case <-exited:
			case <-time.After(runTimeout):
				cmd.Process.Kill()
				<-exited
			}
		}
		base := "http://" + addr
		err := waitReady(base, exited)
		switch {
		case err == nil:
			t.Cleanup(stop)
			return base
		case strings.Contains(log.String(), "address already in use") && try < 3:
			// Another process took the port between freePort and now.
			continue
		}
		stop()
		t.Fatalf("prometheus: %v\n%s", err, log)
	}
}

// waitReady polls Prometheus's readiness endpoint until it answers 200,
// Prometheus exits, or runTimeout passes.
func waitReady(base string, exited <-chan error) error {
	deadline := time.Now().Add(runTimeout)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("exited before it was ready: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %v", runTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A real Prometheus, loading scripts/deploy/prometheus.yml with the target
// filled in, scrapes serve started from the unit's command line; its HTTP
// API then gives the known files' figures as cachestat gives them on both
// sides of the walk, the files summing to the filesystems, and up 1.
func TestServePrometheus(t *testing.T) {
	bin := filecacheBin(t)
	serveKernel(t, bin)
	// The guests carry no Prometheus; what it reads of serve does not
	// depend on the kernel, which the other serve tests cover.
	hostOnly(t, "a real Prometheus runs on the host only")
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		skipFeature(t, "prometheus", "no prometheus binary (Debian package prometheus; scripts/deps.sh installs it)")
	}
	promtool(t)
	k := makeKnownFiles(t)
	s := startUnit(t, bin)
	cfg, job := scrapeConfig(t, strings.TrimPrefix(s.url, "http://"))
	base := startPrometheus(t, prom, cfg)
	sel := fmt.Sprintf(`{job=%q}`, job)
	for try := 1; ; try++ {
		readAt(t, k.ext4, 0, 32*mib)
		before := unixSeconds(time.Now())
		r1 := takeRefs(t, []string{k.tmpfs, k.ext4})
		// Wait for Prometheus to hold a scrape whose walk started after r1.
		var at float64
		deadline := time.Now().Add(runTimeout)
		for {
			at = unixSeconds(time.Now())
			r := mustQuery(t, base, "filecache_last_walk_timestamp_seconds"+sel+" - filecache_walk_duration_seconds"+sel, at)
			if len(r) == 1 && r[0].Value > before {
				break
			}
			if time.Now().After(deadline) {
				up, _ := promQuery(base, "up"+sel, at)
				t.Fatalf("Prometheus holds no scrape of a walk after %.3f within %v (walk start %+v, up %+v)\nserve's log:\n%s", before, runTimeout, r, up, s.stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
		r2 := takeRefs(t, []string{k.tmpfs, k.ext4})
		if ok, why := sameRefs([]string{k.tmpfs, k.ext4}, r1, r2); !ok {
			if try < retries {
				t.Logf("try %d: %s; again", try, why)
				continue
			}
			t.Fatalf("no stable measurement in %d tries: %s", try, why)
		}
		// Every query at the same instant: the samples of one scrape.
		if up := one(t, base, "up"+sel, at); up != 1 {
			t.Errorf("up = %v", up)
		}
		files := map[string]fileRow{}
		for _, x := range mustQuery(t, base, "filecache_file_cached_bytes"+sel, at) {
			files[x.Labels["path"]] = fileRow{x.Labels["mountpoint"], x.Value}
		}
		for _, c := range []struct {
			path, mp string
			ref      ref
		}{{k.tmpfs, k.tmpfsDir, r1[0]}, {k.ext4, "", r1[1]}} {
			if why := fileFigure(files, 20, c.path, c.mp, float64(c.ref.Cache*uint64(pageSize))); why != "" {
				t.Error(why)
			}
		}
		if _, ok := files[k.tmpfs]; !ok {
			t.Logf("the 64 MiB tmpfs file is not among the 20 largest on this host")
		}
		if v := one(t, base, fmt.Sprintf(`filecache_filesystem_cached_bytes{job=%q,mountpoint=%q,fstype="tmpfs"}`, job, k.tmpfsDir), at); v != float64(64*mib) {
			t.Errorf("the test's tmpfs: %v bytes, 64 MiB in its only file", v)
		}
		if d := one(t, base, "sum(filecache_file_cached_bytes"+sel+") - sum(filecache_filesystem_cached_bytes"+sel+")", at); d != 0 {
			t.Errorf("the files and the filesystems differ by %v bytes", d)
		}
		if v := one(t, base, "filecache_scrape_error"+sel, at); v != 0 {
			t.Errorf("filecache_scrape_error %v\n%s", v, s.stderr)
		}
		// The README's first queries are PromQL this Prometheus takes.
		if r := mustQuery(t, base, `topk(10, filecache_file_cached_bytes{path!="(other)"})`, at); len(r) != min(10, len(files)-1) {
			t.Errorf("topk(10, ...): %d samples, %d files listed", len(r), len(files)-1)
		}
		for _, q := range []string{
			`topk(5, sum by (instance) (filecache_filesystem_cached_bytes))`,
			`sum by (instance) (filecache_filesystem_cached_bytes{fstype!="bdev"}) / on (instance) filecache_meminfo_cached_bytes`,
			`topk by (instance) (1, filecache_file_cached_bytes{path!="(other)"})`,
			`sum by (fstype) (filecache_filesystem_cached_bytes)`,
			`filecache_scrape_error == 1 or filecache_filesystem_walk_complete == 0`,
		} {
			mustQuery(t, base, q, at)
		}
		return
	}
}

// promtool accepts both scrape configurations (the Kubernetes one only
// where this Prometheus has Kubernetes discovery, which Debian's 2.42
// leaves out).
func promtool(t *testing.T) {
	t.Helper()
	tool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("prometheus without promtool: %v", err)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{"prometheus.yml": deploy.ScrapeConfig, "prometheus-kubernetes.yml": deploy.KubernetesScrapeConfig} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(tool, "check", "config", f).CombinedOutput()
		if err != nil && name == "prometheus-kubernetes.yml" && strings.Contains(string(out), "field kubernetes_sd_configs not found") {
			t.Logf("skip[feature:prometheus-kubernetes-sd]: this promtool has no Kubernetes discovery; %s not checked", name)
			continue
		}
		if err != nil {
			t.Errorf("promtool check config %s: %v\n%s", name, err, out)
		}
	}
}
