//go:build cgo

package cgo

import (
	"encoding/binary"
	"testing"

	"github.com/filecache/filecache/bpf"
)

// TestBoundedLayout holds the bounded walk's Go side (bpf/bounded.go and
// the run_steps parameter) to filecache.h.
func TestBoundedLayout(t *testing.T) {
	c := cBoundedLayout()
	le := binary.LittleEndian
	for name, goValue := range map[string]uintptr{
		"FC_CHUNK": bpf.Chunk, "FC_CHUNKS": bpf.Chunks, "FC_GROUPS": bpf.Groups, "FC_RUN_STEPS": bpf.RunSteps,
		"FC_WALK_MORE": uintptr(bpf.WalkMore), "FC_CUR_OK": uintptr(bpf.CursorOK),
		"FC_CUR_FAULT": uintptr(bpf.CursorFault), "FC_CUR_UNLINKED": uintptr(bpf.CursorUnlinked),
		"FC_CUR_SB": uintptr(bpf.CursorSB), "FC_CUR_INODE": uintptr(bpf.CursorInode),
		"FC_CUR_NEIGHBOURS": uintptr(bpf.CursorNeighbours), "FC_CUR_SUPER": uintptr(bpf.CursorSuper),
		"sizeof(fc_cursor)": bpf.CursorSize,
	} {
		if c[name] != goValue {
			t.Errorf("%s: C says %d, Go says %d", name, c[name], goValue)
		}
	}

	p, err := bpf.WalkParams{RunSteps: 77, Flags: 2}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if n := le.Uint32(p[c["fc_walk_params.run_steps"]:]); n != 77 {
		t.Errorf("walk params run_steps = %d, want 77", n)
	}

	b := make([]byte, bpf.CursorSize)
	for i, f := range []string{"node", "prev", "next"} {
		o := c["fc_cursor."+f]
		le.PutUint64(b[o+c["fc_link.addr"]:], uint64(10*i+1))
		le.PutUint64(b[o+c["fc_link.ino"]:], uint64(10*i+2))
		le.PutUint32(b[o+c["fc_link.gen"]:], uint32(10*i+3))
	}
	le.PutUint64(b[c["fc_cursor.sb"]:], 100)
	le.PutUint64(b[c["fc_cursor.steps"]:], 101)
	le.PutUint32(b[c["fc_cursor.runs"]:], 102)
	le.PutUint32(b[c["fc_cursor.refused"]:], 5)
	le.PutUint32(b[c["fc_cursor.left"]:], 104)
	got, err := bpf.DecodeCursor(b)
	if err != nil {
		t.Fatal(err)
	}
	want := bpf.Cursor{Node: bpf.Link{Addr: 1, Ino: 2, Gen: 3}, Prev: bpf.Link{Addr: 11, Ino: 12, Gen: 13},
		Next: bpf.Link{Addr: 21, Ino: 22, Gen: 23}, SB: 100, Steps: 101, Runs: 102, Refused: bpf.CursorNeighbours, Left: 104}
	if got != want {
		t.Errorf("decoded cursor %+v\nwant %+v", got, want)
	}
}
