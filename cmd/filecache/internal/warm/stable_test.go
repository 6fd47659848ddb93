package warm

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

// countEngine answers every file with one run and counts its queries.
type countEngine struct{ calls [][]int }

func (*countEngine) Name() string   { return "count" }
func (*countEngine) Method() string { return "test" }
func (*countEngine) BatchSize() int { return 64 }
func (*countEngine) Close()         {}
func (c *countEngine) Query(hs []pagecache.Handle) ([]pagecache.Answer, error) {
	var fds []int
	out := make([]pagecache.Answer, len(hs))
	for i, h := range hs {
		fds = append(fds, h.Fd)
		out[i] = pagecache.Answer{Size: 1, Pages: 1, Extents: []pagecache.Extent{{First: 0, Pages: 1}}}
	}
	c.calls = append(c.calls, fds)
	return out, nil
}

// A file that changes between the two fstats around its listing is listed
// again; one that keeps changing gets an error; the others keep the
// figures of their first listing, with the mtime and size of the stat.
func TestStable(t *testing.T) {
	stats := map[int]int{} // fstat calls by fd
	stat := func(fd int, st *unix.Stat_t) error {
		stats[fd]++
		n := stats[fd]
		*st = unix.Stat_t{Ino: 7, Size: 4096, Mtim: unix.Timespec{Sec: 1000, Nsec: 5}}
		switch fd {
		case 4: // written during its first listing
			if n >= 2 {
				st.Mtim.Nsec = 6
			}
		case 5: // appended to during every listing
			st.Size += int64(n)
		case 6:
			if n >= 2 {
				st.Ino = 8 // replaced: another inode behind the fd? (a re-used name)
			}
		case 9:
			return unix.EBADF
		}
		return nil
	}
	eng := &countEngine{}
	hs := []pagecache.Handle{{Fd: 3}, {Fd: 4}, {Fd: 5}, {Fd: 9}}
	ans, err := Stable{Engine: eng, Stat: stat}.Query(hs)
	if err != nil {
		t.Fatal(err)
	}
	if a := ans[0]; a.Err != nil || a.Size != 4096 || !a.Mtime.Equal(time.Unix(1000, 5)) || len(eng.calls) != 3 {
		t.Errorf("a settled file: %+v after %d queries", a, len(eng.calls))
	}
	if a := ans[1]; a.Err != nil || !a.Mtime.Equal(time.Unix(1000, 6)) {
		t.Errorf("a file written during its first listing: %+v, want the second listing with the new mtime", a)
	}
	var ch *ErrChanging
	if a := ans[2]; !errors.As(a.Err, &ch) || ch.Tries != 3 {
		t.Errorf("a file changing during every listing: %+v", a)
	}
	if a := ans[3]; a.Err == nil {
		t.Errorf("a file that cannot be stat'ed: %+v", a)
	}
	if len(eng.calls[1]) != 2 || len(eng.calls[2]) != 1 || eng.calls[2][0] != 5 {
		t.Errorf("listings %v: want all, then the two that changed, then the one still changing", eng.calls)
	}
	ans, _ = Stable{Engine: &countEngine{}, Stat: stat, Tries: 1}.Query([]pagecache.Handle{{Fd: 6}})
	if !errors.As(ans[0].Err, &ch) || ch.What != "replaced" {
		t.Errorf("another inode: %+v", ans[0])
	}
}
