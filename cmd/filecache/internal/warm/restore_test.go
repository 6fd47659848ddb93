package warm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

var page = uint64(units.PageSize)

// fakeCache is an extent engine over a model of the page cache: each
// inode's cached runs, which the spans a restore reads are added to.
type fakeCache struct {
	mu      sync.Mutex
	cached  map[uint64][]pagecache.Extent // by inode
	queries int
	busy    atomic.Int32 // Query calls under way: must never pass 1
}

func (*fakeCache) Name() string   { return "fake" }
func (*fakeCache) Method() string { return "model" }
func (*fakeCache) BatchSize() int { return 64 }
func (*fakeCache) Close()         {}
func (c *fakeCache) Query(hs []pagecache.Handle) ([]pagecache.Answer, error) {
	if c.busy.Add(1) != 1 {
		panic("two Query calls at once")
	}
	defer c.busy.Add(-1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries++
	out := make([]pagecache.Answer, len(hs))
	for i, h := range hs {
		var st unix.Stat_t
		if err := unix.Fstat(h.Fd, &st); err != nil {
			out[i].Err = err
			continue
		}
		out[i] = pagecache.Answer{Size: st.Size, Extents: append([]pagecache.Extent{}, c.cached[st.Ino]...)}
	}
	return out, nil
}

// read adds the pages of bytes [off, end) of fd to the model.
func (c *fakeCache) read(fd int, off, end int64) {
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	c.mu.Lock()
	defer c.mu.Unlock()
	pages := map[uint64]bool{}
	for _, e := range c.cached[st.Ino] {
		for p := e.First; p < e.End(); p++ {
			pages[p] = true
		}
	}
	for p := uint64(off) / page; p < (uint64(end)+page-1)/page; p++ {
		pages[p] = true
	}
	keys := slices.Sorted(func(yield func(uint64) bool) {
		for k := range pages {
			if !yield(k) {
				return
			}
		}
	})
	var runs []pagecache.Extent
	for _, k := range keys {
		runs = pagecache.AddExtent(runs, pagecache.Extent{First: k, Pages: 1})
	}
	c.cached[st.Ino] = runs
}

// spans records the reads a restore makes, by file, instead of reading.
type spans struct {
	mu    sync.Mutex
	by    map[string][][2]int64
	cache *fakeCache
	delay func() time.Duration
}

func (s *spans) hook(t *testing.T) {
	read := func(fd int, off, end int64, _ []byte, progress func(uint64)) error {
		if s.delay != nil {
			time.Sleep(s.delay())
		}
		name, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		s.mu.Lock()
		s.by[filepath.Base(name)] = append(s.by[filepath.Base(name)], [2]int64{off, end})
		s.mu.Unlock()
		s.cache.read(fd, off, end)
		progress(uint64(end - off))
		return nil
	}
	oldR, oldT := readSpan, touchSpan
	readSpan, touchSpan = read, read
	t.Cleanup(func() { readSpan, touchSpan = oldR, oldT })
}

type testFile struct {
	name   string
	pages  int64              // the file's size, in pages
	ranges []pagecache.Extent // in the snapshot
	cached []pagecache.Extent // before the restore
	change func(t *testing.T, path string)
}

// makeSnapshot writes the files and a snapshot of them in dir, then lets
// each file change as it says.
func makeSnapshot(t *testing.T, dir string, files []testFile, cache *fakeCache) []byte {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b, false, Header{PageSize: int(page)})
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, f.pages*int64(page)); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		cache.cached[st.Ino] = f.cached
		rec := File{Path: p, Root: dir, Size: st.Size, Mtime: time.Unix(st.Mtim.Unix()), Ranges: f.ranges}
		for _, r := range f.ranges {
			rec.Pages += r.Pages
		}
		if err := w.File(rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.change != nil {
			f.change(t, filepath.Join(dir, f.name))
		}
	}
	return b.Bytes()
}

func restoreOf(t *testing.T, snap []byte, o Options) ([]Result, uint64) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	var res []Result
	var done atomic.Uint64
	o.Progress = func(n uint64) { done.Add(n) }
	o.Result = func(x Result) { res = append(res, x) }
	if err := Restore(r, o); err != nil {
		t.Fatal(err)
	}
	return res, done.Load()
}

// Restore reads exactly the snapshot's pages that are not cached, skips
// files that changed or went, and says so.
func TestRestoreReadsWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	cache := &fakeCache{cached: map[uint64][]pagecache.Extent{}}
	rec := &spans{by: map[string][][2]int64{}, cache: cache}
	rec.hook(t)
	later := func(t *testing.T, p string) {
		if err := os.Chtimes(p, time.Now(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	files := []testFile{
		{name: "a", pages: 10, ranges: []pagecache.Extent{{First: 0, Pages: 2}, {First: 5, Pages: 3}}, cached: []pagecache.Extent{{First: 0, Pages: 1}, {First: 6, Pages: 1}}},
		{name: "grown", pages: 4, ranges: []pagecache.Extent{{First: 0, Pages: 4}}, change: func(t *testing.T, p string) { os.Truncate(p, 5*int64(page)) }},
		{name: "touched", pages: 4, ranges: []pagecache.Extent{{First: 1, Pages: 1}}, change: later},
		{name: "gone", pages: 4, ranges: []pagecache.Extent{{First: 1, Pages: 1}}, change: func(t *testing.T, p string) { os.Remove(p) }},
		{name: "dir", pages: 4, ranges: []pagecache.Extent{{First: 1, Pages: 1}}, change: func(t *testing.T, p string) {
			os.Remove(p)
			os.Mkdir(p, 0o755)
			// A directory has another size: give the snapshot's back.
		}},
		{name: "big", pages: 300, ranges: []pagecache.Extent{{First: 0, Pages: 1}}},
		{name: "cached", pages: 3, ranges: []pagecache.Extent{{First: 0, Pages: 3}}, cached: []pagecache.Extent{{First: 0, Pages: 3}}},
		// Pages past the end now (a snapshot of a longer file would
		// have been skipped; these came from a range running past it).
		{name: "tail", pages: 2, ranges: []pagecache.Extent{{First: 1, Pages: 5}}},
	}
	snap := makeSnapshot(t, dir, files, cache)
	res, progress := restoreOf(t, snap, Options{MaxSize: 100 * int64(page), Jobs: 3, Engine: cache})
	if len(res) != len(files) {
		t.Fatalf("%d results for %d files", len(res), len(files))
	}
	for i, r := range res {
		if filepath.Base(r.File.Path) != files[i].name {
			t.Fatalf("result %d is %s, want %s: not in the snapshot's order", i, r.File.Path, files[i].name)
		}
	}
	want := map[string]string{"grown": "changed since the snapshot: size", "touched": "changed since the snapshot: modified",
		"gone": "gone since the snapshot", "dir": "no longer a regular file", "big": "larger than --max-size"}
	for _, r := range res {
		name := filepath.Base(r.File.Path)
		if w, ok := want[name]; (ok && !strings.HasPrefix(r.Skip, w)) || (!ok && r.Skip != "") || r.Err != nil {
			t.Errorf("%s: skip %q, err %v; want skip %q", name, r.Skip, r.Err, w)
		}
	}
	a := res[0]
	if a.Pages != 5 || a.Before != 2 || a.After != 5 || a.Bytes != 3*page {
		t.Errorf("a: %d pages, %d before, %d after, %d bytes read; want 5, 2, 5, 3 pages", a.Pages, a.Before, a.After, a.Bytes)
	}
	p := int64(page)
	if got, want := rec.by["a"], [][2]int64{{p, 2 * p}, {5 * p, 6 * p}, {7 * p, 8 * p}}; !slices.Equal(got, want) {
		t.Errorf("a: read %v, want the snapshot's pages not cached: %v", got, want)
	}
	if got := rec.by["cached"]; len(got) != 0 || res[6].Before != 3 || res[6].After != 3 {
		t.Errorf("a file whose pages are all cached: read %v, figures %+v", got, res[6])
	}
	if got := rec.by["tail"]; !slices.Equal(got, [][2]int64{{p, 2 * p}}) || res[7].Pages != 1 {
		t.Errorf("ranges past the end of the file: read %v, %d pages; want page 1 only", got, res[7].Pages)
	}
	for _, name := range []string{"grown", "touched", "gone", "dir", "big"} {
		if got := rec.by[name]; len(got) != 0 {
			t.Errorf("%s was skipped but read: %v", name, got)
		}
	}
	// Progress covers every byte of every file's ranges, read or not.
	var all uint64
	r, _ := NewReader(bytes.NewReader(snap))
	for f, err := r.Next(); err == nil; f, err = r.Next() {
		all += Bytes(f, int(page))
	}
	if progress != all {
		t.Errorf("progress told of %d bytes, the snapshot holds %d", progress, all)
	}
}

// A dry run measures and reads nothing.
func TestRestoreDryRun(t *testing.T) {
	dir := t.TempDir()
	cache := &fakeCache{cached: map[uint64][]pagecache.Extent{}}
	rec := &spans{by: map[string][][2]int64{}, cache: cache}
	rec.hook(t)
	snap := makeSnapshot(t, dir, []testFile{{name: "a", pages: 10, ranges: []pagecache.Extent{{First: 0, Pages: 4}}, cached: []pagecache.Extent{{First: 1, Pages: 1}}}}, cache)
	res, _ := restoreOf(t, snap, Options{DryRun: true, Engine: cache})
	if len(rec.by) != 0 || len(res) != 1 || res[0].Before != 1 || res[0].After != 1 || res[0].Bytes != 3*page || cache.queries != 1 {
		t.Errorf("dry run: read %v, result %+v, %d queries", rec.by, res, cache.queries)
	}
}

// Files are read at once by several workers, each after its own delay,
// yet reported in the snapshot's order, each measured again after its
// reads; the engine is never asked twice at once.
func TestRestoreOrderUnderParallelReads(t *testing.T) {
	dir := t.TempDir()
	cache := &fakeCache{cached: map[uint64][]pagecache.Extent{}}
	rec := &spans{by: map[string][][2]int64{}, cache: cache, delay: func() time.Duration {
		return time.Duration(rand.IntN(3000)) * time.Microsecond
	}}
	rec.hook(t)
	var files []testFile
	for i := range 300 {
		files = append(files, testFile{name: fmt.Sprintf("f%03d", i), pages: 8, ranges: []pagecache.Extent{{First: uint64(i % 5), Pages: 2}, {First: 6, Pages: 1}}})
	}
	snap := makeSnapshot(t, dir, files, cache)
	res, _ := restoreOf(t, snap, Options{Jobs: 8, Engine: cache})
	if len(res) != len(files) {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if filepath.Base(r.File.Path) != files[i].name || r.Before != 0 || r.After != 3 || r.Err != nil || r.Skip != "" {
			t.Fatalf("result %d: %s %+v", i, r.File.Path, r)
		}
	}
}

// The snapshot's pages are turned into this machine's: larger snapshot
// pages cover several, smaller ones share one, nothing past the file.
func TestLocalPages(t *testing.T) {
	if page != 4096 {
		t.Skipf("skip[config]: the cases are written for 4 KiB pages, this machine's are %d", page)
	}
	for _, c := range []struct {
		in     []pagecache.Extent
		pageIn uint64
		size   int64
		want   []pagecache.Extent
	}{
		{[]pagecache.Extent{{First: 0, Pages: 2}, {First: 5, Pages: 1}}, 4096, 1 << 20, []pagecache.Extent{{First: 0, Pages: 2}, {First: 5, Pages: 1}}},
		{[]pagecache.Extent{{First: 0, Pages: 2}, {First: 5, Pages: 1}}, 65536, 1 << 20, []pagecache.Extent{{First: 0, Pages: 32}, {First: 80, Pages: 16}}},
		{[]pagecache.Extent{{First: 0, Pages: 1}, {First: 2, Pages: 1}, {First: 9, Pages: 2}}, 1024, 1 << 20, []pagecache.Extent{{First: 0, Pages: 1}, {First: 2, Pages: 1}}},
		{[]pagecache.Extent{{First: 0, Pages: 2}, {First: 5, Pages: 1}}, 65536, 100000, []pagecache.Extent{{First: 0, Pages: 25}}},
		{[]pagecache.Extent{{First: 3, Pages: 1}}, 4096, 4096, nil},
	} {
		if got := localPages(c.in, c.pageIn, c.size); !slices.Equal(got, c.want) {
			t.Errorf("localPages(%v, %d, %d) = %v, want %v", c.in, c.pageIn, c.size, got, c.want)
		}
	}
}

func TestSubtract(t *testing.T) {
	e := func(v ...uint64) []pagecache.Extent {
		var out []pagecache.Extent
		for i := 0; i < len(v); i += 2 {
			out = append(out, pagecache.Extent{First: v[i], Pages: v[i+1]})
		}
		return out
	}
	for _, c := range []struct{ want, have, out []pagecache.Extent }{
		{e(0, 10), nil, e(0, 10)},
		{e(0, 10), e(0, 10), nil},
		{e(0, 10), e(2, 2, 5, 1, 9, 5), e(0, 2, 4, 1, 6, 3)},
		{e(0, 2, 5, 3), e(0, 1, 6, 1), e(1, 1, 5, 1, 7, 1)},
		{e(10, 5, 20, 5), e(0, 12, 14, 8), e(12, 2, 22, 3)},
	} {
		if got := subtract(c.want, c.have); !slices.Equal(got, c.out) {
			t.Errorf("subtract(%v, %v) = %v, want %v", c.want, c.have, got, c.out)
		}
		if n := pagecache.Overlap(c.want, c.have); n+sum(subtract(c.want, c.have)) != sum(c.want) {
			t.Errorf("%v less %v: %d in common and %d left do not make %d", c.want, c.have, n, sum(c.out), sum(c.want))
		}
	}
}

// The limiter holds all readers together to the rate: 5 chunks of 100 kB
// at 1 MB/s take at least 0.4 s (the first goes at once).
func TestLimiter(t *testing.T) {
	l := &limiter{rate: 1e6}
	start := time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); l.wait(100000) }()
	}
	wg.Wait()
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("5 x 100 kB at 1 MB/s in %v", d)
	}
}

func TestRotational(t *testing.T) {
	sys := t.TempDir()
	mk := func(p, v string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if v != "" {
			os.WriteFile(p, []byte(v+"\n"), 0o644)
		}
	}
	mk(sys+"/devices/sda/queue/rotational", "1")
	mk(sys+"/devices/sda/sda1/x", "")
	mk(sys+"/devices/nvme0n1/queue/rotational", "0")
	mk(sys+"/dev/block/x", "")
	for link, target := range map[string]string{"8:0": "../../devices/sda", "8:1": "../../devices/sda/sda1", "259:0": "../../devices/nvme0n1"} {
		if err := os.Symlink(target, sys+"/dev/block/"+link); err != nil {
			t.Fatal(err)
		}
	}
	for dev, want := range map[uint64]bool{unix.Mkdev(8, 0): true, unix.Mkdev(8, 1): true, unix.Mkdev(259, 0): false, unix.Mkdev(9, 9): false} {
		if got := rotationalIn(sys, dev); got != want {
			t.Errorf("%d:%d: rotational %v, want %v", unix.Major(dev), unix.Minor(dev), got, want)
		}
	}
}
