package top

import (
	"cmp"
	"fmt"
	"os"
	"slices"

	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
)

// Pair is one (cgroup, file) pair of a snapshot taken by cgroup
// (Cgroups.Pairs): the pages of Rows[Row] charged to cgroup ID.
type Pair struct {
	Row   int
	ID    uint64
	Pages uint64
	// Other: the pages of the file's cgroups past those the walk names one
	// by one (more than bpf.CgPairs of them), together.
	Other bool
}

// CgroupTotal is one cgroup's pages over every filesystem walked.
type CgroupTotal struct {
	ID    uint64
	Pages uint64
}

// CgroupNames names the cgroups of a snapshot: the memory controller's
// hierarchy (Version 0: none mounted, and cgroups go by id) and a lookup
// from id to path as /proc/PID/cgroup writes it.
type CgroupNames struct {
	Version int
	Mount   string
	Path    func(id uint64) (string, bool)
}

// cgroupRows sums the filesystems' cgroup sums (only the allowed cgroups,
// with a filter) and lists the snapshot's (cgroup, file) pairs.
func (s *Snapshot) cgroupRows(o Options) {
	allowed := map[uint64]bool{}
	for _, id := range o.Cgroups.Allow {
		allowed[id] = true
	}
	sums := map[uint64]uint64{}
	for _, t := range s.FS {
		if t.Err != nil {
			continue
		}
		for id, n := range t.Cgroups {
			if o.Cgroups.Allow == nil || allowed[id] {
				sums[id] += n
			}
		}
	}
	s.Cgroups = s.Cgroups[:0]
	for id, n := range sums {
		s.Cgroups = append(s.Cgroups, CgroupTotal{ID: id, Pages: n})
	}
	slices.SortFunc(s.Cgroups, func(a, b CgroupTotal) int {
		if c := cmp.Compare(b.Pages, a.Pages); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if !o.Cgroups.Pairs {
		return
	}
	// The rows are the files whose largest share is among the N largest;
	// every pair among the N largest is a share of one of them.
	s.Pairs = s.Pairs[:0]
	for i, r := range s.Rows {
		for _, sh := range r.Shares {
			s.Pairs = append(s.Pairs, Pair{Row: i, ID: sh.ID, Pages: sh.Pages})
		}
		if r.Other > 0 {
			s.Pairs = append(s.Pairs, Pair{Row: i, Pages: r.Other, Other: true})
		}
	}
	s.Pairs = slices.DeleteFunc(s.Pairs, func(p Pair) bool { return p.Pages == 0 || p.Pages < o.MinPages })
	slices.SortStableFunc(s.Pairs, func(a, b Pair) int {
		if c := cmp.Compare(b.Pages, a.Pages); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Row, b.Row); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if o.N > 0 && len(s.Pairs) > o.N {
		s.Pairs = s.Pairs[:o.N]
	}
}

// CgroupLabel is how a table shows a cgroup: its path, "(none)" for pages
// charged to none, "(other cgroups)", "(removed, id N)" for a cgroup with
// no directory left, "(id N)" where no hierarchy names cgroups.
func (s Snapshot) CgroupLabel(id uint64, other bool) string {
	if other {
		return "(other cgroups)"
	}
	if p, ok := s.CgroupPath(id); ok {
		return p
	}
	switch {
	case id == 0:
		return "(none)"
	case s.Names.Version == 0 || s.Names.Path == nil:
		return fmt.Sprintf("(id %d)", id)
	}
	return fmt.Sprintf("(removed, id %d)", id)
}

// CgroupPath is a cgroup's path, if it has one.
func (s Snapshot) CgroupPath(id uint64) (string, bool) {
	if id == 0 || s.Names.Path == nil {
		return "", false
	}
	return s.Names.Path(id)
}

// Container is the container (and pod) cgroup id belongs to.
func (s Snapshot) Container(id uint64) cgroups.Container {
	p, ok := s.CgroupPath(id)
	if !ok {
		return cgroups.Container{}
	}
	return cgroups.ContainerOf(p)
}

// RowContainer is the container a row's file was reached through (another
// mount namespace's root), if that is a container's.
func (s Snapshot) RowContainer(r Row) cgroups.Container {
	if r.NSPid == 0 {
		return cgroups.Container{}
	}
	return s.NSContainers[r.NSPid]
}

// IdentifyNamespaces finds, for each process whose root a row was reached
// through, the container its cgroup names (proc is /proc). A process gone
// meanwhile names none.
func (s *Snapshot) IdentifyNamespaces(proc string) {
	for _, r := range s.Rows {
		if r.NSPid == 0 {
			continue
		}
		if _, done := s.NSContainers[r.NSPid]; done {
			continue
		}
		if s.NSContainers == nil {
			s.NSContainers = map[int]cgroups.Container{}
		}
		s.NSContainers[r.NSPid] = ProcessContainer(proc, r.NSPid)
	}
}

// ProcessContainer is the container process pid's cgroup names: that of
// its memory cgroup (cgroup v1), else of its cgroup v2 path.
func ProcessContainer(proc string, pid int) cgroups.Container {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/cgroup", proc, pid))
	if err != nil {
		return cgroups.Container{}
	}
	p, _, err := cgroups.OwnMemoryCgroup(b)
	if err != nil {
		return cgroups.Container{}
	}
	return cgroups.ContainerOf(p)
}
