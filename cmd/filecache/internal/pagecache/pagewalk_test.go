package pagecache

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// fakeWalker answers walk i with walks[i] (the last one again when out).
type fakeWalker struct {
	walks []func(fds []int32) ([]bpf.PageFile, []bpf.PageRec)
	calls [][]int32
	err   error
}

func (f *fakeWalker) Method() string { return "fake" }
func (f *fakeWalker) Close()         {}
func (f *fakeWalker) Walk(fds []int32) ([]bpf.PageFile, []bpf.PageRec, error) {
	f.calls = append(f.calls, slices.Clone(fds))
	if f.err != nil {
		return nil, nil, f.err
	}
	w := f.walks[min(len(f.calls), len(f.walks))-1]
	pf, recs := w(fds)
	return pf, recs, nil
}

var reg = uint32(unix.S_IFREG | 0o644)

func settled(pages uint64) bpf.PageFile {
	return bpf.PageFile{NrPages: pages, NrPagesEnd: pages, Walked: pages, Size: pages * 4096, Ino: 1, Mode: reg, Nlink: 1}
}

func TestPageWalkSplits(t *testing.T) {
	w := &fakeWalker{walks: []func([]int32) ([]bpf.PageFile, []bpf.PageRec){func(fds []int32) ([]bpf.PageFile, []bpf.PageRec) {
		return []bpf.PageFile{settled(10), settled(0), {Status: bpf.StatusNoFile}},
			[]bpf.PageRec{
				{ID: 7, Pages: 3, Slot: 0}, {ID: 9, Pages: 5, Slot: 0}, {ID: 7, Pages: 1, Slot: 0}, {ID: 0, Pages: 1, Slot: 0},
			}
	}}}
	got, err := PageWalk{Walker: w}.Query([]Handle{{Fd: 3, Mode: reg}, {Fd: 4, Mode: reg}, {Fd: 5, Mode: reg}})
	if err != nil {
		t.Fatal(err)
	}
	// Records of one cgroup are summed; most pages first; no cgroup (id 0) kept.
	want := []CgroupPages{{9, 5}, {7, 4}, {0, 1}}
	if got[0].Err != nil || got[0].Pages != 10 || !slices.Equal(got[0].Cgroups, want) {
		t.Errorf("file 0: %+v, want 10 pages split %v", got[0], want)
	}
	if got[1].Err != nil || got[1].Pages != 0 || len(got[1].Cgroups) != 0 {
		t.Errorf("empty file: %+v", got[1])
	}
	if got[2].Err == nil || !strings.Contains(got[2].Err.Error(), "not open") {
		t.Errorf("file without an fd: %+v", got[2])
	}
	if len(w.calls) != 1 {
		t.Errorf("%d walks of a settled batch, want 1", len(w.calls))
	}
}

// A walk that saw the cache change is done again, for those files only,
// and a file that never settles gets an error, never its figures.
func TestPageWalkAgain(t *testing.T) {
	changing := bpf.PageFile{NrPages: 8, NrPagesEnd: 9, Walked: 8, Mode: reg}
	race := bpf.PageFile{Status: bpf.StatusPageRace, Mode: reg}
	w := &fakeWalker{walks: []func([]int32) ([]bpf.PageFile, []bpf.PageRec){
		func(fds []int32) ([]bpf.PageFile, []bpf.PageRec) {
			return []bpf.PageFile{settled(2), changing, race, changing},
				[]bpf.PageRec{{ID: 1, Pages: 2, Slot: 0}, {ID: 1, Pages: 8, Slot: 1}, {ID: 1, Pages: 8, Slot: 3}}
		},
		func(fds []int32) ([]bpf.PageFile, []bpf.PageRec) {
			return []bpf.PageFile{settled(9), settled(4), changing}, []bpf.PageRec{{ID: 2, Pages: 9, Slot: 0}, {ID: 3, Pages: 4, Slot: 1}, {ID: 2, Pages: 8, Slot: 2}}
		},
		func(fds []int32) ([]bpf.PageFile, []bpf.PageRec) {
			return []bpf.PageFile{changing}, []bpf.PageRec{{ID: 2, Pages: 8, Slot: 0}}
		},
	}}
	got, err := PageWalk{Walker: w, Walks: 3}.Query([]Handle{{Fd: 3, Mode: reg}, {Fd: 4, Mode: reg}, {Fd: 5, Mode: reg}, {Fd: 6, Mode: reg}})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]int32{{3, 4, 5, 6}, {4, 5, 6}, {6}}; !slices.EqualFunc(w.calls, want, slices.Equal) {
		t.Errorf("walks of %v, want %v", w.calls, want)
	}
	for i, want := range []uint64{2, 9, 4} {
		if got[i].Err != nil || got[i].Pages != want || len(got[i].Cgroups) != 1 || got[i].Cgroups[0].Pages != want {
			t.Errorf("file %d: %+v, want %d pages in one cgroup", i, got[i], want)
		}
	}
	if got[3].Err == nil || !strings.Contains(got[3].Err.Error(), "changed during each of 3 walks") || got[3].Pages != 0 || got[3].Cgroups != nil {
		t.Errorf("unsettled file: %+v, want an error and no figure", got[3])
	}
}

func TestPageWalkRefuses(t *testing.T) {
	// Records that do not add up to the count are a fault, not a split.
	w := &fakeWalker{walks: []func([]int32) ([]bpf.PageFile, []bpf.PageRec){func(fds []int32) ([]bpf.PageFile, []bpf.PageRec) {
		return []bpf.PageFile{settled(5), {Status: bpf.StatusNoMemcg, Mode: reg}, {Status: bpf.StatusNoOverlay, Mode: reg}},
			[]bpf.PageRec{{ID: 1, Pages: 4, Slot: 0}}
	}}}
	got, err := PageWalk{Walker: w}.Query([]Handle{{Fd: 3, Mode: reg}, {Fd: 4, Mode: reg}, {Fd: 5, Mode: reg}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"records hold 4 pages", "memory cgroup", "no BTF of overlayfs"} {
		if got[i].Err == nil || !strings.Contains(got[i].Err.Error(), want) || got[i].Cgroups != nil {
			t.Errorf("file %d: %+v, want an error containing %q", i, got[i], want)
		}
	}
	if _, err := (PageWalk{Walker: &fakeWalker{err: errors.New("boom")}}).Query([]Handle{{Fd: 3}}); err == nil {
		t.Error("walker error not returned")
	}
}

func TestAddCgroups(t *testing.T) {
	a := AddCgroups(nil, []CgroupPages{{1, 5}, {2, 3}})
	a = AddCgroups(a, []CgroupPages{{2, 4}, {0, 1}})
	if want := []CgroupPages{{2, 7}, {1, 5}, {0, 1}}; !slices.Equal(a, want) {
		t.Errorf("sums %v, want %v", a, want)
	}
}
