// Package cgroups names memory cgroups: it finds where the memory
// controller's hierarchy is mounted (cgroup v1's memory hierarchy, or the
// cgroup v2 one when the memory controller is there) and turns a cgroup id,
// which is the inode number of the cgroup's directory in that hierarchy,
// into the cgroup's path as /proc/PID/cgroup writes it.
package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
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
func FindMemory(mountinfo io.Reader, controllers func(mount string) (string, error)) (Hierarchy, error) {
	var v1, v2 []Hierarchy
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m, ok := parseMountinfo(sc.Text())
		if !ok {
			continue
		}
		switch m.fstype {
		case "cgroup":
			if hasOption(m.super, "memory") {
				v1 = append(v1, Hierarchy{Version: 1, Mount: m.point, Root: m.root})
			}
		case "cgroup2":
			v2 = append(v2, Hierarchy{Version: 2, Mount: m.point, Root: m.root})
		}
	}
	if err := sc.Err(); err != nil {
		return Hierarchy{}, fmt.Errorf("read mountinfo: %w", err)
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

type mountLine struct{ root, point, fstype, super string }

// parseMountinfo reads one line of /proc/PID/mountinfo: "id parent
// major:minor root point options [optional...] - fstype source super".
func parseMountinfo(line string) (mountLine, bool) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+3 {
		return mountLine{}, false
	}
	m := mountLine{root: Unescape(f[3]), point: Unescape(f[4]), fstype: f[sep+1]}
	if len(f) > sep+3 {
		m.super = f[sep+3]
	}
	return m, true
}

// Unescape undoes mountinfo's octal escapes (\040 for a space, \011, \012,
// \134 for a backslash).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 || s[0] > '3' {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '7' {
			return false
		}
	}
	return true
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
func FindMemoryUnder(mountinfo io.Reader, controllers func(mount string) (string, error), root string) (Hierarchy, error) {
	root = strings.TrimSuffix(root, "/")
	var kept strings.Builder
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m, ok := parseMountinfo(sc.Text()); ok && strings.HasPrefix(m.point, root+"/") {
			kept.WriteString(sc.Text() + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		return Hierarchy{}, fmt.Errorf("read mountinfo: %w", err)
	}
	h, err := FindMemory(strings.NewReader(kept.String()), controllers)
	if err != nil {
		return h, fmt.Errorf("under %s: %w", root, err)
	}
	h.Root = "/"
	return h, nil
}
