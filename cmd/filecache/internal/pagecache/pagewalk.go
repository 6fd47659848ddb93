package pagecache

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/filecache/filecache/bpf"
)

// PageWalker is the loaded page walk (cgo.Pages), behind an interface so the
// checks below are tested without root.
type PageWalker interface {
	Method() string
	Walk(fds []int32) ([]bpf.PageFile, []bpf.PageRec, error)
	Close()
}

// PageWalk is the engine that walks each file's page cache, page by page,
// and splits its cached pages by the memory cgroup each is charged to
// (--by-cgroup). Its cost follows the pages cached, not the file's size.
type PageWalk struct {
	Walker PageWalker
	// Walks is how many times a file whose cache changed during its walk
	// is walked in all before it gets an error (0: 4).
	Walks int
}

func (w PageWalk) Name() string   { return "bpf" }
func (w PageWalk) Method() string { return w.Walker.Method() }
func (w PageWalk) BatchSize() int { return bpf.Batch }
func (w PageWalk) Close()         { w.Walker.Close() }

func (w PageWalk) Query(files []Handle) ([]Answer, error) {
	return walkSettled(files, w.Walks, w.Walker.Walk, walkAnswer)
}

// walkSettled walks the files' page-cache trees with walk and turns each into
// an answer; a file whose cache changed during its walk (answer says it is
// not settled) is walked again, walks times in all (0: 4), then gets an
// error rather than a figure that was never true.
func walkSettled(files []Handle, walks int, walk func([]int32) ([]bpf.PageFile, []bpf.PageRec, error),
	answer func(Handle, bpf.PageFile, []bpf.PageRec) (Answer, bool)) ([]Answer, error) {
	if walks <= 0 {
		walks = 4
	}
	out := make([]Answer, len(files))
	todo := make([]int, len(files)) // files not settled yet, by index
	for i := range todo {
		todo[i] = i
	}
	for try := 1; len(todo) > 0; try++ {
		fds := make([]int32, len(todo))
		for j, i := range todo {
			fds[j] = int32(files[i].Fd)
		}
		pf, recs, err := walk(fds)
		if err != nil {
			return nil, err
		}
		if len(pf) != len(todo) {
			return nil, fmt.Errorf("page walk: %d files for %d fds", len(pf), len(todo))
		}
		byFile := make([][]bpf.PageRec, len(todo))
		for _, r := range recs {
			byFile[r.Slot] = append(byFile[r.Slot], r)
		}
		var again []int
		for j, i := range todo {
			a, settled := answer(files[i], pf[j], byFile[j])
			if !settled && try < walks {
				again = append(again, i)
				continue
			}
			if !settled {
				a = Answer{Err: fmt.Errorf("bpf: its page cache changed during each of %d walks (last: %d pages when the walk began, %d when it ended, %d found): no figure", walks, pf[j].NrPages, pf[j].NrPagesEnd, pf[j].Walked)}
				if pf[j].Status == bpf.StatusPageRace {
					a.Err = fmt.Errorf("bpf: %v, in each of %d walks: no figure", pf[j].Status, walks)
				}
			}
			out[i] = a
		}
		todo = again
	}
	return out, nil
}

// walkAnswer turns one walked file into a figure, and says whether the walk
// saw a settled cache: the pages it found are the pages the mapping held
// when it began and when it ended. An unsettled walk is done again.
func walkAnswer(h Handle, f bpf.PageFile, recs []bpf.PageRec) (Answer, bool) {
	r := bpf.Result{NrPages: f.Walked, Size: f.Size, Ino: f.Ino, Magic: f.Magic, Dev: f.Dev, Mode: f.Mode,
		Status: f.Status, Nlink: f.Nlink, RealIno: f.RealIno, RealDev: f.RealDev, Layer: f.Layer}
	switch f.Status {
	case bpf.StatusPageRace:
		return Answer{}, false
	case bpf.StatusOK:
	default:
		return answer(h, r), true
	}
	if f.Walked != f.NrPages || f.NrPages != f.NrPagesEnd {
		return Answer{}, false
	}
	a := answer(h, r)
	if a.Err != nil {
		return a, true
	}
	var sum uint64
	ids := map[uint64]uint64{}
	for _, rec := range recs {
		ids[rec.ID] += rec.Pages
		sum += rec.Pages
	}
	if sum != f.Walked {
		return Answer{Err: fmt.Errorf("bpf: the page walk's records hold %d pages, its count %d", sum, f.Walked)}, true
	}
	for id, n := range ids {
		a.Cgroups = append(a.Cgroups, CgroupPages{ID: id, Pages: n})
	}
	SortCgroups(a.Cgroups)
	return a, true
}

// SortCgroups orders a split most pages first, then by id.
func SortCgroups(cgs []CgroupPages) {
	slices.SortFunc(cgs, func(a, b CgroupPages) int {
		if c := cmp.Compare(b.Pages, a.Pages); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// AddCgroups adds split b into a (a tree's sums), keeping a sorted.
func AddCgroups(a, b []CgroupPages) []CgroupPages {
	for _, c := range b {
		i := slices.IndexFunc(a, func(x CgroupPages) bool { return x.ID == c.ID })
		if i < 0 {
			a = append(a, c)
			continue
		}
		a[i].Pages += c.Pages
	}
	SortCgroups(a)
	return a
}
