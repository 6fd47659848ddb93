package bpf

import (
	"errors"
	"fmt"
)

// The page walk's layout (filecache.h, walk_pages); cgo/pageslayout_test.go
// checks it against the header.
const (
	PageCap   = 4096 // FC_PG_CAP: records one run returns at most
	PageSteps = 2048 // FC_PG_STEPS: steps of one walk_pages_bounded run

	PageParamsSize = Batch*4 + 24                                     // sizeof(struct fc_pg_params)
	PageFileSize   = 7*8 + 6*4                                        // sizeof(struct fc_pg_file)
	PageRecSize    = 40                                               // sizeof(struct fc_pg_rec)
	pageFilesOff   = 7*8 + 6*4                                        // offsetof(struct fc_pg_state, files)
	PageStateSize  = pageFilesOff + Batch*PageFileSize + 8 + 64*8 + 8 // sizeof(struct fc_pg_state): files, a node's slots, cur_first
)

// PageRanges is FC_PG_RANGES (fc_pg_params.flags): each record is a run of
// consecutive cached pages of a file (a snapshot), not of one cgroup.
const PageRanges = 1

// More statuses of a walked file (fc_pg_file.status).
const (
	StatusPageRace Status = 4 // FC_PG_RACE: the tree changed under the walk
	StatusNoMemcg  Status = 5 // FC_PG_NO_MEMCG
	StatusLayout   Status = 7 // FC_PG_LAYOUT
)

// PageWalkStatus says how a run of the walk ended (fc_pg_state.status).
type PageWalkStatus uint32

const (
	PageDone  PageWalkStatus = 0          // FC_PG_DONE: every file of the batch walked
	PageMore  PageWalkStatus = 1          // FC_PG_MORE: run again
	PageUnset PageWalkStatus = 0xffffffff // FC_PG_UNSET: the program never ran
)

// ErrNoOverlayBTF: the kernel describes no overlayfs types, so where an
// overlayfs file's pages are is unknown.
var ErrNoOverlayBTF = errors.New("on overlayfs, and this kernel has no BTF of overlayfs (the overlay module's needs CONFIG_DEBUG_INFO_BTF_MODULES, Linux >= 5.11), so the bpf engine cannot tell which layer holds its pages")

// PageParams is struct fc_pg_params.
type PageParams struct {
	FDs      []int32 // at most Batch
	Cap      uint32  // records a run may write, at most PageCap
	MaxSteps uint64  // steps of a walk_pages run
	Flags    uint32  // PageRanges or 0
}

// Encode lays out struct fc_pg_params.
func (p PageParams) Encode() ([]byte, error) {
	if len(p.FDs) > Batch {
		return nil, fmt.Errorf("encode page walk params: %d fds, at most %d fit one batch", len(p.FDs), Batch)
	}
	if p.Cap < 2 || p.Cap > PageCap {
		return nil, fmt.Errorf("encode page walk params: cap %d, want 2..%d", p.Cap, PageCap)
	}
	b := make([]byte, PageParamsSize)
	for i, fd := range p.FDs {
		le.PutUint32(b[i*4:], uint32(fd))
	}
	le.PutUint32(b[Batch*4:], uint32(len(p.FDs)))
	le.PutUint32(b[Batch*4+4:], p.Cap)
	le.PutUint64(b[Batch*4+8:], p.MaxSteps)
	le.PutUint32(b[Batch*4+16:], p.Flags)
	return b, nil
}

// PageFile is struct fc_pg_file: one file of a batch.
type PageFile struct {
	NrPages    uint64 // nrpages when its walk began
	NrPagesEnd uint64 // and when it ended
	Walked     uint64 // pages the walk found
	Size       uint64
	Ino        uint64
	Magic      uint64
	RealIno    uint64
	Dev        uint32 // kernel encoding
	Mode       uint32
	Nlink      uint32
	Status     Status
	RealDev    uint32
	Layer      Layer
}

// PageState is what user space reads of struct fc_pg_state after a run.
type PageState struct {
	Next   uint64 // the cursor's page index
	Steps  uint64
	Slot   uint32 // the cursor's file
	Nrec   uint32 // records this run wrote
	Status PageWalkStatus
	Files  [Batch]PageFile
}

// NewPageState is a zeroed struct fc_pg_state whose status is FC_PG_UNSET,
// written before a batch's first run.
func NewPageState() []byte {
	b := make([]byte, PageStateSize)
	le.PutUint32(b[7*8+4*4:], uint32(PageUnset))
	return b
}

// DecodePageState reads struct fc_pg_state.
func DecodePageState(b []byte) (PageState, error) {
	var s PageState
	if len(b) != PageStateSize {
		return s, fmt.Errorf("decode page walk state: %d bytes, want %d", len(b), PageStateSize)
	}
	s.Next = le.Uint64(b[0:])
	s.Steps = le.Uint64(b[8:])
	s.Slot = le.Uint32(b[56:])
	s.Nrec = le.Uint32(b[68:])
	s.Status = PageWalkStatus(le.Uint32(b[72:]))
	for i := range s.Files {
		f := b[pageFilesOff+i*PageFileSize:]
		s.Files[i] = PageFile{
			NrPages:    le.Uint64(f[0:]),
			NrPagesEnd: le.Uint64(f[8:]),
			Walked:     le.Uint64(f[16:]),
			Size:       le.Uint64(f[24:]),
			Ino:        le.Uint64(f[32:]),
			Magic:      le.Uint64(f[40:]),
			RealIno:    le.Uint64(f[48:]),
			Dev:        le.Uint32(f[56:]),
			Mode:       le.Uint32(f[60:]),
			Nlink:      le.Uint32(f[64:]),
			Status:     Status(le.Uint32(f[68:])),
			RealDev:    le.Uint32(f[72:]),
			Layer:      Layer(le.Uint32(f[76:])),
		}
	}
	return s, nil
}

// PageRec is struct fc_pg_rec: pages of one file charged to one memory
// cgroup; with PageRanges, a run of consecutive cached pages.
type PageRec struct {
	Memcg uint64 // the kernel's struct mem_cgroup (0: charged to none)
	ID    uint64 // its cgroup id: the inode number of its directory
	Pages uint64
	First uint64 // the page index of the run's first page
	Slot  uint32 // the file: fds[Slot]
}

// DecodePageRec reads one struct fc_pg_rec.
func DecodePageRec(b []byte) (PageRec, error) {
	if len(b) != PageRecSize {
		return PageRec{}, fmt.Errorf("decode page walk record: %d bytes, want %d", len(b), PageRecSize)
	}
	return PageRec{Memcg: le.Uint64(b[0:]), ID: le.Uint64(b[8:]), Pages: le.Uint64(b[16:]), First: le.Uint64(b[24:]), Slot: le.Uint32(b[32:])}, nil
}
