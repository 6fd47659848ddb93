//go:build cgo

package cgo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// The dentry walk against the kernel: root, tmpfs (every page written stays
// cached, so the figures are exact).

func dirWalker(t *testing.T) *DirWalker {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skip[root]: loads a BPF program and mounts tmpfs")
	}
	w, err := LoadDirWalker(Options{})
	if errors.Is(err, unix.EPERM) {
		t.Skipf("skip[feature:bpf]: root may not load BPF programs here: %v", err)
	}
	if err != nil {
		t.Fatalf("load the dentry walk: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// readAll runs one directory's walk and returns its records by inode.
func readAll(t *testing.T, w *DirWalker, fd, slot int) (bpf.Dir, map[uint64]bpf.Child) {
	t.Helper()
	recs := map[uint64]bpf.Child{}
	d, err := w.ReadDir(fd, slot, func(c bpf.Child) {
		// Hard links in one directory are one inode under two names.
		if was, ok := recs[c.Ino]; ok && (was != c || c.Nlink < 2) {
			t.Errorf("inode %d returned twice: %+v, %+v", c.Ino, was, c)
		}
		recs[c.Ino] = c
	})
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	return d, recs
}

// Every regular file of a directory comes back once, with the inode
// number, size, link count and page count the kernel gives through an open
// fd (fstat, cachestat where the kernel has it, else the pages tmpfs
// keeps); directories, symlinks and FIFOs do not come back; a file
// unlinked while open does not either.
func TestDirWalkFigures(t *testing.T) {
	w := dirWalker(t)
	dir := tmpfs(t)
	want := files(t, dir, "f", 40)
	page := uint64(os.Getpagesize())
	// A file past its last page, an empty one, a hard link, a subdirectory,
	// a symlink and a FIFO.
	if err := os.WriteFile(filepath.Join(dir, "odd"), make([]byte, 3*page+5), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "f3"), filepath.Join(dir, "link3")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"sub"} {
		if err := os.Mkdir(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files(t, filepath.Join(dir, "sub"), "g", 3)
	if err := os.Symlink("f1", filepath.Join(dir, "sym")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "gone")
	if err := os.WriteFile(gone, make([]byte, 2*page), 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(gone)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var goneSt unix.Stat_t
	if err := unix.Fstat(int(held.Fd()), &goneSt); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}

	fd := openDir(t, dir)
	d, recs := readAll(t, w, fd, 2)
	if d.Status != bpf.DirDone || d.Runs != 1 {
		t.Errorf("walk %+v: want complete in one run", d)
	}
	var dirSt unix.Stat_t
	if err := unix.Fstat(fd, &dirSt); err != nil {
		t.Fatal(err)
	}
	if bpf.Dev(d.Dev) != dirSt.Dev {
		t.Errorf("walk says dev %#x, fstat %#x", bpf.Dev(d.Dev), dirSt.Dev)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	regular := 0
	for _, de := range des {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, de.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		c, ok := recs[st.Ino]
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			if ok {
				t.Errorf("%s (mode %o) came back: %+v", de.Name(), st.Mode, c)
			}
			continue
		}
		regular++
		if !ok {
			t.Errorf("%s (inode %d) did not come back", de.Name(), st.Ino)
			continue
		}
		cached, err := cachedOf(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if c.Size != uint64(st.Size) || c.Nlink != uint32(st.Nlink) || c.Mode != st.Mode || c.NrPages != cached {
			t.Errorf("%s: %+v; fstat size %d links %d mode %o, %d pages cached", de.Name(), c, st.Size, st.Nlink, st.Mode, cached)
		}
		if n, ok := want[st.Ino]; ok && c.NrPages != n {
			t.Errorf("%s: %d pages, %d written", de.Name(), c.NrPages, n)
		}
	}
	if _, ok := recs[goneSt.Ino]; ok {
		t.Errorf("a file unlinked while open came back")
	}
	if len(recs) != regular-1 { // the hard link and its first name are one inode
		t.Errorf("%d records, %d regular names (one pair of hard links)", len(recs), regular)
	}
}

// cachedOf is the page count of a file through an open fd: cachestat(2),
// or mincore on kernels without it (tmpfs: nothing past the end).
func cachedOf(p string) (uint64, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var cs unix.Cachestat_t
	err = unix.Cachestat(uint(fd), &unix.CachestatRange{}, &cs, 0)
	if err == nil {
		return cs.Cache, nil
	}
	if !errors.Is(err, unix.ENOSYS) {
		return 0, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size == 0 {
		return 0, err
	}
	m, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, errno
	}
	n := uint64(0)
	for _, v := range vec {
		n += uint64(v & 1)
	}
	return n, nil
}

// A file mounted over a name of the directory is what opening that name
// gives: the walk must not answer the name with the file underneath
// (DCACHE_MOUNTED, whose bit moved in Linux 6.15).
func TestDirWalkMountPoint(t *testing.T) {
	w := dirWalker(t)
	dir := tmpfs(t)
	other := tmpfs(t)
	page := os.Getpagesize()
	under := filepath.Join(dir, "x")
	if err := os.WriteFile(under, make([]byte, 5*page), 0o644); err != nil {
		t.Fatal(err)
	}
	var underSt unix.Stat_t
	if err := unix.Stat(under, &underSt); err != nil {
		t.Fatal(err)
	}
	over := filepath.Join(other, "y")
	if err := os.WriteFile(over, make([]byte, 9*page), 0o644); err != nil {
		t.Fatal(err)
	}
	files(t, dir, "f", 3)
	fd := openDir(t, dir)
	if _, recs := readAll(t, w, fd, 0); recs[underSt.Ino].NrPages != 5 {
		t.Fatalf("before the mount: x %+v, want 5 pages (control)", recs[underSt.Ino])
	}
	if err := unix.Mount(over, under, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mount a file: %v", err)
	}
	defer unix.Unmount(under, unix.MNT_DETACH)
	_, recs := readAll(t, w, fd, 0)
	if c, ok := recs[underSt.Ino]; ok {
		t.Errorf("the mount point came back: %+v (opening x gives the 9-page file)", c)
	}
	if len(recs) != 3 {
		t.Errorf("%d records, want the 3 other files", len(recs))
	}
}

// A directory of more children than one run takes is walked in several
// runs, each resuming after the child the last one stopped at; every file
// comes back once. If that child leaves the directory between two runs
// (every file moves to another directory, or is unlinked), the next run
// does not resume from it: the walk ends lost, with no record of the run
// that refused.
func TestDirWalkResume(t *testing.T) {
	w := dirWalker(t)
	dir := tmpfs(t)
	n := bpf.DirSteps + bpf.DirSteps/2
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), []byte{1}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fd := openDir(t, dir)
	d, recs := readAll(t, w, fd, 1)
	if d.Status != bpf.DirDone || d.Runs != 2 || len(recs) != n {
		t.Fatalf("walk %+v, %d records: want complete in 2 runs, %d records", d, len(recs), n)
	}

	away := filepath.Join(dir, "away")
	if err := os.Mkdir(away, 0o755); err != nil {
		t.Fatal(err)
	}
	moved := false
	w.between = func() {
		if moved {
			return
		}
		moved = true
		for i := range n {
			name := fmt.Sprintf("f%06d", i)
			if err := os.Rename(filepath.Join(dir, name), filepath.Join(away, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer func() { w.between = nil }()
	var second int
	d, err := w.ReadDir(fd, 1, func(bpf.Child) {
		if moved {
			second++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !moved || d.Status != bpf.DirLost || second != 0 {
		t.Errorf("after the files moved away: walk %+v, %d records after the move: want lost, none", d, second)
	}

	// The files back, then every one unlinked between the two runs: on
	// tmpfs their dentries die, the cursor's among them, and its back link
	// no longer leads to it. Following its stale next pointer instead would
	// walk dead dentries to the end of the list and call that complete.
	for i := range n {
		name := fmt.Sprintf("f%06d", i)
		if err := os.Rename(filepath.Join(away, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	unlinked := false
	w.between = func() {
		if unlinked {
			return
		}
		unlinked = true
		for i := range n {
			if err := os.Remove(filepath.Join(dir, fmt.Sprintf("f%06d", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	second = 0
	d, err = w.ReadDir(fd, 1, func(bpf.Child) {
		if unlinked {
			second++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !unlinked || d.Status != bpf.DirLost || second != 0 {
		t.Errorf("after the files were unlinked: walk %+v, %d records after: want lost, none", d, second)
	}
}

// An overlayfs directory is refused: its files' own mappings are empty.
func TestDirWalkOverlay(t *testing.T) {
	w := dirWalker(t)
	base := tmpfs(t)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files(t, filepath.Join(base, "lower"), "f", 3)
	merged := filepath.Join(base, "merged")
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", base, base, base)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("skip[feature:overlayfs]: mount overlay: %v", err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	for i := 1; i <= 3; i++ {
		if _, err := os.ReadFile(filepath.Join(merged, fmt.Sprintf("f%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	fd := openDir(t, merged)
	n := 0
	d, err := w.ReadDir(fd, 0, func(bpf.Child) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != bpf.DirOverlay || n != 0 {
		t.Errorf("overlayfs: walk %+v, %d records: want refused, none", d, n)
	}
}
