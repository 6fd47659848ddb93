package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A 16 MiB file written on tmpfs has all 4096 pages cached.
func TestFullyCachedTmpfs(t *testing.T) {
	bin := filecacheBin(t)
	p := filepath.Join(tmpfsDir(t), "full")
	writeAt(t, p, 0, 16*mib)
	rep, refs, _ := measure(t, bin, sandwich{args: []string{"--json", p}, refs: []string{p}, tries: 1})
	checkFiles(t, rep, []string{p}, refs)
	if want := 16 * mib / pageSize; refs[0].Cache != uint64(want) || rep.Files[0].CachedPages != want {
		t.Errorf("cached pages: filecache %d, cachestat %d, mincore %d, want all %d",
			rep.Files[0].CachedPages, refs[0].Cache, refs[0].Mincore, want)
	}
	if rep.Files[0].Percent != 100 {
		t.Errorf("percent %v, want 100", rep.Files[0].Percent)
	}
}

// An ext4 file written back and dropped with posix_fadvise(DONTNEED) has 0 pages.
func TestEvictedExt4(t *testing.T) {
	bin := filecacheBin(t)
	p := filepath.Join(ext4Dir(t), "evicted")
	writeAt(t, p, 0, 16*mib)
	rep, refs, _ := measure(t, bin, sandwich{
		args:    []string{"--json", p},
		refs:    []string{p},
		prepare: func() { evict(t, p) },
		accept:  wantCached(0, 0),
	})
	checkFiles(t, rep, []string{p}, refs)
}

// wantCached accepts references whose first file has between lo and hi pages.
func wantCached(lo, hi uint64) func([]ref) string {
	return func(r []ref) string {
		if r[0].Cache < lo || r[0].Cache > hi {
			return fmt.Sprintf("cachestat says %d pages, the test set up %d..%d", r[0].Cache, lo, hi)
		}
		return ""
	}
}

// An evicted ext4 file of which two ranges were read matches cachestat.
func TestPartlyReadExt4(t *testing.T) {
	bin := filecacheBin(t)
	p := filepath.Join(ext4Dir(t), "partial")
	size := 64 * mib
	writeAt(t, p, 0, size)
	rep, refs, _ := measure(t, bin, sandwich{
		args: []string{"--json", p},
		refs: []string{p},
		prepare: func() {
			evict(t, p)
			readAt(t, p, 0, mib)
			readAt(t, p, 32*mib+3*pageSize, 2*mib)
		},
		// 768 pages read; readahead may add some, but far from all 16384.
		accept: wantCached(uint64(3*mib/pageSize), uint64(size/pageSize)/2),
	})
	checkFiles(t, rep, []string{p}, refs)
}

// Empty files on tmpfs and ext4: size 0, 0 pages, percent 0.
func TestEmptyFiles(t *testing.T) {
	bin := filecacheBin(t)
	a := filepath.Join(tmpfsDir(t), "empty")
	b := filepath.Join(ext4Dir(t), "empty")
	sized(t, a, 0)
	sized(t, b, 0)
	paths := []string{a, b}
	rep, refs, _ := measure(t, bin, sandwich{args: []string{"--json", a, b}, refs: paths, tries: 1})
	checkFiles(t, rep, paths, refs)
	for i, f := range rep.Files {
		if f.SizeBytes != 0 || f.TotalPages != 0 || f.CachedPages != 0 || f.CachedBytes != 0 || f.Percent != 0 {
			t.Errorf("files[%d] %s: %+v, want every figure 0", i, paths[i], f)
		}
	}
	if tot := rep.Total; tot.Files != 2 || tot.TotalPages != 0 || tot.Percent != 0 {
		t.Errorf("total %+v, want 2 files, 0 pages, percent 0", tot)
	}
}

// 1 GiB sparse files with 4 MiB written in the middle, on ext4 and on tmpfs.
func TestSparse(t *testing.T) {
	bin := filecacheBin(t)
	const size = 1 << 30
	for _, fs := range []struct {
		name  string
		dir   func(*testing.T) string
		tries int
	}{{"ext4", ext4Dir, retries}, {"tmpfs", tmpfsDir, 1}} {
		t.Run(fs.name, func(t *testing.T) {
			p := filepath.Join(fs.dir(t), "sparse")
			sized(t, p, size)
			written := uint64(4 * mib / pageSize)
			rep, refs, _ := measure(t, bin, sandwich{
				args:  []string{"--json", p},
				refs:  []string{p},
				tries: fs.tries,
				prepare: func() {
					if fs.name == "ext4" {
						evict(t, p)
					}
					writeAt(t, p, 512*mib+5*pageSize, 4*mib)
				},
				accept: wantCached(written, written),
			})
			checkFiles(t, rep, []string{p}, refs)
			if rep.Files[0].TotalPages != size/pageSize {
				t.Errorf("total_pages %d, want %d", rep.Files[0].TotalPages, size/pageSize)
			}
		})
	}
}

// A file written and not synced on ext4: dirty pages are counted like clean ones.
func TestDirtyExt4(t *testing.T) {
	bin := filecacheBin(t)
	p := filepath.Join(ext4Dir(t), "dirty")
	n := 8 * mib
	rep, refs, _ := measure(t, bin, sandwich{
		args:    []string{"--json", p},
		refs:    []string{p},
		prepare: func() { writeAt(t, p, 0, n) },
		accept: func(r []ref) string {
			if (r[0].Dirty == 0 && !r[0].NoCachestat) || r[0].Cache != uint64(n/pageSize) {
				return fmt.Sprintf("cachestat: %d cached, %d dirty; want %d cached, some dirty", r[0].Cache, r[0].Dirty, n/pageSize)
			}
			return ""
		},
	})
	checkFiles(t, rep, []string{p}, refs)
	t.Logf("cachestat: %d pages cached, %d dirty; filecache: %d", refs[0].Cache, refs[0].Dirty, rep.Files[0].CachedPages)
}

// Over 1300 files (more than two batches of 512) in one run, tmpfs and ext4
// interleaved, with varied sizes and cached amounts.
func TestManyFiles(t *testing.T) {
	bin := filecacheBin(t)
	tdir, edir := tmpfsDir(t), ext4Dir(t)
	const nTmpfs, nExt4 = 1100, 250
	var paths []string
	type keep struct {
		path  string
		pages int64 // first pages of an ext4 file to keep cached
	}
	var ext4 []keep
	for i := 0; i < nTmpfs+nExt4; i++ {
		if i%5 == 2 && len(ext4) < nExt4 {
			// ext4: written in full, synced below, then all but a head dropped.
			p := filepath.Join(edir, fmt.Sprintf("e%04d", i))
			size := int64(i%9+1)*pageSize*3 - int64(i%3)*700
			writeAt(t, p, 0, size)
			ext4 = append(ext4, keep{p, int64(i % 7)})
			paths = append(paths, p)
			continue
		}
		// tmpfs: sparse, with a varying subset of pages written (through
		// one fd: under emulation an open per page cost seconds).
		p := filepath.Join(tdir, fmt.Sprintf("t%04d", i))
		size := int64(i%16)*pageSize + int64(i%5)*333
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Ftruncate(fd, size)
		for off := int64(0); off < size && err == nil; off += pageSize {
			if (off/pageSize+int64(i))%3 != 1 {
				_, err = unix.Pwrite(fd, pattern[:min(pageSize, size-off)], off)
			}
		}
		unix.Close(fd)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		paths = append(paths, p)
	}
	if len(paths) < 1300 || len(ext4) != nExt4 {
		t.Fatalf("built %d paths, %d on ext4", len(paths), len(ext4))
	}
	fd, err := unix.Open(edir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Syncfs(fd)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	prepare := func() {
		for _, k := range ext4 {
			f, err := unix.Open(k.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if k.pages > 0 {
				preadFd(t, f, 0, min(k.pages*pageSize, fileSize(t, f)))
			}
			err = unix.Fadvise(f, k.pages*pageSize, 0, unix.FADV_DONTNEED)
			unix.Close(f)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	rep, refs, _ := measure(t, bin, sandwich{
		args:    append([]string{"--json"}, paths...),
		refs:    paths,
		prepare: prepare,
	})
	checkFiles(t, rep, paths, refs)
	var sum uint64
	distinct := map[uint64]bool{}
	for _, r := range refs {
		sum += r.Cache
		distinct[r.Cache] = true
	}
	if len(distinct) < 8 || sum == 0 {
		t.Errorf("set-up too uniform to test much: %d distinct cached amounts, %d pages in all", len(distinct), sum)
	}
	if rep.Total.Files != len(paths) || uint64(rep.Total.CachedPages) != sum {
		t.Errorf("total: %d files, %d cached pages; cachestat over the same %d files sums to %d",
			rep.Total.Files, rep.Total.CachedPages, len(paths), sum)
	}
	t.Logf("%d files, %d distinct cached amounts, %d pages cached in all", len(paths), len(distinct), sum)
}

func fileSize(t *testing.T, fd int) int64 {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size
}

// A symlink is followed: the answer is the target's, the path as given.
func TestSymlinkFollowed(t *testing.T) {
	bin := filecacheBin(t)
	dir := tmpfsDir(t)
	target := filepath.Join(dir, "target")
	sized(t, target, 10*mib)
	writeAt(t, target, 0, 600*1024)
	writeAt(t, target, 7*mib, 1*mib)
	abs := filepath.Join(dir, "abs-link")
	rel := filepath.Join(dir, "rel-link")
	chain := filepath.Join(dir, "chain-link")
	for link, to := range map[string]string{abs: target, rel: "target", chain: "rel-link"} {
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
	}
	shown := []string{abs, rel, chain, "rel-link", target}
	refPaths := []string{abs, rel, chain, rel, target}
	rep, refs, _ := measure(t, bin, sandwich{
		args:  append([]string{"--json"}, shown...),
		dir:   dir,
		refs:  refPaths,
		tries: 1,
	})
	checkFiles(t, rep, shown, refs)
	tgt := rep.Files[len(shown)-1]
	for i, f := range rep.Files {
		if f.Inode != tgt.Inode || f.CachedPages != tgt.CachedPages || f.SizeBytes != tgt.SizeBytes {
			t.Errorf("%q: inode %d, %d pages, %d bytes; its target: inode %d, %d pages, %d bytes",
				shown[i], f.Inode, f.CachedPages, f.SizeBytes, tgt.Inode, tgt.CachedPages, tgt.SizeBytes)
		}
	}

	t.Run("dangling", func(t *testing.T) {
		dangling := filepath.Join(dir, "dangling")
		if err := os.Symlink("no-such-target", dangling); err != nil {
			t.Fatal(err)
		}
		rep, refs, res := measure(t, bin, sandwich{
			args: []string{"--json", dangling, target}, refs: []string{target}, tries: 1, wantCode: 1,
		})
		checkFiles(t, rep, []string{target}, refs)
		checkErrors(t, rep, []string{dangling})
		if len(rep.Errors) == 1 && rep.Errors[0].Error != "no such file or directory" {
			t.Logf("note: dangling link reason %q\n%s", rep.Errors[0].Error, res)
		}
	})
}

// Names that are not valid UTF-8 or hold a newline keep the JSON valid and
// are recoverable byte for byte through path_b64.
func TestOddNames(t *testing.T) {
	bin := filecacheBin(t)
	dir := tmpfsDir(t)
	bad := filepath.Join(dir, "bad\xffname")
	nl := filepath.Join(dir, "new\nline")
	quote := filepath.Join(dir, "tab\tquote\"back\\slash,comma")
	writeAt(t, bad, 0, 40*1024+5)
	writeAt(t, nl, 0, 3*pageSize)
	sized(t, quote, 100*pageSize)
	writeAt(t, quote, 50*pageSize, 2*pageSize)

	t.Run("not_utf8", func(t *testing.T) {
		rep, refs, res := measure(t, bin, sandwich{args: []string{"--json", bad, nl}, refs: []string{bad, nl}, tries: 1})
		checkFiles(t, rep, []string{bad, nl}, refs)
		if rep.Files[0].PathB64 == nil {
			t.Errorf("no path_b64 for %q\n%s", bad, res)
		}
	})

	t.Run("control_and_quotes", func(t *testing.T) {
		paths := []string{nl, quote}
		rep, refs, _ := measure(t, bin, sandwich{args: append([]string{"--json"}, paths...), refs: paths, tries: 1})
		checkFiles(t, rep, paths, refs)
	})

	t.Run("error_entry", func(t *testing.T) {
		missing := filepath.Join(dir, "missing\xfe")
		rep, refs, _ := measure(t, bin, sandwich{
			args: []string{"--json", missing, nl}, refs: []string{nl}, tries: 1, wantCode: 1,
		})
		checkFiles(t, rep, []string{nl}, refs)
		checkErrors(t, rep, []string{missing})
	})

	t.Run("newline_error_one_line", func(t *testing.T) {
		gone := filepath.Join(dir, "gone\nname")
		res := run(t, bin, gone, nl)
		if res.code != 1 {
			t.Errorf("exit %d, want 1\n%s", res.code, res)
		}
		if lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n"); len(lines) != 1 ||
			!strings.HasPrefix(lines[0], "filecache: ") || !strings.Contains(lines[0], "gone") {
			t.Errorf("want one stderr line `filecache: ...gone...name: reason` for a name with a newline\n%s", res)
		}
	})

	t.Run("table", func(t *testing.T) {
		res := run(t, bin, bad, nl, quote)
		if res.code != 0 {
			t.Errorf("exit %d, want 0\n%s", res.code, res)
		}
	})
}

// detailEntry is a files[] entry with the counts --detail adds.
type detailEntry struct {
	Path            string  `json:"path"`
	CachedPages     uint64  `json:"cached_pages"`
	Dirty           *uint64 `json:"dirty_pages"`
	Writeback       *uint64 `json:"writeback_pages"`
	Evicted         *uint64 `json:"evicted_pages"`
	RecentlyEvicted *uint64 `json:"recently_evicted_pages"`
}

// --detail adds cachestat(2)'s counts to the figures of whichever engine
// measured, equal to cachestat's own over the same file, on a kernel that
// has it (Linux >= 6.5); on an older kernel the figures stand alone and one
// note says why, on stderr and in notes[].
func TestDetail(t *testing.T) {
	bin := filecacheBin(t)
	p := filepath.Join(ext4Dir(t), "detail")
	prepare := func() { // clean pages at the start, dirty ones further on
		writeAt(t, p, 0, 2*mib)
		evict(t, p)
		readAt(t, p, 0, 512*1024)
		writeAt(t, p, mib, 256*1024)
	}
	writeAt(t, p, 0, 2*mib)
	fd := openRead(t, p)
	if !haveCachestat() {
		prepare()
		res := run(t, bin, "--json", "--detail", p)
		rep := mustReport(t, res)
		var doc struct{ Files []detailEntry }
		if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || res.code != 0 || len(doc.Files) != 1 {
			t.Fatalf("%v\n%s", err, res)
		}
		const note = "--detail needs cachestat(2), Linux >= 6.5"
		if f := doc.Files[0]; f.Dirty != nil || f.Writeback != nil || f.Evicted != nil || f.RecentlyEvicted != nil ||
			!slices.Contains(rep.Notes, note) || !strings.Contains(res.stderr, "filecache: "+note+"\n") {
			t.Errorf("without cachestat(2): want no counts added and the note %q on stderr and in notes[]\n%s", note, res)
		}
		skipKernel(t, featCachestat, "checked that --detail says it needs cachestat(2)")
	}
	var why string
	for try := 1; try <= retries; try++ {
		prepare()
		r1, err := kernelCachestat(fd, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		res := run(t, bin, "--json", "--detail", p)
		r2, err := kernelCachestat(fd, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		mustReport(t, res)
		var doc struct{ Files []detailEntry }
		if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || res.code != 0 || len(doc.Files) != 1 {
			t.Fatalf("%v\n%s", err, res)
		}
		if r1 != r2 || r1.Dirty == 0 {
			why = fmt.Sprintf("cachestat %+v, then %+v", r1, r2)
			t.Logf("try %d: not the settled state with dirty pages the test set up (%s); again", try, why)
			continue
		}
		f := doc.Files[0]
		if f.Dirty == nil || f.Writeback == nil || f.Evicted == nil || f.RecentlyEvicted == nil {
			t.Fatalf("--detail added no counts on a kernel with cachestat(2)\n%s", res)
		}
		got := unix.Cachestat_t{Cache: f.CachedPages, Dirty: *f.Dirty, Writeback: *f.Writeback, Evicted: *f.Evicted, Recently_evicted: *f.RecentlyEvicted}
		if got != r1 {
			t.Errorf("--detail: %+v, cachestat %+v\n%s", got, r1, res)
		}
		return
	}
	t.Fatalf("no stable measurement in %d tries: %s", retries, why)
}
