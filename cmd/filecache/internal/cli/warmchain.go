package cli

import (
	"fmt"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

// extentChain is the engines that list which pages of a file are cached
// (snapshot, restore), in the order --engine auto tries them: the bpf
// page walk, cachestat(2) halving, mincore(2). As chain, it says on
// stderr and in notes why the automatic choice passes one over.
func (g *Globals) extentChain(notes *[]string) *pagecache.Chain {
	all := []pagecache.Stage{
		{Name: "bpf", Load: g.loadRanges},
		{Name: "cachestat", Load: func() (pagecache.Engine, error) { return pagecache.CachestatExtents{}, nil }},
		{Name: "mincore", Load: func() (pagecache.Engine, error) { return pagecache.MincoreExtents{}, nil }},
	}
	var stages []pagecache.Stage
	for _, s := range all {
		if g.Engine == "auto" || s.Name == g.Engine {
			stages = append(stages, s)
		}
	}
	return &pagecache.Chain{
		Stages: stages,
		Note: func(engine string, err error) {
			if g.Engine == "auto" {
				note := fmt.Sprintf("not using the %s engine: %v", engine, err)
				fmt.Fprintf(g.env.Stderr, "filecache: %s\n", note)
				g.printLoadLog(err)
				*notes = append(*notes, note)
			}
		},
	}
}

// loadRanges loads the page walk that lists pages, explaining a refusal in
// one line.
func (g *Globals) loadRanges() (pagecache.Engine, error) {
	if g.env.LoadRanges == nil {
		return nil, fmt.Errorf("this build has no page walk")
	}
	var eng pagecache.Engine
	err := g.checkedLoad(func() (err error) {
		eng, err = g.env.LoadRanges(LoadOptions{BTF: g.BTF, Method: g.bpfMethod()})
		return err
	})
	return eng, err
}
