package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A file truncated, grown, punched and rewritten between runs: once the
// state is settled, each run, naming the file or walking its directory,
// says exactly what cachestat and mincore say, so no engine keeps a stale
// figure or size.
func TestChurnSettled(t *testing.T) {
	bin := filecacheBin(t)
	dir := tmpfsDir(t)
	f := filepath.Join(dir, "f")
	other := filepath.Join(dir, "other")
	writeAt(t, other, 0, 7*pageSize)
	page := pageSize
	steps := []struct {
		name string
		do   func()
	}{
		{"written", func() { writeAt(t, f, 0, 64*page) }},
		{"truncated", func() {
			if err := os.Truncate(f, 10*page+100); err != nil {
				t.Fatal(err)
			}
		}},
		{"grown_sparse", func() {
			if err := os.Truncate(f, 100*page); err != nil {
				t.Fatal(err)
			}
			writeAt(t, f, 50*page, 10*page)
		}},
		{"punched", func() {
			fd, err := unix.Open(f, unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 52*page, 4*page); err != nil {
				t.Fatal(err)
			}
		}},
		{"rewritten", func() {
			if err := os.WriteFile(f, pattern[:5*page+1], 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced", func() {
			tmp := f + ".new"
			writeAt(t, tmp, 0, 3*page)
			if err := os.Rename(tmp, f); err != nil {
				t.Fatal(err)
			}
		}},
		{"emptied", func() {
			if err := os.Truncate(f, 0); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, s := range steps {
		s.do()
		t.Run(s.name, func(t *testing.T) {
			rep, refs, _ := measure(t, bin, sandwich{args: []string{"--json", other, f}, refs: []string{other, f}, tries: 1})
			checkFiles(t, rep, []string{other, f}, refs)
			res := run(t, bin, "--json", "--files", dir)
			r := parseTrees(t, res)
			_, _, _, cached, byPath := treeRef(t, dir, nil)
			if len(r.Files) != len(byPath) || len(r.Trees) != 1 || r.Trees[0].CachedPages != int64(cached) {
				t.Errorf("tree: want %d files, %d cached pages\n%s", len(byPath), cached, res)
			}
			for _, e := range r.Files {
				if msg := entryProblems(e, e.Path, byPath[e.Path]); msg != "" {
					t.Errorf("walked %s: %s", e.Path, msg)
				}
			}
		})
	}
}

// churnFile is a tmpfs file that swings between lo and hi pages, all of
// them cached: any figure read while it changes lies between the two.
type churnFile struct {
	name   string
	lo, hi int64 // pages
}

// Files that shrink and grow all the time, one deleted and created again,
// their directory renamed back and forth, while filecache measures them by
// name and by walking: each row is a figure the file had at some instant
// (between its own lo and hi, ranges that no two files share, so a figure
// given to the wrong file fails) or a per-path error where a name came and
// went; then, the churn stopped, each run equals the kernel exactly.
func TestChurnBounded(t *testing.T) {
	bin := filecacheBin(t)
	top := tmpfsDir(t)
	root := filepath.Join(top, "tree")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	page := pageSize
	var files []churnFile
	for i := 0; i < 6; i++ {
		files = append(files, churnFile{name: fmt.Sprintf("f%d", i), lo: int64(100*i + 10), hi: int64(100*i + 60)})
	}
	phoenix := churnFile{name: "phoenix", lo: 700, hi: 720}
	dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b")}
	if err := os.Mkdir(dirs[0], 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, phoenix) {
		writeAt(t, filepath.Join(dirs[0], f.name), 0, f.hi*page)
	}
	// bounds finds a listed path's file: under either name of the directory.
	bounds := func(p string) (churnFile, bool) {
		for _, d := range dirs {
			for _, f := range append(files, phoenix) {
				if p == filepath.Join(d, f.name) {
					return f, true
				}
			}
		}
		return churnFile{}, false
	}
	checkRow := func(t *testing.T, e fileEntry) {
		f, ok := bounds(e.Path)
		switch {
		case !ok:
			t.Errorf("figure for %q, which is none of the files", e.Path)
		case e.CachedPages < f.lo || e.CachedPages > f.hi || e.SizeBytes < f.lo*page || e.SizeBytes > f.hi*page:
			t.Errorf("%s: %d cached pages of %d bytes; it only ever had %d to %d pages, all cached", e.Path, e.CachedPages, e.SizeBytes, f.lo, f.hi)
		}
	}

	data := make([]byte, phoenix.hi*page)  // tmpfs caches every page written, zeros too
	stopResizing := churning(func(i int) { // shrinks and grows every file in turn
		f := files[i%len(files)]
		for _, d := range dirs {
			p := filepath.Join(d, f.name)
			if os.Truncate(p, f.lo*page) == nil {
				fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
				if err == nil {
					unix.Pwrite(fd, data[:(f.hi-f.lo)*page], f.lo*page)
					unix.Close(fd)
				}
			}
		}
		time.Sleep(100 * time.Microsecond) // leaves the CPU to filecache under emulation
	})
	stopMoving := churning(func(i int) { // deletes and re-creates phoenix, renames the directory
		d := dirs[i%2]
		p := filepath.Join(d, phoenix.name)
		os.Remove(p)
		tmp := filepath.Join(top, "phoenix.tmp") // outside the walked tree
		os.WriteFile(tmp, data[:(phoenix.lo+int64(i%20))*page], 0o644)
		os.Rename(tmp, p)
		os.Rename(d, dirs[(i+1)%2])
		time.Sleep(time.Millisecond)
	})
	deadline := time.Now().Add(time.Second)
	runs := 0
	for time.Now().Before(deadline) || runs < 2 {
		runs++
		var named []string
		for _, d := range dirs {
			for _, f := range append(files, phoenix) {
				named = append(named, filepath.Join(d, f.name))
			}
		}
		for _, args := range [][]string{append([]string{"--json"}, named...), {"--json", "--files", root}} {
			res := run(t, bin, args...)
			rep, err := parseReport(res.stdout)
			if err != nil || res.code != 0 && res.code != 1 || res.code == 1 && len(rep.Errors) == 0 {
				t.Fatalf("run %d under churn: exit %d, %v\n%s", runs, res.code, err, clip(res.String()))
			}
			for _, e := range rep.Files {
				checkRow(t, e)
			}
			for _, e := range rep.Errors {
				if e.Path != root && !strings.HasPrefix(e.Path, root+"/") {
					t.Errorf("error for %q, outside the tree: %s", e.Path, e.Error)
				}
			}
		}
	}
	stopResizing()
	stopMoving()
	t.Logf("%d runs of each kind under churn", runs)

	// Settled: the same runs now equal the kernel.
	var present []string
	for _, d := range dirs {
		for _, f := range append(files, phoenix) {
			if p := filepath.Join(d, f.name); exists(p) {
				present = append(present, p)
			}
		}
	}
	rep, refs, _ := measure(t, bin, sandwich{args: append([]string{"--json"}, present...), refs: present, tries: 1})
	checkFiles(t, rep, present, refs)
	res := run(t, bin, "--json", "--files", root)
	r := parseTrees(t, res)
	n, _, _, cached, byPath := treeRef(t, root, nil)
	if len(r.Trees) != 1 || r.Trees[0].Files != n || r.Trees[0].CachedPages != int64(cached) || len(r.Errors) != 0 {
		t.Errorf("settled tree: want %d files, %d cached pages, no error\n%s", n, cached, res)
	}
	for _, e := range r.Files {
		if msg := entryProblems(e, e.Path, byPath[e.Path]); msg != "" {
			t.Errorf("settled, walked %s: %s", e.Path, msg)
		}
	}
}

// churning calls step(0), step(1), ... in a goroutine until the stop it
// returns is called; stop waits for the step under way.
func churning(step func(i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			step(i)
		}
	}()
	return func() { close(done); wg.Wait() }
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
