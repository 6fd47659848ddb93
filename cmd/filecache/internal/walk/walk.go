// Package walk lists the files of a directory tree, as cheaply as the
// kernel allows, for the scanner to measure.
//
// # What it yields
//
// Walk calls fn once for every entry that is not a directory: regular
// files, block devices, FIFOs, sockets, character devices and (without
// Options.Follow) symlinks, each with the fd of its parent directory and its
// base name, so the caller opens it with openat(Dirfd, Name, ...) and never
// resolves a full path again. Directories are descended, not yielded.
//
// # Order
//
// Entries come in the order the kernel lists them (getdents64, as readdir
// and vmtouch), which is stable for an unchanged directory on a given
// filesystem but not sorted: sorting would cost a copy of every name. Within
// a directory its files come first, as they are read; its subdirectories
// are walked after the directory has been read to its end, in the order
// they were listed.
//
// # How it stays cheap
//
// A directory is read with getdents64 into one 32 KiB buffer that serves the
// whole walk, and the linux_dirent64 records are parsed in place: d_type
// says what each entry is, so a file costs no system call at all in the
// walker. Only an entry whose filesystem reports DT_UNKNOWN costs an
// fstatat(AT_SYMLINK_NOFOLLOW), and, with Follow, a symlink costs an
// fstatat of its target. A subdirectory is opened with openat(parent fd,
// name, O_DIRECTORY|O_NOFOLLOW) and fstat'ed once (for XDev and loop
// detection). Each yielded entry costs one allocation, its Path string, of
// which Name is a substring.
//
// # Bounds
//
// Memory: because a directory is read to its end before its subdirectories
// are entered, the buffer is never needed by two directories at once. What
// is kept per directory on the current path is the list of the names of its
// subdirectories that remain to be walked (files are yielded as they are
// read and never kept). So memory is bounded by the subdirectories of the
// directories on the current path, never by the number of files. With
// Follow, each directory entered is remembered too (Visited: up to about
// 60 bytes each), since symlinks can reach it from anywhere in the tree.
//
// Fds: each directory on the current path has a level, and a level's fd
// is needed only while the directory is read (Entry.Dirfd) and to open its
// next subdirectory. So a level is closed as soon as its last subdirectory
// is open: a chain of directories holds only the root's fd and the one
// being read. Besides, at most Options.MaxOpenDirs directory fds are open at
// once (the root's included; default 8, so that a walk next to the
// scanner's batch of open files stays inside the 64-slot fd table a process
// starts with): before a subdirectory is opened beyond that budget, the
// shallowest open level other than the root is closed. When the walk comes
// back to a closed level that still has subdirectories to walk, the level
// is re-opened as "..", "../..", ... of the directory being left, verified
// by st_dev and st_ino; if that fails (a directory on the way was reached
// through a symlink, or was moved), it is re-opened name by name from its
// nearest open ancestor (the root at worst), each step verified the same
// way. Full paths are never resolved, so trees deeper than PATH_MAX work. A
// level that cannot be found again is reported with ErrMoved and the rest
// of its subdirectories are skipped.
//
// # Races
//
// The tree may change under the walk. A file deleted after its directory
// was read is still yielded (the walker does not stat files): the caller's
// openat gets ENOENT. An entry that vanishes before an fstatat the walker
// needed, or a subdirectory that vanishes before it is opened, is reported
// to onErr and the walk goes on. A directory renamed while it or a
// directory below it is walked is still read through its fd, and paths
// below it keep the name it had when it was listed. A directory moved
// elsewhere in the tree during the walk may be walked twice or not at all,
// as with any walker, but the walk cannot cycle: a directory already on
// the current path (same st_dev and st_ino) is never entered again.
//
// # One goroutine
//
// The walk runs in the caller's goroutine and calls fn in order. Its own
// cost is small next to the caller's per-file openat+fstat+close (about
// 0.4 µs against 3 to 4 µs per file on the test VM, see BenchmarkWalk), and
// that per-file cost did not go down when split over two goroutines or two
// processes on the 2-CPU test VM, so a parallel walk would add
// nondeterminism for no gain.
package walk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/filecache/filecache/cmd/filecache/internal/units"

	"golang.org/x/sys/unix"
)

// Options tune a walk. The zero value walks the whole tree.
type Options struct {
	// MaxDepth limits how deep entries are yielded: 1 yields only the
	// entries of the root directory. 0 (or less) is unlimited.
	MaxDepth int
	// XDev does not descend into directories on another filesystem than
	// the root (st_dev differs from the root's).
	XDev bool
	// Follow follows symlinks inside the tree, to files and directories.
	// A symlinked file is yielded under the symlink's own name with its
	// target's type and Followed set (so a file may come once by its own
	// name and again by a symlink's: the caller, which learns inode
	// numbers, counts it once). A directory that is already on the
	// current path (same st_dev and st_ino) is reported with ErrLoop and
	// not entered again. Any other directory is entered once, under the
	// first name the walk reaches it by, however many symlinks (or bind
	// mounts) lead to it: later names are skipped silently. With MaxDepth,
	// a directory reached again at a shallower depth than before is
	// entered again, so the depth limit cuts nothing that is within reach.
	Follow bool
	// Visited, with Follow, remembers the directories entered across the
	// walks given the same Visited, so that a run over several roots
	// enters each directory once (a root already entered yields
	// nothing). Nil: each walk remembers its own.
	Visited *Visited
	// Include, if not empty, yields only the non-directory entries whose
	// base name matches one of these patterns (path.Match syntax).
	// Directories are still descended.
	Include []string
	// Exclude skips the files whose base name matches one of these
	// patterns, and does not descend into the directories that match.
	Exclude []string
	// MaxOpenDirs bounds the directory fds the walk holds open at once,
	// the root's included; 0 means DefaultMaxOpenDirs, and values below
	// 3 count as 3. The caller's own fds (Entry.Dirfd excepted) are not
	// counted, nor the directories read ahead (Workers).
	MaxOpenDirs int
	// Dir, if set, is called once for each directory whose entries are
	// yielded, with an fd of it, before the first of them, and what it
	// returns is handed with each of them (Entry.Dir). slot is 0 on the
	// walk's own goroutine and 1 to Workers on the goroutines reading
	// ahead: calls with different slots may run at once.
	Dir func(fd, slot int) any
	// DirDone, if set, is given each value Dir returned once the walk is
	// done with its directory.
	DirDone func(any)
	// Workers, if above 0, is how many goroutines read directories ahead
	// of the walk: when the walk enters a subdirectory, the next ones of
	// the same directory (up to 2*Workers at once) are opened, and read
	// into a buffer of their own and given to Dir on those goroutines,
	// while the walk yields the entries before them. Entries still come in
	// the order a walk without Workers yields them.
	Workers int
	// OutOfFds, if set, is called on the walk's goroutine when opening a
	// directory fails for want of fds (after the walk gave back what it
	// read ahead): it returns true when it closed some of the caller's,
	// and the open is tried again.
	OutOfFds func() bool
}

// Visited is the set of directories walks with Follow have entered, by
// st_dev and st_ino, with the depth each was entered at. The zero value is
// empty and ready to use.
type Visited struct {
	dirs map[[2]uint64]int
}

// enter tells whether the directory dev, ino is to be entered at level (0
// for a root), and marks it entered. It is, the first time; again only
// when the walk is depth-limited and reaches it higher up than before,
// since the depth limit then cut its subtree shorter.
func (v *Visited) enter(dev, ino uint64, level int, limited bool) bool {
	k := [2]uint64{dev, ino}
	if was, ok := v.dirs[k]; ok && (!limited || level >= was) {
		return false
	}
	if v.dirs == nil {
		v.dirs = map[[2]uint64]int{}
	}
	v.dirs[k] = level
	return true
}

// DefaultMaxOpenDirs is the fd budget when Options.MaxOpenDirs is 0.
const DefaultMaxOpenDirs = 8

// Entry is one non-directory entry of the tree.
type Entry struct {
	// Dirfd is an fd of the parent directory, valid only during the call
	// to fn. Open the entry with openat(Dirfd, Name, ...); do not read,
	// seek or close Dirfd.
	Dirfd int
	// Name is the base name, bytes as on disk (possibly invalid UTF-8,
	// possibly with newlines). It is a substring of Path.
	Name string
	// Path is the root as given joined with the names below it
	// ("root/a/b"; no slash is doubled when the root ends in one).
	Path string
	// Type is the entry's unix.DT_* type: DT_REG, DT_BLK, DT_CHR,
	// DT_FIFO, DT_SOCK, or DT_LNK when Follow is off. DT_UNKNOWN from the
	// filesystem has been resolved with fstatat; with Followed, it is the
	// type of the symlink's target.
	Type uint8
	// Depth is 1 for the entries of the root directory.
	Depth int
	// Followed is set when Name is a symlink (Follow on) and Type is its
	// target's: open it WITHOUT O_NOFOLLOW, and check the type again
	// from fstat since the link may have changed since.
	Followed bool
	// Ino is the inode number the directory listing gives (d_ino): of
	// the symlink itself when Followed.
	Ino uint64
	// Dir is what Options.Dir returned for the entry's directory.
	Dir any
}

// Errors reported to onErr, wrapped with details.
var (
	// ErrLoop: a directory is already on the current path (a symlink
	// loop with Follow, or a bind mount of an ancestor).
	ErrLoop = errors.New("directory loop")
	// ErrMoved: the walk had to re-open a directory it had closed to stay
	// within its fd budget, and the directory was no longer where it was.
	ErrMoved = errors.New("directory moved during the walk, its remaining subdirectories are skipped")
)

// CheckPatterns reports the first pattern that path.Match would reject, or
// that contains a slash (patterns match base names, which have none).
func CheckPatterns(patterns []string) error {
	for _, p := range patterns {
		if strings.Contains(p, "/") {
			return fmt.Errorf("pattern %q contains a slash: patterns match base names only", p)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("bad pattern %q: %w", p, err)
		}
	}
	return nil
}

// Walk walks the directory root (symlinks in root itself are followed) and
// calls fn for every non-directory entry below it, and onErr (if not nil)
// for every problem inside the tree with the path it concerns: an
// unreadable directory, an entry or directory that vanished, a loop, a
// broken symlink (Follow). The walk goes on after those. If fn returns an
// error the walk stops and Walk returns that very error. Otherwise Walk
// returns an error only if a pattern is bad (see CheckPatterns) or root
// cannot be opened as a directory: then it is the bare errno (ENOENT,
// ENOTDIR, EACCES, ...), which, like the errors given to onErr, does not
// name the path.
func Walk(root string, o Options, fn func(Entry) error, onErr func(path string, err error)) error {
	if err := CheckPatterns(o.Include); err != nil {
		return err
	}
	if err := CheckPatterns(o.Exclude); err != nil {
		return err
	}
	fd, err := openRetry(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		unix.Close(fd)
		return err
	}
	w := &walker{
		o:       o,
		fn:      fn,
		onErr:   onErr,
		buf:     make([]byte, 32<<10),
		rootDev: st.Dev,
		budget:  o.MaxOpenDirs,
		lo:      1,
		dirFlags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC |
			unix.O_NOFOLLOW,
	}
	if o.Follow {
		w.dirFlags &^= unix.O_NOFOLLOW
	}
	if w.budget == 0 {
		w.budget = DefaultMaxOpenDirs
	}
	if w.budget < 3 {
		w.budget = 3
	}
	if o.Follow {
		if w.visited = o.Visited; w.visited == nil {
			w.visited = &Visited{}
		}
		if !w.visited.enter(st.Dev, st.Ino, 0, o.MaxDepth > 0) {
			unix.Close(fd)
			return nil // walked already in this run
		}
	}
	w.stack = append(w.stack, level{fd: fd, dev: st.Dev, ino: st.Ino, path: root, prefix: joinPrefix(root)})
	w.nOpen = 1
	w.startWorkers()
	defer w.closeAll()
	err = w.run()
	if testDone != nil {
		testDone(w)
	}
	return err
}

type walker struct {
	o        Options
	fn       func(Entry) error
	onErr    func(string, error)
	buf      []byte
	rootDev  uint64
	dirFlags int
	budget   int      // most directory fds open at once
	nOpen    int      // directory fds open now
	lo       int      // levels 1..lo-1 are all closed
	stack    []level  // the directories on the current path; [0] is the root
	visited  *Visited // with Follow: the directories entered
	ahead    aheadState

	dirsOpened, reopenedDotdot, reopenedByName int // for the tests
}

// level is a directory on the current path.
type level struct {
	fd       int // -1 while closed to stay within the fd budget
	dev, ino uint64
	path     string
	prefix   string   // path with a trailing slash
	name     string   // name in the parent directory
	subdirs  []string // names of the subdirectories found
	next     int      // index in subdirs of the next one to walk
	// ahead are the subdirectories being read ahead: subdirs[next],
	// subdirs[next+1], ... (ahead.go).
	ahead []*job
	pre   *job // the read-ahead this directory was opened by, if any
	dir   any  // Options.Dir's value for it
	hook  bool // Options.Dir was called
}

func (w *walker) report(p string, err error) {
	if w.onErr != nil {
		w.onErr(p, err)
	}
}

func (w *walker) run() error {
	if err := w.readDir(0); err != nil {
		return err
	}
	for len(w.stack) > 0 {
		top := len(w.stack) - 1
		l := &w.stack[top]
		if l.next == len(l.subdirs) {
			w.pop()
			continue
		}
		name := l.subdirs[l.next]
		j := w.takeAhead(l)
		l.next++
		if j == nil && l.fd < 0 && !w.reopenByName(top) {
			continue
		}
		if w.nOpen >= w.budget {
			w.closeLowest()
		}
		p := l.prefix + name
		var fd int
		var err error
		var st unix.Stat_t
		if j != nil {
			fd, err, st = j.fd, j.err, j.st
			if err == nil {
				err = j.serr
			}
			if err != nil {
				w.discard(j)
			}
		} else {
			fd, err = w.openDir(l.fd, name, w.dirFlags)
			w.dirsOpened++
			if err == nil {
				if err = fstat(fd, &st); err != nil {
					unix.Close(fd)
				}
			}
		}
		if err != nil {
			w.report(p, err)
			continue
		}
		if w.o.XDev && st.Dev != w.rootDev {
			w.skip(fd, j)
			continue
		}
		if a := w.onPath(st.Dev, st.Ino); a >= 0 {
			w.skip(fd, j)
			w.report(p, fmt.Errorf("%w: it is the directory %s again", ErrLoop, units.Display(w.stack[a].path)))
			continue
		}
		if w.visited != nil && !w.visited.enter(st.Dev, st.Ino, top+1, w.o.MaxDepth > 0) {
			w.skip(fd, j) // reached before by another name
			continue
		}
		// Read the next subdirectories ahead while this one is walked.
		w.readAhead(top)
		if l.next == len(l.subdirs) && len(l.ahead) == 0 && top > 0 {
			// Its last subdirectory: its fd is needed no more. (After a
			// failure it stays open for pop to find its parent as "..".)
			w.closeLevel(top)
		}
		w.nOpen++
		w.push(level{fd: fd, dev: st.Dev, ino: st.Ino, path: p, prefix: p + "/", name: name, pre: j})
		if err := w.readDir(top + 1); err != nil {
			return err
		}
	}
	return nil
}

// onPath returns the index of the level with this dev and ino, or -1.
func (w *walker) onPath(dev, ino uint64) int {
	for i := range w.stack {
		if w.stack[i].ino == ino && w.stack[i].dev == dev {
			return i
		}
	}
	return -1
}

// push appends a level, reusing the subdirs array a popped level left.
func (w *walker) push(l level) {
	n := len(w.stack)
	if n < cap(w.stack) {
		w.stack = w.stack[:n+1]
		l.subdirs = w.stack[n].subdirs[:0]
		w.stack[n] = l
		return
	}
	w.stack = append(w.stack, l)
}

// pop leaves the top level, and the levels below it that have no
// subdirectory left to walk. If the level it comes back to was closed, it is
// re-opened first, as "../.." of the top, while the top is still open.
func (w *walker) pop() {
	top := len(w.stack) - 1
	j := top - 1
	for j > 0 && w.stack[j].next == len(w.stack[j].subdirs) {
		j--
	}
	for k := j + 1; k < top; k++ {
		w.closeLevel(k)
	}
	if j > 0 && w.stack[j].fd < 0 && w.stack[top].fd >= 0 {
		if w.nOpen >= w.budget {
			w.closeLowest()
		}
		rel := ".." + strings.Repeat("/..", top-j-1)
		if fd, ok := w.openVerified(w.stack[top].fd, rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, &w.stack[j]); ok {
			w.stack[j].fd = fd
			w.nOpen++
			w.lo = min(w.lo, j)
			w.reopenedDotdot++
		}
	}
	w.closeLevel(top)
	for k := j + 1; k <= top; k++ {
		l := &w.stack[k]
		clear(l.subdirs) // drop the names, keep the array for the next push
		*l = level{subdirs: l.subdirs[:0]}
	}
	w.stack = w.stack[:max(j+1, 0)]
	w.lo = max(min(w.lo, len(w.stack)), 1)
}

func (w *walker) closeLevel(i int) {
	if w.stack[i].fd >= 0 {
		unix.Close(w.stack[i].fd)
		w.stack[i].fd = -1
		w.nOpen--
	}
}

// closeLowest closes the fd of the shallowest open level but the root's,
// and tells whether there was one. It is called when at least 3 are open or
// the top is closed, so it never closes the top level while it is needed.
func (w *walker) closeLowest() bool {
	for i := max(w.lo, 1); i < len(w.stack); i++ {
		if w.stack[i].fd >= 0 {
			w.closeLevel(i)
			w.lo = i + 1
			return true
		}
	}
	return false
}

// reopenByName re-opens level i name by name from its nearest open
// ancestor (the root's fd at worst), checking each directory is the one the
// walk went through. When it cannot, it reports ErrMoved and gives up the
// rest of level i.
func (w *walker) reopenByName(i int) bool {
	for w.nOpen+2 > w.budget && w.closeLowest() {
		// room for the directory and one on the way to it
	}
	a := i - 1
	for w.stack[a].fd < 0 {
		a--
	}
	fd := w.stack[a].fd
	for k := a + 1; k <= i; k++ {
		nfd, ok := w.openVerified(fd, w.stack[k].name, w.dirFlags, &w.stack[k])
		if k > a+1 {
			unix.Close(fd)
		}
		if !ok {
			l := &w.stack[i]
			w.report(l.path, ErrMoved)
			l.next = len(l.subdirs)
			w.dropAhead(l)
			return false
		}
		fd = nfd
	}
	w.stack[i].fd = fd
	w.nOpen++
	w.lo = min(w.lo, i)
	w.reopenedByName++
	return true
}

// openVerified opens name in dirfd and checks it is the directory l.
func (w *walker) openVerified(dirfd int, name string, flags int, l *level) (int, bool) {
	fd, err := w.openDir(dirfd, name, flags)
	if err != nil {
		return -1, false
	}
	var st unix.Stat_t
	if fstat(fd, &st) != nil || st.Dev != l.dev || st.Ino != l.ino {
		unix.Close(fd)
		return -1, false
	}
	return fd, true
}

func (w *walker) closeAll() {
	for i := range w.stack {
		w.dropAhead(&w.stack[i])
		if j := w.stack[i].pre; j != nil {
			w.stack[i].pre = nil
			w.discard(j)
		}
		w.dirDone(&w.stack[i])
		if w.stack[i].fd >= 0 {
			unix.Close(w.stack[i].fd)
			w.stack[i].fd = -1
		}
	}
	w.stack = nil
	w.stopWorkers()
}

// Test hooks, never set outside the tests: testForceUnknown makes every
// entry look like DT_UNKNOWN (no filesystem at hand reports it); testDone
// sees each walker at the end of its walk.
var (
	testForceUnknown bool
	testDone         func(*walker)
)

// readDir reads level i to its end: it yields its files and records its
// subdirectories. It returns only fn's error.
func (w *walker) readDir(i int) error {
	defer w.dirDone(&w.stack[i])
	if j := w.stack[i].pre; j != nil {
		// Read ahead: what the worker read first, then on from there.
		w.stack[i].pre = nil
		l := &w.stack[i]
		l.dir, l.hook = j.dir, w.o.Dir != nil && j.hooked
		bad, err := w.parse(i, j.buf[:j.n])
		w.putBuf(j.buf)
		if err != nil || bad || j.eof {
			return err
		}
		if j.rerr != nil {
			w.report(l.path, fmt.Errorf("read directory: %w", j.rerr))
			return nil
		}
	}
	for {
		l := &w.stack[i]
		n, err := getdents(l.fd, w.buf)
		if err != nil {
			w.report(l.path, fmt.Errorf("read directory: %w", err))
			return nil
		}
		if n <= 0 {
			return nil
		}
		if bad, err := w.parse(i, w.buf[:n]); err != nil || bad {
			return err
		}
	}
}

// Offsets in struct linux_dirent64.
const (
	direntIno    = 0
	direntReclen = 16
	direntType   = 18
	direntName   = 19
)

// parse yields the files of one getdents64 buffer of level i and records
// its subdirectories. bad says the buffer was malformed (reported); err is
// fn's.
func (w *walker) parse(i int, buf []byte) (bad bool, err error) {
	depth := i + 1 // the root is level 0
	descend := w.o.MaxDepth <= 0 || depth < w.o.MaxDepth
	l := &w.stack[i]
	n := len(buf)
	for off := 0; off+direntName < n; {
		rec := buf[off:]
		reclen := int(binary.NativeEndian.Uint16(rec[direntReclen:]))
		if reclen <= direntName || off+reclen > n {
			w.report(l.path, errors.New("read directory: malformed linux_dirent64 record"))
			return true, nil
		}
		off += reclen
		name := rec[direntName:reclen]
		if z := bytes.IndexByte(name, 0); z >= 0 {
			name = name[:z]
		}
		if len(name) == 0 || name[0] == '.' && (len(name) == 1 || len(name) == 2 && name[1] == '.') {
			continue
		}
		typ := rec[direntType]
		if testForceUnknown {
			typ = unix.DT_UNKNOWN
		}
		followed := false
		if typ == unix.DT_UNKNOWN || typ == unix.DT_LNK && w.o.Follow {
			var ok bool
			typ, followed, ok = w.resolve(l, name, typ)
			if !ok {
				continue
			}
		}
		if typ == unix.DT_DIR {
			if descend && !w.excluded(name) {
				l.subdirs = append(l.subdirs, string(name))
			}
			continue
		}
		p := l.prefix + string(name)
		e := Entry{Dirfd: l.fd, Name: p[len(l.prefix):], Path: p, Type: typ, Depth: depth, Followed: followed,
			Ino: binary.NativeEndian.Uint64(rec[direntIno:])}
		if !w.wanted(e.Name) {
			continue
		}
		if !l.hook && w.o.Dir != nil {
			l.dir, l.hook = w.o.Dir(l.fd, 0), true
		}
		e.Dir = l.dir
		if err := w.fn(e); err != nil {
			return false, err
		}
	}
	return false, nil
}

// dirDone hands the level's Options.Dir value back.
func (w *walker) dirDone(l *level) {
	if l.hook && l.dir != nil && w.o.DirDone != nil {
		w.o.DirDone(l.dir)
	}
	l.dir, l.hook = nil, false
}

// resolve finds the type of an entry whose d_type is DT_UNKNOWN, or the
// type of a symlink's target with Follow. It reports vanished entries and
// broken symlinks and returns ok false for them.
func (w *walker) resolve(l *level, name []byte, typ uint8) (uint8, bool, bool) {
	s := string(name)
	var st unix.Stat_t
	if typ == unix.DT_UNKNOWN {
		if err := fstatat(l.fd, s, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			w.report(l.prefix+s, err)
			return 0, false, false
		}
		typ = modeToType(st.Mode)
		if typ != unix.DT_LNK || !w.o.Follow {
			return typ, false, true
		}
	}
	if err := fstatat(l.fd, s, &st, 0); err != nil {
		if errors.Is(err, unix.ENOENT) && fstatat(l.fd, s, &st, unix.AT_SYMLINK_NOFOLLOW) == unix.ENOENT {
			w.report(l.prefix+s, err) // the symlink itself vanished
		} else {
			w.report(l.prefix+s, fmt.Errorf("broken symlink: %w", err))
		}
		return 0, false, false
	}
	return modeToType(st.Mode), true, true
}

// modeToType is the dirent type of a file mode: Linux defines each DT_*
// as its S_IF* bits shifted down by 12 (a mode with no type gives
// DT_UNKNOWN, 0).
func modeToType(mode uint32) uint8 {
	return uint8((mode & unix.S_IFMT) >> 12)
}

func (w *walker) excluded(name []byte) bool {
	for _, p := range w.o.Exclude {
		if ok, _ := path.Match(p, string(name)); ok {
			return true
		}
	}
	return false
}

// wanted tells whether a non-directory entry passes Include and Exclude.
func (w *walker) wanted(name string) bool {
	for _, p := range w.o.Exclude {
		if ok, _ := path.Match(p, name); ok {
			return false
		}
	}
	if len(w.o.Include) == 0 {
		return true
	}
	for _, p := range w.o.Include {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func joinPrefix(root string) string {
	if strings.HasSuffix(root, "/") {
		return root
	}
	return root + "/"
}

// openDir opens a directory below the root, once more if it failed for
// want of fds and Options.OutOfFds freed some.
func (w *walker) openDir(dirfd int, name string, flags int) (int, error) {
	fd, err := openRetry(dirfd, name, flags)
	if outOfFds(err) && w.ahead.inflight > 0 {
		// Out of fds while directories are read ahead: give theirs back
		// (the walk opens them when it comes to them) and try again, as a
		// walk without workers would stand.
		for i := range w.stack {
			w.dropAhead(&w.stack[i])
		}
		fd, err = openRetry(dirfd, name, flags)
	}
	if outOfFds(err) && w.o.OutOfFds != nil && w.o.OutOfFds() {
		fd, err = openRetry(dirfd, name, flags)
	}
	return fd, err
}

func outOfFds(err error) bool { return err == unix.EMFILE || err == unix.ENFILE }

func openRetry(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func fstat(fd int, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if err != unix.EINTR {
			return err
		}
	}
}

func fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	for {
		err := unix.Fstatat(dirfd, name, st, flags)
		if err != unix.EINTR {
			return err
		}
	}
}

func getdents(fd int, buf []byte) (int, error) {
	for {
		n, err := unix.Getdents(fd, buf)
		if err != unix.EINTR {
			return n, err
		}
	}
}
