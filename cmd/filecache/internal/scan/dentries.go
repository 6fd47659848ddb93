package scan

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

// A tree's regular files are answered, where the kernel's dentry cache
// holds them, from one run of the dentry walk over their directory
// (pagecache.DirReader) instead of an open each: the directory listing
// says which inode each name had, and a name whose inode number the walk
// returned gets that inode's figures. Names the walk did not return (not
// cached, a mount point, a filesystem that revalidates its names, a symlink
// followed) and inode numbers it returned twice are opened as before.

// maxDentries bounds the records one directory's table keeps (40 bytes
// each): the names of a larger directory past them are opened.
const maxDentries = 1 << 17

// dentries is one directory's walk: its regular files by inode number, in
// an open-addressing table (inode number 0 marks an empty slot: no
// filesystem gives it to a file).
type dentries struct {
	dev  uint64 // st_dev of the directory's filesystem
	keys []uint64
	vals []bpf.Child
	n    int
}

var dentryPool = sync.Pool{New: func() any { return &dentries{} }}

func (d *dentries) reset() {
	clear(d.keys)
	d.n = 0
}

// ambiguous marks an inode number the walk returned twice with different
// figures: two inodes of one number (no sane filesystem has them in one
// directory), or one read twice while it changed. The same inode twice (a
// hard link in the same directory, a child passed twice while the list
// moved) is one answer.
const ambiguous = ^uint32(0)

func (d *dentries) add(c bpf.Child) {
	if c.Ino == 0 || d.n >= maxDentries {
		return
	}
	if 2*(d.n+1) > len(d.keys) {
		d.grow()
	}
	mask := uint64(len(d.keys) - 1)
	for i := hashIno(c.Ino) & mask; ; i = (i + 1) & mask {
		switch d.keys[i] {
		case 0:
			d.keys[i], d.vals[i] = c.Ino, c
			d.n++
			return
		case c.Ino:
			if d.vals[i] != c {
				d.vals[i].Mode = ambiguous
			}
			return
		}
	}
}

// get is the record of inode number ino, if the walk returned it once.
func (d *dentries) get(ino uint64) (bpf.Child, bool) {
	if ino == 0 || d.n == 0 {
		return bpf.Child{}, false
	}
	mask := uint64(len(d.keys) - 1)
	for i := hashIno(ino) & mask; ; i = (i + 1) & mask {
		switch d.keys[i] {
		case 0:
			return bpf.Child{}, false
		case ino:
			return d.vals[i], d.vals[i].Mode != ambiguous
		}
	}
}

func (d *dentries) grow() {
	keys, vals := d.keys, d.vals
	size := max(256, 2*len(keys))
	d.keys, d.vals, d.n = make([]uint64, size), make([]bpf.Child, size), 0
	for i, k := range keys {
		if k != 0 {
			d.add(vals[i])
		}
	}
}

// hashIno spreads inode numbers, which often come in runs (Fibonacci
// hashing).
func hashIno(ino uint64) uint64 { return (ino * 0x9e3779b97f4a7c15) >> 17 }

// readDentries is walk.Options.Dir: the dentry walk of the directory open
// at fd, on a walk goroutine (slot). Nil when the walk failed: its names
// are all opened.
func (s *Scanner) readDentries(fd, slot int) any {
	d := dentryPool.Get().(*dentries)
	d.reset()
	info, err := s.dirs.ReadDir(fd, slot, d.add)
	s.dirRuns.Add(1)
	if err != nil {
		dentryPool.Put(d)
		return nil
	}
	d.dev = bpf.Dev(info.Dev)
	return d
}

// releaseDentries is walk.Options.DirDone.
func releaseDentries(v any) {
	if d, ok := v.(*dentries); ok && d != nil {
		dentryPool.Put(d)
	}
}

// fromDentries answers a tree's regular file from its directory's walk,
// if the walk vouched for the inode the listing names.
func (s *Scanner) fromDentries(path string, typ uint8, followed bool, ino uint64, dir any) (pending, bool) {
	d, _ := dir.(*dentries)
	if d == nil || typ != unix.DT_REG || followed {
		return pending{}, false
	}
	c, ok := d.get(ino)
	if !ok || c.Size > 1<<63-1 {
		return pending{}, false
	}
	s.fromDentry++
	return pending{
		file: File{Path: path, Kind: KindFile, Dev: d.dev, Ino: c.Ino, Size: int64(c.Size), Pages: c.NrPages,
			Engine: s.dirs.Name()},
		fd:       -1,
		mode:     unix.S_IFREG,
		nlink:    c.Nlink,
		answered: true,
	}, true
}

// DentryStats are what the dentry walk did in this scanner's runs.
type DentryStats struct {
	Files  int   // tree files answered from the dentry cache
	Opened int   // tree files opened (not answered from it)
	Runs   int64 // directories walked
}

// Dentries says what the dentry walk did; zero when it was not used.
func (s *Scanner) Dentries() DentryStats {
	return DentryStats{Files: s.fromDentry, Opened: s.opened, Runs: s.dirRuns.Load()}
}

// DirReader is the dentry walk in use, if one was loaded.
func (s *Scanner) DirReader() pagecache.DirReader { return s.dirs }

// dirReader loads the dentry walk on first need.
func (s *Scanner) dirReader() pagecache.DirReader {
	if !s.dirsTried && s.Dirs != nil {
		s.dirsTried = true
		s.dirs, _ = s.Dirs()
	}
	return s.dirs
}
