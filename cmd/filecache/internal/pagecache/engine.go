package pagecache

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// Handle is one file the scanner opened, to be measured.
type Handle struct {
	Fd   int    // an fd of this process naming the file (O_PATH is enough for bpf)
	Mode uint32 // the file type the scanner expects (st_mode or d_type), checked by the engine
}

// Answer is an engine's figure for one Handle; Err says why there is none.
type Answer struct {
	Pages  uint64     // pages of the file in the page cache
	Size   int64      // bytes, read at the same moment as Pages
	Detail *Cachestat // dirty, writeback and eviction counts, where known
	// Ranged says a Range was measured: Pages, and Detail and Map where
	// set, cover only bytes [Off, Off+Len) of the file (the Range clipped
	// to it; Len 0 when it lies past the end), which span Span pages.
	// Otherwise they cover the whole file, and Off, Len and Span are 0.
	Ranged   bool
	Off, Len int64
	Span     uint64
	Map      string // --map: which parts are cached (Mapped)
	Engine   string // which engine answered (set by Chain)
	// The inode the engine read: its st_dev (user-space encoding), number
	// and link count, so the scanner needs no fstat of its own.
	Dev   uint64
	Ino   uint64
	Nlink uint32
	// Real is, for an overlayfs file the engine followed, the file whose
	// pages were counted (Pages and Size are that file's).
	Real *RealFile
	// Cgroups splits Pages by the memory cgroup each page is charged to
	// (the page walk, --by-cgroup), most pages first.
	Cgroups []CgroupPages
	// Extents lists the cached pages as runs, in page order (the extent
	// engines, for a snapshot); nil from the engines that only count.
	Extents []Extent
	// Mtime is the file's modification time, read with Extents (snapshot).
	Mtime time.Time
	Err   error
}

// RealFile is where an overlayfs file's pages are cached.
type RealFile struct {
	Layer string // "upper" or "lower"
	Dev   uint64 // st_dev of the real file (user-space encoding)
	Ino   uint64
	Path  string // its path, where found and checked to be that inode ("" otherwise)
}

// CgroupPages are a file's pages charged to one memory cgroup.
type CgroupPages struct {
	ID    uint64 // the cgroup id (its directory's inode number); 0: charged to no cgroup
	Pages uint64
}

// Engine answers how many pages of open files sit in the page cache.
type Engine interface {
	Name() string   // "bpf"
	Method() string // how, for example "bpf_loop"
	BatchSize() int // files one Query answers at most
	// Query answers files[i] in answers[i]; err fails the whole batch.
	Query(files []Handle) (answers []Answer, err error)
	Close()
}

// Runner is the loaded BPF program (cgo.Module), behind an interface so the
// checks below are tested without root.
type Runner interface {
	Method() string
	Query(fds []int32) ([]bpf.Result, error)
	Close()
}

// overlayfsMagic is OVERLAYFS_SUPER_MAGIC. An overlay inode's own mapping
// stays empty: the pages are cached under the upper or lower file.
const overlayfsMagic = 0x794c7630

// ErrOverlay is returned for files on overlayfs, whose own page count would
// be a plausible wrong zero, by engines that cannot follow them to the file
// holding their pages.
var ErrOverlay = errors.New("on overlayfs the file's own mapping stays empty (its pages are cached under the upper or lower file), so this engine would say a wrong 0; measure the file on its lower or upper directory")

// BPF is the engine that runs filecache's BPF program over fds.
type BPF struct{ Runner Runner }

func (b BPF) Name() string   { return "bpf" }
func (b BPF) Method() string { return b.Runner.Method() }
func (b BPF) BatchSize() int { return bpf.Batch }
func (b BPF) Close()         { b.Runner.Close() }

func (b BPF) Query(files []Handle) ([]Answer, error) {
	fds := make([]int32, len(files))
	for i, f := range files {
		fds[i] = int32(f.Fd)
	}
	res, err := b.Runner.Query(fds)
	if err != nil {
		return nil, err
	}
	if len(res) != len(files) {
		return nil, fmt.Errorf("bpf: %d results for %d files", len(res), len(files))
	}
	out := make([]Answer, len(files))
	for i, r := range res {
		out[i] = answer(files[i], r)
	}
	return out, nil
}

// answer turns one record into a figure, refusing any record that does not
// describe the file the scanner stat'ed.
func answer(h Handle, r bpf.Result) Answer {
	switch {
	case r.Status == bpf.StatusNoOverlay:
		return Answer{Err: bpf.ErrNoOverlayBTF}
	case r.Status != bpf.StatusOK:
		return Answer{Err: fmt.Errorf("bpf: %v", r.Status)}
	case r.Mode&unix.S_IFMT != h.Mode&unix.S_IFMT:
		return Answer{Err: fmt.Errorf("bpf: the fd names a different kind of file (mode %o, stat said %o)", r.Mode, h.Mode)}
	case r.Magic == overlayfsMagic && (r.Layer == bpf.LayerNone || r.RealIno == 0):
		// The program follows regular overlayfs files to their real file.
		return Answer{Err: ErrOverlay}
	case r.Magic != overlayfsMagic && r.Layer != bpf.LayerNone:
		return Answer{Err: fmt.Errorf("bpf: a layer (%v) for a file not on overlayfs", r.Layer)}
	case r.Size > 1<<63-1:
		return Answer{Err: fmt.Errorf("bpf: impossible size %d", r.Size)}
	}
	a := Answer{Pages: r.NrPages, Size: int64(r.Size), Ino: r.Ino, Nlink: r.Nlink,
		Dev: bpf.Dev(r.Dev)}
	if r.Layer != bpf.LayerNone {
		a.Real = &RealFile{Layer: r.Layer.String(), Dev: bpf.Dev(r.RealDev), Ino: r.RealIno}
	}
	return a
}

// Range is part of a file, in bytes: [Off, Off+Len), Len 0 to the end.
type Range struct{ Off, Len int64 }

// Clip is the part [off, end) of a file of size bytes that the range
// covers; empty (off == end == size) when it starts past the end.
func (r Range) Clip(size int64) (off, end int64) {
	off, end = min(r.Off, size), size
	if r.Len > 0 && r.Len < size-off {
		end = off + r.Len
	}
	return off, end
}

// clip is Clip as an offset and a length, with the pages they cover.
func (r Range) clip(size int64) (off, n int64, span uint64) {
	off, end := r.Clip(size)
	return off, end - off, units.PagesIn(off, end)
}
