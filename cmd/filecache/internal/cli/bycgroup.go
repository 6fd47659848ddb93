package cli

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

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
	// Root is the cgroup the mount shows at its mount point ("/" unless a
	// sub-tree is mounted).
	Root string
	Path func(id uint64) (string, bool)
}

// Hierarchy is the mount the names come from.
func (n CgroupNames) Hierarchy() cgroups.Hierarchy {
	root := n.Root
	if root == "" {
		root = "/"
	}
	return cgroups.Hierarchy{Version: n.Version, Mount: n.Mount, Root: root}
}

// systemCgroupNames finds this machine's memory hierarchy.
func systemCgroupNames() (CgroupNames, error) {
	h, err := cgroups.Find()
	if err != nil {
		return CgroupNames{}, err
	}
	n := &cgroups.Names{H: h}
	return CgroupNames{Version: h.Version, Mount: h.Mount, Root: h.Root, Path: n.Path}, nil
}

// cgroupNames finds the memory hierarchy (the environment's, in tests).
func (g *Globals) cgroupNames() (CgroupNames, error) {
	if g.env.CgroupNames != nil {
		return g.env.CgroupNames()
	}
	return systemCgroupNames()
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
	n, err := g.cgroupNames()
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

// tryPages checks the page walk of --by-cgroup (doctor): it must find the
// test file's pages, all charged to one cgroup, this process's own memory
// cgroup where a hierarchy names it (doctor wrote them).
func (g *Globals) tryPages(h pagecache.Handle) (ch Check) {
	ch = Check{Engine: "by-cgroup", Method: "walk_pages"}
	start := time.Now()
	defer func() { ch.Seconds = time.Since(start).Seconds() }()
	eng, err := g.loadPages()
	if err != nil {
		ch.fail(err)
		return ch
	}
	defer eng.Close()
	ch.Method = "walk_pages (" + eng.Method() + ")"
	ans, err := eng.Query([]pagecache.Handle{h})
	if err == nil && ans[0].Err != nil {
		err = ans[0].Err
	}
	page := int64(unix.Getpagesize())
	if err == nil && (ans[0].Pages != testCached || ans[0].Size != testPages*page) {
		err = fmt.Errorf("wrong answer on a test file: %d pages of %d bytes, want %d of %d", ans[0].Pages, ans[0].Size, testCached, testPages*page)
	}
	if err != nil {
		ch.fail(err)
		return ch
	}
	cgs := ans[0].Cgroups
	own, ownErr := ownMemcgID()
	switch {
	case len(cgs) != 1 || cgs[0].Pages != testCached:
		ch.fail(fmt.Errorf("wrong split of a test file of %d pages: %v", testCached, cgs))
		return ch
	case ownErr == nil && cgs[0].ID != own:
		ch.fail(fmt.Errorf("a test file this process wrote is charged to cgroup id %d, not to its own (%d)", cgs[0].ID, own))
		return ch
	case ownErr == nil:
		ch.Detail = fmt.Sprintf("%d/%d pages of a test file, all charged to this process's memory cgroup, right", testCached, testPages)
	default:
		ch.Detail = fmt.Sprintf("%d/%d pages of a test file, all charged to cgroup id %d (%v)", testCached, testPages, cgs[0].ID, ownErr)
	}
	ch.OK = true
	return ch
}

// ownMemcgID is the id of this process's memory cgroup: the inode number of
// its directory in the mounted hierarchy.
func ownMemcgID() (uint64, error) {
	h, err := cgroups.Find()
	if err != nil {
		return 0, err
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, err
	}
	p, _, err := cgroups.OwnMemoryCgroup(self)
	if err != nil {
		return 0, err
	}
	dir, ok := cgroups.Dir(h, p)
	if !ok {
		return 0, fmt.Errorf("%s is outside the mount %s", p, h.Mount)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}
