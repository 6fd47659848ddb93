// Package cgroups names memory cgroups: it finds where the memory
// controller's hierarchy is mounted (cgroup v1's memory hierarchy, or the
// cgroup v2 one when the memory controller is there) and turns a cgroup id,
// which is the inode number of the cgroup's directory in that hierarchy,
// into the cgroup's path as /proc/PID/cgroup writes it.
package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/filecache/filecache/cmd/filecache/internal/mountinfo"
)

// Hierarchy is a mounted hierarchy holding the memory controller.
type Hierarchy struct {
	Version int    // 1 or 2
	Mount   string // its mount point
	// Root is the cgroup the mount shows at its mount point (mountinfo's
	// root field): "/" unless a sub-tree was bind-mounted, or mounted in
	// another cgroup namespace.
	Root string
}

// ErrNoMemory says no mounted hierarchy holds the memory controller.
var ErrNoMemory = errors.New("no mounted cgroup hierarchy holds the memory controller (mount cgroup2, or cgroup v1 with -o memory)")

// FindMemory reads mountinfo (/proc/self/mountinfo) and returns the mount of
// the memory controller's hierarchy: a cgroup v1 mount with the memory
// option, else a cgroup2 mount whose root lists memory in cgroup.controllers
// (controllers reads that file; a controller bound to v1 is not listed in
// v2). Mounts showing the hierarchy's root are preferred.
func FindMemory(r io.Reader, controllers func(mount string) (string, error)) (Hierarchy, error) {
	ms, err := mountinfo.Parse(r)
	if err != nil {
		return Hierarchy{}, err
	}
	return findMemory(ms, controllers)
}

func findMemory(ms []mountinfo.Mount, controllers func(mount string) (string, error)) (Hierarchy, error) {
	var v1, v2 []Hierarchy
	for _, m := range ms {
		switch m.FSType {
		case "cgroup":
			if hasOption(m.Super, "memory") {
				v1 = append(v1, Hierarchy{Version: 1, Mount: m.Point, Root: m.Root})
			}
		case "cgroup2":
			v2 = append(v2, Hierarchy{Version: 2, Mount: m.Point, Root: m.Root})
		}
	}
	if h, ok := best(v1); ok {
		return h, nil
	}
	var mem []Hierarchy
	for _, h := range v2 {
		if c, err := controllers(h.Mount); err == nil && hasWord(c, "memory") {
			mem = append(mem, h)
		}
	}
	if h, ok := best(mem); ok {
		return h, nil
	}
	return Hierarchy{}, ErrNoMemory
}

// best is the first mount showing the hierarchy's root, else the first.
func best(hs []Hierarchy) (Hierarchy, bool) {
	for _, h := range hs {
		if h.Root == "/" {
			return h, true
		}
	}
	if len(hs) > 0 {
		return hs[0], true
	}
	return Hierarchy{}, false
}

func hasOption(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func hasWord(s, want string) bool {
	for _, w := range strings.Fields(s) {
		if w == want {
			return true
		}
	}
	return false
}

// Controllers reads a cgroup2 mount's cgroup.controllers.
func Controllers(mount string) (string, error) {
	b, err := os.ReadFile(path.Join(mount, "cgroup.controllers"))
	return string(b), err
}

// OwnMemoryCgroup reads the memory cgroup of the process whose
// /proc/PID/cgroup is given: the path on the line naming the memory
// controller (v1), else the cgroup v2 line's ("0::/path").
func OwnMemoryCgroup(procCgroup []byte) (path string, version int, err error) {
	var v2 string
	found := false
	for _, line := range bytes.Split(procCgroup, []byte("\n")) {
		parts := strings.SplitN(string(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2, found = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return parts[2], 1, nil
			}
		}
	}
	if found {
		return v2, 2, nil
	}
	return "", 0, errors.New("no memory controller line and no cgroup v2 line in /proc/PID/cgroup")
}

// FindUnder finds the memory hierarchy among the mounts under root (the
// host's root mounted in a container, --path.rootfs): those show the
// host's cgroups, whatever cgroup namespace this process is in, from the
// host hierarchy's root.
func FindUnder(root string) (Hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Hierarchy{}, err
	}
	defer f.Close()
	return FindMemoryUnder(f, Controllers, root)
}

// FindMemoryUnder is FindMemory over the mounts under root only, each taken
// to show its hierarchy's root (mountinfo gives a mount of the host's
// hierarchy relative to this process's own cgroup namespace).
func FindMemoryUnder(r io.Reader, controllers func(mount string) (string, error), root string) (Hierarchy, error) {
	root = strings.TrimSuffix(root, "/")
	ms, err := mountinfo.Parse(r)
	if err != nil {
		return Hierarchy{}, err
	}
	var kept []mountinfo.Mount
	for _, m := range ms {
		if strings.HasPrefix(m.Point, root+"/") {
			kept = append(kept, m)
		}
	}
	h, err := findMemory(kept, controllers)
	if err != nil {
		return h, fmt.Errorf("under %s: %w", root, err)
	}
	h.Root = "/"
	return h, nil
}
