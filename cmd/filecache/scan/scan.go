// Package scan turns the paths a user named into measured files: it opens
// each path without reading it (O_PATH), classifies what it found, hands the
// openable ones to a page cache engine in batches, and reports every path,
// in order, with either figures or the reason it has none.
package scan

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/pagecache"
)

// Kinds of files that have figures.
const (
	KindFile  = "file"
	KindBlock = "block"
)

// File is one path's outcome.
type File struct {
	Path  string
	Kind  string // KindFile or KindBlock
	Dev   uint64 // st_dev of the inode (for a block device: of its node)
	Ino   uint64
	Size  int64  // bytes
	Pages uint64 // pages in the page cache
	// Engine names what measured the file; Detail holds cachestat's
	// dirty, writeback and eviction counts where that engine answered.
	Engine string
	Detail *pagecache.Cachestat
	Err    error // why there are no figures; nil when measured
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
	eng    pagecache.Engine
}

// Close releases the engine, if one was loaded.
func (s *Scanner) Close() {
	if s.eng != nil {
		s.eng.Close()
		s.eng = nil
	}
}

// EngineInUse is the engine that measured, or nil if none was needed.
func (s *Scanner) EngineInUse() pagecache.Engine { return s.eng }

type pending struct {
	file File
	fd   int
	mode uint32
	uid  uint32
}

// Scan measures paths in order and calls emit once per path, in order. It
// returns an *EngineError if the engine could not be loaded or run; the
// paths emitted before that stand.
func (s *Scanner) Scan(paths []string, emit func(File)) error {
	var batch []pending
	ready := 0 // entries of batch holding an open fd
	flush := func() error {
		defer func() {
			for _, p := range batch {
				if p.fd >= 0 {
					unix.Close(p.fd)
				}
			}
			batch, ready = batch[:0], 0
		}()
		if ready > 0 {
			if err := s.measure(batch); err != nil {
				return err
			}
		}
		for _, p := range batch {
			emit(p.file)
		}
		return nil
	}
	for _, path := range paths {
		p := open(path)
		batch = append(batch, p)
		if p.fd >= 0 {
			ready++
		}
		if ready >= s.batchSize() {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// fdBatch bounds the files open at once so their fd numbers stay inside the
// 64-slot fd table every process starts with. Growing that table in a
// multithreaded process (every Go process) waits for an RCU grace period,
// measured at 6-20 ms per doubling here: more than measuring 1000 files.
const fdBatch = 48

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
				handles = append(handles, pagecache.Handle{Fd: batch[i].fd, Mode: batch[i].mode, Uid: batch[i].uid})
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
			f.Pages, f.Size, f.Detail = a.Pages, a.Size, a.Detail
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
	p.file.Dev, p.file.Ino, p.mode, p.uid = st.Dev, st.Ino, st.Mode, st.Uid
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
