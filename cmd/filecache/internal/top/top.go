package top

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// Walker runs one walk of the superblock behind an fd of this process.
type Walker interface {
	Walk(p bpf.WalkParams, each func(bpf.Inode) error) (bpf.Walk, error)
	// Method says how it walks: bpf.MethodLoop or bpf.MethodBounded.
	Method() string
}

// Options shape a scan.
type Options struct {
	N        int    // rows kept: the N inodes with the most pages (0: every inode with pages)
	MinPages uint64 // inodes with fewer pages are not listed (their pages still count in totals)
	Retries  int    // walks of a filesystem that lost a race, before its figures are called partial
	// RunSteps caps the list steps of one run of the bounded walk (0: its
	// most, bpf.RunSteps); tests make it small so walks resume often.
	RunSteps uint32
}

// Row is one inode in the page cache.
type Row struct {
	FS      int    // index into Snapshot.FS
	Path    string // see Filesystem.Path; "" when the inode has no name
	Pages   uint64
	Size    uint64
	Ino     uint64
	Mode    uint32 // i_mode: the file type and permissions
	Deleted bool   // unlinked, still held open or mapped
	NoName  bool   // no dentry: nothing to show but device and inode number
	// Truncated: the path was deeper or longer than the walk keeps; Path
	// then starts with ".../".
	Truncated bool
}

// FSTotal is what one filesystem holds.
type FSTotal struct {
	FS       Filesystem
	Pages    uint64 // every inode's pages, summed
	Inodes   uint64 // inodes visited
	Cached   uint64 // inodes with pages
	Walks    int    // walks it took (a lost race walks again)
	Runs     int    // BPF test runs those walks took (the bounded walk's resume)
	Partial  string // why the figures miss part of the filesystem ("": complete)
	Err      error  // the filesystem could not be walked at all
	Shmem    bool   // tmpfs-like: its pages are Shmem in /proc/meminfo
	Lost     int    // walks that lost a race and were done again
	Complete bool
}

// Anchor opens an fd on a filesystem for the walk: O_PATH on a mount
// point, or a memfd for the kernel's own shmem mount.
type Anchor func(fs Filesystem) (fd int, flags uint32, closeFn func(), err error)

// Scan walks every filesystem and keeps the top rows across all of them.
func Scan(w Walker, fss []Filesystem, open Anchor, o Options) ([]FSTotal, []Row) {
	if o.Retries <= 0 {
		o.Retries = 3
	}
	h := &rowHeap{}
	totals := make([]FSTotal, len(fss))
	for i, fs := range fss {
		t := &totals[i]
		t.FS = fs
		fd, flags, closeFn, err := open(fs)
		if err != nil {
			t.Err = err
			continue
		}
		scanFS(w, i, fs, fd, flags, o, t, h)
		closeFn()
	}
	return totals, h.sorted()
}

// scanFS walks one filesystem: once, with the heap of the walk admitting
// only inodes that can be among the N largest, which is enough unless more
// were admitted than one run returns (a list in growing order, or N past
// the heap); refine then walks again. A walk that lost a race is done
// again, up to o.Retries times, before the figures are called partial.
func scanFS(w Walker, idx int, fs Filesystem, fd int, flags uint32, o Options, t *FSTotal, h *rowHeap) {
	min := max(o.MinPages, 1)
	base := bpf.WalkParams{MaxSteps: bpf.MaxWalkSteps, FD: int32(fd), Flags: flags, RunSteps: o.RunSteps}
	for try := 0; ; try++ {
		sum, err := walkInto(w, idx, fs, base, min, want(o.N), h, o.N, t)
		if err == nil && sum.Status == bpf.WalkDone && sum.Dropped > 0 {
			// A refining walk that lost a race leaves rows missing: the
			// whole filesystem counts as lost.
			var lost bool
			if lost, err = refine(w, idx, fs, base, min, sum, o, h, t); lost {
				sum.Status = bpf.WalkLost
			}
		}
		if err != nil {
			h.drop(idx)
			t.Err = err
			return
		}
		// The anchor must have led to the filesystem asked for.
		dev := bpf.Dev(sum.Dev)
		if fs.Dev != 0 && sum.Status != bpf.WalkNoFile && dev != fs.Dev {
			h.drop(idx)
			t.Err = fmt.Errorf("walk: reached device %d:%d, not %d:%d", unix.Major(dev), unix.Minor(dev), unix.Major(fs.Dev), unix.Minor(fs.Dev))
			return
		}
		if t.FS.Dev == 0 {
			t.FS.Dev = dev
		}
		t.Pages, t.Inodes, t.Cached = sum.Pages, sum.Inodes, sum.Cached
		t.Shmem = sum.Magic == tmpfsMagic
		switch sum.Status {
		case bpf.WalkDone:
			t.Complete = true
			return
		case bpf.WalkLost:
			t.Lost++
			if try+1 < o.Retries {
				h.drop(idx)
				continue
			}
			t.Partial = fmt.Sprintf("%d walks in a row lost a race with inodes leaving the list%s; figures cover the part walked", t.Lost, refusal(sum))
		case bpf.WalkSteps:
			t.Partial = fmt.Sprintf("more than %d inodes: the walk stopped at its step limit", bpf.MaxWalkSteps)
		case bpf.WalkNoFile:
			h.drop(idx)
			t.Err = fmt.Errorf("walk: %v", sum.Status)
			if fs.Label == BdevLabel {
				// The filesystem reached had no block device after all.
				t.Err = ErrNoBlockDevice
			}
		default:
			h.drop(idx)
			t.Err = fmt.Errorf("walk: %v", sum.Status)
		}
		return
	}
}

// refusal says why the last walk's cursor was refused, for a bounded walk
// lost between two of its runs.
func refusal(sum bpf.Walk) string {
	if sum.Refused == bpf.CursorOK {
		return ""
	}
	return fmt.Sprintf(" (last: %v between two runs)", sum.Refused)
}

// want is the heap size the walk gets for n rows: none (return every
// inode) past what its heap holds.
func want(n int) uint32 {
	if n <= 0 || n > bpf.TopK {
		return 0
	}
	return uint32(n)
}

// tmpfsMagic is TMPFS_MAGIC (also the kernel's internal shmem mount).
const tmpfsMagic = 0x01021994

// walkInto runs one walk returning inodes of at least min pages and pushes
// what it returns onto h.
func walkInto(w Walker, idx int, fs Filesystem, base bpf.WalkParams, min uint64, want uint32, h *rowHeap, n int, t *FSTotal) (bpf.Walk, error) {
	p := base
	p.MinPages, p.Want, p.Cap = min, want, bpf.WalkCap
	return run(w, p, t, func(in bpf.Inode) { h.push(rowOf(idx, fs, in), n) })
}

func run(w Walker, p bpf.WalkParams, t *FSTotal, each func(bpf.Inode)) (bpf.Walk, error) {
	t.Walks++
	sum, err := w.Walk(p, func(in bpf.Inode) error { each(in); return nil })
	t.Runs += int(sum.Runs)
	if err != nil {
		return sum, fmt.Errorf("walk: %w", err)
	}
	return sum, nil
}

// refine finds the top rows when the walk admitted more inodes than a run
// returns. The heap's smallest is then the N-th largest page count: one
// walk returns every inode above it (fewer than N), another the ties at it
// that complete the top. With every inode asked for, or more than the heap
// holds, it pages through them instead.
func refine(w Walker, idx int, fs Filesystem, base bpf.WalkParams, min uint64, first bpf.Walk, o Options, h *rowHeap, t *FSTotal) (lost bool, err error) {
	if want(o.N) == 0 {
		for skip := first.Emitted; ; skip += bpf.WalkCap {
			p := base
			p.MinPages, p.Skip, p.Cap = min, skip, bpf.WalkCap
			sum, err := run(w, p, t, func(in bpf.Inode) { h.push(rowOf(idx, fs, in), o.N) })
			if err != nil || sum.Status != bpf.WalkDone {
				return err == nil, err
			}
			if sum.Dropped == 0 {
				return false, nil
			}
		}
	}
	nth := max(first.HeapMin, min)
	for _, m := range []uint64{nth + 1, nth} {
		sum, err := walkInto(w, idx, fs, base, m, 0, h, o.N, t)
		if err != nil || sum.Status != bpf.WalkDone {
			return err == nil, err
		}
	}
	return false, nil
}

// rowOf turns a record into a row.
func rowOf(idx int, fs Filesystem, in bpf.Inode) Row {
	r := Row{FS: idx, Pages: in.NrPages, Size: in.Size, Ino: in.Ino, Mode: in.Mode}
	r.NoName = in.Flags&bpf.InNoDentry != 0
	r.Truncated = in.Flags&(bpf.InTruncated|bpf.InFault) != 0
	disconnected := in.Flags&bpf.InDisconnected != 0
	// A memfd has no links and no hashed name, but was never in a tree to
	// be deleted from.
	r.Deleted = !disconnected && (in.Nlink == 0 || in.Flags&bpf.InUnhashed != 0)
	switch {
	case fs.Label == BdevLabel:
		// A block device's own cache: its inode has no name, its device does.
		r.NoName, r.Path = false, BlockDevice(in.Rdev)
	case r.NoName:
	case disconnected:
		// memfd:NAME, SYSV0000..: names of no directory tree.
		parts := make([]string, len(in.Names))
		for i, n := range in.Names {
			parts[i] = string(n)
		}
		r.Path = strings.Join(parts, "/")
	case r.Truncated:
		p, _ := fs.Path(in.Names)
		if i := strings.Index(p, "]"); strings.HasPrefix(p, "[") && i > 0 {
			p = p[i+1:]
		}
		r.Path = ".../" + strings.TrimPrefix(p, "/")
	default:
		r.Path, _ = fs.Path(in.Names)
	}
	return r
}

// Less orders rows: most pages first, then by path, so output is stable.
func less(a, b Row) bool {
	if a.Pages != b.Pages {
		return a.Pages > b.Pages
	}
	if a.Path != b.Path {
		return a.Path < b.Path
	}
	return a.Ino < b.Ino
}

// rowHeap keeps the n best rows (all when n is 0); its root is the worst
// kept, so a better row replaces it in O(log n). One row an inode.
type rowHeap struct {
	rows []Row
	seen map[[2]uint64]bool // fs index, inode
}

func (h *rowHeap) Len() int           { return len(h.rows) }
func (h *rowHeap) Less(i, j int) bool { return less(h.rows[j], h.rows[i]) }
func (h *rowHeap) Swap(i, j int)      { h.rows[i], h.rows[j] = h.rows[j], h.rows[i] }
func (h *rowHeap) Push(x any)         { h.rows = append(h.rows, x.(Row)) }
func (h *rowHeap) Pop() any {
	r := h.rows[len(h.rows)-1]
	h.rows = h.rows[:len(h.rows)-1]
	return r
}

func (h *rowHeap) push(r Row, n int) {
	if h.seen == nil {
		h.seen = map[[2]uint64]bool{}
	}
	key := [2]uint64{uint64(r.FS), r.Ino}
	if h.seen[key] {
		return
	}
	if n > 0 && len(h.rows) >= n {
		if !less(r, h.rows[0]) {
			return
		}
		old := heap.Pop(h).(Row)
		delete(h.seen, [2]uint64{uint64(old.FS), old.Ino})
	}
	h.seen[key] = true
	heap.Push(h, r)
}

// drop forgets the rows of a filesystem whose walk failed or is done
// again. Rows of others it pushed out are not brought back: they were
// beaten by rows that were real when seen.
func (h *rowHeap) drop(fs int) {
	kept := h.rows[:0]
	for _, r := range h.rows {
		if r.FS == fs {
			delete(h.seen, [2]uint64{uint64(r.FS), r.Ino})
			continue
		}
		kept = append(kept, r)
	}
	h.rows = kept
	heap.Init(h)
}

func (h *rowHeap) sorted() []Row {
	out := slices.Clone(h.rows)
	slices.SortFunc(out, func(a, b Row) int {
		if less(a, b) {
			return -1
		}
		if less(b, a) {
			return 1
		}
		return 0
	})
	return out
}
