package exporter

import (
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts bound what one client can hold: a request sent slowly or not
// at all, an answer not read, an idle keep-alive connection. Each client
// has its own connection and goroutine, so a slow one delays nobody else;
// these only make sure it lets go.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// DefaultTimeouts: Write covers the walk too (a scrape that must walk
// answers after it), which takes well under a second for a million
// inodes; Prometheus's own scrape timeout is 10 s by default.
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: time.Minute, Idle: time.Minute}

// Registry holds the exporter and, as node_exporter serves them, the Go
// runtime's and the process's own metrics (process_resident_memory_bytes
// among them).
func Registry(e *Exporter) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(e, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg at path, and a page pointing there at /.
func Handler(reg *prometheus.Registry, path string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	})
	mux.Handle(path, promhttp.InstrumentMetricHandler(reg, metrics))
	if path != "/" {
		mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			p := html.EscapeString(path)
			fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><title>filecache exporter</title></head><body>\n"+
				"<h1>filecache exporter</h1>\n<p>What the page cache holds, by filesystem and file: <a href=\"%s\">%s</a></p>\n</body></html>\n", p, p)
		})
	}
	return mux
}

// Server is an HTTP server with the timeouts t.
func Server(h http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// promLogger gives promhttp's errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Error("serving metrics", "err", fmt.Sprint(v...)) }
