package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

// Names turns cgroup ids into paths within one hierarchy. It walks the
// hierarchy's directories once when first asked, and once more when asked
// about an id the first walk did not see (a cgroup made since). An id
// still unknown then belongs to a cgroup that was removed: the kernel keeps
// a removed memory cgroup while pages are charged to it.
type Names struct {
	H     Hierarchy
	ids   map[uint64]string
	walks int
	err   error
}

// maxWalks is how many times one Names walks the hierarchy.
const maxWalks = 2

// Path returns the cgroup path of id, as /proc/PID/cgroup writes it ("/" for
// the root), and false if no directory of the hierarchy has that inode
// number.
func (n *Names) Path(id uint64) (string, bool) {
	if p, ok := n.ids[id]; ok {
		return p, true
	}
	n.walk()
	p, ok := n.ids[id]
	return p, ok
}

// Err is why the last walk of the hierarchy failed, if it did.
func (n *Names) Err() error { return n.err }

func (n *Names) walk() {
	if n.walks >= maxWalks {
		return
	}
	n.walks++
	ids, err := Walk(n.H)
	if ids == nil {
		ids = map[uint64]string{}
	}
	if n.ids == nil {
		n.ids = ids
	} else {
		for id, p := range ids {
			n.ids[id] = p
		}
	}
	n.err = err
}

// Walk maps the inode number of every directory of h's mount to its cgroup
// path. Directories that vanish during the walk (a cgroup removed) are
// skipped; other errors are returned with what was found.
func Walk(h Hierarchy) (map[uint64]string, error) {
	ids := map[uint64]string{}
	var first error
	err := filepath.WalkDir(h.Mount, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && first == nil {
				first = err
			}
			if d != nil && d.IsDir() && p != h.Mount {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			if !errors.Is(err, fs.ErrNotExist) && first == nil {
				first = err
			}
			return nil
		}
		rel, err := filepath.Rel(h.Mount, p)
		if err != nil {
			return err
		}
		ids[st.Ino] = CgroupPath(h, rel)
		return nil
	})
	if err == nil {
		err = first
	}
	if err != nil {
		return ids, fmt.Errorf("walk %s: %w", h.Mount, err)
	}
	return ids, nil
}

// CgroupPath is the cgroup path of the directory rel below h's mount point.
func CgroupPath(h Hierarchy, rel string) string {
	root := h.Root
	if root == "" {
		root = "/"
	}
	return path.Join(root, filepath.ToSlash(rel))
}

// Dir is the directory of cgroup p (a path as /proc/PID/cgroup writes it)
// under h's mount, or false when p is not below the mount's root.
func Dir(h Hierarchy, p string) (string, bool) {
	root := path.Clean("/" + h.Root)
	p = path.Clean("/" + p)
	rel := ""
	switch {
	case p == root:
	case root == "/":
		rel = p[1:]
	case len(p) > len(root) && p[:len(root)] == root && p[len(root)] == '/':
		rel = p[len(root)+1:]
	default:
		return "", false
	}
	return filepath.Join(h.Mount, filepath.FromSlash(rel)), true
}

// Find finds the mounted memory hierarchy of this machine (mount namespace).
func Find() (Hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Hierarchy{}, err
	}
	defer f.Close()
	return FindMemory(f, Controllers)
}
