package report

import (
	"fmt"
	"slices"

	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
)

// Cgroups names memory cgroups in a --by-cgroup report. A Report with
// Cgroups set lists each file's (and tree's) cached pages split by the
// memory cgroup they are charged to.
type Cgroups struct {
	// Version and Mount say where the memory controller's hierarchy is
	// mounted (Version 0: nowhere, and cgroups are known by id only).
	Version int
	Mount   string
	// Path names cgroup id, as /proc/PID/cgroup writes it.
	Path func(id uint64) (string, bool)

	missing []uint64 // ids without a directory, in the order met
}

// name returns a cgroup's path, or false for pages charged to none (id 0)
// or a cgroup without a directory (removed, or no hierarchy mounted).
func (c *Cgroups) name(id uint64) (string, bool) {
	if id == 0 {
		return "", false
	}
	if c.Version != 0 && c.Path != nil {
		if p, ok := c.Path(id); ok {
			return p, true
		}
	}
	if !slices.Contains(c.missing, id) {
		c.missing = append(c.missing, id)
	}
	return "", false
}

// label is a cgroup as the table shows it.
func (c *Cgroups) label(id uint64) string {
	if p, ok := c.name(id); ok {
		return p
	}
	switch {
	case id == 0:
		return "(none)"
	case c.Version == 0:
		return fmt.Sprintf("(id %d)", id)
	}
	return fmt.Sprintf("(removed, id %d)", id)
}

// Resolve names every cgroup of files now, so that Notes is complete
// before a report that lists them is written.
func (c *Cgroups) Resolve(files []scan.File) {
	for _, f := range files {
		for _, cg := range f.Cgroups {
			c.name(cg.ID)
		}
	}
}

// Notes say which cgroups have no directory in the hierarchy (with no
// hierarchy mounted, none has, and the run says so once).
func (c *Cgroups) Notes() []string {
	var out []string
	for _, id := range c.missing {
		if c.Version != 0 {
			out = append(out, fmt.Sprintf("memory cgroup id %d is not a directory of %s: a removed cgroup, whose pages stay charged to it until they are reclaimed or moved to its parent", id, c.Mount))
		}
	}
	return out
}

type jsonCgroup struct {
	Cgroup  *string `json:"cgroup"` // null: charged to none, or no directory
	ID      uint64  `json:"id"`
	Cached  uint64  `json:"cached_pages"`
	CachedB uint64  `json:"cached_bytes"`
	// The container and Kubernetes pod the cgroup's path names.
	ContainerID string `json:"container_id,omitempty"`
	PodUID      string `json:"pod_uid,omitempty"`
}

// container is the container (and pod) cgroup id belongs to, by its path.
func (c *Cgroups) container(id uint64) cgroups.Container {
	p, ok := c.name(id)
	if !ok {
		return cgroups.Container{}
	}
	return cgroups.ContainerOf(p)
}

// anyContainer says whether some cgroup of files is a container's: the
// table then has a container column.
func (c *Cgroups) anyContainer(files []scan.File) bool {
	for _, f := range files {
		for _, cg := range f.Cgroups {
			if c.container(cg.ID).ID != "" {
				return true
			}
		}
	}
	return false
}

type jsonMemoryCgroup struct {
	Version int    `json:"version"`
	Mount   string `json:"mount"`
}

// jsonCgroups is a split as JSON shows it: an array, empty when nothing is
// cached; nil (no key) when the report is not by cgroup.
func (r Report) jsonCgroups(cgs []pagecache.CgroupPages) *[]jsonCgroup {
	if r.Cgroups == nil {
		return nil
	}
	out := []jsonCgroup{}
	for _, cg := range cgs {
		j := jsonCgroup{ID: cg.ID, Cached: cg.Pages, CachedB: cg.Pages * uint64(r.PageSize)}
		if p, ok := r.Cgroups.name(cg.ID); ok {
			j.Cgroup = &p
			c := cgroups.ContainerOf(p)
			j.ContainerID, j.PodUID = c.ID, c.PodUID
		}
		out = append(out, j)
	}
	return &out
}

func (r Report) jsonMemoryCgroup() *jsonMemoryCgroup {
	if r.Cgroups == nil || r.Cgroups.Version == 0 {
		return nil
	}
	return &jsonMemoryCgroup{Version: r.Cgroups.Version, Mount: r.Cgroups.Mount}
}

// cgroupRows are the table rows of one file or tree in a --by-cgroup
// report: one per cgroup its pages are charged to, or one with no cgroup
// when none of its pages is cached.
func (r Report) cgroupRows(x row, cgs []pagecache.CgroupPages) []row {
	if len(cgs) == 0 {
		x.cgroup = "-"
		return []row{x}
	}
	out := make([]row, 0, len(cgs))
	for _, cg := range cgs {
		y := x
		y.cached, y.cgroup = cg.Pages, r.Cgroups.label(cg.ID)
		y.container = r.Cgroups.container(cg.ID).Short()
		out = append(out, y)
	}
	return out
}
