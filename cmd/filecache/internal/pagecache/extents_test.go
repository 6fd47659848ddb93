package pagecache

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

func TestExtentHelpers(t *testing.T) {
	var runs []Extent
	for _, e := range []Extent{{0, 2}, {2, 3}, {5, 0}, {7, 1}, {8, 2}, {20, 4}} {
		runs = AddExtent(runs, e)
	}
	if want := []Extent{{0, 5}, {7, 3}, {20, 4}}; !slices.Equal(runs, want) {
		t.Errorf("AddExtent: %v, want %v", runs, want)
	}
	for _, c := range []struct {
		end  uint64
		want []Extent
	}{
		{100, []Extent{{0, 5}, {7, 3}, {20, 4}}},
		{24, []Extent{{0, 5}, {7, 3}, {20, 4}}},
		{22, []Extent{{0, 5}, {7, 3}, {20, 2}}},
		{20, []Extent{{0, 5}, {7, 3}}},
		{8, []Extent{{0, 5}, {7, 1}}},
		{0, []Extent{}},
	} {
		if got := ClipExtents(slices.Clone(runs), c.end); !slices.Equal(got, c.want) {
			t.Errorf("ClipExtents(%d) = %v, want %v", c.end, got, c.want)
		}
	}
	for _, c := range []struct {
		a, b []Extent
		want uint64
	}{
		{[]Extent{{0, 10}}, []Extent{{5, 10}}, 5},
		{[]Extent{{0, 5}, {7, 3}, {20, 4}}, []Extent{{0, 100}}, 12},
		{[]Extent{{0, 5}, {7, 3}, {20, 4}}, []Extent{{4, 4}, {9, 12}}, 1 + 1 + 1 + 1},
		{[]Extent{{0, 5}}, nil, 0},
		{[]Extent{{0, 5}}, []Extent{{5, 5}}, 0},
	} {
		if got, back := Overlap(c.a, c.b), Overlap(c.b, c.a); got != c.want || back != c.want {
			t.Errorf("Overlap(%v, %v) = %d and %d, want %d", c.a, c.b, got, back, c.want)
		}
	}
}

// scatteredShmem is a memfd of pages pages holding data only in the pages
// of want (the others are holes, never cached): shmem keeps exactly the
// pages written, so the state stays what the test set. It returns an
// O_PATH fd, as the scanner hands the engines, and the memfd.
func scatteredShmem(t *testing.T, pages int64, want []Extent) (opath, rd int) {
	t.Helper()
	page := int64(unix.Getpagesize())
	opath, fd := shmemFile(t, pages, 0)
	for _, e := range want {
		buf := make([]byte, int64(e.Pages)*page)
		for i := range buf {
			buf[i] = 1
		}
		if n, err := unix.Pwrite(fd, buf, int64(e.First)*page); err != nil || n != len(buf) {
			t.Fatalf("pwrite: %d, %v", n, err)
		}
	}
	return opath, fd
}

// kernelRuns is which pages of fd the kernel says are cached, page by
// page: cachestat(2) over each page, or mincore(2) where cachestat is
// missing. The reference the extent engines are held to.
func kernelRuns(t *testing.T, fd int, pages int64) []Extent {
	t.Helper()
	page := int64(unix.Getpagesize())
	runs := []Extent{}
	if _, ok := rawCachestat(t, fd, 0, page); ok {
		for i := range pages {
			if cs, _ := rawCachestat(t, fd, i*page, page); cs.Cache == 1 {
				runs = AddExtent(runs, Extent{uint64(i), 1})
			}
		}
		return runs
	}
	mem, err := unix.Mmap(fd, 0, int(pages*page), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for i, v := range vec {
		if v&1 != 0 {
			runs = AddExtent(runs, Extent{uint64(i), 1})
		}
	}
	return runs
}

// The syscall extent engines list exactly the pages the kernel has, on a
// file of scattered runs, single pages, a run reaching the last page and
// one crossing a halving boundary; an empty file has none.
func TestSyscallExtents(t *testing.T) {
	const pages = 1000
	want := []Extent{{0, 3}, {10, 1}, {12, 1}, {100, 300}, {511, 2}, {998, 2}}
	opath, fd := scatteredShmem(t, pages, want)
	if got := kernelRuns(t, fd, pages); !slices.Equal(got, want) {
		t.Fatalf("the kernel holds %v, the test wrote %v", got, want)
	}
	emptyPath, _ := shmemFile(t, 0, 0)
	for _, eng := range []Engine{CachestatExtents{}, MincoreExtents{}} {
		ans, err := eng.Query([]Handle{{Fd: opath, Mode: unix.S_IFREG}, {Fd: emptyPath, Mode: unix.S_IFREG}})
		if errors.Is(err, ErrUnavailable) {
			t.Logf("%s: %v", eng.Name(), err)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", eng.Name(), err)
		}
		a := ans[0]
		if a.Err != nil || !slices.Equal(a.Extents, want) || a.Pages != 309 || a.Size != pages*int64(unix.Getpagesize()) {
			t.Errorf("%s: %+v, want %v (309 pages)", eng.Name(), a, want)
		}
		if e := ans[1]; e.Err != nil || e.Extents == nil || len(e.Extents) != 0 || e.Pages != 0 {
			t.Errorf("%s, an empty file: %+v, want no run (and not nil)", eng.Name(), e)
		}
	}
}

// fakeRanges answers WalkRanges with walks[i] (the last one again when out).
type fakeRanges struct {
	walks []func(fds []int32) ([]bpf.PageFile, []bpf.PageRec)
	calls int
}

func (f *fakeRanges) Method() string { return "fake" }
func (f *fakeRanges) Close()         {}
func (f *fakeRanges) WalkRanges(fds []int32) ([]bpf.PageFile, []bpf.PageRec, error) {
	f.calls++
	pf, recs := f.walks[min(f.calls, len(f.walks))-1](fds)
	return pf, recs, nil
}

// The page walk's runs become a file's extents: a run split where a test
// run ended is joined again; a walk that saw the cache change is done
// again; runs out of order or not adding up to the count are refused.
func TestExtentWalk(t *testing.T) {
	h := []Handle{{Fd: 3, Mode: reg}, {Fd: 4, Mode: reg}, {Fd: 5, Mode: reg}}
	racing := bpf.PageFile{NrPages: 9, NrPagesEnd: 10, Walked: 10, Size: 40960, Ino: 1, Mode: reg, Nlink: 1}
	w := &fakeRanges{walks: []func([]int32) ([]bpf.PageFile, []bpf.PageRec){
		func(fds []int32) ([]bpf.PageFile, []bpf.PageRec) {
			return []bpf.PageFile{settled(10), racing, settled(4)}, []bpf.PageRec{
				{First: 0, Pages: 2, Slot: 0}, {First: 2, Pages: 3, Slot: 0}, {First: 8, Pages: 5, Slot: 0},
				{First: 5, Pages: 10, Slot: 1},
				{First: 5, Pages: 2, Slot: 2}, {First: 0, Pages: 2, Slot: 2},
			}
		},
		func(fds []int32) ([]bpf.PageFile, []bpf.PageRec) {
			if len(fds) != 1 || fds[0] != 4 {
				t.Errorf("the second walk has fds %v, want only the file that changed", fds)
			}
			return []bpf.PageFile{settled(10)}, []bpf.PageRec{{First: 5, Pages: 10, Slot: 0}}
		},
	}}
	got, err := ExtentWalk{Walker: w}.Query(h)
	if err != nil {
		t.Fatal(err)
	}
	if a := got[0]; a.Err != nil || !slices.Equal(a.Extents, []Extent{{0, 5}, {8, 5}}) || a.Pages != 10 {
		t.Errorf("file 0: %+v, want runs 0+5, 8+5", a)
	}
	if a := got[1]; a.Err != nil || !slices.Equal(a.Extents, []Extent{{5, 10}}) || w.calls != 2 {
		t.Errorf("file 1 (changed during its first walk): %+v after %d walks", a, w.calls)
	}
	if a := got[2]; a.Err == nil || !strings.Contains(a.Err.Error(), "out of order") {
		t.Errorf("file 2 (runs out of order): %+v", a)
	}

	short := &fakeRanges{walks: []func([]int32) ([]bpf.PageFile, []bpf.PageRec){func([]int32) ([]bpf.PageFile, []bpf.PageRec) {
		return []bpf.PageFile{settled(10)}, []bpf.PageRec{{First: 0, Pages: 9}}
	}}}
	if got, _ := (ExtentWalk{Walker: short}).Query(h[:1]); got[0].Err == nil || !strings.Contains(got[0].Err.Error(), "hold 9 pages") {
		t.Errorf("runs short of the count: %+v", got[0])
	}
	always := &fakeRanges{walks: []func([]int32) ([]bpf.PageFile, []bpf.PageRec){func([]int32) ([]bpf.PageFile, []bpf.PageRec) {
		return []bpf.PageFile{racing}, []bpf.PageRec{{First: 0, Pages: 10}}
	}}}
	if got, _ := (ExtentWalk{Walker: always, Walks: 3}).Query(h[:1]); got[0].Err == nil || always.calls != 3 {
		t.Errorf("a cache changing during every walk: %+v after %d walks, want an error after 3", got[0], always.calls)
	}
}
