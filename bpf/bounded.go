package bpf

import "fmt"

// The bounded walk's layout (filecache.h, walk_sb_bounded); cgo's layout
// test checks it.
const (
	Chunk      = 16                      // FC_CHUNK: list steps of one call of walk_chunk
	Chunks     = 32                      // FC_CHUNKS: calls of walk_chunk one call of walk_chunks makes
	Groups     = 32                      // FC_GROUPS: calls of walk_chunks one run makes
	RunSteps   = Chunk * Chunks * Groups // FC_RUN_STEPS: list steps one run takes at most
	CursorSize = 3*24 + 2*8 + 4*4
)

// CursorRefusal says why a run of the bounded walk did not resume from its
// cursor (fc_cursor.refused): the walk then ends lost.
type CursorRefusal uint32

const (
	CursorOK         CursorRefusal = 0 // FC_CUR_OK
	CursorFault      CursorRefusal = 1 // FC_CUR_FAULT
	CursorUnlinked   CursorRefusal = 2 // FC_CUR_UNLINKED
	CursorSB         CursorRefusal = 3 // FC_CUR_SB
	CursorInode      CursorRefusal = 4 // FC_CUR_INODE
	CursorNeighbours CursorRefusal = 5 // FC_CUR_NEIGHBOURS
	CursorSuper      CursorRefusal = 6 // FC_CUR_SUPER
)

func (r CursorRefusal) String() string {
	switch r {
	case CursorOK:
		return "resumed"
	case CursorFault:
		return "the cursor or a neighbour could not be read"
	case CursorUnlinked:
		return "the cursor's inode left the list"
	case CursorSB:
		return "the cursor is no longer an inode of this filesystem"
	case CursorInode:
		return "the cursor is another inode now"
	case CursorNeighbours:
		return "the cursor's neighbours changed"
	case CursorSuper:
		return "the anchor led to another filesystem"
	}
	return fmt.Sprintf("unknown cursor refusal %d", uint32(r))
}

// Link is struct fc_link: one place on an inode list.
type Link struct {
	Addr, Ino uint64
	Gen       uint32
}

// Cursor is struct fc_cursor: where a bounded walk stands between runs.
type Cursor struct {
	Node, Prev, Next Link
	SB, Steps        uint64
	Runs             uint32
	Refused          CursorRefusal
	Left             uint32
}

// DecodeCursor reads struct fc_cursor.
func DecodeCursor(b []byte) (Cursor, error) {
	var c Cursor
	if len(b) != CursorSize {
		return c, fmt.Errorf("decode cursor: %d bytes, want %d", len(b), CursorSize)
	}
	for i, l := range []*Link{&c.Node, &c.Prev, &c.Next} {
		o := i * 24
		l.Addr, l.Ino, l.Gen = le.Uint64(b[o:]), le.Uint64(b[o+8:]), le.Uint32(b[o+16:])
	}
	c.SB, c.Steps = le.Uint64(b[72:]), le.Uint64(b[80:])
	c.Runs, c.Refused, c.Left = le.Uint32(b[88:]), CursorRefusal(le.Uint32(b[92:])), le.Uint32(b[96:])
	return c, nil
}
