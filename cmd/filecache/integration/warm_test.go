package integration

// Warm restarts (snapshot, restore): a pattern of cached pages is set with
// reads, the snapshot must list exactly the pages the kernel holds, and
// after an eviction restore must bring back exactly those pages, no more,
// no fewer, page by page as cachestat(2) (or mincore(2) before Linux 6.5)
// sees each.

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

// ---- the kernel's view, page by page ----

// kernelRuns is which pages of path the kernel holds, as runs: cachestat(2)
// over each page, or one mincore(2) vector where cachestat is missing.
func kernelRuns(t *testing.T, path string) []pagecache.Extent {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	pages := (st.Size + pageSize - 1) / pageSize
	runs := []pagecache.Extent{}
	if _, ok := rawCache(t, fd, 0, pageSize); ok {
		for i := range pages {
			if cs, _ := rawCache(t, fd, i*pageSize, pageSize); cs.Cache == 1 {
				runs = pagecache.AddExtent(runs, pagecache.Extent{First: uint64(i), Pages: 1})
			}
		}
		return runs
	}
	if pages == 0 {
		return runs
	}
	mem, err := unix.Mmap(fd, 0, int(pages*pageSize), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore %s: %v", path, errno)
	}
	for i, v := range vec {
		if v&1 != 0 {
			runs = pagecache.AddExtent(runs, pagecache.Extent{First: uint64(i), Pages: 1})
		}
	}
	return runs
}

func pagesIn(runs []pagecache.Extent) (n uint64) {
	for _, r := range runs {
		n += r.Pages
	}
	return n
}

// everyThird is the pages holding every third 64 KiB of size bytes.
func everyThird(size int64) []pagecache.Extent {
	var runs []pagecache.Extent
	for off := int64(0); off < size; off += 3 * 64 * 1024 {
		end := min(off+64*1024, size)
		runs = append(runs, pagecache.Extent{First: uint64(off / pageSize), Pages: uint64((end - off + pageSize - 1) / pageSize)})
	}
	return runs
}

func wholeFile(size int64) []pagecache.Extent {
	return []pagecache.Extent{{First: 0, Pages: uint64((size + pageSize - 1) / pageSize)}}
}

// cache leaves exactly runs of path cached: written back, dropped, then
// read with readahead off. No fsync on a read-only filesystem.
func cache(t *testing.T, path string, runs []pagecache.Extent) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	dropAll(t, fd, path)
	for _, r := range runs {
		off := int64(r.First) * pageSize
		preadFd(t, fd, off, min(int64(r.Pages)*pageSize, st.Size-off))
	}
}

// dropAll drops fd's pages until cachestat (or mincore) says none is left;
// dirty ones are written back first where the filesystem allows.
func dropAll(t *testing.T, fd int, name string) {
	t.Helper()
	unix.Fsync(fd) // EROFS-free: fsync of a read-only file is a no-op
	for i := 0; i < 50; i++ {
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatalf("fadvise DONTNEED %s: %v", name, err)
		}
		if n, err := cachedPages(fd); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: pages still cached after 50 DONTNEEDs", name)
}

// hold locks runs of path in memory until release: the host reclaims page
// cache by itself (PLATFORM.md), and a snapshot must be compared with a
// state that stays put. Readahead is off for the mapping, and the pages
// are cached already, so locking reads nothing new.
func hold(t *testing.T, path string, runs []pagecache.Extent) (release func()) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	if st.Size == 0 || len(runs) == 0 {
		return func() {}
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Madvise(mem, unix.MADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		lo, hi := int64(r.First)*pageSize, min(int64(r.End())*pageSize, st.Size)
		if err := unix.Mlock(mem[lo:hi]); err != nil {
			unix.Munmap(mem)
			t.Fatalf("mlock %s: %v", path, err)
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { unix.Munmap(mem) }) }
	t.Cleanup(release) // a failed test must not leave its mount busy
	return release
}

// ---- the snapshot, read by the test itself ----

type snapLine struct {
	Record   string          `json:"record"`
	Format   string          `json:"format"`
	Version  int             `json:"version"`
	PageSize int64           `json:"page_size"`
	Source   string          `json:"source"`
	Engine   string          `json:"engine"`
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Root     string          `json:"root"`
	Device   string          `json:"device"`
	Inode    uint64          `json:"inode"`
	Size     int64           `json:"size"`
	Mtime    string          `json:"mtime"`
	Pages    uint64          `json:"pages"`
	RawRange json.RawMessage `json:"ranges"`
	Files    int             `json:"files"`
	Skipped  int             `json:"skipped"`
	Errors   int             `json:"errors"`
	runs     []pagecache.Extent
}

type snapshot struct {
	header snapLine
	files  map[string]snapLine
	end    *snapLine
	raw    []byte // uncompressed
}

// readSnapshot reads a snapshot line by line (gunzipping it by its name).
func readSnapshot(t *testing.T, path string) snapshot {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var in io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		in = zr
	}
	raw, err := io.ReadAll(in)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{files: map[string]snapLine{}, raw: raw}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(nil, 64<<20)
	for i := 0; sc.Scan(); i++ {
		var l snapLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s line %d is not JSON: %v\n%s", path, i+1, err, sc.Text())
		}
		switch {
		case i == 0:
			if l.Record != "snapshot" || l.Format != "filecache-snapshot" || l.Version != 1 || l.PageSize != pageSize {
				t.Fatalf("%s: header %s", path, sc.Text())
			}
			s.header = l
		case l.Record == "file":
			var pairs [][2]uint64
			if err := json.Unmarshal(l.RawRange, &pairs); err != nil {
				t.Fatalf("%s: ranges of %s: %v", path, l.Path, err)
			}
			for _, p := range pairs {
				l.runs = append(l.runs, pagecache.Extent{First: p[0], Pages: p[1]})
			}
			if _, dup := s.files[l.Path]; dup {
				t.Errorf("%s: %s twice", path, l.Path)
			}
			s.files[l.Path] = l
		case l.Record == "end":
			s.end = &l
		}
	}
	if s.end == nil {
		t.Errorf("%s has no end line", path)
	}
	return s
}

// checkRecorded holds a snapshot's line for path to the file as it is and
// to the runs the kernel held.
func checkRecorded(t *testing.T, s snapshot, path, root string, want []pagecache.Extent) {
	t.Helper()
	l, ok := s.files[path]
	if !ok {
		t.Errorf("the snapshot has no line for %s:\n%s", path, clip(string(s.raw)))
		return
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339Nano)
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	if l.Root != root || l.Size != st.Size || l.Inode != st.Ino || l.Device != dev || l.Mtime != mtime || l.Pages != pagesIn(want) {
		t.Errorf("%s: recorded root %q, size %d, inode %d, device %s, mtime %s, %d pages; the file: root %q, %d, %d, %s, %s, %d pages",
			path, l.Root, l.Size, l.Inode, l.Device, l.Mtime, l.Pages, root, st.Size, st.Ino, dev, mtime, pagesIn(want))
	}
	if !slices.Equal(l.runs, want) {
		t.Errorf("%s: recorded ranges %v\nthe kernel held     %v", path, l.runs, want)
	}
}

// snapshotEngine is the engine and method a snapshot's header must name.
func snapshotEngine(t *testing.T) (string, string) {
	engine, method := wantEngine(t)
	if method == "attached" {
		method = kernelMethod(t) // the page walk needs a test run
	}
	return engine, method
}

// ---- restore's report ----

type restoredRow struct {
	Path       string `json:"path"`
	Files      int    `json:"files"`
	TotalPages int64  `json:"total_pages"`
	Before     int64  `json:"before_pages"`
	After      int64  `json:"after_pages"`
	Skipped    int    `json:"skipped"`
}

type restoreReport struct {
	Action string        `json:"action"`
	DryRun bool          `json:"dry_run"`
	Engine string        `json:"engine"`
	Files  []restoredRow `json:"files"`
	Total  restoredRow   `json:"total"`
	Errors []errEntry    `json:"errors"`
	Skips  []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"skipped_files"`
}

func restore(t *testing.T, o runOpts, bin string, args ...string) (restoreReport, result) {
	t.Helper()
	res := runWith(t, o, bin, append([]string{"--json", "restore"}, args...)...)
	var r restoreReport
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil {
		t.Fatalf("restore's report: %v\n%s", err, res)
	}
	return r, res
}

// ---- the tests ----

// TestSnapshotRestore: several ext4 files with every third 64 KiB cached, a
// whole file (its last page partly used) and a sparse tmpfs file are
// snapshot, the ext4 ones evicted and restored: each page as it was. A file
// whose mtime changed and one whose size changed are skipped and named, and
// stay uncached; --dry-run reads nothing.
func TestSnapshotRestore(t *testing.T) {
	bin := filecacheBin(t)
	dir := ext4Dir(t)
	tmp := tmpfsDir(t)
	want := map[string][]pagecache.Extent{}
	var ext4 []string
	for _, n := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, n)
		writeAt(t, p, 0, 8*mib)
		want[p] = everyThird(8 * mib)
		ext4 = append(ext4, p)
	}
	whole := filepath.Join(dir, "whole")
	writeAt(t, whole, 0, 3*mib+1000)
	want[whole] = wholeFile(3*mib + 1000)
	ext4 = append(ext4, whole)
	sparse := filepath.Join(tmp, "sparse")
	sized(t, sparse, 4*mib)
	want[sparse] = everyThird(4 * mib)
	for _, r := range want[sparse] {
		writeAt(t, sparse, int64(r.First)*pageSize, int64(r.Pages)*pageSize)
	}
	all := append(slices.Clone(ext4), sparse)
	snap := filepath.Join(tempDir(t), "snapshot.ndjson")

	for try := 0; ; try++ {
		for _, p := range ext4 {
			cache(t, p, want[p])
		}
		var releases []func()
		for _, p := range ext4 {
			releases = append(releases, hold(t, p, want[p]))
		}
		before := map[string][]pagecache.Extent{}
		for _, p := range all {
			before[p] = kernelRuns(t, p)
		}
		res := run(t, bin, "snapshot", "--output", snap, dir, sparse)
		steady := true
		for _, p := range all {
			if after := kernelRuns(t, p); !slices.Equal(after, before[p]) || !slices.Equal(after, want[p]) {
				steady = false
				t.Logf("try %d: %s held %v, then %v; the test set %v", try, p, before[p], after, want[p])
			}
		}
		for _, r := range releases {
			r()
		}
		if res.code != 0 || !strings.HasPrefix(res.stdout, "snapshot of 5 files: ") {
			t.Fatalf("snapshot:\n%s", res)
		}
		if steady {
			break
		}
		if try == retries {
			t.Fatalf("the page cache did not hold still around the snapshot in %d tries", retries+1)
		}
	}
	s := readSnapshot(t, snap)
	engine, method := snapshotEngine(t)
	if s.header.Engine != engine || s.header.Method != method || s.header.Source != "paths" {
		t.Errorf("header: engine %q, method %q, source %q; want %s, %s, paths", s.header.Engine, s.header.Method, s.header.Source, engine, method)
	}
	for _, p := range ext4 {
		checkRecorded(t, s, p, dir, want[p])
	}
	checkRecorded(t, s, sparse, "", want[sparse])
	if len(s.files) != 5 || s.end.Files != 5 || s.end.Errors != 0 {
		t.Errorf("%d file lines, end %+v; want the 5 files", len(s.files), s.end)
	}

	// Two files change since the snapshot, without caching anything.
	a, b, c := ext4[0], ext4[1], ext4[2]
	if err := os.Truncate(b, 8*mib+pageSize); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(c, time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	var wantPages uint64 // of the tree row: every file's ranges
	for _, p := range ext4 {
		wantPages += pagesIn(want[p])
	}

	t.Run("dry-run", func(t *testing.T) {
		for _, p := range ext4 {
			evict(t, p)
		}
		r, res := restore(t, runOpts{}, bin, "--dry-run", snap)
		for _, p := range ext4 {
			if got := kernelRuns(t, p); len(got) != 0 {
				t.Errorf("--dry-run cached %v of %s", got, p)
			}
		}
		if res.code != 0 || !r.DryRun || len(r.Files) != 2 || r.Files[0].Path != dir || r.Files[0].TotalPages != int64(wantPages) ||
			r.Files[0].Before != 0 || r.Files[0].After != 0 || r.Files[1].Path != sparse || r.Files[1].Before != int64(pagesIn(want[sparse])) {
			t.Errorf("--dry-run's report:\n%s", res)
		}
	})

	t.Run("restore", func(t *testing.T) {
		for try := 0; ; try++ {
			for _, p := range ext4 {
				evict(t, p)
			}
			r, res := restore(t, runOpts{}, bin, snap)
			got := map[string][]pagecache.Extent{}
			for _, p := range all {
				got[p] = kernelRuns(t, p)
			}
			engine, _ := wantEngine(t)
			if res.code != 0 || r.Action != "restore" || r.Engine != engine || len(r.Files) != 2 || r.Files[0].Path != dir || r.Files[1].Path != sparse {
				t.Fatalf("restore:\n%s", res)
			}
			// The changed files: skipped, named, nothing read.
			if len(got[b]) != 0 || len(got[c]) != 0 {
				t.Fatalf("changed files were read: %s %v, %s %v\n%s", b, got[b], c, got[c], res)
			}
			reasons := map[string]string{}
			for _, s := range r.Skips {
				reasons[s.Path] = s.Reason
			}
			if len(r.Skips) != 2 || !strings.HasPrefix(reasons[b], "changed since the snapshot: size ") ||
				!strings.HasPrefix(reasons[c], "changed since the snapshot: modified ") || r.Files[0].Skipped != 2 ||
				!strings.Contains(res.stderr, b+": skipped: changed since the snapshot") || !strings.Contains(res.stderr, c+": skipped: changed since the snapshot") {
				t.Fatalf("the changed files are not reported as skipped:\n%s", res)
			}
			// The others: exactly their pages, none more (the host may
			// only take pages away, never add them).
			extra := ""
			for _, p := range []string{a, whole, sparse} {
				for _, e := range got[p] {
					if pagecache.Overlap([]pagecache.Extent{e}, want[p]) != e.Pages {
						extra += fmt.Sprintf("%s: %v cached, not in the snapshot (%v)\n", p, got[p], want[p])
						break
					}
				}
			}
			if extra != "" {
				t.Fatalf("restore cached pages the snapshot does not list:\n%s%s", extra, res)
			}
			restored := pagesIn(got[a]) + pagesIn(got[whole])
			if int64(restored) != r.Files[0].After || r.Files[0].Before != 0 || r.Files[0].TotalPages != int64(wantPages) {
				t.Errorf("the report says %d pages of %d after (%d before), the kernel %d\n%s", r.Files[0].After, r.Files[0].TotalPages, r.Files[0].Before, restored, res)
			}
			if slices.Equal(got[a], want[a]) && slices.Equal(got[whole], want[whole]) && slices.Equal(got[sparse], want[sparse]) {
				break
			}
			if try == retries {
				t.Fatalf("restore left %s %v (want %v), %s %v (want %v), %s %v (want %v)\n%s",
					a, got[a], want[a], whole, got[whole], want[whole], sparse, got[sparse], want[sparse], res)
			}
		}
	})
}

// TestSnapshotTopRestore: snapshot --top of one filesystem (an ext4 image,
// read-only, holding only this test's files) records each cached file with
// its exact pages, and restoring that snapshot after an eviction brings
// back exactly those pages. The snapshot is gzip'd; files without pages
// are not listed.
func TestSnapshotTopRestore(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	mnt := roImage(t, "ext4", func(t *testing.T, src string) {
		for _, n := range []string{"x", "y"} {
			writeAt(t, filepath.Join(src, n), 0, 4*mib)
		}
		if err := os.Mkdir(filepath.Join(src, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeAt(t, filepath.Join(src, "sub", "whole"), 0, mib+123)
		writeAt(t, filepath.Join(src, "cold"), 0, mib)
	})
	want := map[string][]pagecache.Extent{
		filepath.Join(mnt, "x"):         everyThird(4 * mib),
		filepath.Join(mnt, "y"):         everyThird(4 * mib),
		filepath.Join(mnt, "sub/whole"): wholeFile(mib + 123),
		filepath.Join(mnt, "cold"):      nil,
	}
	snap := filepath.Join(tempDir(t), "top.ndjson.gz")
	for try := 0; ; try++ {
		var releases []func()
		for p, runs := range want {
			cache(t, p, runs)
			releases = append(releases, hold(t, p, runs))
		}
		// --top walks with the bpf engine whatever engine the suite forces.
		res := runWith(t, runOpts{ownEngine: true}, bin, "snapshot", "--top", "--mount", mnt, "-o", snap)
		steady := true
		for p, runs := range want {
			if got := kernelRuns(t, p); !slices.Equal(got, runs) && !(len(got) == 0 && runs == nil) {
				steady = false
				t.Logf("try %d: %s holds %v after the snapshot, the test set %v", try, p, got, runs)
			}
		}
		for _, r := range releases {
			r()
		}
		if res.code != 0 || !strings.HasPrefix(res.stdout, "snapshot of 3 files: ") {
			t.Fatalf("snapshot --top:\n%s", res)
		}
		if steady {
			break
		}
		if try == retries {
			t.Fatalf("the page cache did not hold still around the snapshot in %d tries", retries+1)
		}
	}
	s := readSnapshot(t, snap)
	if s.header.Source != "top" || s.header.Engine != "bpf" {
		t.Errorf("header: source %q, engine %q; want top, bpf", s.header.Source, s.header.Engine)
	}
	for p, runs := range want {
		if runs == nil {
			if _, ok := s.files[p]; ok {
				t.Errorf("%s has no cached page, yet a line", p)
			}
			continue
		}
		checkRecorded(t, s, p, mnt, runs)
	}
	if len(s.files) != 3 {
		t.Errorf("%d file lines, want 3:\n%s", len(s.files), s.raw)
	}

	for try := 0; ; try++ {
		for p := range want {
			cache(t, p, nil)
		}
		r, res := restore(t, runOpts{}, bin, snap)
		if res.code != 0 || len(r.Files) != 1 || r.Files[0].Path != mnt || r.Files[0].Files != 3 || r.Files[0].Before != 0 {
			t.Fatalf("restore:\n%s", res)
		}
		done := true
		for p, runs := range want {
			got := kernelRuns(t, p)
			if pagecache.Overlap(got, runs) != pagesIn(got) {
				t.Fatalf("%s: restore cached %v, the snapshot lists %v\n%s", p, got, runs, res)
			}
			if !slices.Equal(got, runs) && !(len(got) == 0 && runs == nil) {
				done = false
				t.Logf("try %d: %s holds %v after restore, want %v", try, p, got, runs)
			}
		}
		if done {
			break
		}
		if try == retries {
			t.Fatalf("restore did not bring the pages back in %d tries", retries+1)
		}
	}
}

// TestRestoreRateAndBar: --rate holds restore to the rate (a lower bound
// on its time: it cannot be faster), and on a terminal the bar is drawn on
// stderr and erased at the end.
func TestRestoreRateAndBar(t *testing.T) {
	bin := filecacheBin(t)
	if os.Getenv(envEngine)+os.Getenv(envMethod) != "" {
		skipConfig(t, "about restore's pace, not an engine; runs in the unforced run")
	}
	f := filepath.Join(ext4Dir(t), "data")
	writeAt(t, f, 0, 4*mib)
	snap := filepath.Join(tempDir(t), "snap")
	if res := run(t, bin, "snapshot", "-o", snap, f); res.code != 0 {
		t.Fatal(res)
	}
	cache(t, f, nil)
	master, tty := pty(t)
	defer master.Close()
	start := time.Now()
	cmd := exec.Command(bin, "restore", "--rate", "2M/s", snap)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	drawn, _ := io.ReadAll(master) // EIO once the terminal's last holder exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("restore: %v\n%s\n%q", err, out.String(), drawn)
	}
	took := time.Since(start)
	pages := pagesIn(kernelRuns(t, f))
	// What the snapshot recorded is what was cached then; restoring it at
	// 2 MiB/s, after a first 1 MiB chunk, takes (bytes - 1 MiB) / 2 MiB/s.
	recorded := readSnapshot(t, snap).files[f].Pages
	if min := time.Duration(float64(int64(recorded)*pageSize-mib) / float64(2*mib) * float64(time.Second)); recorded > 256 && took < min {
		t.Errorf("restoring %d pages at 2 MiB/s took %v, want at least %v", recorded, took, min)
	}
	if pages < recorded {
		t.Logf("%d of %d pages cached after restore (the host may have taken some)", pages, recorded)
	}
	if !strings.Contains(string(drawn), "filecache: restore [") || !strings.HasSuffix(string(drawn), "\r\x1b[K") {
		t.Errorf("no progress bar, or not erased, on the terminal: %q", drawn)
	}
	if !strings.Contains(out.String(), "BEFORE") {
		t.Errorf("no report on stdout: %q", out.String())
	}
}

// pty opens a pseudo-terminal: its master and the terminal itself.
func pty(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		skipFeature(t, "pty", "no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		skipFeature(t, "pty", "cannot open the terminal's other end: %v", err)
	}
	return master, tty
}
