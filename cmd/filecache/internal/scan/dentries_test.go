package scan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/walk"
)

// fakeDirs plays the dentry walk: it lists the directory behind the fd
// itself and returns a record for each entry's inode, with a page count
// (size/7 + 1) the fake engine (size/10) never gives, so the test tells
// which way each file was answered. It can leave names out, return an
// inode twice with other figures, or fail a directory.
type fakeDirs struct {
	mu      sync.Mutex
	omit    map[string]bool // base names left out
	twice   map[string]bool // returned again with other figures
	fail    map[string]bool // directories (base names) whose walk fails
	calls   int
	slots   map[int]bool
	closed  bool
	nonRegs bool // also return symlinks' own inodes, as a careless walk would
}

func (f *fakeDirs) Name() string   { return "bpf" }
func (f *fakeDirs) Method() string { return "fake-dentry" }
func (f *fakeDirs) Close()         { f.closed = true }

func (f *fakeDirs) ReadDir(fd, slot int, each func(bpf.Child)) (bpf.Dir, error) {
	f.mu.Lock()
	f.calls++
	if f.slots == nil {
		f.slots = map[int]bool{}
	}
	f.slots[slot] = true
	f.mu.Unlock()
	self, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return bpf.Dir{}, err
	}
	if f.fail[filepath.Base(self)] {
		return bpf.Dir{}, errors.New("walk failed")
	}
	des, err := os.ReadDir(self)
	if err != nil {
		return bpf.Dir{}, err
	}
	var dirSt unix.Stat_t
	if err := unix.Fstat(fd, &dirSt); err != nil {
		return bpf.Dir{}, err
	}
	for _, de := range des {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, de.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		reg := st.Mode&unix.S_IFMT == unix.S_IFREG
		if f.omit[de.Name()] || !reg && !(f.nonRegs && st.Mode&unix.S_IFMT == unix.S_IFLNK) {
			continue
		}
		c := bpf.Child{Ino: st.Ino, Size: uint64(st.Size), NrPages: uint64(st.Size)/7 + 1, Nlink: uint32(st.Nlink), Mode: st.Mode}
		each(c)
		if f.twice[de.Name()] {
			c.NrPages++
			each(c)
		}
	}
	// The kernel's encoding of the directory's st_dev.
	kdev := uint32(unix.Major(dirSt.Dev))<<20 | uint32(unix.Minor(dirSt.Dev))
	return bpf.Dir{Dev: kdev, Status: bpf.DirDone}, nil
}

func dentryTree(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	for i, p := range []string{"a/f1", "a/f2", "a/f3", "a/sub/g1", "a/sub/g2", "b/h1", "b/h2", "c/k1", "top"} {
		p = filepath.Join(r, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, 700*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(r, "a/f1"), filepath.Join(r, "b/hl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f2", filepath.Join(r, "a/sym")); err != nil {
		t.Fatal(err)
	}
	return r
}

// A tree's files come from the dentry walk where it returned their inode
// once, and are opened otherwise: names left out, inode numbers returned
// twice with other figures, symlinks followed, directories whose walk
// failed. Order, hard-link counting and the sums do not depend on the way
// each file was answered, nor on the workers reading ahead.
func TestScanDentries(t *testing.T) {
	r := dentryTree(t)
	byOpen := func(size int64) uint64 { return uint64(size) / 10 }
	byWalk := func(size int64) uint64 { return uint64(size)/7 + 1 }
	for _, c := range []struct {
		name   string
		dirs   *fakeDirs
		follow bool
		opened []string // base names that must be opened
	}{
		{"all", &fakeDirs{}, false, nil},
		{"omitted", &fakeDirs{omit: map[string]bool{"f2": true, "k1": true}}, false, []string{"f2", "k1"}},
		{"twice", &fakeDirs{twice: map[string]bool{"g1": true}}, false, []string{"g1"}},
		{"failed", &fakeDirs{fail: map[string]bool{"b": true}}, false, []string{"h1", "h2", "hl"}},
		{"follow", &fakeDirs{nonRegs: true}, true, []string{"sym"}},
	} {
		for _, workers := range []int{0, 1, 3} {
			t.Run(fmt.Sprintf("%s/workers%d", c.name, workers), func(t *testing.T) {
				eng := &fakeEngine{batch: 64}
				plain := &Scanner{Engine: func() (pagecache.Engine, error) { return &fakeEngine{batch: 64}, nil },
					Walk: walk.Options{Follow: c.follow}}
				want, err := scanAll(t, plain, []string{r})
				plain.Close()
				if err != nil {
					t.Fatal(err)
				}
				dirs := &fakeDirs{omit: c.dirs.omit, twice: c.dirs.twice, fail: c.dirs.fail, nonRegs: c.dirs.nonRegs}
				s := &Scanner{Engine: func() (pagecache.Engine, error) { return eng, nil },
					Walk:    walk.Options{Follow: c.follow},
					Dirs:    func() (pagecache.DirReader, error) { return dirs, nil },
					Workers: workers}
				got, err := scanAll(t, s, []string{r})
				stats := s.Dentries()
				s.Close()
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d outcomes, %d without the dentry walk", len(got), len(want))
				}
				opened := 0
				for i, f := range got {
					if f.Path != want[i].Path || f.Kind != want[i].Kind || f.Err != nil {
						t.Errorf("outcome %d: %s (%v), without the walk %s", i, f.Path, f.Err, want[i].Path)
						continue
					}
					if f.Kind == KindDir {
						continue
					}
					mustOpen := slices.Contains(c.opened, filepath.Base(f.Path))
					switch {
					case mustOpen && f.Pages != byOpen(f.Size):
						t.Errorf("%s: %d pages: not opened", f.Path, f.Pages)
					case !mustOpen && (f.Pages != byWalk(f.Size) || f.Engine != "bpf"):
						t.Errorf("%s: %d pages by %q: not from the dentry walk", f.Path, f.Pages, f.Engine)
					}
					if mustOpen {
						opened++
					}
					if f.Ino != want[i].Ino || f.Dev != want[i].Dev || f.Size != want[i].Size {
						t.Errorf("%s: inode %d:%d size %d, opened %d:%d %d", f.Path, f.Dev, f.Ino, f.Size, want[i].Dev, want[i].Ino, want[i].Size)
					}
				}
				tree := got[len(got)-1]
				if tree.Kind != KindDir || tree.Files != want[len(want)-1].Files {
					t.Errorf("tree %+v: want %d files (a hard link once)", tree, want[len(want)-1].Files)
				}
				names := 10 // nine files and a hard link
				if c.follow {
					names++ // the symlink to a file
				}
				if stats.Files+stats.Opened != names || stats.Opened < opened || stats.Files == 0 {
					t.Errorf("stats %+v: want %d names, %d or more of them opened", stats, names, opened)
				}
				if workers > 0 && len(dirs.slots) < 2 {
					t.Errorf("workers %d: no walk on a worker's slot (slots %v)", workers, dirs.slots)
				}
				if !dirs.closed {
					t.Error("the dentry walk was not closed")
				}
			})
		}
	}
}
