package exporter

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serve starts the exporter's server with timeouts t on a free port.
func serve(t *testing.T, e *Exporter, path string, to Timeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := Server(Handler(Registry(e), path, log), to, log)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHandler(t *testing.T) {
	e := New(fixed(healthy(), nil), Config{N: 5, MaxAge: time.Hour})
	base := serve(t, e, "/m", DefaultTimeouts)
	code, body := get(t, base+"/m")
	if code != 200 {
		t.Fatalf("GET /m: %d\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the answer does not parse as the text format: %v", err)
	}
	for _, name := range []string{"filecache_file_cached_bytes", "filecache_build_info", "process_resident_memory_bytes", "go_goroutines", "promhttp_metric_handler_requests_total"} {
		if mfs[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if code, body := get(t, base+"/"); code != 200 || !strings.Contains(body, `href="/m"`) {
		t.Errorf("GET /: %d %q", code, body)
	}
	if code, _ := get(t, base+"/metrics"); code != 404 {
		t.Errorf("GET /metrics with --web.telemetry-path=/m: %d, want 404", code)
	}
}

// A client that sends half a request and stops holds only its own
// connection: others are answered meanwhile, and the server closes it
// once the header timeout passes.
func TestHungClient(t *testing.T) {
	e := New(fixed(healthy(), nil), Config{N: 5})
	to := DefaultTimeouts
	to.ReadHeader = 300 * time.Millisecond
	base := serve(t, e, "/metrics", to)
	hung, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	if _, err := io.WriteString(hung, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 3 {
		if code, _ := get(t, base+"/metrics"); code != 200 {
			t.Fatalf("scrape beside a hung client: %d", code)
		}
	}
	// The server ends the hung connection; the deadline only keeps a
	// broken server from hanging the test.
	hung.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = bufio.NewReader(hung).ReadString('\n')
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the hung connection was still open after 10 s (header timeout %v)", to.ReadHeader)
	}
	if took := time.Since(start); took < to.ReadHeader {
		t.Errorf("the hung connection ended after %v, before the header timeout", took)
	}
}
