package bpf

import "fmt"

// The dentry walk's layout (filecache.h: walk_dir); cgo/dirlayout_test.go
// holds it to the header.
const (
	DirSlots     = 4            // FC_DIR_SLOTS: walks that may run at once
	DirSteps     = 16 * 32 * 32 // FC_DIR_STEPS: list steps of one run
	DirCap       = DirSteps     // FC_DIR_CAP: records of one slot
	DirArgs      = 4            // FC_DIR_ARGS: the test run's context, in u64s
	ChildSize    = 32           // sizeof(struct fc_child)
	DirStateSize = 88           // sizeof(struct fc_dir)

	// The context's arguments (FC_DIR_ARG_*).
	DirArgFD     = 0
	DirArgSlot   = 1
	DirArgResume = 2
	DirArgLegacy = 3
)

// DirStatus says how a run of the dentry walk ended (fc_dir.status).
type DirStatus uint32

const (
	DirDone    DirStatus = 0          // FC_DIR_DONE: every child visited
	DirMore    DirStatus = 1          // FC_DIR_MORE: run again with resume
	DirLost    DirStatus = 2          // FC_DIR_LOST: the list changed under the walk
	DirNoFile  DirStatus = 3          // FC_DIR_NO_FILE
	DirLayout  DirStatus = 4          // FC_DIR_LAYOUT: this kernel's dentry flags are unknown
	DirOverlay DirStatus = 5          // FC_DIR_OVERLAY: overlayfs, whose inodes' own mappings stay empty
	DirUnset   DirStatus = 0xffffffff // FC_DIR_UNSET
)

func (s DirStatus) String() string {
	switch s {
	case DirDone:
		return "complete"
	case DirMore:
		return "the run took its steps, the walk goes on"
	case DirLost:
		return "the directory's list of children changed under the walk"
	case DirNoFile:
		return "the directory's fd was not open"
	case DirLayout:
		return "this kernel repacked the dentry flags (Linux >= 6.15) and its BTF does not say which bit marks a mount point"
	case DirOverlay:
		return "on overlayfs the files' own mappings stay empty (their pages are cached under the upper or lower file)"
	case DirUnset:
		return "the program did not run"
	}
	return fmt.Sprintf("unknown dentry walk status %d", uint32(s))
}

// Dir is the part of struct fc_dir user space reads after a run.
type Dir struct {
	Magic  uint64 // the directory's filesystem magic
	Steps  uint64 // list steps of every run of this walk
	Dev    uint32 // its superblock's dev_t, kernel encoding
	Status DirStatus
	Count  uint32 // records this run wrote
	Runs   uint32 // runs of this walk so far
}

// DecodeDir reads struct fc_dir.
func DecodeDir(b []byte) (Dir, error) {
	if len(b) < DirStateSize {
		return Dir{}, fmt.Errorf("decode dentry walk state: %d bytes, want %d", len(b), DirStateSize)
	}
	d := Dir{
		Magic:  le.Uint64(b[0:]),
		Steps:  le.Uint64(b[8:]),
		Dev:    le.Uint32(b[16:]),
		Status: DirStatus(le.Uint32(b[20:])),
		Count:  le.Uint32(b[24:]),
		Runs:   le.Uint32(b[28:]),
	}
	if d.Count > DirCap {
		return d, fmt.Errorf("decode dentry walk state: %d records, a slot holds %d", d.Count, DirCap)
	}
	return d, nil
}

// Child is struct fc_child: a regular file among a directory's children.
type Child struct {
	Ino     uint64
	Size    uint64 // bytes (i_size of the mapping's host)
	NrPages uint64 // pages in the page cache
	Nlink   uint32
	Mode    uint32
}

// DecodeChild reads struct fc_child.
func DecodeChild(b []byte) (Child, error) {
	if len(b) < ChildSize {
		return Child{}, fmt.Errorf("decode child: %d bytes, want %d", len(b), ChildSize)
	}
	return Child{
		Ino:     le.Uint64(b[0:]),
		Size:    le.Uint64(b[8:]),
		NrPages: le.Uint64(b[16:]),
		Nlink:   le.Uint32(b[24:]),
		Mode:    le.Uint32(b[28:]),
	}, nil
}
