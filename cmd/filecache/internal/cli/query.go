package cli

import (
	"slices"
	"sort"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// QueryCmd measures paths.
type QueryCmd struct {
	Selection `embed:""`
	Files     bool     `help:"List every file found in a directory, not only the directory's sums."`
	Bytes     bool     `help:"Print exact byte counts in the table, not human sizes."`
	Sort      string   `enum:"none,cached,size,percent,path" default:"none" help:"Order the files listed: ${enum} (numbers largest first)."`
	Top       int      `placeholder:"N" help:"List the N files of each directory argument holding the most cached pages."`
	Detail    bool     `help:"Add dirty, writeback, evicted and recently evicted pages (cachestat(2), Linux >= 6.5)."`
	Map       bool     `help:"Draw which parts of each file are cached, like vmtouch -v: O all, o some, blank none."`
	Range     string   `placeholder:"OFFSET:LENGTH" help:"Measure only these bytes of each file (sizes take K, M, G, T; no LENGTH: to the end). Uses cachestat or mincore."`
	NoHead    bool     `name:"no-headings" help:"Print the table without its heading line."`
	Output    []string `placeholder:"COLUMNS" help:"The table's columns, comma-separated: cached, pages, size, percent, dirty, writeback, evicted, recent, engine, device, inode, layer, container, cgroup, path."`
	ByCgroup  bool     `name:"by-cgroup" help:"Split each file's (and tree's) cached pages by the memory cgroup each page is charged to: a walk of the file's page cache, costing per cached page (bpf engine)."`
	Pid       []int    `name:"pid" placeholder:"PID" help:"Measure every regular file process PID has open or mapped (repeatable), with a line of sums for each process."`
	Stats     bool     `hidden:"" help:"Print on stderr how many tree files the dentry walk answered and how many were opened (for tests)."`
}

// Run measures the paths and prints the report.
func (q *QueryCmd) Run(g *Globals) error {
	env := g.env
	if err := q.checkPaths(); err != nil {
		return err
	}
	if err := q.checkByCgroup(g); err != nil {
		return err
	}
	rng, err := g.parseRange(q.Range)
	if err != nil {
		return err
	}
	if err := report.CheckColumns(q.Output); err != nil {
		return usageError{err}
	}
	if g.NDJSON && q.Sort != "none" {
		return usagef("--sort needs the whole list, and --ndjson prints files as they are measured: use --json")
	}
	r := report.Report{PageSize: units.PageSize, Range: rng}
	chain := g.chain(rng, &r.Notes)
	var base, eng pagecache.Engine = chain, chain
	if q.ByCgroup {
		// The page walk alone: no other engine sees a page's cgroup.
		base = &lazyEngine{name: "bpf", load: g.loadPages}
		eng = base
		r.Cgroups = g.cgroupReport(&r.Notes)
	}
	if q.Detail {
		eng = &pagecache.Detailed{Engine: base, Note: func(err error) {
			g.env.Stderr.Write([]byte("filecache: " + err.Error() + "\n"))
			r.Notes = append(r.Notes, err.Error())
		}}
	}
	if q.Map {
		eng = pagecache.Mapped{Engine: eng}
	}
	s := &scan.Scanner{
		Engine:   func() (pagecache.Engine, error) { return eng, nil },
		Walk:     q.walkOptions(),
		Ranged:   rng != nil,
		RealPath: realPaths(),
		Dirs:     q.dirs(g, rng != nil),
		Workers:  dirWorkers(),
	}
	defer s.Close()

	paths, listErr, closeList, err := q.paths(env)
	if err != nil {
		return g.failed(err)
	}
	defer closeList()
	var hold *held
	if len(q.Pid) > 0 {
		var vias []string
		vias, hold = q.pidPaths(g, &r)
		paths = then(paths, vias)
	}
	nd := &report.NDJSON{W: env.Stdout}
	prog := report.NewProgress(env.Stderr, env.Terminal && !g.JSON && !g.NDJSON)
	defer prog.Clear()
	var top []scan.File // --top: the tree's files with the most cached pages
	var writeErr error
	err = s.ScanSeq(paths, func(f scan.File) {
		if hold != nil {
			var keep bool
			if f, keep = hold.resolve(f, &r); !keep {
				return
			}
		}
		if f.Err != nil {
			prog.Clear()
			env.Stderr.Write([]byte(report.ErrorLine(f) + "\n"))
		}
		prog.Add(f)
		if !g.NDJSON {
			if q.Top > 0 && f.Root != "" && f.Err == nil {
				r.Count(f)
				top = keepTop(top, f, q.Top)
				return
			}
			if f.Kind == scan.KindDir {
				r.Files = append(r.Files, top...)
				top = top[:0]
			}
			r.Add(f, q.Files)
			return
		}
		r.Count(f)
		if writeErr == nil {
			writeErr = nd.Write(r, f)
		}
	})
	if err == nil && writeErr != nil {
		return g.failed(writeErr)
	}
	prog.Clear()
	if err == nil {
		err = *listErr
	}
	if err != nil {
		if g.Engine != "auto" || q.ByCgroup {
			defer g.printLoadLog(err)
		}
		return g.failed(err)
	}
	if s.EngineInUse() != nil && base.Name() != "none" && base.Method() != "" {
		r.Engine, r.Method = base.Name(), base.Method()
	} else if d := s.DirReader(); d != nil && s.Dentries().Files > 0 {
		r.Engine, r.Method = d.Name(), d.Method() // every file from the dentry walk
	}
	if q.Stats {
		printStats(g, s)
	}
	g.cgroupNotes(&r)
	r.Sort(q.Sort)
	switch {
	case g.NDJSON:
		for _, p := range r.Processes {
			if err == nil {
				err = nd.Process(r, p)
			}
		}
		if err == nil {
			err = nd.Summary(r)
		}
	case g.JSON:
		err = report.JSON(env.Stdout, r)
	default:
		err = report.Table(env.Stdout, r, report.TableOptions{Bytes: q.Bytes, NoHeadings: q.NoHead, Detail: q.Detail, Columns: q.Output})
	}
	if err != nil {
		return g.failed(err)
	}
	if r.Failed() || hold != nil && hold.failed {
		return exitStatus(ExitFailed)
	}
	return nil
}

// keepTop keeps the n files with the most cached pages, most first.
func keepTop(top []scan.File, f scan.File, n int) []scan.File {
	i := sort.Search(len(top), func(i int) bool { return top[i].Pages < f.Pages })
	if i >= n {
		return top
	}
	top = slices.Insert(top, i, f)
	if len(top) > n {
		top = top[:n]
	}
	return top
}
