package cli

import (
	"errors"
	"fmt"

	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// topCgroups is what top and serve need to walk by cgroup: the hierarchy
// that names cgroups, and the cgroups --cgroup chose.
type topCgroups struct {
	names    top.CgroupNames
	selected []cgroups.Selected
}

// cgroupMode checks --by-cgroup and --cgroup and finds the memory
// hierarchy; nil when neither is given. Without a hierarchy, --by-cgroup
// names cgroups by id (with a note on stderr) and --cgroup cannot be
// resolved.
func (g *Globals) cgroupMode(byCgroup bool, selected []string) (*topCgroups, error) {
	if !byCgroup && len(selected) == 0 {
		return nil, nil
	}
	n, err := g.cgroupNames()
	if err != nil {
		if len(selected) > 0 {
			return nil, fmt.Errorf("--cgroup: %w", err)
		}
		fmt.Fprintf(g.env.Stderr, "filecache: memory cgroups are shown by id only: %v\n", err)
		return &topCgroups{}, nil
	}
	tc := &topCgroups{names: top.CgroupNames{Version: n.Version, Mount: n.Mount, Path: n.Path}}
	for _, arg := range selected {
		sel, err := cgroups.Select(n.Hierarchy(), arg)
		if err != nil {
			return nil, fmt.Errorf("--cgroup: %w", err)
		}
		tc.selected = append(tc.selected, sel)
	}
	return tc, nil
}

// allow lists the ids of the chosen cgroups and their descendants, read
// again for each walk (cgroups come and go); nil when none was chosen.
func (tc *topCgroups) allow() ([]uint64, error) {
	if len(tc.selected) == 0 {
		return nil, nil
	}
	ids := []uint64{}
	seen := map[uint64]bool{}
	for _, sel := range tc.selected {
		sub, err := cgroups.Subtree(sel.Dir)
		if err != nil {
			return nil, err
		}
		for _, id := range sub {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// paths are the chosen cgroups as /proc/PID/cgroup writes them.
func (tc *topCgroups) paths() []string {
	var out []string
	for _, sel := range tc.selected {
		out = append(out, sel.Path)
	}
	return out
}

// loadCgroupWalker loads the cgroup walk, explaining a refusal in one line.
func (g *Globals) loadCgroupWalker(method string) (top.CgroupWalker, func(), error) {
	if g.env.LoadCgroupWalker == nil {
		return nil, nil, errors.New("no BPF loader in this build")
	}
	var w top.CgroupWalker
	var closeW func()
	err := g.checkedLoad(func() (err error) {
		w, closeW, err = g.env.LoadCgroupWalker(LoadOptions{BTF: g.BTF, Method: method})
		return err
	})
	return w, closeW, err
}
