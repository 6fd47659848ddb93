package scan

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// followTree: one directory reached through three symlinks, a symlink to
// a file in it, a directory outside the tree reached twice, and a hard
// link. It returns the root and the size of every distinct file.
func followTree(t *testing.T) (string, map[string]int64) {
	t.Helper()
	base := t.TempDir()
	r := filepath.Join(base, "root")
	sizes := map[string]int64{
		"root/real/f1":     1000,
		"root/real/sub/f2": 5000,
		"root/b/c/x":       10,
		"outside/f3":       70000,
	}
	for f, n := range sizes {
		p := filepath.Join(base, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"b/l1":    "../real",
		"b/c/l2":  "../../real",
		"l3":      "real/sub",
		"l4":      "real",
		"lf":      "real/f1",
		"ext1":    "../outside",
		"b/ext2":  "../../outside",
		"b/lf2":   "../../outside/f3",
		"b/dead":  "nowhere/at/all",
		"b/c/hop": "../l1/sub",
	} {
		if err := os.Symlink(target, filepath.Join(r, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(r, "real/f1"), filepath.Join(r, "b/hard")); err != nil {
		t.Fatal(err)
	}
	return r, sizes
}

type treeSums struct {
	files       int
	size        int64
	pages, span uint64
}

func sumsOf(sizes map[string]int64, which ...string) treeSums {
	var s treeSums
	for _, f := range which {
		s.files++
		s.size += sizes[f]
		s.pages += uint64(sizes[f]) / 10 // fakeEngine's figure
		s.span += units.PagesOf(sizes[f])
	}
	return s
}

// With --follow each directory and each file inode counts once per run,
// however it is reached: through several symlinks to a directory, a
// symlink to a file, a hard link, or an earlier directory argument.
func TestScanFollowCountsOnce(t *testing.T) {
	r, sizes := followTree(t)
	all := []string{"root/real/f1", "root/real/sub/f2", "root/b/c/x", "outside/f3"}
	for _, c := range []struct {
		name  string
		paths []string
		want  []treeSums
	}{
		{"one tree", []string{r}, []treeSums{sumsOf(sizes, all...)}},
		{"a subtree first", []string{filepath.Join(r, "real"), r},
			[]treeSums{sumsOf(sizes, "root/real/f1", "root/real/sub/f2"), sumsOf(sizes, "root/b/c/x", "outside/f3")}},
		{"the same tree twice", []string{r, r}, []treeSums{sumsOf(sizes, all...), {}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Scanner{Engine: func() (pagecache.Engine, error) { return &fakeEngine{batch: 3}, nil }}
			s.Walk.Follow = true
			defer s.Close()
			got, err := scanAll(t, s, c.paths)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[[2]uint64]string{}
			var trees []treeSums
			for _, f := range got {
				switch {
				case f.Err != nil:
					if filepath.Base(f.Path) != "dead" {
						t.Errorf("error %s: %v", f.Path, f.Err)
					}
				case f.Kind == KindDir:
					trees = append(trees, treeSums{f.Files, f.Size, f.Pages, f.TotalPages})
				default:
					k := [2]uint64{f.Dev, f.Ino}
					if p, dup := seen[k]; dup {
						t.Errorf("%s is %s again (inode %d)", f.Path, p, f.Ino)
					}
					seen[k] = f.Path
				}
			}
			if len(trees) != len(c.want) {
				t.Fatalf("%d trees, want %d", len(trees), len(c.want))
			}
			for i := range trees {
				if trees[i] != c.want[i] {
					t.Errorf("tree %s: %+v, want %+v", c.paths[i], trees[i], c.want[i])
				}
			}
		})
	}

	// Without --follow, symlinks are not entered: the tree is the real
	// directories' files, a hard-linked inode once.
	s := &Scanner{Engine: func() (pagecache.Engine, error) { return &fakeEngine{batch: 3}, nil }}
	got, err := scanAll(t, s, []string{r})
	if err != nil {
		t.Fatal(err)
	}
	if sum, want := got[len(got)-1], sumsOf(sizes, "root/real/f1", "root/real/sub/f2", "root/b/c/x"); (treeSums{sum.Files, sum.Size, sum.Pages, sum.TotalPages}) != want {
		t.Errorf("without --follow: %+v, want %+v", sum, want)
	}
}

// Memory with --follow grows with the files and directories met: it is
// bounded here so that a change of representation is a choice, not an
// accident (the README states the figure).
func TestFollowMemoryPerInode(t *testing.T) {
	const n = 200000
	var before, after runtimeMem
	before.read()
	var s Scanner
	s.Walk.Follow = true
	for i := range n {
		p := pending{file: File{Root: "/r", Dev: 1, Ino: uint64(i)}, nlink: 1}
		s.countOnce(&p)
		if p.dup {
			t.Fatal("a new inode counted as seen")
		}
	}
	after.read()
	per := float64(int64(after.heap)-int64(before.heap)) / n
	t.Logf("%.1f bytes per file inode remembered", per)
	if per > 64 {
		t.Errorf("%.1f bytes per inode, the README says about 60", per)
	}
	p := pending{file: File{Root: "/r", Dev: 1, Ino: 7}, nlink: 1}
	if s.countOnce(&p); !p.dup {
		t.Error("an inode met before counted again")
	}
}

type runtimeMem struct{ heap uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heap = ms.HeapAlloc
}
