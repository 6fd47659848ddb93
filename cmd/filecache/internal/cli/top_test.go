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
