package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

// fakeDirWalker returns each regular file of the directory with its size
// and pages(size) cached pages.
type fakeDirWalker struct {
	pages  func(size int64) uint64
	walks  *int
	closed *bool
}

func (f fakeDirWalker) Close() { *f.closed = true }
func (f fakeDirWalker) ReadDir(fd, slot int, each func(bpf.Child)) (bpf.Dir, error) {
	*f.walks++
	self, err := os.Readlink("/proc/self/fd/" + itoa(fd))
	if err != nil {
		return bpf.Dir{}, err
	}
	des, err := os.ReadDir(self)
	if err != nil {
		return bpf.Dir{}, err
	}
	for _, de := range des {
		var st unix.Stat_t
		if unix.Fstatat(fd, de.Name(), &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			each(bpf.Child{Ino: st.Ino, Size: uint64(st.Size), NrPages: f.pages(st.Size), Nlink: uint32(st.Nlink), Mode: st.Mode})
		}
	}
	return bpf.Dir{Status: bpf.DirDone}, nil
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// A tree is answered from the dentry walk when the engine is the automatic
// choice or bpf and nothing needs each file open; the walk is never loaded
// with another engine or a BPF method forced, --detail, --map or --range.
func TestQueryDentryWalk(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "sub/c"} {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, 7*4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args   []string
		walked bool
	}{
		{nil, true},
		{[]string{"--engine=bpf"}, true},
		{[]string{"--engine=cachestat"}, false},
		{[]string{"--engine=mincore"}, false},
		{[]string{"--bpf-method=bounded-loop"}, false},
		{[]string{"--detail"}, false},
		{[]string{"--map"}, false},
		{[]string{"--range=0:4096"}, false},
	} {
		walks, closed, loads := 0, false, 0
		env := Env{
			LoadDirs: func(LoadOptions) (pagecache.DirWalker, error) {
				loads++
				return fakeDirWalker{pages: func(size int64) uint64 { return uint64(size / 4096 * 2 / 7) }, walks: &walks, closed: &closed}, nil
			},
			WalkMethod: func(string) string { return "bpf_loop" },
		}
		args := append(append([]string{"--json", "--files", "--stats"}, c.args...), dir)
		r := runCLI(t, env, args...)
		if r.status != ExitOK {
			t.Errorf("%q: status %d\n%s", c.args, r.status, r.stderr)
			continue
		}
		var doc struct {
			Engine, Method string
			Files          []struct {
				Engine string
				Cached uint64 `json:"cached_pages"`
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		fromWalk := 0
		for _, f := range doc.Files {
			if f.Cached == 2 && f.Engine == "bpf" {
				fromWalk++
			}
		}
		if c.walked {
			if fromWalk != 3 || walks != 2 || !closed || doc.Engine != "bpf" || doc.Method != "bpf_loop" ||
				!strings.Contains(r.stderr, "dentry_files=3 opened_files=0 dentry_runs=2") {
				t.Errorf("%q: %d files from the walk, %d walks, closed %v, header %s %s\n%s%s", c.args, fromWalk, walks, closed, doc.Engine, doc.Method, r.stdout, r.stderr)
			}
		} else if loads != 0 || fromWalk != 0 || !strings.Contains(r.stderr, "dentry_files=0 opened_files=3") {
			t.Errorf("%q: the dentry walk was loaded %d times and answered %d files\n%s", c.args, loads, fromWalk, r.stderr)
		}
	}
}

// doctor's tree check holds the dentry walk to the test file it makes:
// right pages, the check works and trees are walked from dentries; wrong
// pages, it does not and trees are opened file by file.
func TestDoctorDentryWalk(t *testing.T) {
	for _, c := range []struct {
		pages func(int64) uint64
		ok    bool
	}{
		{func(size int64) uint64 { return 3 }, true},
		{func(size int64) uint64 { return uint64(size / 4096) }, false},
	} {
		walks, closed := 0, false
		env := Env{LoadDirs: func(LoadOptions) (pagecache.DirWalker, error) {
			return fakeDirWalker{pages: c.pages, walks: &walks, closed: &closed}, nil
		}}
		r := runCLI(t, env, "doctor", "--json")
		var d Doctor
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
		}
		tree := d.Checks[len(d.Checks)-1]
		want := map[bool]string{true: "dentry walk", false: "open per file"}[c.ok]
		if tree.Engine != "tree" || tree.OK != c.ok || d.Trees.Method != want || walks != 1 || !closed {
			t.Errorf("fake answering %d pages: check %+v, trees %+v, %d walks, closed %v", c.pages(5*4096), tree, d.Trees, walks, closed)
		}
		if !c.ok && !strings.Contains(tree.Error, "wrong answer") {
			t.Errorf("a wrong answer not called one: %+v", tree)
		}
	}
}
