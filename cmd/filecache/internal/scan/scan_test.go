package scan

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

// fakeEngine answers each fd with its fstat size and a page count derived
// from it, so the test can tell which file each answer went to.
type fakeEngine struct {
	batch   int
	queries [][]pagecache.Handle
	closed  bool
}

func (e *fakeEngine) Name() string   { return "fake" }
func (e *fakeEngine) Method() string { return "fake" }
func (e *fakeEngine) BatchSize() int { return e.batch }
func (e *fakeEngine) Close()         { e.closed = true }
func (e *fakeEngine) Query(hs []pagecache.Handle) ([]pagecache.Answer, error) {
	e.queries = append(e.queries, hs)
	out := make([]pagecache.Answer, len(hs))
	for i, h := range hs {
		var st unix.Stat_t
		if err := unix.Fstat(h.Fd, &st); err != nil {
			out[i].Err = err
			continue
		}
		if st.Mode&unix.S_IFMT != h.Mode&unix.S_IFMT {
			out[i].Err = errors.New("different kind")
			continue
		}
		out[i] = pagecache.Answer{Pages: uint64(st.Size) / 10, Size: st.Size, Dev: st.Dev, Ino: st.Ino, Nlink: uint32(st.Nlink)}
	}
	return out, nil
}

func scanAll(t *testing.T, s *Scanner, paths []string) ([]File, error) {
	t.Helper()
	var got []File
	err := s.Scan(paths, func(f File) { got = append(got, f) })
	return got, err
}

func TestScanKindsAndErrors(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg")
	if err := os.WriteFile(reg, make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(reg, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	long := "/" + strings.Repeat("a/", 2100) + "x"

	eng := &fakeEngine{batch: 512}
	s := &Scanner{Engine: func() (pagecache.Engine, error) { return eng, nil }}
	defer s.Close()
	paths := []string{reg, "", filepath.Join(dir, "missing"), link, "/proc/self/fd/0/..", fifo, "/dev/null", loop, long}
	got, err := scanAll(t, s, paths)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(paths) {
		t.Fatalf("%d results for %d paths", len(got), len(paths))
	}
	for i, f := range got {
		if f.Path != paths[i] {
			t.Errorf("result %d is for %q, want %q (order kept)", i, f.Path, paths[i])
		}
	}
	for _, i := range []int{0, 3} {
		if got[i].Err != nil || got[i].Kind != KindFile || got[i].Size != 1000 || got[i].Pages != 100 {
			t.Errorf("%s: %+v, want a measured 1000-byte file", paths[i], got[i])
		}
	}
	wants := map[int]error{1: ErrEmptyPath, 2: unix.ENOENT, 4: unix.ENOTDIR, 5: ErrNoPageCache, 6: ErrNoPageCache, 7: unix.ELOOP, 8: unix.ENAMETOOLONG}
	for i, want := range wants {
		if !errors.Is(got[i].Err, want) {
			t.Errorf("%q: error %v, want %v", paths[i], got[i].Err, want)
		}
		if got[i].Pages != 0 || got[i].Size != 0 {
			t.Errorf("%q: an error entry carries figures: %+v", paths[i], got[i])
		}
	}
	if !strings.Contains(got[5].Err.Error(), "FIFO") || !strings.Contains(got[6].Err.Error(), "character device") {
		t.Errorf("kind not named: %v / %v", got[5].Err, got[6].Err)
	}
	// The first file alone (the engine loads then, with one fd of ours
	// open), then the rest in one batch.
	if len(eng.queries) != 2 || len(eng.queries[0]) != 1 || len(eng.queries[1]) != 1 {
		t.Errorf("engine queries %v, want the first file alone, then the other", eng.queries)
	}
}

func TestScanBatchesKeepOrder(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := 0; i < 23; i++ {
		p := filepath.Join(dir, strings.Repeat("f", 1+i%3)+string(rune('a'+i)))
		if err := os.WriteFile(p, make([]byte, 10*i), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		if i%5 == 0 {
			paths = append(paths, p+".missing")
		}
	}
	eng := &fakeEngine{batch: 4}
	s := &Scanner{Engine: func() (pagecache.Engine, error) { return eng, nil }}
	got, err := scanAll(t, s, paths)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range got {
		if f.Path != paths[i] {
			t.Fatalf("result %d is %q, want %q", i, f.Path, paths[i])
		}
		if strings.HasSuffix(f.Path, ".missing") != (f.Err != nil) {
			t.Errorf("%s: err %v", f.Path, f.Err)
		}
		if f.Err == nil && f.Pages != uint64(f.Size)/10 {
			t.Errorf("%s: pages %d for size %d: answer went to the wrong file", f.Path, f.Pages, f.Size)
		}
	}
	for _, q := range eng.queries {
		if len(q) > 4 {
			t.Errorf("query of %d files exceeds batch size 4", len(q))
		}
	}
	// The first file alone, then 20 in batches of 4, and 2.
	if len(eng.queries) != 7 || len(eng.queries[0]) != 1 {
		t.Errorf("%d queries for 23 files (the first alone, then batches of 4), want 7: %v", len(eng.queries), eng.queries)
	}
}

func TestScanEngineOnlyWhenNeeded(t *testing.T) {
	calls := 0
	s := &Scanner{Engine: func() (pagecache.Engine, error) { calls++; return nil, errors.New("no bpf here") }}
	got, err := scanAll(t, s, []string{"/nonexistent/a", ""})
	if err != nil || calls != 0 || len(got) != 2 {
		t.Fatalf("all paths failing: err=%v engine calls=%d results=%d; the engine must not be loaded", err, calls, len(got))
	}
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, nil, 0o644)
	_, err = scanAll(t, s, []string{f})
	var ee *EngineError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "no bpf here") {
		t.Fatalf("engine failure: %v, want an EngineError", err)
	}
}

// TestScanPermissionDenied runs the scanner as user nobody (re-executing the
// test binary) on a file behind a directory nobody may not search.
func TestScanPermissionDenied(t *testing.T) {
	if os.Getenv("SCAN_AS_NOBODY") != "" {
		s := &Scanner{Engine: func() (pagecache.Engine, error) { return &fakeEngine{batch: 8}, nil }}
		got, _ := scanAll(t, s, strings.Split(os.Getenv("SCAN_AS_NOBODY"), ":"))
		for _, f := range got {
			os.Stdout.WriteString(f.Path + "\t" + errString(f.Err) + "\n")
		}
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root to run a child as nobody")
	}
	dir, err := os.MkdirTemp("", "scan-perm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	closed := filepath.Join(dir, "closed")
	os.Mkdir(closed, 0o700)
	secret := filepath.Join(closed, "secret")
	os.WriteFile(secret, []byte("x"), 0o644)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("hello"), 0o600) // unreadable by nobody: O_PATH still works

	// The test binary's own directory is private to root: run a copy.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "scan.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestScanPermissionDenied$")
	cmd.Env = append(os.Environ(), "SCAN_AS_NOBODY="+secret+":"+open)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), secret+"\tpermission denied\n") {
		t.Errorf("child output lacks permission denied for %s:\n%s", secret, out)
	}
	if !strings.Contains(string(out), open+"\t\n") {
		t.Errorf("unreadable file %s not measured through O_PATH:\n%s", open, out)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestScanTree: a directory argument yields its regular files (a hard-linked
// inode once), the errors inside it, then its sums.
func TestScanTree(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1000), 0o644))
	must(os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "sub", "a-again")))
	must(os.WriteFile(filepath.Join(dir, "sub", "b"), make([]byte, 5000), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sub", "deeper", "c"), make([]byte, 10), 0o644))
	must(os.Symlink("a", filepath.Join(dir, "link-to-a")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	single := filepath.Join(t.TempDir(), "single")
	must(os.WriteFile(single, make([]byte, 70), 0o644))

	eng := &fakeEngine{batch: 2}
	s := &Scanner{Engine: func() (pagecache.Engine, error) { return eng, nil }}
	got, err := scanAll(t, s, []string{single, dir, single})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || got[0].Path != single || got[5].Path != single || got[0].Root != "" {
		t.Fatalf("results %+v", got)
	}
	sum := got[4]
	if sum.Kind != KindDir || sum.Path != dir || sum.Files != 3 || sum.Size != 1000+5000+10 ||
		sum.Pages != 100+500+1 || sum.TotalPages != 1+2+1 || sum.Failed != 0 || sum.Err != nil {
		t.Errorf("tree sums %+v", sum)
	}
	for _, f := range got[1:4] {
		if f.Root != dir || f.Kind != KindFile || f.Err != nil || !strings.HasPrefix(f.Path, dir+"/") {
			t.Errorf("tree member %+v", f)
		}
	}

	s2 := &Scanner{Engine: func() (pagecache.Engine, error) { return &fakeEngine{batch: 8}, nil }}
	s2.Walk.MaxDepth = 1
	got, _ = scanAll(t, s2, []string{dir})
	if n := len(got); n != 2 || got[1].Files != 1 {
		t.Errorf("max depth 1: %+v", got)
	}
	got, _ = scanAll(t, s2, []string{filepath.Join(dir, "missing") + "/"})
	if len(got) != 1 || !errors.Is(got[0].Err, unix.ENOENT) {
		t.Errorf("missing dir: %+v", got)
	}
}
