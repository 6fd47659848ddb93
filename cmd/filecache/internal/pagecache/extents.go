package pagecache

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// The extent engines answer which pages of a file are cached, not only how
// many: Answer.Extents lists them as runs (a snapshot records them). Each
// is an Engine, so a Chain falls back from one to the next file by file.

// Extent is a run of cached pages: page indexes [First, First+Pages).
type Extent struct{ First, Pages uint64 }

// End is the index past the run's last page.
func (e Extent) End() uint64 { return e.First + e.Pages }

// AddExtent appends e to runs in page order, joining it to the last run
// when they touch.
func AddExtent(runs []Extent, e Extent) []Extent {
	if e.Pages == 0 {
		return runs
	}
	if n := len(runs); n > 0 && runs[n-1].End() == e.First {
		runs[n-1].Pages += e.Pages
		return runs
	}
	return append(runs, e)
}

// ClipExtents cuts runs (in page order) to the pages below end.
func ClipExtents(runs []Extent, end uint64) []Extent {
	for i, e := range runs {
		if e.End() <= end {
			continue
		}
		if e.First >= end {
			return runs[:i]
		}
		runs[i].Pages = end - e.First
		return runs[:i+1]
	}
	return runs
}

// Overlap is how many pages of runs a and b (each in page order, not
// overlapping within itself) have in common.
func Overlap(a, b []Extent) uint64 {
	var n uint64
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo, hi := max(a[i].First, b[j].First), min(a[i].End(), b[j].End())
		if hi > lo {
			n += hi - lo
		}
		if a[i].End() < b[j].End() {
			i++
		} else {
			j++
		}
	}
	return n
}

func sumExtents(runs []Extent) uint64 {
	var n uint64
	for _, e := range runs {
		n += e.Pages
	}
	return n
}

// RangeWalker is the loaded page walk in its ranges mode (cgo.Pages).
type RangeWalker interface {
	Method() string
	WalkRanges(fds []int32) ([]bpf.PageFile, []bpf.PageRec, error)
	Close()
}

// ExtentWalk is the bpf engine's way to list cached pages: the page walk
// of each file's page-cache tree, returning runs of consecutive pages.
// Exact, linear in the pages cached (not in the file's size), and needing
// no read permission on the file.
type ExtentWalk struct {
	Walker RangeWalker
	// Walks is how many times a file whose cache changed during its walk
	// is walked in all before it gets an error (0: 4).
	Walks int
}

func (w ExtentWalk) Name() string   { return "bpf" }
func (w ExtentWalk) Method() string { return w.Walker.Method() }
func (w ExtentWalk) BatchSize() int { return bpf.Batch }
func (w ExtentWalk) Close()         { w.Walker.Close() }

func (w ExtentWalk) Query(files []Handle) ([]Answer, error) {
	return walkSettled(files, w.Walks, w.Walker.WalkRanges, extentAnswer)
}

// extentAnswer turns one walked file into its runs of cached pages, and
// says whether the walk saw a settled cache (see walkAnswer).
func extentAnswer(h Handle, f bpf.PageFile, recs []bpf.PageRec) (Answer, bool) {
	r := bpf.Result{NrPages: f.Walked, Size: f.Size, Ino: f.Ino, Magic: f.Magic, Dev: f.Dev, Mode: f.Mode,
		Status: f.Status, Nlink: f.Nlink, RealIno: f.RealIno, RealDev: f.RealDev, Layer: f.Layer}
	switch f.Status {
	case bpf.StatusPageRace:
		return Answer{}, false
	case bpf.StatusOK:
	default:
		return answer(h, r), true
	}
	if f.Walked != f.NrPages || f.NrPages != f.NrPagesEnd {
		return Answer{}, false
	}
	a := answer(h, r)
	if a.Err != nil {
		return a, true
	}
	runs := []Extent{} // an empty file's: none, not unknown
	for _, rec := range recs {
		if n := len(runs); n > 0 && rec.First < runs[n-1].End() {
			return Answer{Err: fmt.Errorf("bpf: the page walk's runs are out of order (page %d after %d)", rec.First, runs[n-1].End())}, true
		}
		runs = AddExtent(runs, Extent{First: rec.First, Pages: rec.Pages})
	}
	if sum := sumExtents(runs); sum != f.Walked {
		return Answer{Err: fmt.Errorf("bpf: the page walk's runs hold %d pages, its count %d", sum, f.Walked)}, true
	}
	a.Extents = runs
	return a, true
}

// extentTries is how often a syscall engine lists a file's pages before
// giving up on a cache that changes under it.
const extentTries = 4

// CachestatExtents lists a file's cached pages with cachestat(2) (Linux >=
// 6.5): a count over the whole file, halved where it is neither all nor
// none, down to single pages: O(runs x log(pages)) calls. Files the caller
// owns or can write (or with CAP_FOWNER); pages up to the end of the file.
type CachestatExtents struct{}

func (CachestatExtents) Name() string   { return "cachestat" }
func (CachestatExtents) Method() string { return "cachestat(2)" }
func (CachestatExtents) BatchSize() int { return 512 }
func (CachestatExtents) Close()         {}

func (CachestatExtents) Query(files []Handle) ([]Answer, error) {
	out := eachReadable(files, func(fd int, _ *unix.Stat_t) Answer {
		if onOverlay(fd) {
			return Answer{Err: ErrOverlay}
		}
		return cachestatExtents(fd)
	})
	for i, a := range out {
		if errors.Is(a.Err, unix.ENOSYS) {
			return nil, fmt.Errorf("cachestat(2) needs Linux >= 6.5: %w", ErrUnavailable)
		}
		if errors.Is(a.Err, unix.EPERM) {
			out[i].Err = fmt.Errorf("%w (the kernel answers only the file's owner or a writer)", a.Err)
		}
	}
	return out, nil
}

// cachestatExtents lists fd's cached pages until a count of the whole
// file taken before the listing and one taken after agree with it.
func cachestatExtents(fd int) Answer {
	page := int64(unix.Getpagesize())
	var last string
	for try := 0; try < extentTries; try++ {
		size, err := sizeOf(fd)
		if err != nil {
			return Answer{Err: err}
		}
		bytes := (size + page - 1) / page * page
		before, err := CachestatRange(fd, 0, bytes)
		if err != nil || bytes == 0 {
			return Answer{Size: size, Extents: []Extent{}, Err: err}
		}
		runs, err := cachestatRuns(fd, uint64(bytes/page))
		if err != nil {
			return Answer{Err: err}
		}
		after, err := CachestatRange(fd, 0, bytes)
		if err != nil {
			return Answer{Err: err}
		}
		size2, err := sizeOf(fd)
		if err != nil {
			return Answer{Err: err}
		}
		n := sumExtents(runs)
		if size2 == size && before.Cache == n && after.Cache == n {
			return Answer{Size: size, Pages: n, Extents: runs}
		}
		last = fmt.Sprintf("%d pages cached before, %d found, %d after; size %d then %d", before.Cache, n, after.Cache, size, size2)
	}
	return Answer{Err: fmt.Errorf("its page cache changed during each of %d listings (last: %s): no figure", extentTries, last)}
}

// cachestatRuns lists the cached pages among the first pages of fd.
func cachestatRuns(fd int, pages uint64) ([]Extent, error) {
	page := uint64(unix.Getpagesize())
	runs := []Extent{}
	var walk func(first, n uint64) error
	walk = func(first, n uint64) error {
		cs, err := CachestatRange(fd, int64(first*page), int64(n*page))
		if err != nil {
			return err
		}
		switch {
		case cs.Cache == 0:
		case cs.Cache >= n || n == 1:
			runs = AddExtent(runs, Extent{First: first, Pages: n})
		default:
			half := n / 2
			if err := walk(first, half); err != nil {
				return err
			}
			return walk(first+half, n-half)
		}
		return nil
	}
	if pages == 0 {
		return runs, nil
	}
	return runs, walk(0, pages)
}

// MincoreExtents lists a file's cached pages with mincore(2): any kernel,
// a readable fd, O(file size); not for files mincore lies about (see
// MincoreEngine).
type MincoreExtents struct {
	// Trusted: as MincoreEngine's (nil: the kernel's rule).
	Trusted func(fd int, st *unix.Stat_t) bool
}

func (MincoreExtents) Name() string   { return "mincore" }
func (MincoreExtents) Method() string { return "mmap+mincore(2)" }
func (MincoreExtents) BatchSize() int { return 512 }
func (MincoreExtents) Close()         {}

func (m MincoreExtents) Query(files []Handle) ([]Answer, error) {
	trusted := m.Trusted
	if trusted == nil {
		trusted = mincoreTrusted
	}
	return eachReadable(files, func(fd int, st *unix.Stat_t) Answer {
		if !trusted(fd, st) {
			return Answer{Err: ErrMincoreUntrusted}
		}
		size, err := sizeOf(fd)
		if err != nil {
			return Answer{Err: err}
		}
		page := int64(unix.Getpagesize())
		runs, err := mincoreRuns(fd, uint64((size+page-1)/page))
		if err != nil {
			return Answer{Err: err}
		}
		return Answer{Size: size, Pages: sumExtents(runs), Extents: runs}
	}), nil
}

// mincoreRuns lists the resident pages among the first pages of fd, a
// window of the file mapped at a time.
func mincoreRuns(fd int, pages uint64) ([]Extent, error) {
	page := uint64(unix.Getpagesize())
	const window = 1 << 30 / 4096 * 4096 // bytes mapped at a time
	winPages := uint64(window) / page
	vec := make([]byte, min(pages, winPages))
	runs := []Extent{}
	for first := uint64(0); first < pages; first += winPages {
		n := min(pages-first, winPages)
		mem, err := unix.Mmap(fd, int64(first*page), int(n*page), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("mmap: %w", err)
		}
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0])))
		unix.Munmap(mem)
		if errno != 0 {
			return nil, fmt.Errorf("mincore: %w", errno)
		}
		for i, v := range vec[:n] {
			if v&1 != 0 {
				runs = AddExtent(runs, Extent{First: first + uint64(i), Pages: 1})
			}
		}
	}
	return runs, nil
}
