package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
)

// Selected is a cgroup named on the command line (--cgroup).
type Selected struct {
	Path string // as /proc/PID/cgroup writes it
	Dir  string // its directory under h's mount
}

// Select finds the cgroup arg names in hierarchy h: its directory under
// the mount (/sys/fs/cgroup/memory/docker/ID), or its path as
// /proc/PID/cgroup writes it (/docker/ID).
func Select(h Hierarchy, arg string) (Selected, error) {
	mount := filepath.Clean(h.Mount)
	clean := filepath.Clean(arg)
	var sel Selected
	if rel, err := filepath.Rel(mount, clean); err == nil && filepath.IsAbs(arg) && rel != ".." && !strings.HasPrefix(rel, "../") {
		sel = Selected{Path: CgroupPath(h, rel), Dir: clean}
	} else {
		dir, ok := Dir(h, arg)
		if !ok {
			return sel, fmt.Errorf("cgroup %s: not below the root %s of the memory hierarchy mounted on %s", arg, h.Root, h.Mount)
		}
		sel = Selected{Path: CgroupPath(h, mustRel(mount, dir)), Dir: dir}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(sel.Dir, &st); err != nil {
		return sel, fmt.Errorf("cgroup %s: %s: %w", arg, sel.Dir, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return sel, fmt.Errorf("cgroup %s: %s is not a cgroup's directory", arg, sel.Dir)
	}
	return sel, nil
}

func mustRel(base, p string) string {
	rel, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return rel
}

// Subtree lists the ids of the cgroup at dir and of every cgroup below it
// (their directories' inode numbers). Cgroups removed during the walk are
// passed over.
func Subtree(dir string) ([]uint64, error) {
	var ids []uint64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		ids = append(ids, st.Ino)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cgroups below %s: %w", dir, err)
	}
	return ids, nil
}
