package bpf

import "fmt"

// The cgroup walk's layout (filecache.h, walk_cg); cgo/cglayout_test.go
// checks it against the header.
const (
	CgPairs  = 16                 // FC_CG_PAIRS: cgroups a returned inode's split names
	CgChunk  = 256                // FC_CG_CHUNK: steps of one call of cg_chunk
	CgChunks = 64                 // FC_CG_CHUNKS: calls of cg_chunk one bounded run makes
	CgSteps  = CgChunk * CgChunks // FC_CG_STEPS: steps of one walk_cg_bounded run
	CgLoop   = 1 << 23            // FC_CG_LOOP: steps of one walk_cg run at most
	CgSums   = 8192               // FC_CG_SUMS: cgroups the sums map holds

	CgSumSize   = 16                              // sizeof(struct fc_cg_sum)
	CgPairSize  = 16                              // sizeof(struct fc_cg_pair)
	CgSplitSize = 24 + CgPairs*CgPairSize         // sizeof(struct fc_cg_split)
	cgSplitOff  = 12*8 + 4*4                      // offsetof(struct fc_cg_state, split)
	CgStateSize = cgSplitOff + CgSplitSize + 64*8 // sizeof(struct fc_cg_state)

	// MaxCgSteps bounds a whole cgroup walk: inodes plus cached pages of
	// one filesystem (2^36 steps: 256 TiB of 4 KiB pages).
	MaxCgSteps = 1 << 36
)

// Flags of the cgroup walk (fc_walk_params.flags).
const (
	WalkFilter uint32 = 4 // FC_WALK_FILTER: count only pages of the cgroups cg_sums marks allowed
	WalkPairs  uint32 = 8 // FC_WALK_PAIRS: rank an inode by its largest share of one cgroup
)

// More statuses of a cgroup walk.
const (
	WalkNoMemcg WalkStatus = 5 // FC_WALK_NO_MEMCG
	WalkLayout  WalkStatus = 6 // FC_WALK_LAYOUT
)

// CgSplitChanged says the inode's page-cache tree changed under the walk
// (FC_CGS_CHANGED): its split is what the walk saw.
const CgSplitChanged uint32 = 1

// CgPair is struct fc_cg_pair: one cgroup's pages of an inode.
type CgPair struct {
	ID    uint64 // the cgroup id (0: charged to none)
	Pages uint64
}

// CgSplit is struct fc_cg_split: a returned inode's pages by cgroup.
type CgSplit struct {
	Walked uint64   // pages found in its tree, of every cgroup
	Other  uint64   // pages of counted cgroups past Pairs
	Flags  uint32   // CgSplitChanged
	Pairs  []CgPair // the counted cgroups, in the order met
}

// DecodeCgSplit reads one struct fc_cg_split.
func DecodeCgSplit(b []byte) (CgSplit, error) {
	var s CgSplit
	if len(b) != CgSplitSize {
		return s, fmt.Errorf("decode cgroup split: %d bytes, want %d", len(b), CgSplitSize)
	}
	s.Walked, s.Other = le.Uint64(b[0:]), le.Uint64(b[8:])
	n, flags := le.Uint32(b[16:]), le.Uint32(b[20:])
	if n > CgPairs {
		return s, fmt.Errorf("decode cgroup split: %d pairs, at most %d", n, CgPairs)
	}
	s.Flags = flags
	s.Pairs = make([]CgPair, n)
	for i := range s.Pairs {
		p := b[24+i*CgPairSize:]
		s.Pairs[i] = CgPair{ID: le.Uint64(p[0:]), Pages: le.Uint64(p[8:])}
	}
	return s, nil
}

// CgState is what user space reads of struct fc_cg_state after a walk.
type CgState struct {
	Walked   uint64 // pages found in every inode's tree
	Changed  uint64 // inodes whose tree changed under the walk
	Unsummed uint64 // pages of cgroups the sums map had no room for
}

// DecodeCgState reads struct fc_cg_state.
func DecodeCgState(b []byte) (CgState, error) {
	if len(b) != CgStateSize {
		return CgState{}, fmt.Errorf("decode cgroup walk state: %d bytes, want %d", len(b), CgStateSize)
	}
	return CgState{Walked: le.Uint64(b[72:]), Changed: le.Uint64(b[80:]), Unsummed: le.Uint64(b[88:])}, nil
}

// CgWalk is what a cgroup walk gives beside a walk's sums.
type CgWalk struct {
	CgState
	Sums map[uint64]uint64 // pages by cgroup id, over the whole filesystem
}

// CgSum is struct fc_cg_sum: a cgroup's pages over a walk, and whether its
// pages count under WalkFilter.
type CgSum struct {
	Pages   uint64
	Allowed bool
}

// Encode lays out struct fc_cg_sum.
func (c CgSum) Encode() []byte {
	b := make([]byte, CgSumSize)
	le.PutUint64(b[0:], c.Pages)
	if c.Allowed {
		le.PutUint32(b[8:], 1)
	}
	return b
}

// DecodeCgSum reads struct fc_cg_sum.
func DecodeCgSum(b []byte) (CgSum, error) {
	if len(b) != CgSumSize {
		return CgSum{}, fmt.Errorf("decode cgroup sum: %d bytes, want %d", len(b), CgSumSize)
	}
	return CgSum{Pages: le.Uint64(b[0:]), Allowed: le.Uint32(b[8:]) != 0}, nil
}
