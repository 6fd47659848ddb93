// Package scan turns the paths a user named into measured files: it opens
// each path without reading it (O_PATH), classifies what it found, hands the
// openable ones to a page cache engine in batches, and reports every path,
// in order, with either figures or the reason it has none.
package scan

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/filecache/filecache/bpf"

	"github.com/filecache/filecache/cmd/filecache/internal/units"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/procs"
	"github.com/filecache/filecache/cmd/filecache/internal/walk"
)

// Kinds of File.
const (
	KindFile  = "file"
	KindBlock = "block"
	KindDir   = "directory" // a directory argument: the sums over its tree
)

// File is one path's outcome: a file measured, a directory argument's sums,
// or a path without figures.
type File struct {
	Path  string
	Kind  string // KindFile, KindBlock or KindDir
	Dev   uint64 // st_dev of the inode (for a block device: of its node)
	Ino   uint64
	Size  int64  // bytes
	Pages uint64 // pages in the page cache
	Span  uint64 // with a --range: the pages the range covers in this file
	Map   string // with --map: which parts are cached, MapWidth cells
	// Engine names what measured the file; Detail holds cachestat's
	// dirty, writeback and eviction counts where that engine answered.
	Engine string
	Detail *pagecache.Cachestat
	// Real is where an overlayfs file's pages are (the engine followed it
	// to its upper or lower file); nil otherwise.
	Real *pagecache.RealFile
	// Cgroups splits Pages by memory cgroup (--by-cgroup); for KindDir,
	// the tree's sums.
	Cgroups []pagecache.CgroupPages
	// Holders are the processes holding the file open or mapped (--pid),
	// set by the caller.
	Holders []procs.Holder
	// Extents and Mtime: from an extent engine (snapshot), the cached
	// pages as runs and the modification time read with them.
	Extents []pagecache.Extent
	Mtime   time.Time
	// Root is the directory argument a file was found under ("" for a
	// path named on the command line).
	Root string
	// For KindDir: the files measured in the tree (each inode once per
	// run: see countOnce), their pages rounded up file by file, and the
	// paths inside the tree that have no figures.
	Files, Failed int
	TotalPages    uint64
	Err           error // why there are no figures; nil when measured
}

// Errors a path can get before any engine is asked.
var (
	ErrEmptyPath   = errors.New("empty path")
	ErrDirectory   = errors.New("is a directory (directory trees are not supported yet)")
	ErrNoPageCache = errors.New("has no page cache")
)

// EngineError is a failure to load or run the engine: no path after it can
// be answered, so scanning stops.
type EngineError struct{ Err error }

func (e *EngineError) Error() string { return e.Err.Error() }
func (e *EngineError) Unwrap() error { return e.Err }

// Scanner measures paths with an engine it gets on first need, so a run in
// which every path fails never needs the engine's privileges.
type Scanner struct {
	Engine func() (pagecache.Engine, error)
	// Walk tunes how directory arguments are walked.
	Walk walk.Options
	// Ranged: the engine measures a range of each file (File.Span).
	Ranged bool
	// RealPath, if set, fills in the path of an overlayfs file's real
	// file, given the fd the scanner measured it through.
	RealPath func(fd int, real *pagecache.RealFile)
	// Dirs, if set, loads the dentry walk (dentries.go): a tree's regular
	// files are then answered from their directory's dentry cache where
	// the walk vouches for them, and opened only otherwise. Called once,
	// at the first tree; on an error trees are walked without it.
	Dirs func() (pagecache.DirReader, error)
	// Workers read directories ahead of a tree's walk, with the dentry
	// walk (walk.Options.Workers; at most bpf.DirSlots-1).
	Workers int
	eng     pagecache.Engine

	dirs       pagecache.DirReader
	dirsTried  bool
	dirRuns    atomic.Int64 // dentry walks run (on the walk's goroutines too)
	fromDentry int          // tree files answered from the dentry cache
	opened     int          // tree files opened

	batch []pending
	ready int // entries of batch holding an open fd
	// links are the inodes already counted in trees: the hard-linked
	// ones, and with Walk.Follow every one (a symlink may reach any).
	links   map[[2]uint64]struct{}
	visited walk.Visited // with Walk.Follow: the directories entered
	emit    func(File)
	tree    *File // the directory argument being walked
}

// Close releases the engine, if one was loaded.
func (s *Scanner) Close() {
	if s.eng != nil {
		s.eng.Close()
		s.eng = nil
	}
	if s.dirs != nil {
		s.dirs.Close()
		s.dirs = nil
	}
}

// EngineInUse is the engine that measured, or nil if none was needed.
func (s *Scanner) EngineInUse() pagecache.Engine { return s.eng }

type pending struct {
	file File
	fd   int
	mode uint32
	// dup: a hard link to an inode a tree already counted; not emitted.
	dup   bool
	nlink uint32
	// answered: the figures are in file already (the dentry walk's).
	answered bool
}

// Scan measures paths in order and calls emit once per path, in order. A
// directory is walked: emit gets each file found in it (with Root set) and
// each path inside it that has no figures, then the directory itself with
// the sums (KindDir). Scan returns an *EngineError if the engine could not
// be loaded or run, or the error emit's caller handed back through Stop;
// what was emitted before stands.
func (s *Scanner) Scan(paths []string, emit func(File)) error {
	return s.ScanSeq(slices.Values(paths), emit)
}

// ScanSeq is Scan over a sequence of paths, so a --from list is streamed,
// not held.
func (s *Scanner) ScanSeq(paths iter.Seq[string], emit func(File)) error {
	s.emit = emit
	s.batch, s.ready = nil, 0
	var err error
	for path := range paths {
		p := open(path)
		if s.outOfFds(p.file.Err) {
			if err := s.flush(); err != nil {
				return err
			}
			p = open(path)
		}
		if errors.Is(p.file.Err, ErrDirectory) {
			err = s.scanTree(path)
		} else {
			err = s.push(p)
		}
		if err != nil {
			return err
		}
	}
	return s.flush()
}

// outOfFds says whether an open (a file's, or a directory's in a tree)
// failed for want of fds while the batch holds some: measuring the batch
// closes them, and the open is tried again.
// The batch never needs more fds than RLIMIT_NOFILE leaves (64 is enough).
func (s *Scanner) outOfFds(err error) bool {
	return s.ready > 0 && (errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE))
}

// push queues one outcome, measuring the queue when enough fds are open.
func (s *Scanner) push(p pending) error {
	s.batch = append(s.batch, p)
	if p.fd >= 0 {
		s.ready++
	}
	// The first file is measured alone, so that the engine loads (libbpf
	// holds an fd for every map of the object while it opens it) with one
	// file's fd open rather than a batch's: under a low RLIMIT_NOFILE a
	// full batch would leave it too few.
	if s.ready >= s.batchSize() || len(s.batch) >= maxPending || s.eng == nil && s.ready > 0 {
		return s.flush()
	}
	return nil
}

// maxPending bounds the outcomes queued: files the dentry walk answered
// hold no fd, and without a bound a warm tree would queue all of them.
const maxPending = 256

// flush measures the queued files and emits every queued outcome in order.
func (s *Scanner) flush() error {
	defer func() {
		for _, p := range s.batch {
			switch {
			case p.fd < 0:
			case p.mode&unix.S_IFMT == unix.S_IFREG:
				unix.RawSyscall(unix.SYS_CLOSE, uintptr(p.fd), 0, 0) // O_PATH: nothing to release but the fd
			default:
				unix.Close(p.fd) // a block device's last close may write back
			}
		}
		s.batch, s.ready = s.batch[:0], 0
	}()
	if s.ready > 0 {
		if err := s.measure(s.batch); err != nil {
			return err
		}
	}
	// Hard links are counted once, the first in the order of the walk.
	for i := range s.batch {
		if p := &s.batch[i]; p.answered {
			s.countOnce(p)
		}
	}
	for _, p := range s.batch {
		if p.dup {
			continue
		}
		if t := s.tree; t != nil && p.file.Root == t.Path {
			if p.file.Err != nil {
				t.Failed++
			} else {
				t.Files++
				t.Size += p.file.Size
				t.Pages += p.file.Pages
				t.Cgroups = pagecache.AddCgroups(t.Cgroups, p.file.Cgroups)
				if s.Ranged {
					t.TotalPages += p.file.Span
				} else {
					t.TotalPages += units.PagesOf(p.file.Size)
				}
			}
		}
		s.emit(p.file)
	}
	return nil
}

// scanTree walks a directory argument, measures its regular files (each
// inode once per run: see countOnce), and emits the tree's sums last.
func (s *Scanner) scanTree(root string) error {
	if err := s.flush(); err != nil {
		return err
	}
	t := &File{Path: root, Kind: KindDir}
	s.tree = t
	defer func() { s.tree = nil }()
	var ferr error
	onErr := func(path string, err error) {
		if ferr == nil {
			ferr = s.push(pending{file: File{Path: path, Root: root, Err: err}, fd: -1})
		}
	}
	o := s.Walk
	if o.Follow {
		o.Visited = &s.visited // each directory once per run, across arguments
	}
	// A directory the walk cannot open for want of fds gets them from the
	// batch, measured and closed first (as a file's open does).
	o.OutOfFds = func() bool {
		if ferr != nil || s.ready == 0 {
			return false
		}
		ferr = s.flush()
		return ferr == nil
	}
	if s.dirReader() != nil {
		o.Dir, o.DirDone = s.readDentries, releaseDentries
		o.Workers = min(s.Workers, bpf.DirSlots-1)
	}
	err := walk.Walk(root, o, func(e walk.Entry) error {
		if ferr != nil {
			return ferr
		}
		p, ok := s.fromDentries(e.Path, e.Type, e.Followed, e.Ino, e.Dir)
		if !ok {
			p, ok = s.openEntry(e)
			if ok && s.outOfFds(p.file.Err) {
				if ferr = s.flush(); ferr != nil {
					return ferr
				}
				p, ok = s.openEntry(e)
			}
			if !ok {
				return nil
			}
			s.opened++
		}
		p.file.Root = root
		ferr = s.push(p)
		return ferr
	}, onErr)
	if ferr != nil {
		return ferr
	}
	if err != nil {
		t.Err = err
	}
	if err := s.flush(); err != nil {
		return err
	}
	if st, serr := os.Stat(root); serr == nil {
		t.Dev = statDev(st)
	}
	s.emit(*t)
	return nil
}

// openEntry opens a file found in a tree without reading it, and without
// an fstat: the walker's d_type says it is a regular file, and the engine
// checks that and reports the inode (for hard links) with its figures.
// Only regular files count, as with vmtouch.
func (s *Scanner) openEntry(e walk.Entry) (pending, bool) {
	p := pending{file: File{Path: e.Path, Kind: KindFile}, fd: -1, mode: unix.S_IFREG}
	if e.Type != unix.DT_REG {
		return p, false
	}
	flags := unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW
	if e.Followed {
		flags &^= unix.O_NOFOLLOW
	}
	fd, err := openatRaw(e.Dirfd, e.Name, flags)
	if err != nil {
		p.file.Err = err // vanished since it was listed, most often
		return p, true
	}
	p.fd = fd
	return p, true
}

// openatRaw is openat(2) without the Go scheduler's syscall hand-off, which
// costs more than an O_PATH open itself: on a tree of 100,000 files it
// took a tenth of the run. O_PATH never reads the file, so on local
// filesystems the call returns without waiting on I/O; on FUSE or NFS a
// lookup may wait, holding this thread as the regular call would hold the
// goroutine.
func openatRaw(dirfd int, name string, flags int) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	fd, _, errno := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// countOnce marks a tree's file whose inode a tree of this run already
// counted: a hard link, or with Walk.Follow any inode, which a symlink to
// it or to a directory above it may reach again. Without Follow only
// hard-linked inodes are remembered, so memory does not grow with the
// files.
func (s *Scanner) countOnce(p *pending) {
	if p.file.Root == "" || p.nlink <= 1 && !s.Walk.Follow {
		return
	}
	key := [2]uint64{p.file.Dev, p.file.Ino}
	if _, seen := s.links[key]; seen {
		p.dup = true
		return
	}
	if s.links == nil {
		s.links = map[[2]uint64]struct{}{}
	}
	s.links[key] = struct{}{}
}

// fdBatch bounds the files open at once so their fd numbers stay inside the
// 64-slot fd table every process starts with. Growing that table in a
// multithreaded process (every Go process) waits for an RCU grace period,
// measured at 6-20 ms per doubling here: more than measuring 1000 files.
// 32 leaves room for the walker's directory fds and the BPF object's:
// libbpf holds one fd for every map of the object, created or not (the
// object opens with only the first file's fd open, see push; a batch that
// still runs out of fds is measured and retried, see outOfFds).
const fdBatch = 32

func (s *Scanner) batchSize() int {
	if s.eng != nil && s.eng.BatchSize() < fdBatch {
		return s.eng.BatchSize()
	}
	return fdBatch
}

func (s *Scanner) measure(batch []pending) error {
	if s.eng == nil {
		eng, err := s.Engine()
		if err != nil {
			return &EngineError{Err: err}
		}
		s.eng = eng
	}
	for start := 0; start < len(batch); {
		var handles []pagecache.Handle
		var idx []int
		i := start
		for ; i < len(batch) && len(handles) < s.eng.BatchSize(); i++ {
			if batch[i].fd >= 0 {
				handles = append(handles, pagecache.Handle{Fd: batch[i].fd, Mode: batch[i].mode})
				idx = append(idx, i)
			}
		}
		start = i
		if len(handles) == 0 {
			continue
		}
		answers, err := s.eng.Query(handles)
		if err != nil {
			return &EngineError{Err: err}
		}
		for j, a := range answers {
			f := &batch[idx[j]].file
			if a.Err != nil {
				f.Err = a.Err
				continue
			}
			f.Pages, f.Size, f.Detail, f.Span, f.Map = a.Pages, a.Size, a.Detail, a.Span, a.Map
			f.Real, f.Cgroups = a.Real, a.Cgroups
			f.Extents, f.Mtime = a.Extents, a.Mtime
			if f.Real != nil && s.RealPath != nil {
				s.RealPath(batch[idx[j]].fd, f.Real)
			}
			if f.Root != "" { // a tree's file: the engine's stat stands in for ours
				f.Dev, f.Ino = a.Dev, a.Ino
			}
			batch[idx[j]].nlink = a.Nlink
			batch[idx[j]].answered = true
			f.Engine = a.Engine
			if f.Engine == "" {
				f.Engine = s.eng.Name()
			}
		}
	}
	return nil
}

// open names path by an fd without reading it: O_PATH needs no permission on
// the file itself, never blocks (FIFOs) and has no device side effects. Only
// a block device is opened for real, since its cache belongs to the device,
// not to its node.
func open(path string) pending {
	p := pending{file: File{Path: path}, fd: -1}
	if path == "" {
		p.file.Err = ErrEmptyPath
		return p
	}
	fd, err := openRetry(path, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		p.file.Err = err
		return p
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		p.file.Err = fmt.Errorf("fstat: %w", err)
		return p
	}
	p.file.Dev, p.file.Ino, p.mode = st.Dev, st.Ino, st.Mode
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		p.file.Kind, p.fd = KindFile, fd
	case unix.S_IFBLK:
		unix.Close(fd)
		bfd, err := openBlock(path, st)
		if err != nil {
			p.file.Err = err
			return p
		}
		p.file.Kind, p.fd = KindBlock, bfd
	case unix.S_IFDIR:
		unix.Close(fd)
		p.file.Err = ErrDirectory
	default:
		unix.Close(fd)
		p.file.Err = fmt.Errorf("is a %s, which %w", kindName(st.Mode), ErrNoPageCache)
	}
	return p
}

// openBlock opens a block device read-only, checking it is still the device
// the O_PATH fd named.
func openBlock(path string, was unix.Stat_t) (int, error) {
	fd, err := openRetry(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("open block device: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Rdev != was.Rdev || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		unix.Close(fd)
		return -1, errors.New("replaced while being opened")
	}
	return fd, nil
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func kindName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("file of type %o", mode&unix.S_IFMT)
}

func statDev(st os.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Dev
	}
	return 0
}
