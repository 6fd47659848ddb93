package top

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// fakeWalker follows walk_sb's rules (filecache.bpf.c: match and emit) over
// inodes given as page counts, so the search for the top rows is tested
// against a brute-force sort.
type fakeWalker struct {
	pages  map[int32][]uint64 // by anchor fd: each inode's page count, in list order
	dev    map[int32]uint32   // kernel-encoded device the walk reports
	lose   int                // walks to end as FC_WALK_LOST first
	loseAt map[int]bool       // and these (by run number, from 1)
	// refused is why a lost walk's cursor was refused, as a bounded walk
	// that took two test runs says.
	refused bpf.CursorRefusal
	runs    int
	failOn  int32 // an fd whose walk fails
}

func (f *fakeWalker) Method() string { return "test" }

func (f *fakeWalker) Walk(p bpf.WalkParams, each func(bpf.Inode) error) (bpf.Walk, error) {
	f.runs++
	var w bpf.Walk
	if p.FD == f.failOn {
		return w, errors.New("injected")
	}
	w.Dev = f.dev[p.FD]
	w.Magic = tmpfsMagic
	if f.lose > 0 || f.loseAt[f.runs] {
		f.lose = max(f.lose-1, 0)
		w.Status = bpf.WalkLost
		if f.refused != bpf.CursorOK {
			w.Refused, w.Runs = f.refused, 2
		}
		return w, nil
	}
	var recs []bpf.Inode
	var heap admitter
	for i, n := range f.pages[p.FD] {
		w.Inodes++
		if n == 0 {
			continue
		}
		w.Pages += n
		w.Cached++
		if !heap.admit(&w, p, n) {
			continue
		}
		recs = append(recs, bpf.Inode{NrPages: n, Ino: uint64(i + 1), Nlink: 1, Names: [][]byte{[]byte(fmt.Sprintf("f%d", i+1))}})
	}
	heap.report(&w)
	w.Status = bpf.WalkDone
	for _, r := range recs {
		if err := each(r); err != nil {
			return w, err
		}
	}
	return w, nil
}

func anchorByIndex(fss []Filesystem) Anchor {
	return func(fs Filesystem) (int, uint32, func(), error) {
		for i := range fss {
			if fss[i].Dev == fs.Dev {
				if fs.Source == "covered" {
					return -1, 0, nil, ErrCovered
				}
				return i, 0, func() {}, nil
			}
		}
		return -1, 0, nil, errors.New("unknown")
	}
}

func kdev(d uint64) uint32 { return unix.Major(d)<<20 | unix.Minor(d) }

// bruteTop is the answer: page counts of the n largest across filesystems.
func bruteTop(all [][]uint64, n int, min uint64) []uint64 {
	var v []uint64
	for _, pages := range all {
		for _, p := range pages {
			if p > 0 && p >= max(min, 1) {
				v = append(v, p)
			}
		}
	}
	slices.Sort(v)
	slices.Reverse(v)
	if n > 0 && len(v) > n {
		v = v[:n]
	}
	return v
}

func TestScanTopN(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var grow uint64 // a list in growing order: more admitted than a run returns
	shapes := map[string]func() uint64{
		"spread":  func() uint64 { return uint64(rng.ExpFloat64() * 300) },
		"ties":    func() uint64 { return uint64(1 + rng.Intn(3)) },
		"one":     func() uint64 { return 2 },
		"octave":  func() uint64 { return 1000 + uint64(rng.Intn(100)) },
		"sparse":  func() uint64 { return uint64(rng.Intn(2)) * uint64(rng.Intn(1<<30)) },
		"growing": func() uint64 { grow++; return grow },
	}
	for name, gen := range shapes {
		for _, count := range []int{0, 5, 3000, 20000} {
			for _, n := range []int{1, 10, 100, 3000, 0} {
				for _, min := range []uint64{0, 700} {
					t.Run(fmt.Sprintf("%s/%d/n=%d/min=%d", name, count, n, min), func(t *testing.T) {
						w := &fakeWalker{pages: map[int32][]uint64{}, dev: map[int32]uint32{}, failOn: -1}
						var fss []Filesystem
						var all [][]uint64
						for i := 0; i < 2; i++ {
							var pages []uint64
							for j := 0; j < count; j++ {
								pages = append(pages, gen())
							}
							d := unix.Mkdev(0, uint32(40+i))
							fss = append(fss, Filesystem{Dev: d, FSType: "tmpfs", Mounts: []Mount{{Dev: d, Root: "/", Point: fmt.Sprintf("/m%d", i)}}})
							w.pages[int32(i)], w.dev[int32(i)] = pages, kdev(d)
							all = append(all, pages)
						}
						totals, rows := Scan(w, fss, anchorByIndex(fss), Options{N: n, MinPages: min})
						var got []uint64
						for _, r := range rows {
							got = append(got, r.Pages)
						}
						if want := bruteTop(all, n, min); !slices.Equal(got, want) {
							t.Fatalf("%d rows %v\nwant %d %v (%d walks)", len(got), head(got), len(want), head(want), w.runs)
						}
						for i, tot := range totals {
							var sum uint64
							for _, p := range all[i] {
								sum += p
							}
							if tot.Pages != sum || !tot.Complete || tot.Err != nil {
								t.Errorf("fs %d: %+v, want %d pages complete", i, tot, sum)
							}
						}
						// One walk a filesystem, three when the list grows.
						if n > 0 && n <= 100 && w.runs > 2*3 {
							t.Errorf("%d walks for the top %d", w.runs, n)
						}
					})
				}
			}
		}
	}
}

func head(v []uint64) []uint64 {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}

func TestScanLostAndErrors(t *testing.T) {
	d := unix.Mkdev(0, 50)
	fss := []Filesystem{
		{Dev: d, FSType: "tmpfs", Mounts: []Mount{{Dev: d, Root: "/", Point: "/a"}}},
		{Dev: unix.Mkdev(0, 51), Source: "covered", Mounts: []Mount{{Point: "/b"}}},
		{Dev: unix.Mkdev(0, 52), Mounts: []Mount{{Point: "/c"}}},
		{Dev: unix.Mkdev(0, 53), Mounts: []Mount{{Point: "/d"}}},
	}
	w := &fakeWalker{pages: map[int32][]uint64{0: {5, 7}, 2: {1}, 3: {9}}, dev: map[int32]uint32{0: kdev(d), 2: kdev(unix.Mkdev(0, 99)), 3: kdev(unix.Mkdev(0, 53))}, lose: 2, failOn: 3}
	totals, rows := Scan(w, fss, anchorByIndex(fss), Options{N: 5})
	if !totals[0].Complete || totals[0].Lost != 2 || totals[0].Pages != 12 || len(rows) != 2 || rows[0].Path != "/a/f2" {
		t.Errorf("two lost races then a full walk: %+v, rows %+v", totals[0], rows)
	}
	if !errors.Is(totals[1].Err, ErrCovered) {
		t.Errorf("covered mount: %v", totals[1].Err)
	}
	if totals[2].Err == nil || !strings.Contains(totals[2].Err.Error(), "not 0:52") {
		t.Errorf("a walk that reached another device must be refused: %v", totals[2].Err)
	}
	if totals[3].Err == nil {
		t.Errorf("a failing walk must be an error")
	}
	w = &fakeWalker{pages: map[int32][]uint64{0: {5}}, dev: map[int32]uint32{0: kdev(d)}, lose: 10, failOn: -1, refused: bpf.CursorUnlinked}
	totals, _ = Scan(w, fss[:1], anchorByIndex(fss), Options{N: 5, Retries: 3})
	if totals[0].Complete || totals[0].Partial == "" || w.runs != 3 || totals[0].Runs != 6 {
		t.Errorf("lost every time: %+v after %d walks, want partial after 3 (6 test runs)", totals[0], w.runs)
	}
	// A bounded walk's partial figures say which check its cursor failed.
	if !strings.Contains(totals[0].Partial, "the cursor's inode left the list between two runs") {
		t.Errorf("partial reason %q does not name the cursor check", totals[0].Partial)
	}
}

// A refining walk that loses a race makes the whole filesystem walk again.
func TestScanRefineLost(t *testing.T) {
	d := unix.Mkdev(0, 60)
	fss := []Filesystem{{Dev: d, Mounts: []Mount{{Dev: d, Root: "/", Point: "/g"}}}}
	var pages, all []uint64
	for i := uint64(1); i <= 6000; i++ {
		pages = append(pages, i) // growing: every inode enters the heap, more than a run returns
	}
	all = append(all, pages...)
	w := &fakeWalker{pages: map[int32][]uint64{0: pages}, dev: map[int32]uint32{0: kdev(d)}, failOn: -1, loseAt: map[int]bool{2: true}}
	totals, rows := Scan(w, fss, anchorByIndex(fss), Options{N: 10})
	var got []uint64
	for _, r := range rows {
		got = append(got, r.Pages)
	}
	if want := bruteTop([][]uint64{all}, 10, 0); !slices.Equal(got, want) || !totals[0].Complete || totals[0].Lost != 1 {
		t.Errorf("rows %v (want %v), total %+v after %d walks", got, want, totals[0], w.runs)
	}
}

func TestParseMountinfo(t *testing.T) {
	in := `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:26 / /dev/shm rw,nosuid shared:2 - tmpfs tmpfs rw
31 22 254:0 /srv/data /mnt/with\040space rw - ext4 /dev/vda1 rw
32 22 0:27 / /proc rw - proc proc rw
`
	ms, err := ParseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 || ms[2].Point != "/mnt/with space" || ms[2].Root != "/srv/data" || ms[0].Dev != unix.Mkdev(254, 0) || ms[1].FSType != "tmpfs" {
		t.Fatalf("parsed %+v", ms)
	}
	fss := Group(ms)
	if len(fss) != 3 || len(fss[0].Mounts) != 2 {
		t.Fatalf("grouped %+v", fss)
	}
	for _, c := range []struct {
		names []string
		want  string
		shown bool
	}{
		{[]string{"etc", "hosts"}, "/etc/hosts", true},
		{[]string{"srv", "data", "x"}, "/mnt/with space/x", true},
		{nil, "/", true},
	} {
		var names [][]byte
		for _, n := range c.names {
			names = append(names, []byte(n))
		}
		if got, shown := fss[0].Path(names); got != c.want || shown != c.shown {
			t.Errorf("Path(%q) = %q, %v; want %q", c.names, got, shown, c.want)
		}
	}
	bind := Filesystem{Dev: unix.Mkdev(8, 1), FSType: "xfs", Mounts: []Mount{{Root: "/sub", Point: "/data"}}}
	if got, shown := bind.Path([][]byte{[]byte("other"), []byte("f")}); got != "[xfs 8:1]/other/f" || shown {
		t.Errorf("a path no mount shows: %q %v", got, shown)
	}
	if _, err := ParseMountinfo(strings.NewReader("1 2 x:y / / rw - ext4 a b\n")); err == nil {
		t.Error("bad device accepted")
	}
	fss = Discover(ms)
	if len(fss) != 4 || fss[2].Label != ShmemLabel || fss[3].Label != BdevLabel || len(fss[3].Mounts) != 2 {
		t.Errorf("Discover: %+v (proc left out, shmem added, bdev reached through the ext4 mounts)", fss)
	}
}

func TestParseMeminfo(t *testing.T) {
	m, err := ParseMeminfo(strings.NewReader("MemTotal: 100 kB\nBuffers:  2 kB\nCached:   30 kB\nShmem:  4 kB\n"))
	if err != nil || m.Cached != 30*1024 || m.Buffers != 2048 || m.Shmem != 4096 || !m.Read {
		t.Errorf("%+v %v", m, err)
	}
	if _, err := ParseMeminfo(strings.NewReader("Cached: 1 kB\n")); err == nil {
		t.Error("missing counters accepted")
	}
}

func TestRowOf(t *testing.T) {
	fs := Filesystem{Dev: unix.Mkdev(0, 5), FSType: "tmpfs", Mounts: []Mount{{Root: "/", Point: "/run"}}}
	cases := []struct {
		in   bpf.Inode
		path string
		del  bool
	}{
		{bpf.Inode{Nlink: 1, Names: [][]byte{[]byte("a"), []byte("b")}}, "/run/a/b", false},
		{bpf.Inode{Nlink: 0, Flags: bpf.InUnhashed, Names: [][]byte{[]byte("gone")}}, "/run/gone", true},
		{bpf.Inode{Nlink: 0, Flags: bpf.InUnhashed | bpf.InDisconnected, Names: [][]byte{[]byte("memfd:x")}}, "memfd:x", false},
		{bpf.Inode{Nlink: 1, Flags: bpf.InTruncated, Names: [][]byte{[]byte("deep"), []byte("leaf")}}, ".../run/deep/leaf", false},
		{bpf.Inode{Nlink: 1, Flags: bpf.InNoDentry}, "", false},
	}
	for _, c := range cases {
		r := rowOf(0, fs, c.in, nil)
		if r.Path != c.path || r.Deleted != c.del {
			t.Errorf("rowOf(%+v) = %q deleted %v; want %q %v", c.in, r.Path, r.Deleted, c.path, c.del)
		}
	}
}

func TestFormats(t *testing.T) {
	fs := Filesystem{Dev: unix.Mkdev(0, 5), FSType: "tmpfs", Mounts: []Mount{{Root: "/", Point: "/run"}}}
	s := Snapshot{PageSize: 4096, FS: []FSTotal{{FS: fs, Pages: 10, Complete: true}},
		Rows: []Row{{FS: 0, Path: "/run/a \"q\"\n\xff", Pages: 4, Size: 8192 * 4, Ino: 7}},
		Mem:  Meminfo{Cached: 40960, Read: true}}
	var b strings.Builder
	if err := Prometheus(&b, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `filecache_top_cached_bytes{path="/run/a \"q\"\n`+"\uFFFD"+`",filesystem="/run",device="0:5",inode="7",deleted="false",cgroup="",container_id="",pod_uid=""} 16384`) {
		t.Errorf("prometheus:\n%s", b.String())
	}
	d := Document(s)
	if d.Rows[0].PathB64 == "" || d.Total.AccountedPercent != 100 || d.Rows[0].Percent != 50 {
		t.Errorf("document %+v", d)
	}
	b.Reset()
	if err := Table(&b, s); err != nil || !strings.Contains(b.String(), "100.0% of Cached") {
		t.Errorf("table:\n%s (%v)", b.String(), err)
	}
}

// admitter admits a cached inode as walk_sb does: at least MinPages, among
// the Want largest so far (a sorted slice makes the same admissions as the
// kernel's min-heap), past the Skip first matches, within Cap records.
type admitter struct{ heap []uint64 }

func (a *admitter) admit(w *bpf.Walk, p bpf.WalkParams, key uint64) bool {
	if key < p.MinPages {
		return false
	}
	if p.Want > 0 {
		switch {
		case len(a.heap) < int(p.Want):
			a.heap = append(a.heap, key)
		case key <= a.heap[0]:
			return false
		default:
			a.heap[0] = key
		}
		slices.Sort(a.heap)
	}
	w.Matched++
	if w.Matched-1 < p.Skip {
		return false
	}
	if w.Emitted >= uint64(p.Cap) {
		w.Dropped++
		return false
	}
	w.Emitted++
	return true
}

// report says what the kernel's heap holds at the end of the walk.
func (a *admitter) report(w *bpf.Walk) {
	w.HeapN = uint32(len(a.heap))
	if len(a.heap) > 0 {
		w.HeapMin = a.heap[0]
	}
}
