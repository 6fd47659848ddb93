// Package overlay names the real file behind an overlayfs file: the kernel
// (the bpf engine) says which layer holds its pages and that file's device
// and inode; this package finds a path with that device and inode among
// the overlay mount's layer directories, so a report can show where the
// pages are. A path is given only once stat says it is that very inode.
package overlay

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/mountinfo"
)

// Mount is one overlayfs mount.
type Mount struct {
	Dev    uint64 // st_dev of its files
	Root   string // the part of the overlay the mount shows (mountinfo root)
	Point  string // mount point
	Upper  string // upperdir ("" for a read-only overlay)
	Lowers []string
}

// ParseMounts reads the overlayfs mounts of a mountinfo.
func ParseMounts(r io.Reader) ([]Mount, error) {
	ms, err := mountinfo.Parse(r)
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, mi := range ms {
		if mi.FSType != "overlay" {
			continue
		}
		m := Mount{Dev: mi.Dev, Root: mi.Root, Point: mi.Point}
		for _, o := range splitOptions(mi.Super) {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "upperdir":
				m.Upper = mountinfo.Unescape(v)
			case "lowerdir", "lowerdir+", "datadir+":
				for _, l := range splitLowers(v) {
					m.Lowers = append(m.Lowers, mountinfo.Unescape(l))
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// splitOptions splits super options at commas the kernel did not escape
// (overlayfs writes a comma inside a path as "\,").
func splitOptions(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ',':
			out = append(out, unescapeChars(s[start:i]))
			start = i + 1
		}
	}
	return append(out, unescapeChars(s[start:]))
}

// splitLowers splits a lowerdir list at unescaped colons; "::" (before
// data-only layers) is a separator too.
func splitLowers(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && (s[i+1] == ':' || s[i+1] == '\\'):
			cur.WriteByte(s[i+1])
			i++
		case c == ':':
			if cur.Len() > 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// unescapeChars undoes a backslash before a comma.
func unescapeChars(s string) string { return strings.ReplaceAll(s, `\,`, ",") }

// Resolver finds real paths, reading the mount table once.
type Resolver struct {
	mounts []Mount
	read   bool
	// Mountinfo opens the mount table (nil: /proc/self/mountinfo).
	Mountinfo func() (io.ReadCloser, error)
}

// RealPath returns a path of the file with device dev and inode ino that
// the overlayfs file at path (as the kernel names it, for example through
// /proc/self/fd) has in the layer named ("upper" or "lower"), or "" when
// none of the overlay mount's layer directories holds that inode there
// (a renamed directory, layers no longer reachable from here).
func (r *Resolver) RealPath(ovlDev uint64, path, layer string, dev, ino uint64) string {
	if !r.read {
		r.read = true
		open := r.Mountinfo
		if open == nil {
			open = func() (io.ReadCloser, error) { return os.Open("/proc/self/mountinfo") }
		}
		if f, err := open(); err == nil {
			r.mounts, _ = ParseMounts(f)
			f.Close()
		}
	}
	var best *Mount
	for i := range r.mounts {
		m := &r.mounts[i]
		if m.Dev == ovlDev && within(path, m.Point) && (best == nil || len(m.Point) > len(best.Point)) {
			best = m
		}
	}
	if best == nil {
		return ""
	}
	rel := filepath.Join(best.Root, strings.TrimPrefix(path, best.Point))
	dirs := best.Lowers
	if layer == "upper" {
		dirs = []string{best.Upper}
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		cand := filepath.Join(d, rel)
		var st unix.Stat_t
		if unix.Lstat(cand, &st) == nil && st.Dev == dev && st.Ino == ino {
			return cand
		}
	}
	return ""
}

// within says whether path is dir or below it.
func within(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// FdPath is the path the kernel gives an open fd of this process, or ""
// for a file deleted since it was opened.
func FdPath(fd int) string {
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil || !strings.HasPrefix(p, "/") || strings.HasSuffix(p, " (deleted)") {
		return ""
	}
	return p
}

// FdDev is the st_dev of an open fd.
func FdDev(fd int) (uint64, bool) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return 0, false
	}
	return st.Dev, true
}
