package cachectl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// cached counts the pages of fd the kernel holds (cachestat, which needs
// Linux >= 6.5; the test skips without it).
func cached(t *testing.T, fd int, off, n int64) uint64 {
	t.Helper()
	var cs unix.Cachestat_t
	err := unix.Cachestat(uint(fd), &unix.CachestatRange{Off: uint64(off), Len: uint64(n)}, &cs, 0)
	if errors.Is(err, unix.ENOSYS) {
		t.Skip("no cachestat(2) on this kernel (Linux < 6.5)")
	}
	if err != nil {
		t.Fatal(err)
	}
	return cs.Cache
}

func TestTouchEvict(t *testing.T) {
	page := int64(units.PageSize)
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 8*page), 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := Evict(fd, true, 0, 8*page, true); err != nil {
		t.Fatal(err)
	}
	if n := cached(t, fd, 0, 0); n != 0 {
		t.Fatalf("%d pages cached after Evict of the whole file", n)
	}
	var read uint64
	if err := Touch(fd, page+1, 3*page, func(n uint64) { read += n }); err != nil {
		t.Fatal(err)
	}
	if n := cached(t, fd, page, 2*page); n != 2 || read != uint64(2*page-1) {
		t.Fatalf("after touching bytes [page+1, 3 pages): %d pages of those 2 cached, %d bytes read", n, read)
	}
	// Evicting a span drops the pages that hold it, whole, and no other.
	if err := Evict(fd, false, page+10, page+20, false); err != nil {
		t.Fatal(err)
	}
	if a, b := cached(t, fd, page, page), cached(t, fd, 2*page, page); a != 0 || b != 1 {
		t.Errorf("after evicting bytes inside page 1: page 1 %d, page 2 %d cached; want 0 and 1", a, b)
	}
}

func TestLockAndCheckMemlock(t *testing.T) {
	if i, err := CheckMemlock([]uint64{1 << 62}, true); i != -1 || err != nil {
		t.Errorf("CAP_IPC_LOCK: %d %v", i, err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur == unix.RLIM_INFINITY {
		t.Skip("RLIMIT_MEMLOCK is unlimited here")
	}
	i, err := CheckMemlock([]uint64{lim.Cur / 2, lim.Cur / 2, 4096}, false)
	var ml *MemlockError
	if i != 2 || !errors.As(err, &ml) || ml.Need != 4096 || ml.Locked != lim.Cur/2*2 {
		t.Errorf("over the limit at the third span: %d %v", i, err)
	}
	if !strings.Contains(err.Error(), "RLIMIT_MEMLOCK allows") || !strings.Contains(err.Error(), "nothing stays locked") {
		t.Errorf("message: %v", err)
	}
	fd, err := unix.MemfdCreate("lock-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	page := int64(units.PageSize)
	if err := unix.Ftruncate(fd, 3*page); err != nil {
		t.Fatal(err)
	}
	var h Held
	mem, err := Lock(fd, page+1, 2*page+1)
	if err != nil {
		t.Fatal(err)
	}
	h.Add(mem)
	if h.Len() != 1 || h.Bytes != uint64(2*page) {
		t.Errorf("held %d mappings, %d bytes; want 1 and 2 pages", h.Len(), h.Bytes)
	}
	h.Release()
	if h.Len() != 0 || h.Bytes != 0 {
		t.Errorf("after Release: %d mappings, %d bytes", h.Len(), h.Bytes)
	}
	if mem, err := Lock(fd, 5, 5); mem != nil || err != nil {
		t.Errorf("an empty span: %v %v", mem, err)
	}
}
