package integration

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The references every figure is held to: system calls made here, never
// the code under test (cmd/filecache/internal/...), so that no engine is
// its own oracle. cachestat(2) where the kernel has it (Linux >= 6.5),
// and mincore(2) on a mapping made here on every kernel.

// kernelCachestat is cachestat(2) over the pages holding bytes
// [off, off+n) of fd; n 0 reaches the end of the mapping (pages past EOF
// included). fd must be a real open file (O_PATH fails with EBADF).
func kernelCachestat(fd int, off, n int64) (unix.Cachestat_t, error) {
	var cs unix.Cachestat_t
	err := unix.Cachestat(uint(fd), &unix.CachestatRange{Off: uint64(off), Len: uint64(n)}, &cs, 0)
	if err != nil {
		return cs, fmt.Errorf("cachestat: %w", err)
	}
	return cs, nil
}

// haveCachestat says whether this kernel has cachestat(2): a bad fd gets
// EBADF from a kernel that has it, ENOSYS from one that has not.
func haveCachestat() bool {
	_, err := kernelCachestat(-1, 0, 0)
	return !errors.Is(err, unix.ENOSYS)
}

// kernelMincore counts the pages holding bytes [off, off+n) of fd, clipped
// to size bytes (n 0: to size), that mincore(2) reports resident on a
// shared read-only mapping of them made here.
func kernelMincore(fd int, size, off, n int64) (uint64, error) {
	end := size
	if n > 0 {
		end = min(size, off+n)
	}
	start := off / pageSize * pageSize // mmap wants a page-aligned offset
	if start >= end {
		return 0, nil
	}
	var resident uint64
	const window = 1 << 30 // a window at a time: 1 GiB sparse files are tested
	for ; start < end; start += window {
		l := min(end-start, window)
		mem, err := unix.Mmap(fd, start, int(l), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return 0, fmt.Errorf("mmap %d bytes at %d: %w", l, start, err)
		}
		vec := make([]byte, (l+pageSize-1)/pageSize)
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0])))
		unix.Munmap(mem)
		if errno != 0 {
			return 0, fmt.Errorf("mincore: %w", errno)
		}
		for _, v := range vec {
			resident += uint64(v & 1)
		}
	}
	return resident, nil
}

// rangePagesOf is the kernel's count of cached pages holding bytes
// [off, off+n) of fd (n 0: to the end): cachestat(2), or mincore(2) before
// Linux 6.5. (Callers poll it while the state changes, so it does not hold
// one to the other: takeRef does, on a settled state.)
func rangePagesOf(fd int, off, n int64) (uint64, error) {
	cs, err := kernelCachestat(fd, off, n)
	if !errors.Is(err, unix.ENOSYS) {
		return cs.Cache, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("fstat: %w", err)
	}
	return kernelMincore(fd, st.Size, off, n)
}

// ref is what the kernel says of one file (or block device).
type ref struct {
	Size    int64 // bytes: st_size, or the device size for a block device
	Cache   uint64
	Dirty   uint64
	Mincore uint64
	Ino     uint64
	Dev     uint64
	Block   bool
	// NoCachestat: the kernel has no cachestat(2); Cache is mincore's.
	NoCachestat bool
}

// takeRef reads both references for path (following symlinks) through a
// real O_RDONLY fd.
func takeRef(path string) (ref, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ref{}, fmt.Errorf("open %q: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return ref{}, fmt.Errorf("fstat %q: %w", path, err)
	}
	r := ref{Size: st.Size, Ino: st.Ino, Dev: st.Dev}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFBLK:
		r.Block = true
		if r.Size, err = unix.Seek(fd, 0, io.SeekEnd); err != nil {
			return ref{}, fmt.Errorf("size of %q: %w", path, err)
		}
	default:
		return ref{}, fmt.Errorf("%q: not a regular file or block device", path)
	}
	if r.Mincore, err = kernelMincore(fd, r.Size, 0, 0); err != nil {
		return ref{}, fmt.Errorf("%q: %w", path, err)
	}
	cs, err := kernelCachestat(fd, 0, 0)
	switch {
	case errors.Is(err, unix.ENOSYS):
		// Before Linux 6.5 mincore is the only reference; every state
		// these tests make has no page past EOF, where the two differ.
		r.Cache, r.NoCachestat = r.Mincore, true
	case err != nil:
		return ref{}, fmt.Errorf("%q: %w", path, err)
	default:
		r.Cache, r.Dirty = cs.Cache, cs.Dirty
	}
	return r, nil
}

// cachedPages is the kernel's count of fd's cached pages.
func cachedPages(fd int) (uint64, error) { return rangePagesOf(fd, 0, 0) }

// wantPercent is a percentage as the README defines it: 100 * cached /
// total, rounded to two decimals (halves away from zero), 0 when total is 0.
func wantPercent(cached, total int64) float64 {
	if total == 0 {
		return 0
	}
	return math.Round(float64(cached)*10000/float64(total)) / 100
}

// displayPath is a path as the README says it is shown on a terminal line:
// as it is, unless it would not print on one line (the empty path, invalid
// UTF-8, a newline or another unprintable character): then Go-quoted.
func displayPath(p string) string {
	if p == "" || !utf8.ValidString(p) || strings.IndexFunc(p, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(p)
	}
	return p
}

// The references agree with vmtouch and fincore (scripts/deps.sh installs
// both; vmtest copies them into its guests), and with what the test wrote
// on a tmpfs, which keeps every page written: the suite's oracle is held
// to two tools written by others, on every kernel, cachestat(2) or not.
func TestReferencesAgreeWithTools(t *testing.T) {
	filecacheBin(t)
	once(t)
	vmtouch, err := exec.LookPath("vmtouch")
	if err != nil {
		skipFeature(t, "vmtouch", "vmtouch is not on PATH: %v", err)
	}
	fincore, err := exec.LookPath("fincore")
	if err != nil {
		skipFeature(t, "fincore", "fincore is not on PATH: %v", err)
	}
	dir := tmpfsDir(t)
	files := []struct {
		name   string
		size   int64
		writes [][2]int64 // {offset, length}
		pages  uint64     // cached, as written
	}{
		{"full", 3*mib + 5, [][2]int64{{0, 3*mib + 5}}, uint64(3*mib/pageSize) + 1},
		{"sparse", 8 * mib, [][2]int64{{2*mib + 4096, mib}, {7 * mib, 3 * 4096}}, uint64(mib/pageSize) + 3},
		{"empty", 0, nil, 0},
	}
	vmtouchRe := regexp.MustCompile(`Resident Pages: (\d+)/(\d+)`)
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		sized(t, p, f.size)
		for _, w := range f.writes {
			writeAt(t, p, w[0], w[1])
		}
		r, err := takeRef(p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(vmtouch, p).CombinedOutput()
		m := vmtouchRe.FindSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("vmtouch %s: %v\n%s", p, err, out)
		}
		vt, _ := strconv.ParseUint(string(m[1]), 10, 64)
		out, err = exec.Command(fincore, "--noheadings", "--output", "PAGES", p).CombinedOutput()
		fc, perr := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
		if err != nil || perr != nil {
			t.Fatalf("fincore %s: %v %v\n%s", p, err, perr, out)
		}
		if r.Cache != f.pages || r.Mincore != f.pages || vt != f.pages || fc != f.pages {
			t.Errorf("%s: %d pages written; cachestat (or mincore before 6.5) %d, mincore %d, vmtouch %d, fincore %d",
				f.name, f.pages, r.Cache, r.Mincore, vt, fc)
		}
	}
}
