package pagecache

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// shmemFile is a memfd of size pages whose first cached pages hold data:
// shmem keeps exactly the pages written and is not reclaimed without swap,
// so the state stays what the test set. It returns an O_PATH fd, as the
// scanner hands the engines, and a readable fd for the references.
func shmemFile(t *testing.T, size, cached int64) (opath, rd int) {
	t.Helper()
	page := int64(unix.Getpagesize())
	fd, err := unix.MemfdCreate("filecache-range-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Ftruncate(fd, size*page); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, cached*page)
	for i := range buf {
		buf[i] = 1
	}
	if n, err := unix.Pwrite(fd, buf, 0); err != nil || n != len(buf) {
		t.Fatalf("pwrite: %d, %v", n, err)
	}
	opath, err = unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(opath) })
	return opath, fd
}

// rawCachestat is cachestat(2) called here, not through the package's
// wrapper: the reference the engines are checked against.
func rawCachestat(t *testing.T, fd int, off, n int64) (unix.Cachestat_t, bool) {
	t.Helper()
	var cs unix.Cachestat_t
	err := unix.Cachestat(uint(fd), &unix.CachestatRange{Off: uint64(off), Len: uint64(n)}, &cs, 0)
	if errors.Is(err, unix.ENOSYS) {
		return cs, false
	}
	if err != nil {
		t.Fatalf("cachestat: %v", err)
	}
	return cs, true
}

// --detail covers exactly the bytes measured, whichever engine measured
// them: the range's pages with a --range (none when it lies past the end),
// the whole file without.
func TestDetailCoversTheRange(t *testing.T) {
	page := int64(unix.Getpagesize())
	opath, rd := shmemFile(t, 64, 40) // pages 0-39 cached, 40-63 holes
	if _, ok := rawCachestat(t, rd, 0, 0); !ok {
		t.Skip("--detail needs cachestat(2), Linux >= 6.5")
	}
	for _, c := range []struct {
		name string
		rng  *Range
		// the bytes the figures must cover: [off, off+n), n 0 to the end
		off, n int64
		empty  bool
	}{
		{"whole", nil, 0, 0, false},
		{"straddling", &Range{Off: 32 * page, Len: 16 * page}, 32 * page, 16 * page, false},
		{"unaligned", &Range{Off: 38*page + 100, Len: 2 * page}, 38*page + 100, 2 * page, false},
		{"to-the-end", &Range{Off: 36 * page}, 36 * page, 28 * page, false},
		{"past-the-end", &Range{Off: 100 * page, Len: page}, 0, 0, true},
	} {
		for _, eng := range []Engine{MincoreEngine{Range: c.rng}, CachestatEngine{Range: c.rng}} {
			t.Run(c.name+"/"+eng.Name(), func(t *testing.T) {
				var noted error
				d := &Detailed{Engine: eng, Note: func(err error) { noted = err }}
				got, err := d.Query([]Handle{{Fd: opath, Mode: unix.S_IFREG}})
				if err != nil || got[0].Err != nil || noted != nil {
					t.Fatalf("query: %v, %+v, note %v", err, got, noted)
				}
				a := got[0]
				var want unix.Cachestat_t
				if !c.empty {
					want, _ = rawCachestat(t, rd, c.off, c.n)
				}
				if a.Detail == nil {
					t.Fatalf("no detail: %+v", a)
				}
				if a.Pages != want.Cache || a.Detail.Cache != want.Cache || a.Detail.Dirty != want.Dirty ||
					a.Detail.Writeback != want.Writeback || a.Detail.Evicted != want.Evicted ||
					a.Detail.RecentlyEvicted != want.Recently_evicted {
					t.Errorf("pages %d, detail %+v; cachestat(2) over the bytes measured: %+v", a.Pages, *a.Detail, want)
				}
			})
		}
	}
}

// --map draws the bytes measured: with a --range, one cell per page of
// the range (up to MapWidth), not the whole file.
func TestMapCoversTheRange(t *testing.T) {
	page := int64(unix.Getpagesize())
	opath, rd := shmemFile(t, 64, 40)
	// The state the map must show: page 39 cached, page 40 not.
	if cs, ok := rawCachestat(t, rd, 39*page, 2*page); ok && cs.Cache != 1 {
		t.Fatalf("pages 39-40: %d cached, want 1", cs.Cache)
	}
	for _, c := range []struct {
		name string
		rng  *Range
		want string
	}{
		{"straddling", &Range{Off: 32 * page, Len: 16 * page}, "OOOOOOOO        "},
		{"unaligned", &Range{Off: 38*page + 100, Len: 2 * page}, "OO "},
		{"past-the-end", &Range{Off: 100 * page, Len: page}, ""},
	} {
		for _, eng := range []Engine{MincoreEngine{Range: c.rng}, CachestatEngine{Range: c.rng}} {
			t.Run(c.name+"/"+eng.Name(), func(t *testing.T) {
				got, err := Mapped{Engine: eng}.Query([]Handle{{Fd: opath, Mode: unix.S_IFREG}})
				if errors.Is(err, ErrUnavailable) {
					t.Skip("no cachestat(2) on this kernel")
				}
				if err != nil || got[0].Err != nil {
					t.Fatalf("query: %v, %+v", err, got)
				}
				if got[0].Map != c.want {
					t.Errorf("map %q, want %q (pages 0-39 of 64 cached)", got[0].Map, c.want)
				}
			})
		}
	}
}
