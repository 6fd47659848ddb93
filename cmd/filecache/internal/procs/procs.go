// Package procs finds the regular files processes hold: open (/proc/PID/fd)
// or mapped (/proc/PID/maps), each named by a path that opens that very
// file from here (/proc/PID/fd/N, /proc/PID/map_files/START-END), so files
// deleted since, or seen only in a container's mount namespace, are
// reached too. Processes that exit while they are read are passed over.
package procs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrGone: the process exited (or its /proc entries went) while it was read.
var ErrGone = errors.New("the process is gone")

// Holder is a process holding a file open or mapped.
type Holder struct {
	PID    int
	Comm   string
	FDs    []int // its fds on the file, in order
	Mapped bool  // the file is mapped in its address space
}

// File is a regular file a process holds.
type File struct {
	Dev, Ino uint64 // the inode, as stat through Via says
	// Path is the file's name as the process sees it (in its mount
	// namespace), without the " (deleted)" the kernel adds to the name of
	// a file unlinked since.
	Path    string
	Deleted bool
	// Via opens the file itself from here: /proc/PID/fd/N, else
	// /proc/PID/map_files/START-END (which needs CAP_SYS_ADMIN), else
	// /proc/PID/root/PATH.
	Via    string
	Holder Holder
}

// gone says whether err means the process (or one of its fds or mappings)
// went away under the read.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// Comm is the process's command name, "" if it is gone.
func Comm(proc string, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/comm", proc, pid))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// Of lists the regular files process pid holds open or mapped, each inode
// once (the first fd that holds it, else the first mapping). It returns
// ErrGone if the process is gone, and other errors (permission) as they come.
func Of(proc string, pid int) ([]File, error) {
	dir := fmt.Sprintf("%s/%d", proc, pid)
	comm := Comm(proc, pid)
	var out []File
	at := map[[2]uint64]int{}
	add := func(f File) {
		key := [2]uint64{f.Dev, f.Ino}
		if i, ok := at[key]; ok {
			h := &out[i].Holder
			h.FDs = append(h.FDs, f.Holder.FDs...)
			h.Mapped = h.Mapped || f.Holder.Mapped
			return
		}
		at[key] = len(out)
		f.Holder.PID, f.Holder.Comm = pid, comm
		out = append(out, f)
	}
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		if gone(err) {
			return nil, ErrGone
		}
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	for _, e := range fds {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		via := fmt.Sprintf("%s/fd/%d", dir, n)
		var st unix.Stat_t
		if err := unix.Stat(via, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue // closed meanwhile, or no regular file
		}
		target, err := os.Readlink(via)
		if err != nil {
			continue
		}
		p, deleted := strings.CutSuffix(target, " (deleted)")
		add(File{Dev: st.Dev, Ino: st.Ino, Path: p, Deleted: deleted, Via: via, Holder: Holder{FDs: []int{n}}})
	}
	maps, err := Maps(proc, pid)
	if err != nil {
		if gone(err) {
			return nil, ErrGone
		}
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	for _, m := range maps {
		f := File{Path: m.Path, Deleted: m.Deleted, Holder: Holder{Mapped: true}}
		var st unix.Stat_t
		via := fmt.Sprintf("%s/map_files/%s", dir, m.Range)
		err := unix.Stat(via, &st)
		if err != nil && !m.Deleted {
			// map_files needs CAP_SYS_ADMIN: the name, as the process sees it.
			via = dir + "/root" + m.Path
			err = unix.Stat(via, &st)
		}
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		f.Dev, f.Ino, f.Via = st.Dev, st.Ino, via
		add(f)
	}
	if _, err := os.Stat(dir); gone(err) {
		return nil, ErrGone
	}
	return out, nil
}

// Mapping is one file mapping of /proc/PID/maps (the first of a file's
// mappings that map_files can open: each is the file whole).
type Mapping struct {
	Range    string // START-END, as map_files names it
	Dev, Ino uint64 // the mapped inode, as maps gives it
	Path     string
	Deleted  bool
}

// Maps reads the file mappings of process pid, each inode once.
func Maps(proc string, pid int) ([]Mapping, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/maps", proc, pid))
	if err != nil {
		return nil, err
	}
	return ParseMaps(b), nil
}

// ParseMaps reads /proc/PID/maps: "START-END PERMS OFFSET MAJ:MIN INODE
// PATH", PATH starting with "/" for a file (" (deleted)" added once it was
// unlinked); other lines (anonymous memory, [heap], [stack]) are left out.
func ParseMaps(b []byte) []Mapping {
	var out []Mapping
	seen := map[[2]uint64]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		ino, err := strconv.ParseUint(f[4], 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		maj, min, ok := strings.Cut(f[3], ":")
		ma, err1 := strconv.ParseUint(maj, 16, 32)
		mi, err2 := strconv.ParseUint(min, 16, 32)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		// The path is the rest of the line after the inode: it may hold spaces.
		i := strings.Index(line, "/")
		if i < 0 {
			continue
		}
		p, deleted := strings.CutSuffix(line[i:], " (deleted)")
		m := Mapping{Range: f[0], Dev: unix.Mkdev(uint32(ma), uint32(mi)), Ino: ino, Path: p, Deleted: deleted}
		key := [2]uint64{m.Dev, m.Ino}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, m)
	}
	return out
}

// PIDs lists the processes of proc, lowest first.
func PIDs(proc string) ([]int, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// All lists the files every process of proc holds (one entry per process
// and inode). Processes that cannot be read (gone, or another user's
// without the privilege) are passed over.
func All(proc string) ([]File, error) {
	pids, err := PIDs(proc)
	if err != nil {
		return nil, err
	}
	var out []File
	for _, pid := range pids {
		files, err := Of(proc, pid)
		if err != nil {
			continue
		}
		out = append(out, files...)
	}
	return out, nil
}
