package walk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// dirToken is what the tests' Options.Dir returns: which directory it was
// given, and on which slot.
type dirToken struct {
	dev, ino uint64
	slot     int
}

// hookLog records Options.Dir and DirDone calls, from any goroutine.
type hookLog struct {
	mu    sync.Mutex
	made  map[*dirToken]bool // returned by Dir, not yet given back
	seen  map[[2]uint64]int  // Dir calls per directory
	done  int
	slots map[int]int
	bad   []string
}

func newHookLog() *hookLog {
	return &hookLog{made: map[*dirToken]bool{}, seen: map[[2]uint64]int{}, slots: map[int]int{}}
}

func (h *hookLog) options(o Options) Options {
	o.Dir = func(fd, slot int) any {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			h.mu.Lock()
			h.bad = append(h.bad, fmt.Sprintf("Dir: fstat of fd %d: %v", fd, err))
			h.mu.Unlock()
			return nil
		}
		tok := &dirToken{st.Dev, st.Ino, slot}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.made[tok] = true
		h.seen[[2]uint64{st.Dev, st.Ino}]++
		h.slots[slot]++
		return tok
	}
	o.DirDone = func(v any) {
		h.mu.Lock()
		defer h.mu.Unlock()
		tok, ok := v.(*dirToken)
		if !ok || !h.made[tok] {
			h.bad = append(h.bad, fmt.Sprintf("DirDone(%v): not a value Dir returned, or given back twice", v))
			return
		}
		delete(h.made, tok)
		h.done++
	}
	return o
}

// walkAll walks root and returns the entries and errors in order, checking
// each entry's Dir value names its directory.
func walkAll(t *testing.T, root string, o Options, h *hookLog) ([]got, []string, error) {
	t.Helper()
	var es []got
	var errs []string
	err := Walk(root, o, func(e Entry) error {
		es = append(es, got{e.Path, e.Name, e.Type, e.Depth, e.Followed})
		if h != nil {
			var st unix.Stat_t
			tok, _ := e.Dir.(*dirToken)
			if err := unix.Fstat(e.Dirfd, &st); err != nil || tok == nil || tok.dev != st.Dev || tok.ino != st.Ino {
				t.Errorf("%s: Dir value %+v is not its directory's (fstat %v)", e.Path, tok, err)
			}
			var self unix.Stat_t
			if err := unix.Fstatat(e.Dirfd, e.Name, &self, unix.AT_SYMLINK_NOFOLLOW); err == nil && self.Ino != e.Ino {
				t.Errorf("%s: Ino %d, the listing's file is %d", e.Path, e.Ino, self.Ino)
			}
		}
		return nil
	}, func(p string, err error) {
		errs = append(errs, p+": "+err.Error())
	})
	return es, errs, err
}

// aheadTree makes a tree of many shapes: wide and deep, empty directories,
// a directory whose listing is larger than what a worker reads, symlinks
// (to files, to a directory, a loop) and a FIFO.
func aheadTree(t *testing.T) string {
	r := t.TempDir()
	for i := range 12 {
		for j := range 5 {
			mkfile(t, fmt.Sprintf("%s/w%02d/f%d", r, i, j))
		}
		for j := range 3 {
			mkfile(t, fmt.Sprintf("%s/w%02d/s%d/g%d", r, i, j, j))
		}
		os.MkdirAll(fmt.Sprintf("%s/w%02d/empty", r, i), 0o755)
	}
	deep := r + "/deep"
	for i := range 20 {
		deep = fmt.Sprintf("%s/d%d", deep, i)
		mkfile(t, deep+"/leaf")
	}
	// More than aheadBuf bytes of listing: ~90 bytes a record.
	big := r + "/big"
	if err := os.MkdirAll(big+"/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", 64)
	for i := range aheadBuf/90 + 400 {
		if err := os.WriteFile(fmt.Sprintf("%s/%s%05d", big, long, i), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mkfile(t, big+"/sub/after")
	symlink(t, "../w01", r+"/w00/todir")
	symlink(t, "../w00", r+"/w00/s0/loop")
	symlink(t, "f0", r+"/w02/tofile")
	if err := unix.Mkfifo(r+"/w03/fifo", 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// With workers reading ahead, a walk yields the same entries and reports
// the same errors, in the same order, as without; Options.Dir is called
// once per directory with entries, each entry carries its own directory's
// value, every value is given back, and no fd stays open.
func TestAheadSameOrder(t *testing.T) {
	r := aheadTree(t)
	for _, c := range []struct {
		name string
		o    Options
	}{
		{"plain", Options{}},
		{"follow", Options{Follow: true}},
		{"budget3", Options{MaxOpenDirs: 3}},
		{"budget3follow", Options{MaxOpenDirs: 3, Follow: true}},
		{"depth2", Options{MaxDepth: 2}},
		{"include", Options{Include: []string{"g*", "leaf"}, Exclude: []string{"s1"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, wantErrs, err := walkAll(t, r, c.o, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, workers := range []int{0, 1, 2, 3} {
				before := openFds(t)
				h := newHookLog()
				o := h.options(c.o)
				o.Workers = workers
				es, errs, err := walkAll(t, r, o, h)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(es, want) {
					t.Errorf("workers %d: %d entries differ from a walk without (%d)", workers, len(es), len(want))
					for i := range min(len(es), len(want)) {
						if es[i] != want[i] {
							t.Errorf("first difference at %d: %+v, want %+v", i, es[i], want[i])
							break
						}
					}
				}
				if !slices.Equal(errs, wantErrs) {
					t.Errorf("workers %d: errors %q, want %q", workers, errs, wantErrs)
				}
				for d, n := range h.seen {
					if n != 1 {
						t.Errorf("workers %d: Dir called %d times for directory %v", workers, n, d)
					}
				}
				if len(h.made) != 0 || len(h.bad) != 0 {
					t.Errorf("workers %d: %d Dir values not given back; %q", workers, len(h.made), h.bad)
				}
				// Any idle worker takes a job: which slots ran is the
				// scheduler's choice, that some did is not.
				ahead := 0
				for s, n := range h.slots {
					if s > 0 {
						ahead += n
					}
				}
				if workers > 0 && ahead == 0 {
					t.Errorf("workers %d: no directory was read ahead (Dir calls by slot %v)", workers, h.slots)
				}
				for s := range h.slots {
					if s < 0 || s > workers {
						t.Errorf("workers %d: Dir called with slot %d", workers, s)
					}
				}
				if after := openFds(t); after != before {
					t.Errorf("workers %d: %d fds open before the walk, %d after", workers, before, after)
				}
			}
		})
	}
}

// A walk stopped by fn's error leaves no fd open and gives back every
// Dir value, read ahead or not.
func TestAheadStop(t *testing.T) {
	r := aheadTree(t)
	stop := errors.New("stop")
	for _, at := range []int{1, 7, 60, 200} {
		before := openFds(t)
		h := newHookLog()
		o := h.options(Options{Workers: 2})
		n := 0
		err := Walk(r, o, func(e Entry) error {
			if n++; n == at {
				return stop
			}
			return nil
		}, nil)
		if !errors.Is(err, stop) {
			t.Fatalf("stopped at %d: Walk returned %v", at, err)
		}
		if len(h.made) != 0 || len(h.bad) != 0 {
			t.Errorf("stopped at %d: %d Dir values not given back; %q", at, len(h.made), h.bad)
		}
		if after := openFds(t); after != before {
			t.Errorf("stopped at %d: %d fds open before the walk, %d after", at, before, after)
		}
	}
}

// With XDev, a subdirectory on another filesystem is skipped as without
// workers, though it was opened to be read ahead.
func TestAheadDirectoryOnAnotherFilesystem(t *testing.T) {
	r := t.TempDir()
	mkfile(t, r+"/a/f")
	mkfile(t, r+"/b/f")
	mkfile(t, r+"/c/f")
	sub := filepath.Join(r, "b")
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("mount a tmpfs (needs root): %v", err)
	}
	defer unix.Unmount(sub, unix.MNT_DETACH)
	mkfile(t, sub+"/other")
	for _, workers := range []int{0, 2} {
		es, errs, err := walkAll(t, r, Options{XDev: true, Workers: workers}, nil)
		noErrors(t, nil, err)
		if len(errs) != 0 {
			t.Errorf("workers %d: errors %q", workers, errs)
		}
		samePaths(t, es, r+"/a/f", r+"/c/f")
	}
}
