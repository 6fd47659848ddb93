package bpf

import "fmt"

// The superblock walk's layout (filecache.h); cgo/layout_test.go checks it.
const (
	WalkCap = 4096 // FC_WALK_CAP: records one walk run returns at most
	Depth   = 32   // FC_DEPTH: path components a record holds
	PathMax = 944  // FC_PATH: bytes of components a record holds
	TopK    = 512  // FC_TOPK: the largest Want

	WalkParamsSize = 48                      // sizeof(struct fc_walk_params)
	WalkSize       = 7*8 + TopK*8 + 4*4      // sizeof(struct fc_walk)
	InodeSize      = 48 + Depth + PathMax    // sizeof(struct fc_inode)
	MaxWalkSteps   = 1 << 23                 // bpf_loop's limit on iterations
	walkHeapOffset = 56                      // offsetof(struct fc_walk, heap)
	walkDevOffset  = walkHeapOffset + TopK*8 // offsetof(struct fc_walk, dev)
)

// WalkFlag is fc_walk_params.flags.
const (
	WalkMapping uint32 = 1 // FC_WALK_MAPPING: the superblock of the fd's f_mapping->host
	WalkBdev    uint32 = 2 // FC_WALK_BDEV: the block devices' superblock, through the fd's filesystem's device
)

// WalkStatus says how a walk ended (fc_walk.status).
type WalkStatus uint32

const (
	WalkDone   WalkStatus = 0          // FC_WALK_DONE
	WalkLost   WalkStatus = 1          // FC_WALK_LOST
	WalkSteps  WalkStatus = 2          // FC_WALK_STEPS
	WalkNoFile WalkStatus = 3          // FC_WALK_NO_FILE
	WalkMore   WalkStatus = 4          // FC_WALK_MORE: the bounded walk's run took its steps
	WalkUnset  WalkStatus = 0xffffffff // FC_WALK_UNSET
)

func (s WalkStatus) String() string {
	switch s {
	case WalkDone:
		return "complete"
	case WalkLost:
		return "an inode left the list during the walk"
	case WalkSteps:
		return "the step limit was reached"
	case WalkNoFile:
		return "the anchor fd was not open"
	case WalkMore:
		return "the run took its steps, the walk goes on"
	case WalkUnset:
		return "the program did not run"
	case WalkNoMemcg:
		return "a page's memory cgroup is kept where the program does not look (a kernel layout it does not know)"
	case WalkLayout:
		return "the page-cache tree's nodes are not of 64 slots (a kernel layout the program does not know)"
	}
	return fmt.Sprintf("unknown walk status %d", uint32(s))
}

// Inode flags (fc_inode.flags).
const (
	InNoDentry     uint32 = 1  // FC_IN_NO_DENTRY
	InUnhashed     uint32 = 2  // FC_IN_UNHASHED
	InTruncated    uint32 = 4  // FC_IN_TRUNCATED
	InDisconnected uint32 = 8  // FC_IN_DISCONNECTED
	InFault        uint32 = 16 // FC_IN_FAULT
)

// WalkParams is struct fc_walk_params.
type WalkParams struct {
	MinPages uint64 // inodes with fewer pages are not returned
	Skip     uint64 // returnable inodes passed over first
	MaxSteps uint64 // list steps at most (<= MaxWalkSteps)
	Want     uint32 // 1..TopK: only inodes that can be among the Want largest
	Cap      uint32 // records returned at most (<= WalkCap)
	FD       int32  // an fd of the caller on the filesystem
	Flags    uint32
	RunSteps uint32 // the bounded walk: list steps one run takes at most (0: RunSteps)
}

// Encode lays out struct fc_walk_params.
func (p WalkParams) Encode() ([]byte, error) {
	if p.Cap > WalkCap {
		return nil, fmt.Errorf("encode walk params: cap %d, at most %d", p.Cap, WalkCap)
	}
	limit := uint64(MaxWalkSteps)
	if p.Flags&(WalkFilter|WalkPairs) != 0 {
		limit = MaxCgSteps // the cgroup walk: its runs resume, its steps include pages
	}
	if p.MaxSteps > limit {
		return nil, fmt.Errorf("encode walk params: %d steps, at most %d", p.MaxSteps, limit)
	}
	b := make([]byte, WalkParamsSize)
	le.PutUint64(b[0:], p.MinPages)
	le.PutUint64(b[8:], p.Skip)
	le.PutUint64(b[16:], p.MaxSteps)
	le.PutUint32(b[24:], p.Want)
	le.PutUint32(b[28:], p.Cap)
	le.PutUint32(b[32:], uint32(p.FD))
	le.PutUint32(b[36:], p.Flags)
	le.PutUint32(b[40:], p.RunSteps)
	return b, nil
}

// Walk is struct fc_walk: one walk's sums.
type Walk struct {
	Inodes, Pages, Cached, Matched, Emitted uint64
	Magic                                   uint64
	Dropped                                 uint64 // matched but not returned: the cap was reached
	Dev                                     uint32 // kernel encoding
	Status                                  WalkStatus
	HeapN                                   uint32 // page counts the want heap holds
	// HeapMin is the smallest page count the heap holds: with HeapN equal
	// to want, the want-th largest of the filesystem.
	HeapMin uint64
	// Runs is how many test runs the walk took (1 for bpf_loop's), and
	// Refused, for a bounded walk that ended lost, why its last run did not
	// resume (a CursorRefusal; CursorOK when it was lost under a run).
	Runs    uint32
	Refused CursorRefusal
}

// UnsetWalk is a struct fc_walk that says FC_WALK_UNSET, written before a
// run so that a run that never got going cannot pass as an empty walk.
func UnsetWalk() []byte {
	b := make([]byte, WalkSize)
	le.PutUint32(b[walkDevOffset+4:], uint32(WalkUnset))
	return b
}

// DecodeWalk reads struct fc_walk.
func DecodeWalk(b []byte) (Walk, error) {
	var w Walk
	if len(b) != WalkSize {
		return w, fmt.Errorf("decode walk: %d bytes, want %d", len(b), WalkSize)
	}
	w.Inodes, w.Pages, w.Cached = le.Uint64(b[0:]), le.Uint64(b[8:]), le.Uint64(b[16:])
	w.Matched, w.Emitted, w.Magic = le.Uint64(b[24:]), le.Uint64(b[32:]), le.Uint64(b[40:])
	w.Dropped = le.Uint64(b[48:])
	w.HeapMin = le.Uint64(b[walkHeapOffset:])
	w.Dev = le.Uint32(b[walkDevOffset:])
	w.Status = WalkStatus(le.Uint32(b[walkDevOffset+4:]))
	w.HeapN = le.Uint32(b[walkDevOffset+8:])
	return w, nil
}

// Inode is struct fc_inode with its path put together.
type Inode struct {
	NrPages, Size, Ino uint64
	Mode, Nlink, Rdev  uint32
	Flags              uint32
	// Names are the path components from the filesystem's root (or the
	// last dentry reached) down to the inode; empty without a dentry.
	Names [][]byte
}

// DecodeInode reads one struct fc_inode. Lengths that do not add up are an
// error, never a path made of the wrong bytes.
func DecodeInode(b []byte) (Inode, error) {
	var in Inode
	if len(b) != InodeSize {
		return in, fmt.Errorf("decode inode: %d bytes, want %d", len(b), InodeSize)
	}
	in.NrPages, in.Size, in.Ino = le.Uint64(b[0:]), le.Uint64(b[8:]), le.Uint64(b[16:])
	in.Mode, in.Nlink, in.Rdev, in.Flags = le.Uint32(b[24:]), le.Uint32(b[28:]), le.Uint32(b[32:]), le.Uint32(b[36:])
	depth, pathlen := int(le.Uint16(b[40:])), int(le.Uint16(b[42:]))
	if depth > Depth || pathlen > PathMax {
		return in, fmt.Errorf("decode inode %d: depth %d, path %d bytes: out of range", in.Ino, depth, pathlen)
	}
	lens, path := b[48:48+Depth], b[48+Depth:]
	names := make([][]byte, depth)
	off := 0
	for i := 0; i < depth; i++ {
		n := int(lens[i])
		if off+n > pathlen {
			return in, fmt.Errorf("decode inode %d: components overrun the path (%d > %d bytes)", in.Ino, off+n, pathlen)
		}
		// Leaf first in the record; root first here.
		names[depth-1-i] = append([]byte(nil), path[off:off+n]...)
		off += n
	}
	if off != pathlen {
		return in, fmt.Errorf("decode inode %d: components cover %d of %d path bytes", in.Ino, off, pathlen)
	}
	in.Names = names
	return in, nil
}
