package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/units"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

// vmLck is this process's locked memory in kB (/proc/self/status).
func vmLck(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmLck:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("VmLck %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no VmLck line")
	return 0
}

// lock holds the file's pages (mincore counts them all) and its pidfile
// until the signal, then releases both.
func TestLockHoldsUntilSignal(t *testing.T) {
	f := tempFile(t, "f", 5*4096+100)
	pidfile := filepath.Join(t.TempDir(), "pid")
	sigs := make(chan os.Signal, 1)
	var locked int
	// Once lock says it holds everything: the pages are locked and the
	// pidfile is there. Then it is told to let go.
	held := func() {
		locked = vmLck(t)
		b, _ := os.ReadFile(pidfile)
		if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
			t.Errorf("pidfile holds %q while locked, want %d", b, os.Getpid())
		}
		sigs <- unix.SIGTERM
	}
	r := runCLI(t, Env{Signals: sigs, Held: held}, "--engine=mincore", "lock", "--json", "--pidfile", pidfile, f)
	if want := 6 * 4096 / 1024; locked != want {
		t.Errorf("VmLck while held: %d kB, want %d", locked, want)
	}
	var doc struct {
		Action string
		Pid    int
		Files  []struct {
			Total uint64 `json:"total_pages"`
			After uint64 `json:"after_pages"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if r.status != ExitOK || doc.Action != "lock" || doc.Pid != os.Getpid() || len(doc.Files) != 1 || doc.Files[0].After != 6 || doc.Files[0].Total != 6 {
		t.Errorf("status %d, report %+v\nstderr %q", r.status, doc, r.stderr)
	}
	if !strings.Contains(r.stderr, "all 6 pages (24K) locked") || !strings.Contains(r.stderr, "terminated: pages unlocked") {
		t.Errorf("stderr %q", r.stderr)
	}
	if n := vmLck(t); n != 0 {
		t.Errorf("VmLck after the signal: %d kB", n)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile left behind: %v", err)
	}
}

// A signal before every file is locked ends the run with nothing locked.
func TestLockSignalWhileLocking(t *testing.T) {
	f := tempFile(t, "f", 2*4096)
	sigs := make(chan os.Signal, 1)
	sigs <- unix.SIGINT
	r := runCLI(t, Env{Signals: sigs}, "--engine=mincore", "lock", f, f)
	if r.status != ExitFailed || r.stdout != "" || r.stderr != "filecache: interrupt while locking: nothing stays locked\n" {
		t.Errorf("status %d, stdout %q, stderr %q", r.status, r.stdout, r.stderr)
	}
	if n := vmLck(t); n != 0 {
		t.Errorf("VmLck %d kB after an interrupted lock", n)
	}
}

// Over RLIMIT_MEMLOCK without CAP_IPC_LOCK: one line naming the file and
// the limit, before anything is locked.
func TestLockMemlockLimit(t *testing.T) {
	var was unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &was); err != nil {
		t.Fatal(err)
	}
	low := was
	low.Cur = 3 * 4096
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &low); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_MEMLOCK, &was)
	small, big := tempFile(t, "small", 2*4096), tempFile(t, "big", 2*4096)
	sigs := make(chan os.Signal, 1)
	sigs <- unix.SIGTERM
	r := runCLI(t, Env{Signals: sigs}, "--engine=mincore", "lock", small, big)
	want := "filecache: " + big + ": needs 16K (16384 bytes) locked in all, but RLIMIT_MEMLOCK allows 12288 bytes (hard limit "
	if r.status != ExitFailed || r.stdout != "" || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "CAP_IPC_LOCK") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("status %d, stdout %q, stderr %q; want 1 and a line starting %q", r.status, r.stdout, r.stderr, want)
	}
	if n := vmLck(t); n != 0 {
		t.Errorf("VmLck %d kB after a refused lock", n)
	}
	// CAP_IPC_LOCK lifts the limit, so nothing is refused beforehand.
	caps := func() (pagecache.Caps, error) { return 1 << unix.CAP_IPC_LOCK, nil }
	if r := runCLI(t, Env{Signals: sigs, Caps: caps}, "--engine=mincore", "lock", "--dry-run", small, big); r.status != ExitOK || !strings.Contains(r.stderr, "would lock 4 pages (16K) of 2 files") {
		t.Errorf("--dry-run with CAP_IPC_LOCK: %d %q", r.status, r.stderr)
	}
}

func TestActionRange(t *testing.T) {
	f := tempFile(t, "f", 10*4096)
	for _, verb := range []string{"touch", "evict", "lock"} {
		if r := runCLI(t, Env{}, verb, "--range=1:0", f); r.status != ExitUsage {
			t.Errorf("%s --range=1:0: %d %q", verb, r.status, r.stderr)
		}
		if r := runCLI(t, Env{}, "--engine=bpf", verb, "--range=0:1", f); r.status != ExitUsage || !strings.Contains(r.stderr, "whole files") {
			t.Errorf("--engine=bpf %s --range: %d %q", verb, r.status, r.stderr)
		}
		r := runCLI(t, Env{}, "--engine=mincore", verb, "--dry-run", "--json", "--range=4097:2", f)
		var doc struct {
			Range *pagecache.Range
			Files []struct {
				Total uint64 `json:"total_pages"`
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.status != ExitOK || len(doc.Files) != 1 || doc.Files[0].Total != 1 {
			t.Errorf("%s --range=4097:2: %d %v %+v %q", verb, r.status, err, doc, r.stderr)
		}
	}
	c := actRun{rng: &pagecache.Range{Off: 4095, Len: 2}}
	for size, want := range map[int64][3]int64{0: {0, 0, 0}, 4096: {4095, 4096, 1}, 9000: {4095, 4097, 2}} {
		off, end := c.span(size)
		if off != want[0] || end != want[1] || units.PagesIn(off, end) != uint64(want[2]) {
			t.Errorf("span(%d) = %d, %d (%d pages); want %v", size, off, end, units.PagesIn(off, end), want)
		}
	}
	c.rng = &pagecache.Range{Off: 8192}
	if off, end := c.span(5000); off != 5000 || end != 5000 || units.PagesIn(off, end) != 0 {
		t.Errorf("a range past the end: %d, %d", off, end)
	}
}

func TestTouchBar(t *testing.T) {
	report.BarEvery = 0
	defer func() { report.BarEvery = 100 * time.Millisecond }()
	f := tempFile(t, "f", 3<<20)
	r := runCLI(t, Env{Terminal: true}, "touch", f)
	if r.status != ExitOK || !strings.Contains(r.stderr, "\r\033[Kfilecache: touch [##########--------------------] 1M/3M  33%") || !strings.HasSuffix(r.stderr, "3M/3M 100%\r\033[K") {
		t.Errorf("terminal: %d %q", r.status, r.stderr)
	}
	for _, env := range []Env{{Terminal: true}, {}} {
		args := []string{"touch", f}
		if env.Terminal {
			args = []string{"touch", "--json", f}
		}
		if r := runCLI(t, env, args...); r.stderr != "" {
			t.Errorf("%v (terminal %v): %q", args, env.Terminal, r.stderr)
		}
	}
}
