package cli

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not the text format: %v", url, err)
	}
	return mfs
}

// value is the sample of family name whose labels include want, and
// whether there is one.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, m := range mfs[name].GetMetric() {
		n := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				n++
			}
		}
		if n == len(want) {
			return m.GetGauge().GetValue() + m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// serve walks with the loaded walker when scraped, reuses a young walk,
// and on the signal stops and unloads the walker.
func TestServeCommand(t *testing.T) {
	w := &oneFileWalker{}
	closed := 0
	sigs := make(chan os.Signal, 1)
	var first, second map[string]*dto.MetricFamily
	var walksAfterFirst int
	env := Env{
		LoadWalker: func(LoadOptions) (top.Walker, func(), error) { return w, func() { closed++ }, nil },
		Signals:    sigs,
		Serving: func(addr string) {
			first = scrape(t, "http://"+addr+"/m")
			walksAfterFirst = w.walks
			second = scrape(t, "http://"+addr+"/m")
			sigs <- unix.SIGTERM
		},
	}
	r := runCLI(t, env, "serve", "--web.listen-address=127.0.0.1:0", "--web.telemetry-path", "/m", "--min", "0", "-n", "3")
	if r.status != ExitOK || closed != 1 {
		t.Fatalf("serve: status %d, walker closed %d times\n%s", r.status, closed, r.stderr)
	}
	if !strings.Contains(r.stderr, "msg=listening address=127.0.0.1:") || !strings.Contains(r.stderr, "signal=terminated") {
		t.Errorf("log lines: %s", r.stderr)
	}
	// oneFileWalker gives every filesystem one 3-page file named f; the
	// root filesystem's is /f.
	if v, ok := value(first, "filecache_file_cached_bytes", map[string]string{"path": "/f", "mountpoint": "/"}); !ok || v != 3*4096 {
		t.Errorf("/f: %v (present %v), want %d", v, ok, 3*4096)
	}
	if n := len(first["filecache_file_cached_bytes"].GetMetric()); n != 4 {
		t.Errorf("-n 3: %d file series, want 3 and the rest", n)
	}
	if _, ok := value(first, "filecache_build_info", map[string]string{"version": testBuild.Version, "revision": testBuild.Commit, "goversion": testBuild.Go, "libbpf": testBuild.Libbpf}); !ok {
		t.Errorf("build info: %v", first["filecache_build_info"])
	}
	if walksAfterFirst == 0 || w.walks != walksAfterFirst {
		t.Errorf("walker ran %d times for the first scrape, %d after the second (within --max-age): want the walk reused", walksAfterFirst, w.walks)
	}
	if v, _ := value(second, "filecache_walks_total", nil); v != 1 {
		t.Errorf("filecache_walks_total %v after two scrapes within --max-age, want 1", v)
	}
}

func TestServeUsage(t *testing.T) {
	env := Env{LoadWalker: func(LoadOptions) (top.Walker, func(), error) { return &oneFileWalker{}, func() {}, nil }}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "-n", "501"}, "0 to 500"},
		{[]string{"serve", "-n", "-1"}, "0 to 500"},
		{[]string{"serve", "--max-age=-1s"}, "--max-age"},
		{[]string{"serve", "--max-age=soon"}, "max-age"},
		{[]string{"serve", "--web.telemetry-path", "metrics"}, "must start with /"},
		{[]string{"serve", "--path.rootfs", "host"}, "absolute"},
		{[]string{"serve", "--min", "lots"}, "--min lots"},
		{[]string{"--json", "serve"}, "--json"},
		{[]string{"--engine", "mincore", "serve"}, "bpf engine only"},
	} {
		r := runCLI(t, env, c.args...)
		if r.status != ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: status %d, stderr %q; want 2 and %q", c.args, r.status, r.stderr, c.want)
		}
	}
}

func TestServeFailures(t *testing.T) {
	closed := 0
	env := Env{LoadWalker: func(LoadOptions) (top.Walker, func(), error) { return &oneFileWalker{}, func() { closed++ }, nil }}
	r := runCLI(t, env, "serve", "--web.listen-address", "127.0.0.1:-5")
	if r.status != ExitFailed || closed != 1 || !strings.Contains(r.stderr, "filecache: serve: listen tcp") {
		t.Errorf("bad listen address: status %d, closed %d, stderr %q", r.status, closed, r.stderr)
	}
	old := Env{LoadWalker: func(LoadOptions) (top.Walker, func(), error) { return nil, nil, bpf.ErrNoLoop }}
	r = runCLI(t, old, "serve")
	if r.status != ExitFailed || !strings.Contains(r.stderr, "serve needs the bpf engine") || !strings.Contains(r.stderr, "bpf_loop") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("kernel without bpf_loop: status %d, stderr %q", r.status, r.stderr)
	}
}
