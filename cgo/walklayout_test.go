//go:build cgo

package cgo

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/filecache/filecache/bpf"
)

// TestWalkLayout holds the walk's Go decoder (bpf/walk.go) to filecache.h:
// values written at the C offsets must come back out of the Go decoders.
func TestWalkLayout(t *testing.T) {
	c := cLayout()
	le := binary.LittleEndian
	for name, goValue := range map[string]uintptr{
		"FC_WALK_CAP": bpf.WalkCap, "FC_DEPTH": bpf.Depth, "FC_PATH": bpf.PathMax,
		"FC_TOPK": bpf.TopK, "FC_WALK_MAPPING": uintptr(bpf.WalkMapping), "FC_WALK_BDEV": uintptr(bpf.WalkBdev),
		"FC_WALK_DONE": uintptr(bpf.WalkDone), "FC_WALK_LOST": uintptr(bpf.WalkLost),
		"FC_WALK_STEPS": uintptr(bpf.WalkSteps), "FC_WALK_NO_FILE": uintptr(bpf.WalkNoFile),
		"FC_WALK_UNSET": uintptr(bpf.WalkUnset), "FC_IN_NO_DENTRY": uintptr(bpf.InNoDentry),
		"FC_IN_UNHASHED": uintptr(bpf.InUnhashed), "FC_IN_TRUNCATED": uintptr(bpf.InTruncated),
		"FC_IN_DISCONNECTED": uintptr(bpf.InDisconnected), "FC_IN_FAULT": uintptr(bpf.InFault),
		"sizeof(fc_walk_params)": bpf.WalkParamsSize, "sizeof(fc_walk)": bpf.WalkSize,
		"sizeof(fc_inode)": bpf.InodeSize,
	} {
		if c[name] != goValue {
			t.Errorf("%s: C says %d, Go says %d", name, c[name], goValue)
		}
	}

	p, err := bpf.WalkParams{MinPages: 11, Skip: 22, MaxSteps: 33, Want: 44, Cap: 55, FD: 66, Flags: 1}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]uint64{"min_pages": 11, "skip": 22, "max_steps": 33} {
		if n := le.Uint64(p[c["fc_walk_params."+field]:]); n != want {
			t.Errorf("walk params %s = %d, want %d", field, n, want)
		}
	}
	for field, want := range map[string]uint32{"want": 44, "cap": 55, "fd": 66, "flags": 1} {
		if n := le.Uint32(p[c["fc_walk_params."+field]:]); n != want {
			t.Errorf("walk params %s = %d, want %d", field, n, want)
		}
	}

	b := make([]byte, bpf.WalkSize)
	for i, f := range []string{"inodes", "pages", "cached", "matched", "emitted", "magic", "dropped"} {
		le.PutUint64(b[c["fc_walk."+f]:], uint64(100+i))
	}
	le.PutUint64(b[c["fc_walk.heap"]:], 7)
	le.PutUint32(b[c["fc_walk.dev"]:], 5)
	le.PutUint32(b[c["fc_walk.status"]:], 2)
	le.PutUint32(b[c["fc_walk.heapn"]:], 3)
	w, err := bpf.DecodeWalk(b)
	if err != nil {
		t.Fatal(err)
	}
	got := []uint64{w.Inodes, w.Pages, w.Cached, w.Matched, w.Emitted, w.Magic, w.Dropped, w.HeapMin, uint64(w.Dev), uint64(w.Status), uint64(w.HeapN)}
	if want := []uint64{100, 101, 102, 103, 104, 105, 106, 7, 5, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("decoded walk %v, want %v", got, want)
	}
	if s := bpf.UnsetWalk(); le.Uint32(s[c["fc_walk.status"]:]) != uint32(bpf.WalkUnset) {
		t.Error("UnsetWalk does not say FC_WALK_UNSET where C reads the status")
	}

	r := make([]byte, bpf.InodeSize)
	le.PutUint64(r[c["fc_inode.nrpages"]:], 1)
	le.PutUint64(r[c["fc_inode.size"]:], 2)
	le.PutUint64(r[c["fc_inode.ino"]:], 3)
	le.PutUint32(r[c["fc_inode.mode"]:], 4)
	le.PutUint32(r[c["fc_inode.nlink"]:], 5)
	le.PutUint32(r[c["fc_inode.rdev"]:], 6)
	le.PutUint32(r[c["fc_inode.flags"]:], 2)
	binary.LittleEndian.PutUint16(r[c["fc_inode.depth"]:], 2)
	binary.LittleEndian.PutUint16(r[c["fc_inode.pathlen"]:], 5)
	r[c["fc_inode.lens"]], r[c["fc_inode.lens"]+1] = 1, 4
	copy(r[c["fc_inode.path"]:], "bhome") // leaf "b" first, then its parent "home"
	in, err := bpf.DecodeInode(r)
	if err != nil {
		t.Fatal(err)
	}
	if in.NrPages != 1 || in.Size != 2 || in.Ino != 3 || in.Mode != 4 || in.Nlink != 5 || in.Rdev != 6 || in.Flags != 2 ||
		len(in.Names) != 2 || string(in.Names[0]) != "home" || string(in.Names[1]) != "b" {
		t.Errorf("decoded inode %+v (names %q)", in, in.Names)
	}
}
