package pagecache

import (
	"fmt"

	"github.com/filecache/filecache/bpf"
)

// DirReader answers a directory's regular files from the dentry cache: the
// bpf engine's dentry walk (walk_dir), one test run a directory, no open
// per file. ReadDir may be called from several goroutines at once, each
// with its own slot (0 to bpf.DirSlots-1).
type DirReader interface {
	// ReadDir calls each with every regular file among the cached children
	// of the directory open at fd that the walk vouches for, and says how
	// the walk ended (bpf.DirDone: every child visited). The children it
	// did not give must be measured another way; an error means none was
	// given.
	ReadDir(fd, slot int, each func(bpf.Child)) (bpf.Dir, error)
	// Name and Method say what answered, as an Engine's do.
	Name() string
	Method() string
	Close()
}

// DirWalker is the loaded dentry walk (cgo.DirWalker), behind an interface
// so the rest is tested without root.
type DirWalker interface {
	ReadDir(fd, slot int, each func(bpf.Child)) (bpf.Dir, error)
	Close()
}

// DirWalk is the DirReader of the bpf engine. Method is the query
// program's, which answers the files the walk leaves out.
type DirWalk struct {
	Walker DirWalker
	Query  string // the bpf engine's method
}

func (d DirWalk) Name() string   { return "bpf" }
func (d DirWalk) Method() string { return d.Query }
func (d DirWalk) Close()         { d.Walker.Close() }

// ReadDir turns a walk that could not start into an error.
func (d DirWalk) ReadDir(fd, slot int, each func(bpf.Child)) (bpf.Dir, error) {
	info, err := d.Walker.ReadDir(fd, slot, each)
	if err == nil {
		switch info.Status {
		case bpf.DirDone, bpf.DirMore, bpf.DirLost:
		default:
			err = fmt.Errorf("dentry walk: %v", info.Status)
		}
	}
	return info, err
}
