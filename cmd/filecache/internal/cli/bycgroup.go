package cli

import (
	"fmt"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
	"github.com/filecache/filecache/cmd/filecache/internal/overlay"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
)

// CgroupNames names memory cgroups: the memory controller's hierarchy
// (version and mount point) and a function from cgroup id to path.
type CgroupNames struct {
	Version int
	Mount   string
	Path    func(id uint64) (string, bool)
}

// systemCgroupNames finds this machine's memory hierarchy.
func systemCgroupNames() (CgroupNames, error) {
	h, err := cgroups.Find()
	if err != nil {
		return CgroupNames{}, err
	}
	n := &cgroups.Names{H: h}
	return CgroupNames{Version: h.Version, Mount: h.Mount, Path: n.Path}, nil
}

// checkByCgroup rejects what cannot go with --by-cgroup: only the bpf
// engine's page walk sees which cgroup each page is charged to, and it
// counts whole files.
func (q *QueryCmd) checkByCgroup(g *Globals) error {
	if !q.ByCgroup {
		return nil
	}
	if g.Engine != "auto" && g.Engine != "bpf" {
		return usagef("--by-cgroup: only the bpf engine sees the memory cgroup each page is charged to; drop --engine %s", g.Engine)
	}
	if q.Range != "" {
		return usagef("--by-cgroup counts whole files; it cannot go with --range")
	}
	return nil
}

// loadPages loads the page walk (--by-cgroup), explaining a refusal in one line.
func (g *Globals) loadPages() (pagecache.Engine, error) {
	if g.env.LoadPages == nil {
		return nil, fmt.Errorf("this build has no page walk")
	}
	var eng pagecache.Engine
	err := g.checkedLoad(func() (err error) {
		eng, err = g.env.LoadPages(LoadOptions{BTF: g.BTF, Method: g.bpfMethod()})
		return err
	})
	return eng, err
}

// cgroupReport is the report's cgroup namer for --by-cgroup, noting (on
// stderr and in notes) when no hierarchy is mounted to name them by.
func (g *Globals) cgroupReport(notes *[]string) *report.Cgroups {
	find := g.env.CgroupNames
	if find == nil {
		find = systemCgroupNames
	}
	n, err := find()
	if err != nil {
		note := fmt.Sprintf("memory cgroups are shown by id only: %v", err)
		fmt.Fprintf(g.env.Stderr, "filecache: %s\n", note)
		*notes = append(*notes, note)
		return &report.Cgroups{}
	}
	return &report.Cgroups{Version: n.Version, Mount: n.Mount, Path: n.Path}
}

// cgroupNotes adds, once the files are known, why some cgroups have no name.
func (g *Globals) cgroupNotes(r *report.Report) {
	if r.Cgroups == nil {
		return
	}
	r.Cgroups.Resolve(r.Files)
	for _, note := range r.Cgroups.Notes() {
		fmt.Fprintf(g.env.Stderr, "filecache: %s\n", note)
		r.Notes = append(r.Notes, note)
	}
}

// realPaths fills in, for the scanner, the path of an overlayfs file's
// real file, checked to be the inode the kernel named.
func realPaths() func(fd int, rf *pagecache.RealFile) {
	res := &overlay.Resolver{}
	return func(fd int, rf *pagecache.RealFile) {
		p := overlay.FdPath(fd)
		dev, ok := overlay.FdDev(fd)
		if p == "" || !ok {
			return
		}
		rf.Path = res.RealPath(dev, p, rf.Layer, rf.Dev, rf.Ino)
	}
}

// lazyEngine loads an engine when first asked to measure, so a run in
// which every path fails never needs its privileges.
type lazyEngine struct {
	name string
	load func() (pagecache.Engine, error)
	e    pagecache.Engine
}

func (l *lazyEngine) Name() string { return l.name }

func (l *lazyEngine) Method() string {
	if l.e == nil {
		return ""
	}
	return l.e.Method()
}

func (l *lazyEngine) BatchSize() int { return bpf.Batch }

func (l *lazyEngine) Query(files []pagecache.Handle) ([]pagecache.Answer, error) {
	if l.e == nil {
		e, err := l.load()
		if err != nil {
			return nil, err
		}
		l.e = e
	}
	return l.e.Query(files)
}

func (l *lazyEngine) Close() {
	if l.e != nil {
		l.e.Close()
	}
}
