// Package top answers "what is in the page cache?" for the whole machine: it
// walks the inode list of every mounted filesystem's superblock (through the
// BPF walk, behind the Walker interface), keeps the inodes holding the most
// pages, and puts their paths together with the mount points they are seen
// under. Plain Go: the kernel side is injected, so all of it is unit-tested.
package top

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one line of /proc/self/mountinfo.
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

// ParseMountinfo reads /proc/PID/mountinfo (proc(5)).
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		m, err := parseMountLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return out, nil
}

// parseMountLine splits one line the way the kernel writes it
// (show_mountinfo): "id parent major:minor root point options
// [optional...] - fstype source super-options", every field followed by
// exactly one space. Paths and the source have their spaces escaped, so the
// first " - " is the separator; the source may be empty (two spaces), which
// splitting on runs of blanks would lose.
func parseMountLine(line string) (Mount, error) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return Mount{}, fmt.Errorf("no \" - \" separator in %q", line)
	}
	f := strings.Split(pre, " ")
	g := strings.SplitN(post, " ", 3)
	if len(f) < 6 || len(g) < 3 || g[0] == "" || slices.Contains(f, "") {
		return Mount{}, fmt.Errorf("malformed %q", line)
	}
	maj, min, ok := strings.Cut(f[2], ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return Mount{}, fmt.Errorf("device %q", f[2])
	}
	return Mount{
		Dev:    unix.Mkdev(uint32(ma), uint32(mi)),
		Root:   unescape(f[3]),
		Point:  unescape(f[4]),
		FSType: unescape(g[0]),
		Source: unescape(g[1]),
	}, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space, \012 for a
// newline, \134 for a backslash).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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
