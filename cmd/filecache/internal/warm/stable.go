package warm

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

// Stable lists each file's cached pages with an extent engine between two
// fstats of the file, and lists again a file whose size, modification time
// or inode changed in between: a snapshot's pages and the size and mtime
// that identify the file are then of one moment. A file that keeps
// changing gets an error after Tries listings.
type Stable struct {
	pagecache.Engine
	Tries int // 0: 3
	// Stat is fstat (tests replace it).
	Stat func(fd int, st *unix.Stat_t) error
}

// ErrChanging: a file changed during each listing of its pages.
type ErrChanging struct {
	Tries int
	What  string
}

func (e *ErrChanging) Error() string {
	return fmt.Sprintf("changed while its pages were listed, %d times (last: %s): not recorded", e.Tries, e.What)
}

func (s Stable) Query(files []pagecache.Handle) ([]pagecache.Answer, error) {
	tries := s.Tries
	if tries <= 0 {
		tries = 3
	}
	stat := s.Stat
	if stat == nil {
		stat = unix.Fstat
	}
	out := make([]pagecache.Answer, len(files))
	todo := make([]int, len(files))
	for i := range todo {
		todo[i] = i
	}
	for try := 1; len(todo) > 0; try++ {
		pre := make([]unix.Stat_t, len(todo))
		hs := make([]pagecache.Handle, len(todo))
		preErr := make([]error, len(todo))
		for j, i := range todo {
			hs[j] = files[i]
			preErr[j] = stat(files[i].Fd, &pre[j])
		}
		ans, err := s.Engine.Query(hs)
		if err != nil {
			return nil, err
		}
		var again []int
		for j, i := range todo {
			a := ans[j]
			var post unix.Stat_t
			switch {
			case a.Err != nil:
			case preErr[j] != nil:
				a.Err = fmt.Errorf("fstat: %w", preErr[j])
			default:
				if err := stat(files[i].Fd, &post); err != nil {
					a.Err = fmt.Errorf("fstat: %w", err)
					break
				}
				if what := changed(pre[j], post); what != "" {
					if try < tries {
						again = append(again, i)
						continue
					}
					a = pagecache.Answer{Err: &ErrChanging{Tries: tries, What: what}}
					break
				}
				// The figures and the identity of one moment: the stat's.
				a.Size, a.Mtime = post.Size, time.Unix(post.Mtim.Unix())
			}
			out[i] = a
		}
		todo = again
	}
	return out, nil
}

// changed says what differs between two fstats of one file ("" nothing).
func changed(a, b unix.Stat_t) string {
	switch {
	case a.Ino != b.Ino || a.Dev != b.Dev:
		return "replaced"
	case a.Size != b.Size:
		return fmt.Sprintf("size %d, then %d", a.Size, b.Size)
	case a.Mtim != b.Mtim:
		return fmt.Sprintf("mtime %s, then %s", stamp(a.Mtim), stamp(b.Mtim))
	}
	return ""
}

func stamp(t unix.Timespec) string {
	return time.Unix(t.Unix()).UTC().Format(time.RFC3339Nano)
}
