package top

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
)

// fakeCgWalker follows walk_cg's rules (cgwalk.bpf.c) over inodes given as
// pages by cgroup id, in the order their pages were met: every page goes to
// its cgroup's sum; the pages that count are those of allowed cgroups (with
// bpf.WalkFilter); an inode is ranked by their sum, or with bpf.WalkPairs
// by its largest share (the pages past bpf.CgPairs cgroups counted as one
// share); the heap and records as walk_sb's.
type fakeCgWalker struct {
	inodes map[int32][][]bpf.CgPair // by anchor fd
	dev    map[int32]uint32
	allow  map[uint64]bool
	walks  int
}

func (f *fakeCgWalker) Method() string { return "test" }

func (f *fakeCgWalker) Allow(ids []uint64) error {
	f.allow = map[uint64]bool{}
	for _, id := range ids {
		f.allow[id] = true
	}
	return nil
}

func (f *fakeCgWalker) WalkCgroups(p bpf.WalkParams, each func(bpf.Inode, bpf.CgSplit) error) (bpf.Walk, bpf.CgWalk, error) {
	f.walks++
	w := bpf.Walk{Dev: f.dev[p.FD], Magic: tmpfsMagic, Status: bpf.WalkDone}
	cw := bpf.CgWalk{Sums: map[uint64]uint64{}}
	var heap admitter
	type rec struct {
		in bpf.Inode
		s  bpf.CgSplit
	}
	var recs []rec
	for i, runs := range f.inodes[p.FD] {
		w.Inodes++
		var s bpf.CgSplit
		var sum uint64
		for _, r := range runs {
			s.Walked += r.Pages
			cw.Sums[r.ID] += r.Pages
			if p.Flags&bpf.WalkFilter != 0 && !f.allow[r.ID] {
				continue
			}
			sum += r.Pages
			j := slices.IndexFunc(s.Pairs, func(x bpf.CgPair) bool { return x.ID == r.ID })
			switch {
			case j >= 0:
				s.Pairs[j].Pages += r.Pages
			case len(s.Pairs) < bpf.CgPairs:
				s.Pairs = append(s.Pairs, r)
			default:
				s.Other += r.Pages
			}
		}
		cw.Walked += s.Walked
		if sum == 0 {
			continue
		}
		key := sum
		if p.Flags&bpf.WalkPairs != 0 {
			key = s.Other
			for _, x := range s.Pairs {
				key = max(key, x.Pages)
			}
		}
		w.Pages += sum
		w.Cached++
		if !heap.admit(&w, p, key) {
			continue
		}
		recs = append(recs, rec{bpf.Inode{NrPages: key, Ino: uint64(i + 1), Nlink: 1, Names: [][]byte{[]byte(fmt.Sprintf("f%d", i+1))}}, s})
	}
	heap.report(&w)
	for _, r := range recs {
		if err := each(r.in, r.s); err != nil {
			return w, cw, err
		}
	}
	return w, cw, nil
}

// TestScanCgroupPairs: the (cgroup, file) pairs a snapshot lists are the N
// largest of all (a brute-force sort says which), with or without a
// filter; the cgroups' sums are every page of theirs.
func TestScanCgroupPairs(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, many := range []int{1, 3, 40} { // cgroups an inode's pages are spread over, at most
		for _, count := range []int{0, 7, 2000, 5000} {
			for _, n := range []int{1, 10, 300, 0} {
				for _, filter := range []bool{false, true} {
					if count > 2000 && n != 0 && n != 10 {
						continue // the paging walks (n 0) and one heap are enough at this size
					}
					t.Run(fmt.Sprintf("cgroups=%d/%d/n=%d/filter=%v", many, count, n, filter), func(t *testing.T) {
						w := &fakeCgWalker{inodes: map[int32][][]bpf.CgPair{}, dev: map[int32]uint32{}}
						var fss []Filesystem
						type pair struct{ fs, ino, id, pages uint64 }
						var all []pair
						sums := map[uint64]uint64{}
						var allow []uint64
						if filter {
							allow = []uint64{2, 3, 5, 8, 13, 21, 34}
						}
						allowed := func(id uint64) bool { return !filter || slices.Contains(allow, id) }
						for i := 0; i < 2; i++ {
							var inodes [][]bpf.CgPair
							for j := 0; j < count; j++ {
								var runs []bpf.CgPair
								byID := map[uint64]uint64{}
								for k := 0; k < 1+rng.Intn(many); k++ {
									r := bpf.CgPair{ID: uint64(rng.Intn(45)), Pages: uint64(rng.ExpFloat64() * 50)}
									if r.Pages == 0 {
										continue
									}
									runs = append(runs, r)
									byID[r.ID] += r.Pages
									sums[r.ID] += r.Pages
								}
								// Pairs past bpf.CgPairs cgroups are one share.
								var counted []bpf.CgPair
								for _, r := range runs {
									if allowed(r.ID) && !slices.ContainsFunc(counted, func(x bpf.CgPair) bool { return x.ID == r.ID }) {
										counted = append(counted, bpf.CgPair{ID: r.ID, Pages: byID[r.ID]})
									}
								}
								var other uint64
								for k, c := range counted {
									if k < bpf.CgPairs {
										all = append(all, pair{uint64(i), uint64(j + 1), c.ID, c.Pages})
									} else {
										other += c.Pages
									}
								}
								if other > 0 {
									all = append(all, pair{uint64(i), uint64(j + 1), 1 << 62, other})
								}
								inodes = append(inodes, runs)
							}
							d := unix.Mkdev(0, uint32(70+i))
							fss = append(fss, Filesystem{Dev: d, FSType: "tmpfs", Mounts: []Mount{{Dev: d, Root: "/", Point: fmt.Sprintf("/m%d", i)}}})
							w.inodes[int32(i)], w.dev[int32(i)] = inodes, kdev(d)
						}
						o := Options{N: n, Cgroups: &Cgroups{Walker: w, Pairs: true, Allow: allow}}
						if err := w.Allow(allow); err != nil {
							t.Fatal(err)
						}
						s := Snapshot{}
						s.FS, s.Rows = Scan(nil, fss, anchorByIndex(fss), o)
						s.cgroupRows(o)
						var got, want []uint64
						for _, p := range s.Pairs {
							got = append(got, p.Pages)
						}
						slices.SortFunc(all, func(a, b pair) int { return cmp.Compare(b.pages, a.pages) })
						for _, p := range all {
							if n > 0 && len(want) == n {
								break
							}
							want = append(want, p.pages)
						}
						if !slices.Equal(got, want) {
							t.Fatalf("pairs %v\nwant %v (%d walks)", head(got), head(want), w.walks)
						}
						// Each pair is its file's share of its cgroup.
						shares := map[pair]bool{}
						for _, x := range all {
							shares[x] = true
						}
						for _, p := range s.Pairs {
							r := s.Rows[p.Row]
							id := p.ID
							if p.Other {
								id = 1 << 62
							}
							if !shares[pair{uint64(r.FS), r.Ino, id, p.Pages}] {
								t.Errorf("pair %+v of %s is no share of its file", p, r.Path)
							}
						}
						wantSums := map[uint64]uint64{}
						for id, v := range sums {
							if allowed(id) {
								wantSums[id] = v
							}
						}
						gotSums := map[uint64]uint64{}
						for _, c := range s.Cgroups {
							gotSums[c.ID] = c.Pages
						}
						if !maps.Equal(gotSums, wantSums) {
							t.Errorf("cgroup sums %v, want %v", gotSums, wantSums)
						}
					})
				}
			}
		}
	}
}

// A snapshot by cgroup, as each output shows it: pairs with their cgroup's
// path, container and pod, the cgroups' table, a removed cgroup and pages
// charged to none; a file reached through a container's root shows its
// path there.
func TestCgroupFormats(t *testing.T) {
	const id = "3f1b6c0a9e2d4b5c8a7f6e5d4c3b2a190817263544536271809a8b7c6d5e4f3a"
	cgPath := "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod7c2b1e4a_5d3f_4a1b_9c8e_2f6d0a1b3c4d.slice/cri-containerd-" + id + ".scope"
	names := map[uint64]string{10: cgPath, 11: "/system.slice/sshd.service"}
	fs := Filesystem{Dev: unix.Mkdev(0, 5), FSType: "tmpfs", Mounts: []Mount{{Root: "/", Point: "/run"}}}
	ns := Filesystem{Dev: unix.Mkdev(0, 6), FSType: "overlay", Mounts: []Mount{{Root: "/", Point: "/proc/77/root", NSPid: 77, NSRoot: "/proc/77/root"}}}
	s := Snapshot{PageSize: 4096, CgroupWalk: true, ByCgroup: true,
		FS: []FSTotal{{FS: fs, Pages: 30, Complete: true, Walked: 30}, {FS: ns, Pages: 4, Complete: true, Walked: 4}},
		Rows: []Row{
			{FS: 0, Path: "/run/a", Pages: 20, Size: 30 * 4096, Ino: 7, Walked: 30, Shares: []Share{{10, 20}, {11, 6}, {0, 4}}},
			{FS: 1, Path: "/proc/77/root/etc/x", NSPid: 77, NSPath: "/etc/x", Pages: 4, Size: 4 * 4096, Ino: 8, Walked: 4, Shares: []Share{{99, 4}}},
		},
		Pairs:        []Pair{{Row: 0, ID: 10, Pages: 20}, {Row: 0, ID: 11, Pages: 6}, {Row: 0, ID: 0, Pages: 4}, {Row: 1, ID: 99, Pages: 4}},
		Cgroups:      []CgroupTotal{{10, 20}, {11, 6}, {0, 4}, {99, 4}},
		Names:        CgroupNames{Version: 2, Mount: "/sys/fs/cgroup", Path: func(i uint64) (string, bool) { p, ok := names[i]; return p, ok }},
		NSContainers: map[int]cgroups.Container{77: {ID: "abc"}},
		Mem:          Meminfo{Cached: 34 * 4096, Read: true}}
	var b strings.Builder
	if err := Table(&b, s); err != nil {
		t.Fatal(err)
	}
	tab := b.String()
	for _, want := range []string{
		`(?m)^ +80K +120K +66\.7% +/run +3f1b6c0a9e2d +` + regexp.QuoteMeta(cgPath) + ` +/run/a$`,
		`(?m)^ +24K .* +- +/system\.slice/sshd\.service +/run/a$`,
		`(?m)^ +16K .* +- +\(none\) +/run/a$`,
		`(?m)^ +16K +16K +100\.0% +/proc/77/root +abc +\(removed, id 99\) +/etc/x$`,
		`(?m)^ +80K +3f1b6c0a9e2d +7c2b1e4a-5d3f-4a1b-9c8e-2f6d0a1b3c4d +` + regexp.QuoteMeta(cgPath) + `$`,
		`(?m)^ +16K +- +- +\(removed, id 99\)$`,
		`(?m); 4 cgroup\(s\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(tab) {
			t.Errorf("table lacks %s:\n%s", want, tab)
		}
	}
	d := Document(s)
	if len(d.Rows) != 4 || d.Rows[0].ContainerID != id || d.Rows[0].PodUID != "7c2b1e4a-5d3f-4a1b-9c8e-2f6d0a1b3c4d" ||
		d.Rows[0].Cgroup == nil || *d.Rows[0].Cgroup != cgPath || *d.Rows[0].CgroupID != 10 || *d.Rows[0].FileCachedPages != 30 {
		t.Errorf("rows %+v", d.Rows)
	}
	if r := d.Rows[3]; r.Cgroup != nil || *r.CgroupID != 99 || r.ContainerID != "abc" || r.ContainerPath != "/etc/x" || r.NamespacePID != 77 || r.Path != "/proc/77/root/etc/x" {
		t.Errorf("row through a container's root: %+v", r)
	}
	if d.Cgroups == nil || len(*d.Cgroups) != 4 || (*d.Cgroups)[0].ContainerID != id || (*d.Cgroups)[0].Runtime != "containerd" || (*d.Cgroups)[2].Cgroup != nil {
		t.Errorf("cgroups %+v", d.Cgroups)
	}
	b.Reset()
	if err := Prometheus(&b, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`filecache_top_cached_bytes{path="/run/a",filesystem="/run",device="0:5",inode="7",deleted="false",cgroup="` + cgPath + `",container_id="` + id + `",pod_uid="7c2b1e4a-5d3f-4a1b-9c8e-2f6d0a1b3c4d"} 81920`,
		`filecache_top_cached_bytes{path="/etc/x",filesystem="/proc/77/root",device="0:6",inode="8",deleted="false",cgroup="(removed, id 99)",container_id="abc",pod_uid=""} 16384`,
		`filecache_cgroup_cached_bytes{cgroup="/system.slice/sshd.service",container_id="",pod_uid=""} 24576`,
		`filecache_cgroup_cached_bytes{cgroup="(none)",container_id="",pod_uid=""} 16384`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("prometheus lacks %s:\n%s", want, b.String())
		}
	}
}
