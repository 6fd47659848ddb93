package integration

import (
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type treeEntry struct {
	Path        string `json:"path"`
	Files       int    `json:"files"`
	Failed      int    `json:"failed"`
	SizeBytes   int64  `json:"size_bytes"`
	TotalPages  int64  `json:"total_pages"`
	CachedPages int64  `json:"cached_pages"`
}

type treeReport struct {
	report
	Trees []treeEntry `json:"trees"` // shadows report.Trees
}

func parseTrees(t *testing.T, res result) treeReport {
	t.Helper()
	var r treeReport
	if err := parseInto(res.stdout, &r); err != nil {
		t.Fatalf("bad JSON report: %v\n%s", err, res)
	}
	checkReport(t, r.report, len(r.Trees) > 0)
	return r
}

// treeRef walks root independently of filecache (filepath.WalkDir, no
// symlinks followed) and sums cachestat (or mincore) over its distinct
// regular-file inodes; skip prunes directories (for --xdev).
func treeRef(t *testing.T, root string, skip func(string) bool) (files int, size, total int64, cached uint64, byPath map[string]ref) {
	t.Helper()
	seen := map[[2]uint64]bool{}
	byPath = map[string]ref{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && skip != nil && skip(p) {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		r, err := takeRef(p)
		if err != nil {
			return err
		}
		byPath[p] = r
		if seen[[2]uint64{r.Dev, r.Ino}] {
			return nil
		}
		seen[[2]uint64{r.Dev, r.Ino}] = true
		files++
		size += r.Size
		total += (r.Size + pageSize - 1) / pageSize
		cached += r.Cache
		return nil
	})
	if err != nil {
		t.Fatalf("reference walk: %v", err)
	}
	return
}

// A tree of files in known states, with hard links, odd names, a symlink
// out of it and a second filesystem inside it: the tree's sums equal the
// kernel's over the same distinct files, with and without --xdev, and
// --files lists each file with its own figure.
func TestTreeTotals(t *testing.T) {
	bin := filecacheBin(t)
	root := tmpfsDir(t)
	outside := filepath.Join(tmpfsDir(t), "outside")
	writeAt(t, outside, 0, 256*1024)
	for _, d := range []string{"a/b/c", "with space", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeAt(t, filepath.Join(root, "top"), 0, 96*1024)
	sized(t, filepath.Join(root, "a", "sparse"), 64*mib)
	writeAt(t, filepath.Join(root, "a", "sparse"), 8*mib, 3*mib)
	writeAt(t, filepath.Join(root, "a", "b", "c", "deep"), 0, 5000)
	sized(t, filepath.Join(root, "a", "b", "empty"), 0)
	writeAt(t, filepath.Join(root, "with space", "new\nline"), 0, 12*1024)
	writeAt(t, filepath.Join(root, "with space", "bad\xffname"), 0, 20*1024)
	if err := os.Link(filepath.Join(root, "top"), filepath.Join(root, "a", "hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "a", "to-outside")); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(root, "mnt")
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	writeAt(t, filepath.Join(mnt, "on-second-fs"), 0, 40*1024)

	check := func(t *testing.T, args []string, skip func(string) bool) treeReport {
		files, size, total, cached, _ := treeRef(t, root, skip)
		res := runWith(t, runOpts{}, bin, append(append([]string{"--json"}, args...), root)...)
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, res)
		}
		r := parseTrees(t, res)
		if len(r.Trees) != 1 {
			t.Fatalf("want one tree\n%s", res)
		}
		got := r.Trees[0]
		if got.Path != root || got.Files != files || got.SizeBytes != size || got.TotalPages != total ||
			got.CachedPages != int64(cached) || got.Failed != 0 {
			t.Errorf("tree %+v; the kernel over the same %d distinct files: %d bytes, %d pages, %d cached\n%s",
				got, files, size, total, cached, res)
		}
		if r.Total.Files != files || r.Total.CachedPages != int64(cached) {
			t.Errorf("total %+v, want %d files %d cached", r.Total, files, cached)
		}
		return r
	}
	t.Run("all", func(t *testing.T) { check(t, nil, nil) })
	t.Run("xdev", func(t *testing.T) {
		check(t, []string{"--xdev"}, func(p string) bool { return p == mnt })
	})
	t.Run("files", func(t *testing.T) {
		r := check(t, []string{"--files"}, nil)
		_, _, _, _, byPath := treeRef(t, root, nil)
		if len(r.Files) != len(byPath)-1 { // the hard link's second name is not listed
			t.Errorf("--files listed %d files, want %d\n%+v", len(r.Files), len(byPath)-1, r.Files)
		}
		for _, f := range r.Files {
			p := f.Path
			if f.PathB64 != nil {
				b, err := base64.StdEncoding.DecodeString(*f.PathB64)
				if err != nil {
					t.Fatal(err)
				}
				p = string(b)
			}
			ref, ok := byPath[p]
			if !ok {
				t.Errorf("listed %q, which is not a file of the tree", p)
				continue
			}
			if f.CachedPages != int64(ref.Cache) || f.SizeBytes != ref.Size {
				t.Errorf("%q: filecache %d pages of %d bytes, kernel %d of %d", p, f.CachedPages, f.SizeBytes, ref.Cache, ref.Size)
			}
		}
	})
	t.Run("follow", func(t *testing.T) {
		res := runWith(t, runOpts{}, bin, "--json", "--follow", root)
		r := parseTrees(t, res)
		files, _, _, cached, _ := treeRef(t, root, nil)
		o := takeRefs(t, []string{outside})[0]
		if len(r.Trees) != 1 || r.Trees[0].Files != files+1 || r.Trees[0].CachedPages != int64(cached+o.Cache) {
			t.Errorf("--follow: want the symlinked file counted too (%d files, %d pages)\n%s", files+1, cached+o.Cache, res)
		}
	})
}

// Symlink loops under --follow end, are reported, and the rest is answered;
// 200 nested directories are walked; an unreadable subdirectory is reported
// and the walk goes on.
func TestTreeHazards(t *testing.T) {
	bin := filecacheBin(t)
	root := tmpfsDir(t)
	writeAt(t, filepath.Join(root, "f"), 0, 8192)
	// The loop stays inside the test's own tree: a link to the mount's
	// parent would walk /var/tmp, where other suites' trees come and go.
	if err := os.Mkdir(filepath.Join(root, "l"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(root, "l", "up")); err != nil {
		t.Fatal(err)
	}
	deep := root
	for i := 0; i < 200; i++ {
		deep = filepath.Join(deep, "d")
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	writeAt(t, filepath.Join(deep, "bottom"), 0, 4096)

	t.Run("loop-and-depth", func(t *testing.T) {
		res := runWith(t, runOpts{}, bin, "--json", "--follow", "--files", root)
		r := parseTrees(t, res)
		loop := filepath.Join(root, "l", "up")
		if res.code != 1 || len(r.Errors) != 1 || r.Errors[0].Path != loop || !strings.Contains(r.Errors[0].Error, "loop") {
			t.Errorf("want the loop at %s reported, alone, and exit 1\n%s", loop, clip(res.String()))
		}
		if len(r.Files) != 2 {
			t.Errorf("want f and bottom listed once each, got %d files\n%s", len(r.Files), clip(res.String()))
		}
		found := false
		for _, f := range r.Files {
			found = found || f.Path == filepath.Join(deep, "bottom")
		}
		if !found {
			t.Errorf("the file 200 directories down was not listed\n%s", clip(res.String()))
		}
	})

	t.Run("unreadable", func(t *testing.T) {
		bpfOnly(t) // nobody with the BPF capabilities: the bpf engine's case
		locked := filepath.Join(root, "locked")
		if err := os.Mkdir(locked, 0o700); err != nil {
			t.Fatal(err)
		}
		writeAt(t, filepath.Join(locked, "secret"), 0, 4096)
		caps := []uintptr{unix.CAP_BPF, unix.CAP_PERFMON, unix.CAP_SYS_ADMIN}
		res := runWith(t, runOpts{cred: nobody(), caps: caps, ownEngine: true}, binForAll(t, bin), "--json", root)
		r := parseTrees(t, res)
		if res.code != 1 || len(r.Trees) != 1 || r.Trees[0].Failed != 1 || r.Trees[0].Files != 2 ||
			len(r.Errors) != 1 || r.Errors[0].Path != locked || !strings.Contains(r.Errors[0].Error, "permission denied") {
			t.Errorf("want the locked directory reported, the 2 other files answered\n%s", res)
		}
	})
}

// --range counts the cached pages of part of each file, as cachestat(2)
// over the same range says (cachestat and mincore engines; bpf counts whole
// files and is refused).
func TestRange(t *testing.T) {
	bin := filecacheBin(t)
	if e := os.Getenv(envEngine); e == "bpf" {
		skipConfig(t, "--range is not the bpf engine's")
	}
	f := filepath.Join(tmpfsDir(t), "f")
	sized(t, f, 8*mib)
	writeAt(t, f, 1*mib, 1*mib)
	fd, err := unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	page := pageSize
	for _, c := range []struct {
		arg       string
		off, n    int64
		wantTotal int64
	}{
		{"0:1M", 0, mib, mib / page},
		{"1M:1M", mib, mib, mib / page},
		{"1536K:", 1536 * 1024, 8*mib - 1536*1024, (8*mib - 1536*1024) / page},
		{"100:1", 100, 1, 1},
		{"9M:1M", 9 * mib, mib, 0},
	} {
		mc, err := kernelMincore(fd, 8*mib, c.off, c.n)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(mc)
		if haveCachestat() {
			cs, err := kernelCachestat(fd, min(c.off, 8*mib), c.n)
			if err != nil {
				t.Fatal(err)
			}
			if c.off < 8*mib && int64(cs.Cache) != want {
				t.Fatalf("%s: cachestat %d, mincore %d disagree", c.arg, cs.Cache, want)
			}
		}
		res := run(t, bin, "--json", "--range="+c.arg, f)
		rep := mustParse(t, res)
		if res.code != 0 || len(rep.Files) != 1 || rep.Files[0].CachedPages != want || rep.Files[0].TotalPages != c.wantTotal || rep.Files[0].SizeBytes != 8*mib {
			t.Errorf("--range %s: want %d of %d pages cached (file 8 MiB)\n%s", c.arg, want, c.wantTotal, res)
		}
	}
}

// --map draws, cell by cell, what mincore(2) says of the same pages.
func TestMap(t *testing.T) {
	bin := filecacheBin(t)
	f := filepath.Join(tmpfsDir(t), "f")
	sized(t, f, 8*mib)
	writeAt(t, f, 2*mib, 2*mib)
	writeAt(t, f, 6*mib+40960, 3*4096)
	fd, err := unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	pages := 8 * mib / pageSize
	var want strings.Builder
	for c := int64(0); c < 60; c++ {
		first, last := pages*c/60, pages*(c+1)/60
		n, err := kernelMincore(fd, 8*mib, first*pageSize, (last-first)*pageSize)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case n == 0:
			want.WriteByte(' ')
		case int64(n) == last-first:
			want.WriteByte('O')
		default:
			want.WriteByte('o')
		}
	}
	res := run(t, bin, "--json", "--map", f)
	var doc struct{ Files []struct{ Map string } }
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || len(doc.Files) != 1 {
		t.Fatalf("%v\n%s", err, res)
	}
	if doc.Files[0].Map != want.String() {
		t.Errorf("map\n got  [%s]\n want [%s] (mincore)", doc.Files[0].Map, want.String())
	}
}
