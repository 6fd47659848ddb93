package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// oneFileWalker answers every walk with one inode of 3 pages named "f".
type oneFileWalker struct{ walks int }

func (w *oneFileWalker) Method() string { return "test" }

func (w *oneFileWalker) Walk(p bpf.WalkParams, each func(bpf.Inode) error) (bpf.Walk, error) {
	w.walks++
	if err := each(bpf.Inode{NrPages: 3, Size: 8192, Ino: 7, Nlink: 1, Names: [][]byte{[]byte("f")}}); err != nil {
		return bpf.Walk{}, err
	}
	// The device of the anchor, as the kernel encodes it.
	var st unix.Stat_t
	if err := unix.Fstat(int(p.FD), &st); err != nil {
		return bpf.Walk{}, err
	}
	dev := unix.Major(st.Dev)<<20 | unix.Minor(st.Dev)
	return bpf.Walk{Inodes: 1, Pages: 3, Cached: 1, Matched: 1, Emitted: 1, Status: bpf.WalkDone, Dev: dev}, nil
}

func TestTopCommand(t *testing.T) {
	w := &oneFileWalker{}
	closed := 0
	env := Env{LoadWalker: func(LoadOptions) (top.Walker, func(), error) { return w, func() { closed++ }, nil }}
	r := runCLI(t, env, "--json", "top", "-n", "3", "--mount", "/")
	if r.status != ExitOK || closed != 1 {
		t.Fatalf("top: status %d, closed %d\n%s", r.status, closed, r.stderr)
	}
	var d top.Doc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || len(d.Rows) != 1 || d.Rows[0].CachedPages != 3 || !d.Restricted {
		t.Errorf("top --json --mount /: %v\n%s", err, r.stdout)
	}
	if got := d.Rows[0].Path; got != "/f" {
		t.Errorf("row path %q, want /f (the root mount joined with the walk's names)", got)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--json", "top", "--format", "prometheus"}, "cannot be combined"},
		{[]string{"--engine", "cachestat", "top"}, "bpf engine only"},
		{[]string{"top", "--iterations", "2"}, "--iterations needs --watch"},
		{[]string{"top", "--min", "lots"}, "--min lots"},
	} {
		r := runCLI(t, env, c.args...)
		if r.status != ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: status %d, stderr %q; want 2 and %q", c.args, r.status, r.stderr, c.want)
		}
	}

	old := Env{LoadWalker: func(LoadOptions) (top.Walker, func(), error) { return nil, nil, bpf.ErrNoLoop }}
	r = runCLI(t, old, "top")
	if r.status != ExitFailed || r.stdout != "" || !strings.Contains(r.stderr, "bpf_loop") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("kernel without bpf_loop: status %d, stderr %q", r.status, r.stderr)
	}
	noCaps := Env{LoadWalker: env.LoadWalker, Caps: func() (pagecache.Caps, error) { return 0, nil }}
	r = runCLI(t, noCaps, "top")
	if r.status != ExitFailed || !strings.Contains(r.stderr, "CAP_BPF") {
		t.Errorf("no capabilities: status %d, stderr %q", r.status, r.stderr)
	}
}

// anchorWalker answers a walk with the anchor's own inode holding 3 pages,
// in two runs: what the kernel's walk says of doctor's test file.
type anchorWalker struct{ method string }

func (w anchorWalker) Method() string { return w.method }

func (w anchorWalker) Walk(p bpf.WalkParams, each func(bpf.Inode) error) (bpf.Walk, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(p.FD), &st); err != nil {
		return bpf.Walk{}, err
	}
	if err := each(bpf.Inode{NrPages: 3, Ino: st.Ino, Nlink: 1, Names: [][]byte{[]byte("memfd:x")}, Flags: bpf.InDisconnected}); err != nil {
		return bpf.Walk{}, err
	}
	return bpf.Walk{Inodes: 2, Pages: 3, Cached: 1, Matched: 1, Emitted: 1, Status: bpf.WalkDone, Runs: 2}, nil
}

// TestDoctorTopWalk: doctor checks both walks, says which one top gets on
// this kernel and, with -v, why (the probe).
func TestDoctorTopWalk(t *testing.T) {
	env := Env{
		LoadWalker: func(o LoadOptions) (top.Walker, func(), error) {
			if o.Method == bpf.MethodLoop {
				return nil, nil, bpf.ErrNoLoop
			}
			return anchorWalker{o.Method}, func() {}, nil
		},
		WalkMethod: func(m string) string {
			if m != "" {
				t.Errorf("doctor asked for the walk of --bpf-method %q, not this kernel's", m)
			}
			return bpf.MethodBounded
		},
	}
	r := runCLI(t, env, "doctor", "--json")
	var d Doctor
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("doctor --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	checks := map[string]Check{}
	for _, c := range d.Checks {
		if c.Engine == "top" {
			checks[c.Method] = c
		}
	}
	if c := checks["walk_sb (bpf_loop)"]; c.OK || !strings.Contains(c.Error, "bpf_loop") {
		t.Errorf("bpf_loop walk on a kernel without it: %+v", c)
	}
	if c := checks["walk_sb_bounded (bounded-loop)"]; !c.OK || !strings.Contains(c.Detail, "2 runs") {
		t.Errorf("bounded walk: %+v", c)
	}
	for m, c := range checks { // timed on every return, a failed check's too
		if c.Seconds <= 0 {
			t.Errorf("top check %s took %v s", m, c.Seconds)
		}
	}
	if d.Top.Method != bpf.MethodBounded || d.Top.Program != "walk_sb_bounded" || !strings.Contains(d.Top.Reason, "no bpf_loop") {
		t.Errorf("top walk: %+v", d.Top)
	}

	line := "filecache top walks with: bounded-loop (walk_sb_bounded)"
	r = runCLI(t, env, "doctor")
	if !strings.Contains(r.stdout, line) || strings.Contains(r.stdout, "because") {
		t.Errorf("doctor: want %q and no reason without -v\n%s", line, r.stdout)
	}
	r = runCLI(t, env, "doctor", "-v")
	if !strings.Contains(r.stdout, line+"\n  because libbpf's probe finds no bpf_loop helper") {
		t.Errorf("doctor -v: want the reason under %q\n%s", line, r.stdout)
	}
	// Like "filecache uses", the kernel's choice, whatever --bpf-method says.
	r = runCLI(t, env, "--bpf-method=bpf_loop", "doctor")
	if !strings.Contains(r.stdout, line) {
		t.Errorf("doctor --bpf-method=bpf_loop: want %q\n%s", line, r.stdout)
	}
}
