// Package pagecache asks the kernel how many pages of a file sit in the page
// cache. It holds the Engine interface the scanner queries, the adapter that
// turns the BPF program's records into answers, and the two system calls
// that answer the same question for comparison and fallback: cachestat(2)
// and mincore(2).
package pagecache

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cachestat is struct cachestat: page counts of a range of a file.
type Cachestat struct {
	Cache           uint64 // pages in the page cache
	Dirty           uint64
	Writeback       uint64
	Evicted         uint64
	RecentlyEvicted uint64
}

// CachestatFd runs cachestat(2) over the whole file behind fd (a range of
// length 0 reaches the end of the mapping). fd must be a real open file:
// the kernel refuses O_PATH fds with EBADF.
func CachestatFd(fd int) (Cachestat, error) { return CachestatRange(fd, 0, 0) }

// CachestatRange is cachestat(2) over the pages holding bytes [off, off+n)
// of the file behind fd; n == 0 reaches the end of the mapping.
func CachestatRange(fd int, off, n int64) (Cachestat, error) {
	var cs unix.Cachestat_t
	if err := unix.Cachestat(uint(fd), &unix.CachestatRange{Off: uint64(off), Len: uint64(n)}, &cs, 0); err != nil {
		return Cachestat{}, fmt.Errorf("cachestat: %w", err)
	}
	return Cachestat{Cache: cs.Cache, Dirty: cs.Dirty, Writeback: cs.Writeback, Evicted: cs.Evicted, RecentlyEvicted: cs.Recently_evicted}, nil
}

// MincoreFd maps size bytes of the file behind fd and counts the pages
// mincore(2) reports resident. It costs O(size) and needs a readable fd.
// Since Linux 5.2 mincore reports every page of a file the caller neither
// owns nor can write as resident, so callers must not trust it for those.
func MincoreFd(fd int, size int64) (uint64, error) { return MincoreRange(fd, size, 0, size) }

// MincoreRange counts the resident pages holding bytes [from, from+n) of a
// file of size bytes, clipped to the file.
func MincoreRange(fd int, size, from, n int64) (uint64, error) {
	page := int64(unix.Getpagesize())
	end := min(size, from+n)
	from -= from % page // mmap wants a page-aligned offset
	if from >= end || n <= 0 {
		return 0, nil
	}
	const chunk = 1 << 30 // map a window at a time: 1 TiB sparse files exist
	// Sized to the window: a small file must not pay for a 256 KiB vector.
	vec := make([]byte, (min(end-from, chunk)+page-1)/page)
	var resident uint64
	for off := from; off < end; off += chunk {
		n := min(end-off, chunk)
		mem, err := unix.Mmap(fd, off, int(n), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return 0, fmt.Errorf("mmap: %w", err)
		}
		pages := (n + page - 1) / page
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])),
			uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0])))
		unix.Munmap(mem)
		if errno != 0 {
			return 0, fmt.Errorf("mincore: %w", errno)
		}
		for _, v := range vec[:pages] {
			resident += uint64(v & 1)
		}
	}
	return resident, nil
}
