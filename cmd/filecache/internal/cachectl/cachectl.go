// Package cachectl changes what the page cache holds of an open file:
// bringing pages in (touch), dropping them (evict) and locking them in
// memory (lock), each over a byte span of the file.
package cachectl

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// Touch brings bytes [off, end) of fd into the page cache; progress, if
// not nil, is told of every chunk read.
func Touch(fd int, off, end int64, progress func(n uint64)) error {
	return TouchBuf(fd, off, end, make([]byte, 1<<20), progress)
}

// TouchBuf is Touch reading through buf (restore reuses one for many spans).
func TouchBuf(fd int, off, end int64, buf []byte, progress func(n uint64)) error {
	if off >= end {
		return nil
	}
	if err := unix.Fadvise(fd, off, end-off, unix.FADV_WILLNEED); err != nil {
		return fmt.Errorf("fadvise WILLNEED: %w", err)
	}
	// The hint may be ignored or cut short: read the bytes, which leaves
	// every page cached.
	return Read(fd, off, end, buf, progress)
}

// Read reads bytes [off, end) of fd through buf, a chunk of len(buf) at a
// time, and stops early at the end of the file; progress, if not nil, is
// told of every chunk read.
func Read(fd int, off, end int64, buf []byte, progress func(n uint64)) error {
	for off < end {
		n, err := unix.Pread(fd, buf[:min(int64(len(buf)), end-off)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			break
		}
		off += int64(n)
		if progress != nil {
			progress(uint64(n))
		}
	}
	return nil
}

// Evict drops the pages holding bytes [off, end) of fd, writing dirty ones
// back first when sync is set; toEOF drops those past the end of the file
// too (an open range).
func Evict(fd int, sync bool, off, end int64, toEOF bool) error {
	if off >= end && !toEOF {
		return nil
	}
	if sync {
		if err := unix.Fdatasync(fd); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
	}
	// The kernel drops only pages wholly inside the range it is given:
	// widen it to the pages that hold the bytes, as they are measured.
	page := int64(units.PageSize)
	start, n := off/page*page, int64(0)
	if !toEOF {
		n = (end+page-1)/page*page - start
	}
	if err := unix.Fadvise(fd, start, n, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise DONTNEED: %w", err)
	}
	return nil
}

// Lock maps the pages holding bytes [off, end) of fd and locks them in
// memory (mlock reads in those not cached yet). The pages stay locked
// until the mapping is unmapped; nil for an empty span.
func Lock(fd int, off, end int64) ([]byte, error) {
	if off >= end {
		return nil, nil
	}
	page := int64(units.PageSize)
	start := off / page * page // mmap wants a page-aligned offset
	mem, err := unix.Mmap(fd, start, int(end-start), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	if err := unix.Mlock(mem); err != nil {
		unix.Munmap(mem)
		if errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EAGAIN) {
			return nil, &MemlockError{Need: units.Bytes(units.PagesIn(start, end)), Err: err}
		}
		return nil, fmt.Errorf("mlock: %w", err)
	}
	return mem, nil
}

// Held is what a lock run holds locked: mappings, unlocked by Release.
type Held struct {
	maps  [][]byte
	Bytes uint64 // of whole pages
}

// Add keeps a locked mapping.
func (h *Held) Add(mem []byte) {
	if mem == nil {
		return
	}
	h.maps = append(h.maps, mem)
	h.Bytes += units.Bytes(units.PagesOf(int64(len(mem)))) // whole pages are locked
}

// Len is how many mappings are held.
func (h *Held) Len() int { return len(h.maps) }

// Release unmaps every mapping, which also unlocks its pages.
func (h *Held) Release() {
	for _, m := range h.maps {
		unix.Munmap(m)
	}
	h.maps = nil
	h.Bytes = 0
}

// MemlockError is a lock refused by RLIMIT_MEMLOCK (or, with
// CAP_IPC_LOCK, by memory itself): Need bytes more on top of Locked.
type MemlockError struct {
	Need, Locked uint64
	Capable      bool  // CAP_IPC_LOCK: the limit does not apply
	Err          error // mlock's errno; nil when refused before locking
}

func (e *MemlockError) Unwrap() error { return e.Err }

func (e *MemlockError) Error() string {
	all := e.Need + e.Locked
	what := fmt.Sprintf("%s (%d bytes) locked in all", units.Human(all), all)
	if e.Capable {
		return fmt.Sprintf("mlock: %v: not enough memory for %s; nothing stays locked", e.Err, what)
	}
	var lim unix.Rlimit
	limit := "RLIMIT_MEMLOCK (unreadable)"
	if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim) == nil {
		limit = fmt.Sprintf("RLIMIT_MEMLOCK allows %s (hard limit %s)", rlimitText(lim.Cur), rlimitText(lim.Max))
	}
	prefix := ""
	if e.Err != nil {
		prefix = fmt.Sprintf("mlock: %v: ", e.Err)
	}
	return fmt.Sprintf("%sneeds %s, but %s: raise it (ulimit -l, prlimit --memlock) or run with CAP_IPC_LOCK; nothing stays locked", prefix, what, limit)
}

func rlimitText(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return fmt.Sprintf("%d bytes", v)
}

// CheckMemlock refuses, before anything is locked, spans (bytes each, in
// order) whose pages pass RLIMIT_MEMLOCK: it returns the index of the first
// span that passes it. A process with CAP_IPC_LOCK (capable) is not bound.
func CheckMemlock(spans []uint64, capable bool) (int, error) {
	if capable {
		return -1, nil
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return -1, nil
	}
	var sum uint64
	for i, need := range spans {
		if sum+need > lim.Cur {
			return i, &MemlockError{Need: need, Locked: sum}
		}
		sum += need
	}
	return -1, nil
}
