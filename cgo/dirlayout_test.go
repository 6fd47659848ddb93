//go:build cgo

package cgo

import (
	"encoding/binary"
	"testing"

	"github.com/filecache/filecache/bpf"
)

// TestDirLayout holds the dentry walk's Go decoder (bpf/dir.go) to
// filecache.h: values written at the C offsets must come back out of the Go
// decoders, and the constants must agree.
func TestDirLayout(t *testing.T) {
	c := cDirLayout()
	for name, goValue := range map[string]uintptr{
		"FC_DIR_SLOTS": bpf.DirSlots, "FC_DIR_STEPS": bpf.DirSteps, "FC_DIR_CAP": bpf.DirCap,
		"FC_DIR_ARGS": bpf.DirArgs, "FC_DIR_ARG_FD": bpf.DirArgFD, "FC_DIR_ARG_SLOT": bpf.DirArgSlot,
		"FC_DIR_ARG_RESUME": bpf.DirArgResume, "FC_DIR_ARG_LEGACY": bpf.DirArgLegacy,
		"FC_DIR_DONE": uintptr(bpf.DirDone), "FC_DIR_MORE": uintptr(bpf.DirMore), "FC_DIR_LOST": uintptr(bpf.DirLost),
		"FC_DIR_NO_FILE": uintptr(bpf.DirNoFile), "FC_DIR_LAYOUT": uintptr(bpf.DirLayout), "FC_DIR_OVERLAY": uintptr(bpf.DirOverlay), "FC_DIR_UNSET": uintptr(bpf.DirUnset),
		"sizeof(fc_dir)": bpf.DirStateSize, "sizeof(fc_child)": bpf.ChildSize,
	} {
		if c[name] != goValue {
			t.Errorf("%s: C says %d, Go says %d", name, c[name], goValue)
		}
	}

	le := binary.LittleEndian
	s := make([]byte, c["sizeof(fc_dir)"])
	le.PutUint64(s[c["fc_dir.magic"]:], 0xef53)
	le.PutUint64(s[c["fc_dir.steps"]:], 1<<40)
	le.PutUint32(s[c["fc_dir.dev"]:], 7<<20|3)
	le.PutUint32(s[c["fc_dir.status"]:], uint32(bpf.DirLost))
	le.PutUint32(s[c["fc_dir.count"]:], 12)
	le.PutUint32(s[c["fc_dir.runs"]:], 5)
	d, err := bpf.DecodeDir(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := (bpf.Dir{Magic: 0xef53, Steps: 1 << 40, Dev: 7<<20 | 3, Status: bpf.DirLost, Count: 12, Runs: 5}); d != want {
		t.Errorf("DecodeDir = %+v, want %+v", d, want)
	}

	b := make([]byte, c["sizeof(fc_child)"])
	le.PutUint64(b[c["fc_child.ino"]:], 11)
	le.PutUint64(b[c["fc_child.size"]:], 12)
	le.PutUint64(b[c["fc_child.nrpages"]:], 13)
	le.PutUint32(b[c["fc_child.nlink"]:], 14)
	le.PutUint32(b[c["fc_child.mode"]:], 0o100644)
	ch, err := bpf.DecodeChild(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := (bpf.Child{Ino: 11, Size: 12, NrPages: 13, Nlink: 14, Mode: 0o100644}); ch != want {
		t.Errorf("DecodeChild = %+v, want %+v", ch, want)
	}
}
