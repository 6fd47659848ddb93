package bpf

import (
	"bytes"
	"strings"
	"testing"
)

// TestWalkStatusString: every walk status filecache.h defines has a text of
// its own (top prints it), any other value is said with its number.
func TestWalkStatusString(t *testing.T) {
	testStatusTexts(t, func(v uint32) string { return WalkStatus(v).String() }, "fc_walk.status", "fc_walk.status of walk_cg")
}

func TestEncodeWalkParamsLimits(t *testing.T) {
	if _, err := (WalkParams{Cap: WalkCap, MaxSteps: MaxWalkSteps}).Encode(); err != nil {
		t.Errorf("the limits themselves: %v", err)
	}
	if _, err := (WalkParams{Cap: WalkCap + 1}).Encode(); err == nil || !strings.Contains(err.Error(), "cap") {
		t.Errorf("cap past the records map: %v", err)
	}
	if _, err := (WalkParams{MaxSteps: MaxWalkSteps + 1}).Encode(); err == nil || !strings.Contains(err.Error(), "steps") {
		t.Errorf("steps past bpf_loop's limit: %v", err)
	}
}

func TestDecodeWalkSize(t *testing.T) {
	for _, n := range []int{0, WalkSize - 1, WalkSize + 1} {
		if _, err := DecodeWalk(make([]byte, n)); err == nil {
			t.Errorf("%d bytes accepted", n)
		}
	}
	// UnsetWalk's marker is where DecodeWalk reads the status (cgo's
	// layout test holds both to the C offsets).
	if w, err := DecodeWalk(UnsetWalk()); err != nil || w.Status != WalkUnset {
		t.Errorf("UnsetWalk decodes as %+v, %v", w, err)
	}
}

// inodeRecord lays out a struct fc_inode with the given component lengths
// (leaf first) and path bytes.
func inodeRecord(depth, pathlen int, lens []byte, path string) []byte {
	b := make([]byte, InodeSize)
	le.PutUint64(b[16:], 42) // ino, for the errors
	le.PutUint16(b[40:], uint16(depth))
	le.PutUint16(b[42:], uint16(pathlen))
	copy(b[48:], lens)
	copy(b[48+Depth:], path)
	return b
}

func TestDecodeInodePath(t *testing.T) {
	b := inodeRecord(3, 11, []byte{5, 2, 4}, "a.txtusrhome") // leaf "a.txt", then "us", then "rhom"
	in, err := DecodeInode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(bytes.Join(in.Names, []byte("/"))); got != "rhom/us/a.txt" {
		t.Errorf("names %q, want root first: rhom/us/a.txt", got)
	}
	// Walker.Walk reuses the records' memory: names must not alias it.
	for i := range b {
		b[i] = 'X'
	}
	if got := string(bytes.Join(in.Names, []byte("/"))); got != "rhom/us/a.txt" {
		t.Errorf("names changed with the record's memory: %q", got)
	}
	none, err := DecodeInode(inodeRecord(0, 0, nil, ""))
	if err != nil || len(none.Names) != 0 {
		t.Errorf("no dentry: %q, %v", none.Names, err)
	}
}

// Lengths that do not add up are an error, never a path of the wrong bytes.
func TestDecodeInodeRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", make([]byte, InodeSize-1), "bytes"},
		{"long", make([]byte, InodeSize+1), "bytes"},
		{"too deep", inodeRecord(Depth+1, 1, []byte{1}, "a"), "out of range"},
		{"path too long", inodeRecord(1, PathMax+1, []byte{1}, "a"), "out of range"},
		{"components overrun", inodeRecord(2, 3, []byte{2, 2}, "abc"), "overrun"},
		{"path left over", inodeRecord(1, 3, []byte{2}, "abc"), "cover 2 of 3"},
	} {
		if in, err := DecodeInode(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %q, error %v; want an error with %q", c.name, in.Names, err, c.want)
		}
	}
}
