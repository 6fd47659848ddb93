package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The dentry walk: a tree's files answered from their directory's dentry
// cache (one BPF test run a directory, no open per file), every other name
// opened as before. The hidden --stats line says how each file was answered.

type dentryStats struct{ files, opened, runs int }

var statsLine = regexp.MustCompile(`(?m)^filecache: stats: dentry_files=(\d+) opened_files=(\d+) dentry_runs=(\d+)$`)

// statsOf reads the --stats line of a run, and takes it off stderr.
func statsOf(t *testing.T, res *result) dentryStats {
	t.Helper()
	m := statsLine.FindStringSubmatch(res.stderr)
	if m == nil {
		t.Fatalf("no stats line on stderr\n%s", res)
	}
	res.stderr = strings.Replace(res.stderr, m[0]+"\n", "", 1)
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return dentryStats{n(m[1]), n(m[2]), n(m[3])}
}

// dentryWalkExpected says whether this run of the suite answers trees from
// the dentry walk: the automatic choice does, on every kernel of the
// matrix (5.10 on); a forced engine or BPF method must not, so those runs
// keep proving their own program on every file.
func dentryWalkExpected() bool {
	e := os.Getenv(envEngine)
	return os.Getenv(envMethod) == "" && (e == "" || e == "bpf")
}

// checkWalked wants every one of names files answered from the dentry
// walk (opened none) when the suite expects the walk, else none from it.
func checkWalked(t *testing.T, st dentryStats, names int, res result) {
	t.Helper()
	want := dentryStats{files: names}
	if !dentryWalkExpected() {
		want = dentryStats{opened: names}
	}
	if st.files != want.files || st.opened != want.opened {
		t.Errorf("dentry walk answered %d files and %d were opened, want %d and %d\n%s",
			st.files, st.opened, want.files, want.opened, res)
	}
}

// put writes n bytes of pattern into path, its directories made first.
func put(t *testing.T, path string, n int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeAt(t, path, 0, n)
}

// writePages writes pages pages of pattern into path: writeAt for the
// churning goroutines, which must not call t.Fatal.
func writePages(path string, pages int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for off := int64(0); off < pages*pageSize; off += int64(len(pattern)) {
		if _, err := f.WriteAt(pattern[:min(int64(len(pattern)), pages*pageSize-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// treeFiles parses a --json --files run: its files by path, and the tree.
func treeFiles(t *testing.T, res result) (map[string]fileEntry, []string, treeEntry) {
	t.Helper()
	r := parseTrees(t, res)
	if len(r.Trees) != 1 {
		t.Fatalf("%d trees, want 1\n%s", len(r.Trees), res)
	}
	byPath := map[string]fileEntry{}
	var order []string
	for _, f := range r.Files {
		byPath[f.Path] = f
		order = append(order, f.Path)
	}
	return byPath, order, r.Trees[0]
}

// compareTree holds a walked tree's files and sums to references taken
// through open fds (cachestat, mincore), with their hard links counted once.
func compareTree(t *testing.T, res result, root string, want map[string]ref) {
	t.Helper()
	got, _, tree := treeFiles(t, res)
	seen := map[[2]uint64]bool{}
	var cached uint64
	files := 0
	for p, r := range want {
		if seen[[2]uint64{r.Dev, r.Ino}] {
			continue
		}
		seen[[2]uint64{r.Dev, r.Ino}] = true
		files++
		cached += r.Cache
		_ = p
	}
	if len(got) != files {
		t.Errorf("%d files listed, the tree has %d distinct inodes\n%s", len(got), files, res)
	}
	for p, e := range got {
		r, ok := want[p]
		if !ok {
			t.Errorf("%s: not a file of the tree", p)
			continue
		}
		if msg := entryProblems(e, p, r); msg != "" {
			t.Errorf("%s: %s", p, msg)
		}
	}
	if tree.Files != files || tree.CachedPages != int64(cached) {
		t.Errorf("tree: %d files, %d cached pages; want %d, %d", tree.Files, tree.CachedPages, files, cached)
	}
}

// stableTree runs filecache on root until the references taken before and
// after agree (ext4: the host may reclaim pages in between), and returns
// that run and those references.
func stableTree(t *testing.T, bin, root string, args ...string) (result, map[string]ref) {
	t.Helper()
	for try := 1; ; try++ {
		_, _, _, _, before := treeRef(t, root, nil)
		res := run(t, bin, append(args, root)...)
		_, _, _, _, after := treeRef(t, root, nil)
		same := len(before) == len(after)
		for p, r := range before {
			if after[p] != r {
				same = false
			}
		}
		if same || try == retries {
			if !same {
				t.Fatalf("no stable measurement in %d tries", retries)
			}
			return res, before
		}
	}
}

// A warm tree (tmpfs, and ext4 in several page cache states) is answered
// from the dentry walk, file for file what cachestat and mincore say,
// hard links counted once; a forced engine or BPF method does not use it.
func TestDentryWalkTree(t *testing.T) {
	bin := filecacheBin(t)
	for _, fs := range []string{"tmpfs", "ext4"} {
		t.Run(fs, func(t *testing.T) {
			var root string
			if fs == "tmpfs" {
				root = tmpfsDir(t)
			} else {
				root = ext4Dir(t)
			}
			names := 0
			for d := range 3 {
				for i := range 60 {
					p := filepath.Join(root, fmt.Sprintf("d%d/sub%d/f%02d", d, i%2, i))
					put(t, p, int64(i%7)*pageSize+int64(i%3)*100)
					names++
				}
			}
			if err := os.Link(filepath.Join(root, "d0/sub0/f00"), filepath.Join(root, "d1/hard")); err != nil {
				t.Fatal(err)
			}
			names++
			if fs == "ext4" {
				// Written back, then parts dropped and read again.
				for d := range 3 {
					for i := range 60 {
						p := filepath.Join(root, fmt.Sprintf("d%d/sub%d/f%02d", d, i%2, i))
						if i%4 == 0 {
							dropAndRead(t, p)
						} else if i%4 == 1 && i%7 > 1 {
							dropAndRead(t, p, [2]int64{pageSize, pageSize})
						}
					}
				}
			}
			res, refs := stableTree(t, bin, root, "--stats", "--json", "--files")
			st := statsOf(t, &res)
			if res.code != 0 {
				t.Fatalf("exit status %d\n%s", res.code, res)
			}
			checkWalked(t, st, names, res)
			compareTree(t, res, root, refs)
		})
	}
}

// A file mounted over a name of the tree is what opening that name gives,
// and what filecache reports for it (not the file underneath, which the
// directory's dentry still lists): DCACHE_MOUNTED, whose bit moved in Linux
// 6.15, keeps the walk away from it.
func TestDentryWalkMountPoint(t *testing.T) {
	bin := filecacheBin(t)
	root := tmpfsDir(t)
	other := tmpfsDir(t)
	under := filepath.Join(root, "x")
	put(t, under, 5*pageSize)
	put(t, filepath.Join(root, "y"), 2*pageSize)
	over := filepath.Join(other, "over")
	put(t, over, 9*pageSize)
	if err := unix.Mount(over, under, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mount a file: %v", err)
	}
	defer unix.Unmount(under, unix.MNT_DETACH)
	res := run(t, bin, "--stats", "--json", "--files", root)
	st := statsOf(t, &res)
	got, _, _ := treeFiles(t, res)
	if e := got[under]; e.CachedPages != 9 || e.SizeBytes != 9*pageSize {
		t.Errorf("x: %d pages, %d bytes: want the mounted file's 9 pages\n%s", e.CachedPages, e.SizeBytes, res)
	}
	if e := got[filepath.Join(root, "y")]; e.CachedPages != 2 {
		t.Errorf("y: %d pages, want 2", e.CachedPages)
	}
	if dentryWalkExpected() && (st.files != 1 || st.opened != 1) {
		t.Errorf("dentry walk answered %d and %d were opened, want y from the walk and x opened\n%s", st.files, st.opened, res)
	}
}

// A filesystem mounted a moment ago holds no dentry of its files: they are
// all opened, which puts them in the dentry cache, and the next run takes
// every one from the walk; both runs and a third after reading parts of
// the files agree with cachestat and mincore.
func TestDentryWalkColdThenWarm(t *testing.T) {
	bin := filecacheBin(t)
	names := 0
	mnt := roImage(t, "ext4", func(t *testing.T, src string) {
		for d := range 2 {
			for i := range 25 {
				put(t, filepath.Join(src, fmt.Sprintf("d%d/f%02d", d, i)), int64(i+1)*pageSize)
				names++
			}
		}
	})
	// No reference first: taking one opens every file.
	res := run(t, bin, "--stats", "--json", "--files", mnt)
	st := statsOf(t, &res)
	if st.files != 0 || st.opened != names {
		t.Errorf("cold: dentry walk answered %d and %d were opened, want all %d opened\n%s", st.files, st.opened, names, res)
	}
	_, _, _, _, refs := treeRef(t, mnt, nil) // read-only and never read: nothing cached, nothing changes
	compareTree(t, res, mnt, refs)

	res, refs = stableTree(t, bin, mnt, "--stats", "--json", "--files")
	checkWalked(t, statsOf(t, &res), names, res)
	compareTree(t, res, mnt, refs)

	for d := range 2 {
		for i := range 25 {
			if i%3 == 0 {
				dropAndRead(t, filepath.Join(mnt, fmt.Sprintf("d%d/f%02d", d, i)), [2]int64{0, int64(i/3+1) * pageSize})
			}
		}
	}
	res, refs = stableTree(t, bin, mnt, "--stats", "--json", "--files")
	checkWalked(t, statsOf(t, &res), names, res)
	compareTree(t, res, mnt, refs)
}

// The order of the files and of the errors is the walk's, whichever way
// each file was answered and however many goroutines read ahead: the same
// as a run with the mincore engine, which opens every file and reads no
// directory ahead, in every output.
func TestDentryWalkOrder(t *testing.T) {
	bin := filecacheBin(t)
	root := tmpfsDir(t)
	for d := range 8 {
		for i := range 30 {
			put(t, filepath.Join(root, fmt.Sprintf("d%d/e%d/f%d", d, i%3, i)), int64(i%4+1)*pageSize)
		}
		if err := os.Symlink("nowhere", filepath.Join(root, fmt.Sprintf("d%d/dead", d))); err != nil {
			t.Fatal(err)
		}
	}
	for _, format := range []string{"--ndjson", "--json"} {
		ref := runWith(t, runOpts{ownEngine: true}, bin, "--engine=mincore", "--follow", "--files", format, root)
		for _, procs := range []string{"1", "2", "4"} {
			cmd := []string{"--follow", "--files", format, root}
			res := runWith(t, runOpts{env: []string{"GOMAXPROCS=" + procs}}, bin, cmd...)
			if res.code != 1 { // the dead symlinks
				t.Fatalf("exit status %d, want 1\n%s", res.code, res)
			}
			if got, want := pathsOf(t, res.stdout), pathsOf(t, ref.stdout); !slices.Equal(got, want) {
				t.Errorf("GOMAXPROCS=%s %s: files in another order than the mincore run's\n got %q\nwant %q", procs, format, got, want)
			}
			if res.stderr != ref.stderr {
				t.Errorf("GOMAXPROCS=%s %s: stderr\n%s\nthe mincore run's\n%s", procs, format, res.stderr, ref.stderr)
			}
		}
	}
}

// pathsOf lists the files (and error paths) of a --json or --ndjson
// document in order.
func pathsOf(t *testing.T, stdout string) []string {
	t.Helper()
	var out []string
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("decode: %v", err)
		}
		var rec struct {
			Record string `json:"record"`
			Path   string `json:"path"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("decode: %v", err)
		}
		switch rec.Record {
		case "file":
			out = append(out, rec.Path)
		case "error":
			out = append(out, "error:"+rec.Path)
		case "": // one --json document
			var doc struct {
				Files  []fileEntry `json:"files"`
				Errors []errEntry  `json:"errors"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatalf("decode: %v", err)
			}
			for _, f := range doc.Files {
				out = append(out, f.Path)
			}
			for _, e := range doc.Errors {
				out = append(out, "error:"+e.Path)
			}
		}
	}
	return out
}

// Files grown and shrunk, unlinked and created again, renamed from one
// directory to another, and short-lived files coming and going, all while
// filecache walks the tree over and over: every figure is one the file had
// at some instant (each file's range of page counts is its own, so a
// figure given to the wrong name fails), a name that came and went is an
// error or absent, and the dentry walk answers files in every run. Once the
// churn stops, a run equals cachestat and mincore exactly.
func TestDentryWalkChurn(t *testing.T) {
	bin := filecacheBin(t)
	top := tmpfsDir(t)
	root := filepath.Join(top, "tree")
	// New files are written here, outside the tree, and renamed into it:
	// a file half written has any figure at all.
	stage := filepath.Join(top, "stage")
	if err := os.Mkdir(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	type span struct{ lo, hi int64 }
	ranges := map[string]span{} // base name -> pages
	var mu sync.Mutex
	for i := range 12 {
		name := fmt.Sprintf("f%02d", i)
		ranges[name] = span{int64(20*i + 1), int64(20*i + 12)}
		put(t, filepath.Join(root, "a", name), ranges[name].lo*pageSize)
	}
	for i := range 4 {
		name := fmt.Sprintf("m%d", i)
		ranges[name] = span{int64(300 + 10*i), int64(300 + 10*i)}
		put(t, filepath.Join(root, "a", name), ranges[name].lo*pageSize)
	}
	ranges["phoenix"] = span{400, 405}
	put(t, filepath.Join(root, "b", "phoenix"), 400*pageSize)
	for i := range 30 {
		put(t, filepath.Join(root, "b", fmt.Sprintf("still%02d", i)), 2*pageSize)
	}
	ranges["still"] = span{2, 2}
	ranges["tmp"] = span{500, 520}

	var stop atomic.Bool
	var wg sync.WaitGroup
	churn := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				f(i)
			}
		}()
	}
	truncate := func(p string, pages int64) {
		if err := os.Truncate(p, pages*pageSize); err != nil {
			t.Error(err)
		}
	}
	churn(func(i int) { // grow and shrink
		name := fmt.Sprintf("f%02d", i%12)
		r := ranges[name]
		p := filepath.Join(root, "a", name)
		truncate(p, r.lo)
		if err := writePages(p, r.hi); err != nil {
			t.Error(err)
		}
		truncate(p, r.lo+int64(i)%(r.hi-r.lo+1))
	})
	churn(func(i int) { // unlinked and created again
		p, staged := filepath.Join(root, "b", "phoenix"), filepath.Join(stage, "phoenix")
		os.Remove(p)
		if err := writePages(staged, 400+int64(i%6)); err != nil {
			t.Error(err)
		}
		if err := os.Rename(staged, p); err != nil {
			t.Error(err)
		}
	})
	churn(func(i int) { // renamed between directories
		name := fmt.Sprintf("m%d", i%4)
		from, to := filepath.Join(root, "a", name), filepath.Join(root, "b", name)
		if i/4%2 == 1 {
			from, to = to, from
		}
		if err := os.Rename(from, to); err != nil {
			t.Error(err)
		}
	})
	churn(func(i int) { // short-lived files
		p, staged := filepath.Join(root, "b", fmt.Sprintf("tmp%d", i%5)), filepath.Join(stage, "tmp")
		os.Remove(staged)
		if err := writePages(staged, 500+int64(i%21)); err != nil {
			t.Error(err)
		}
		if err := os.Rename(staged, p); err != nil {
			t.Error(err)
		}
		if i%2 == 1 {
			os.Remove(p)
		}
	})

	runs, walked := 0, 0
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) || runs < 10 {
		res := run(t, bin, "--stats", "--ndjson", root)
		st := statsOf(t, &res)
		runs++
		if st.files > 0 {
			walked++
		}
		dec := json.NewDecoder(strings.NewReader(res.stdout))
		for dec.More() {
			var rec struct {
				Record      string `json:"record"`
				Path        string `json:"path"`
				CachedPages int64  `json:"cached_pages"`
				SizeBytes   int64  `json:"size_bytes"`
			}
			if err := dec.Decode(&rec); err != nil {
				t.Fatalf("run %d: %v\n%s", runs, err, res)
			}
			base := strings.TrimRight(filepath.Base(rec.Path), "0123456789")
			if strings.HasPrefix(filepath.Base(rec.Path), "f") || strings.HasPrefix(filepath.Base(rec.Path), "m") {
				base = filepath.Base(rec.Path)
			}
			mu.Lock()
			r, known := ranges[base]
			mu.Unlock()
			switch rec.Record {
			case "file":
				if !known {
					t.Errorf("run %d: %s: not a file of the tree", runs, rec.Path)
				} else if rec.CachedPages < r.lo || rec.CachedPages > r.hi {
					t.Errorf("run %d: %s: %d pages, never between %d and %d", runs, rec.Path, rec.CachedPages, r.lo, r.hi)
				}
			case "error":
				if b := filepath.Base(rec.Path); b != "phoenix" && !strings.HasPrefix(b, "tmp") && !strings.HasPrefix(b, "m") {
					t.Errorf("run %d: an error for %s, which never goes away\n%s", runs, rec.Path, res)
				}
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if dentryWalkExpected() && walked != runs {
		t.Errorf("the dentry walk answered files in %d of %d runs", walked, runs)
	}
	t.Logf("%d runs under churn", runs)
	res, refs := stableTree(t, bin, root, "--stats", "--json", "--files")
	statsOf(t, &res)
	compareTree(t, res, root, refs)
}
