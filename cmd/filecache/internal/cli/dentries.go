package cli

import (
	"fmt"
	"runtime"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
)

// dirs is how a query loads the dentry walk for its trees, or nil where
// the walk does not apply: it answers whole-file page counts as the bpf
// engine does, so not with another engine forced, a --bpf-method forced
// (whose runs prove that query program), --range, --detail, --map or
// --by-cgroup, which need each file open.
func (q *QueryCmd) dirs(g *Globals, ranged bool) func() (pagecache.DirReader, error) {
	env := g.env
	if env.LoadDirs == nil || g.Engine != "auto" && g.Engine != "bpf" || g.Method != "auto" ||
		ranged || q.Detail || q.Map || q.ByCgroup {
		return nil
	}
	return func() (pagecache.DirReader, error) {
		caps, err := env.Caps()
		if err != nil {
			return nil, err
		}
		// Without the bpf engine's privileges the first query says why.
		if err := pagecache.CheckBPF(caps, g.BTF, env.Stat); err != nil {
			return nil, err
		}
		w, err := env.LoadDirs(LoadOptions{BTF: g.BTF})
		if err != nil {
			return nil, err
		}
		method := ""
		if env.WalkMethod != nil {
			method = env.WalkMethod("")
		}
		return pagecache.DirWalk{Walker: w, Query: method}, nil
	}
}

// dirWorkers are the goroutines reading a tree's directories ahead.
func dirWorkers() int { return runtime.GOMAXPROCS(0) }

// printStats is the hidden --stats line: what the dentry walk did, for the
// tests that must see it taken.
func printStats(g *Globals, s *scan.Scanner) {
	st := s.Dentries()
	fmt.Fprintf(g.env.Stderr, "filecache: stats: dentry_files=%d opened_files=%d dentry_runs=%d\n", st.Files, st.Opened, st.Runs)
}
