// Package top answers "what is in the page cache?" for the whole machine: it
// walks the inode list of every mounted filesystem's superblock (through the
// BPF walk, behind the Walker interface), keeps the inodes holding the most
// pages, and puts their paths together with the mount points they are seen
// under. Plain Go: the kernel side is injected, so all of it is unit-tested.
package top

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/mountinfo"
)

// Mount is a line of mountinfo as top uses it: grouped by superblock, and
// possibly seen from another mount namespace.
type Mount struct {
	Dev    uint64 // st_dev of the filesystem (unix.Mkdev)
	Root   string // the directory of the filesystem mounted here ("/" for all of it)
	Point  string // where it is mounted
	FSType string
	Source string
	// NSPid: a mount of another mount namespace, reached through this
	// process's root, NSRoot (/proc/NSPid/root), which Point then starts
	// with; 0 for this namespace's.
	NSPid  int
	NSRoot string
}

// ParseMountinfo reads /proc/PID/mountinfo (mountinfo.Parse) into Mounts.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	ms, err := mountinfo.Parse(r)
	if err != nil {
		return nil, err
	}
	out := make([]Mount, len(ms))
	for i, m := range ms {
		out[i] = Mount{Dev: m.Dev, Root: m.Root, Point: m.Point, FSType: m.FSType, Source: m.Source}
	}
	return out, nil
}

// Filesystem is one superblock and the mounts that show it.
type Filesystem struct {
	Dev    uint64
	FSType string
	Source string
	Mounts []Mount // in mountinfo order; empty for one no mount shows
	// Label names a filesystem no mount shows: the kernel's shmem mount of
	// memfds, SysV and shared anonymous memory, or the block devices' (whose
	// Mounts are then those of filesystems on a block device, the way in).
	Label string
}

// Name is how reports name the filesystem: its label, or its first mount point.
func (fs Filesystem) Name() string {
	if fs.Label != "" || len(fs.Mounts) == 0 {
		return fs.Label
	}
	return fs.Mounts[0].Point
}

// Group gathers mounts by superblock, in the order first mounted; a
// filesystem mounted five times is walked once.
func Group(ms []Mount) []Filesystem {
	var out []Filesystem
	at := map[uint64]int{}
	for _, m := range ms {
		i, ok := at[m.Dev]
		if !ok {
			i = len(out)
			at[m.Dev] = i
			out = append(out, Filesystem{Dev: m.Dev, FSType: m.FSType, Source: m.Source})
		}
		out[i].Mounts = append(out[i].Mounts, m)
	}
	return out
}

// Path puts a path together from components below the filesystem's root:
// under the mount whose root is the longest prefix of it, so a bind mount of
// a subdirectory shows its files where users see them. ok is false when no
// mount shows the path; it is then "[FSTYPE MAJ:MIN]/components".
func (fs Filesystem) Path(names [][]byte) (path string, ok bool) {
	path, _, ok = fs.pathMount(names)
	return path, ok
}

// pathMount is Path, with the mount that shows the path.
func (fs Filesystem) pathMount(names [][]byte) (path string, m Mount, ok bool) {
	var rel bytes.Buffer
	for _, n := range names {
		rel.WriteByte('/')
		rel.Write(n)
	}
	r := rel.String()
	best := -1
	for i, m := range fs.Mounts {
		if under(r, m.Root) && (best < 0 || len(m.Root) > len(fs.Mounts[best].Root)) {
			best = i
		}
	}
	if best < 0 {
		if r == "" {
			r = "/"
		}
		return fmt.Sprintf("[%s %d:%d]%s", fs.label(), unix.Major(fs.Dev), unix.Minor(fs.Dev), r), Mount{}, false
	}
	m = fs.Mounts[best]
	rest := strings.TrimPrefix(r, strings.TrimSuffix(m.Root, "/"))
	switch {
	case m.Point == "/" && rest == "":
		return "/", m, true
	case m.Point == "/":
		return rest, m, true
	}
	return m.Point + rest, m, true
}

// nsPath is a path shown through /proc/PID/root of mount m as the
// process of that mount namespace sees it.
func nsPath(p string, m Mount) string {
	rest, ok := strings.CutPrefix(p, m.NSRoot)
	switch {
	case !ok || m.NSRoot == "":
		return p
	case rest == "":
		return "/"
	}
	return rest
}

func (fs Filesystem) label() string {
	if fs.Label != "" {
		return fs.Label
	}
	return fs.FSType
}

// under says whether path p lies at or below directory root.
func under(p, root string) bool {
	if root == "/" {
		return true
	}
	return p == root || strings.HasPrefix(p, root+"/")
}
