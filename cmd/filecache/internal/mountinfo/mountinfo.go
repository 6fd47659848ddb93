// Package mountinfo reads /proc/PID/mountinfo exactly as the kernel writes
// it (show_mountinfo): one parser for top's filesystems, the cgroup
// hierarchies and the overlay mounts.
package mountinfo

import (
	"bufio"
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
	Super  string // the super options, as written (escaped)
}

// Parse reads /proc/PID/mountinfo (proc(5)).
func Parse(r io.Reader) ([]Mount, error) {
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
		Root:   Unescape(f[3]),
		Point:  Unescape(f[4]),
		FSType: Unescape(g[0]),
		Source: Unescape(g[1]),
		Super:  g[2],
	}, nil
}

// Unescape undoes mountinfo's octal escapes (\040 for a space, \012 for a
// newline, \134 for a backslash).
func Unescape(s string) string {
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
