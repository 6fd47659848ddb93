package bpf

import (
	"encoding/binary"
	"fmt"
)

// le is the byte order of the records: BPF maps hold the host's, and both
// architectures filecache builds for (amd64, arm64) are little-endian.
var le = binary.LittleEndian

// These mirror filecache.h; cgo/layout_test.go checks them against the header.
const (
	Batch = 64 // FC_BATCH: fds answered by one run of query_loop
	Step  = 64 // FC_STEP: fds answered by one run of query_bounded

	ResultSize  = 64                 // sizeof(struct fc_result)
	ParamsSize  = Batch*4 + 16       // sizeof(struct fc_params)
	ResultsSize = Batch * ResultSize // sizeof(struct fc_results)
)

// Status says whether a result slot holds a figure (fc_result.status).
type Status uint32

const (
	StatusOK        Status = 0          // FC_OK
	StatusNoFile    Status = 1          // FC_NO_FILE
	StatusNoMapping Status = 2          // FC_NO_MAPPING
	StatusFault     Status = 3          // FC_FAULT
	StatusNoOverlay Status = 6          // FC_NO_OVL
	StatusUnset     Status = 0xffffffff // FC_UNSET
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNoFile:
		return "fd not open in the caller's fd table"
	case StatusNoMapping:
		return "file has no page cache mapping"
	case StatusFault:
		return "kernel read failed (the file changed during the query)"
	case StatusNoOverlay:
		return ErrNoOverlayBTF.Error()
	case StatusPageRace:
		return "its page cache changed shape during the walk"
	case StatusNoMemcg:
		return "this kernel keeps a page's memory cgroup where filecache does not look"
	case StatusLayout:
		return "this kernel's page-cache tree nodes are not the 64-slot ones filecache reads"
	case StatusUnset:
		return "not answered by the BPF program"
	}
	return fmt.Sprintf("unknown status %d", uint32(s))
}

// Result is one struct fc_result.
type Result struct {
	NrPages uint64 // pages of the file in the page cache
	Size    uint64 // i_size of the mapping's host inode, bytes
	Ino     uint64 // inode number the fd resolved to
	Magic   uint64 // filesystem magic (statfs f_type)
	Dev     uint32 // superblock dev_t, kernel encoding (major<<20 | minor)
	Mode    uint32 // i_mode
	Status  Status
	Nlink   uint32 // i_nlink
	// An overlayfs file: the inode its pages are cached under (NrPages and
	// Size are that inode's), and which layer it is in.
	RealIno uint64
	RealDev uint32 // kernel encoding
	Layer   Layer
}

// Layer says where an overlayfs file's pages are (fc_result.layer).
type Layer uint32

const (
	LayerNone  Layer = 0 // FC_LAYER_NONE: not an overlayfs file
	LayerUpper Layer = 1 // FC_LAYER_UPPER: the upper file, once copied up
	LayerLower Layer = 2 // FC_LAYER_LOWER: a lower file
)

func (l Layer) String() string {
	switch l {
	case LayerNone:
		return ""
	case LayerUpper:
		return "upper"
	case LayerLower:
		return "lower"
	}
	return fmt.Sprintf("layer %d", uint32(l))
}

// Params is struct fc_params.
type Params struct {
	FDs     []int32 // at most Batch
	Start   uint32  // first slot the bounded programs answer
	TID     uint32  // query_attached answers only this thread...
	Trigger uint32  // ...making this syscall
}

// Encode lays out struct fc_params.
func (p Params) Encode() ([]byte, error) {
	if len(p.FDs) > Batch {
		return nil, fmt.Errorf("encode params: %d fds, at most %d fit one batch", len(p.FDs), Batch)
	}
	b := make([]byte, ParamsSize)
	for i, fd := range p.FDs {
		le.PutUint32(b[i*4:], uint32(fd))
	}
	le.PutUint32(b[Batch*4:], uint32(len(p.FDs)))
	le.PutUint32(b[Batch*4+4:], p.Start)
	le.PutUint32(b[Batch*4+8:], p.TID)
	le.PutUint32(b[Batch*4+12:], p.Trigger)
	return b, nil
}

// UnsetResults is a struct fc_results whose every slot says FC_UNSET, written
// before a run so a slot the program never reached cannot pass as a figure.
func UnsetResults() []byte {
	b := make([]byte, ResultsSize)
	for i := 0; i < Batch; i++ {
		le.PutUint32(b[i*ResultSize+40:], uint32(StatusUnset))
	}
	return b
}

// DecodeResults reads the first n slots of struct fc_results.
func DecodeResults(b []byte, n int) ([]Result, error) {
	if len(b) != ResultsSize {
		return nil, fmt.Errorf("decode results: %d bytes, want %d", len(b), ResultsSize)
	}
	if n < 0 || n > Batch {
		return nil, fmt.Errorf("decode results: %d slots, want 0..%d", n, Batch)
	}
	out := make([]Result, n)
	for i := range out {
		s := b[i*ResultSize : (i+1)*ResultSize]
		out[i] = Result{
			NrPages: le.Uint64(s[0:]),
			Size:    le.Uint64(s[8:]),
			Ino:     le.Uint64(s[16:]),
			Magic:   le.Uint64(s[24:]),
			Dev:     le.Uint32(s[32:]),
			Mode:    le.Uint32(s[36:]),
			Status:  Status(le.Uint32(s[40:])),
			Nlink:   le.Uint32(s[44:]),
			RealIno: le.Uint64(s[48:]),
			RealDev: le.Uint32(s[56:]),
			Layer:   Layer(le.Uint32(s[60:])),
		}
	}
	return out, nil
}
