package top

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/filecache/filecache/cmd/filecache/internal/units"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
	"github.com/filecache/filecache/cmd/filecache/internal/procs"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
)

// Doc is a snapshot as JSON (README.md documents the schema).
type Doc struct {
	Time        string   `json:"time"`
	PageSize    int      `json:"page_size"`
	Method      string   `json:"method"`
	Partial     bool     `json:"partial"`
	Rows        []DocRow `json:"rows"`
	Filesystems []DocFS  `json:"filesystems"`
	Total       DocTotal `json:"total"`
	Errors      []DocErr `json:"errors"`
	Restricted  bool     `json:"restricted"`
	// With the cgroup walk (--by-cgroup, --cgroup).
	ByCgroup     bool         `json:"by_cgroup,omitempty"`
	CgroupFilter []string     `json:"cgroup_filter,omitempty"`
	MemoryCgroup *DocMemcg    `json:"memory_cgroup,omitempty"`
	Cgroups      *[]DocCgroup `json:"cgroups,omitempty"`
}

// DocMemcg is the memory controller's hierarchy.
type DocMemcg struct {
	Version int    `json:"version"`
	Mount   string `json:"mount"`
}

// DocCgroup is one cgroup's pages over the filesystems walked.
type DocCgroup struct {
	Cgroup      *string `json:"cgroup"` // null: charged to none, or no directory
	ID          uint64  `json:"id"`
	ContainerID string  `json:"container_id,omitempty"`
	PodUID      string  `json:"pod_uid,omitempty"`
	Runtime     string  `json:"runtime,omitempty"`
	CachedPages uint64  `json:"cached_pages"`
	CachedBytes uint64  `json:"cached_bytes"`
}

// DocRow is one inode.
type DocRow struct {
	Path        string  `json:"path"`
	PathB64     string  `json:"path_b64,omitempty"`
	Deleted     bool    `json:"deleted"`
	NoName      bool    `json:"no_name"`
	Truncated   bool    `json:"truncated"`
	Filesystem  string  `json:"filesystem"`
	Device      string  `json:"device"`
	Inode       uint64  `json:"inode"`
	CachedPages uint64  `json:"cached_pages"`
	CachedBytes uint64  `json:"cached_bytes"`
	SizeBytes   uint64  `json:"size_bytes"`
	Percent     float64 `json:"percent"`
	ChangePages *int64  `json:"change_pages,omitempty"`
	// A file reached through another mount namespace's root: the process
	// it was reached through and the path there.
	NamespacePID  int    `json:"namespace_pid,omitempty"`
	ContainerPath string `json:"container_path,omitempty"`
	// The container and pod: of the row's cgroup (--by-cgroup), else of
	// the mount namespace it was reached through.
	ContainerID string `json:"container_id,omitempty"`
	PodUID      string `json:"pod_uid,omitempty"`
	// With the cgroup walk: the pair's cgroup (--by-cgroup; other_cgroups:
	// the pages of cgroups past those named one by one), every page of
	// the file, and whether its cache changed under the walk.
	CgroupID        *uint64 `json:"cgroup_id,omitempty"`
	Cgroup          *string `json:"cgroup,omitempty"`
	OtherCgroups    bool    `json:"other_cgroups,omitempty"`
	FileCachedPages *uint64 `json:"file_cached_pages,omitempty"`
	Changed         bool    `json:"changed,omitempty"`
	// --processes: the processes that have the file open or mapped.
	Processes *[]DocHolder `json:"processes,omitempty"`
}

// DocHolder is a process holding a row's file.
type DocHolder struct {
	PID    int    `json:"pid"`
	Comm   string `json:"comm"`
	FDs    []int  `json:"fds"`
	Mapped bool   `json:"mapped"`
}

// DocFS is one filesystem's sums.
type DocFS struct {
	Filesystem   string `json:"filesystem"`
	FSType       string `json:"fstype"`
	Source       string `json:"source"`
	Device       string `json:"device"`
	CachedPages  uint64 `json:"cached_pages"`
	CachedBytes  uint64 `json:"cached_bytes"`
	Inodes       uint64 `json:"inodes"`
	CachedInodes uint64 `json:"cached_inodes"`
	Shmem        bool   `json:"shmem"`
	Complete     bool   `json:"complete"`
	Partial      string `json:"partial,omitempty"`
	Walks        int    `json:"walks"`
	Runs         int    `json:"runs"`
	ChangePages  *int64 `json:"change_pages,omitempty"`
	// With the cgroup walk: every page found (cached_pages are those that
	// count), inodes whose cache changed under the walk, and pages of
	// cgroups the kernel's sums had no room for.
	WalkedPages   *uint64 `json:"walked_pages,omitempty"`
	ChangedInodes uint64  `json:"changed_inodes,omitempty"`
	Unsummed      uint64  `json:"unsummed_pages,omitempty"`
}

// DocTotal holds the sums against /proc/meminfo.
type DocTotal struct {
	CachedPages         uint64  `json:"cached_pages"`
	CachedBytes         uint64  `json:"cached_bytes"`
	ShmemBytes          uint64  `json:"shmem_bytes"`
	BuffersBytes        uint64  `json:"buffers_bytes"`
	MeminfoCachedBytes  uint64  `json:"meminfo_cached_bytes"`
	MeminfoShmemBytes   uint64  `json:"meminfo_shmem_bytes"`
	MeminfoBuffersBytes uint64  `json:"meminfo_buffers_bytes"`
	AccountedPercent    float64 `json:"accounted_percent"`
}

// DocErr is a filesystem that could not be walked.
type DocErr struct {
	Filesystem string `json:"filesystem"`
	Error      string `json:"error"`
	Skipped    bool   `json:"skipped"` // unreachable (covered, no block device), not a failure
}

func dev(d uint64) string { return fmt.Sprintf("%d:%d", unix.Major(d), unix.Minor(d)) }

// Document builds the JSON form of s.
func Document(s Snapshot) Doc {
	ps := uint64(s.PageSize)
	d := Doc{Time: s.Time.UTC().Format(time.RFC3339Nano), PageSize: s.PageSize, Method: s.Method, Partial: s.Partial(), Restricted: s.Restricted,
		Rows: []DocRow{}, Filesystems: []DocFS{}, Errors: []DocErr{}}
	for _, v := range s.Shown() {
		r := v.Row
		fs := s.FS[r.FS].FS
		p, b64 := report.JSONPath(r.Path)
		row := DocRow{Path: p, PathB64: b64, Deleted: r.Deleted, NoName: r.NoName, Truncated: r.Truncated,
			Filesystem: fs.Name(), Device: dev(fs.Dev), Inode: r.Ino, CachedPages: v.Pages,
			CachedBytes: v.Pages * ps, SizeBytes: r.Size, Percent: units.Percent(v.Pages, units.PagesOf(int64(r.Size))),
			NamespacePID: r.NSPid, Changed: r.Changed}
		if r.NSPid != 0 {
			row.ContainerPath = r.NSPath
		}
		if c, ok := s.Change(r); ok && !s.ByCgroup {
			row.ChangePages = &c
		}
		if s.CgroupWalk {
			walked := r.Walked
			row.FileCachedPages = &walked
		}
		if v.Pair != nil {
			id := v.Pair.ID
			row.CgroupID, row.OtherCgroups = &id, v.Pair.Other
			if cg, ok := s.CgroupPath(id); ok && !v.Pair.Other {
				row.Cgroup = &cg
			}
		}
		c := v.Container
		row.ContainerID, row.PodUID = c.ID, c.PodUID
		if s.Holders {
			hs := []DocHolder{}
			for _, h := range r.Holders {
				fds := h.FDs
				if fds == nil {
					fds = []int{}
				}
				hs = append(hs, DocHolder{PID: h.PID, Comm: h.Comm, FDs: fds, Mapped: h.Mapped})
			}
			row.Processes = &hs
		}
		d.Rows = append(d.Rows, row)
	}
	for _, t := range s.FS {
		if t.Err != nil {
			d.Errors = append(d.Errors, DocErr{Filesystem: t.FS.Name(), Error: t.Err.Error(), Skipped: Skipped(t.Err)})
			continue
		}
		f := DocFS{Filesystem: t.FS.Name(), FSType: t.FS.FSType, Source: t.FS.Source, Device: dev(t.FS.Dev),
			CachedPages: t.Pages, CachedBytes: t.Pages * ps, Inodes: t.Inodes, CachedInodes: t.Cached,
			Shmem: t.Shmem, Complete: t.Complete, Partial: t.Partial, Walks: t.Walks, Runs: t.Runs,
			ChangedInodes: t.Changed, Unsummed: t.Unsummed}
		if s.CgroupWalk {
			walked := t.Walked
			f.WalkedPages = &walked
		}
		if s.PrevFS != nil {
			c := int64(t.Pages) - int64(s.PrevFS[t.FS.Dev])
			f.ChangePages = &c
		}
		d.Filesystems = append(d.Filesystems, f)
	}
	pages, shmem, buffers := s.Accounted()
	d.Total = DocTotal{CachedPages: pages, CachedBytes: pages * ps, ShmemBytes: shmem * ps, BuffersBytes: buffers * ps,
		MeminfoCachedBytes: s.Mem.Cached, MeminfoShmemBytes: s.Mem.Shmem, MeminfoBuffersBytes: s.Mem.Buffers,
		AccountedPercent: units.Percent(pages*ps, s.Mem.Cached)}
	if s.CgroupWalk {
		d.ByCgroup, d.CgroupFilter = s.ByCgroup, s.Filter
		if s.Names.Version != 0 {
			d.MemoryCgroup = &DocMemcg{Version: s.Names.Version, Mount: s.Names.Mount}
		}
		cgs := []DocCgroup{}
		for _, cg := range s.Cgroups {
			c := s.Container(cg.ID)
			e := DocCgroup{ID: cg.ID, ContainerID: c.ID, PodUID: c.PodUID, Runtime: c.Runtime,
				CachedPages: cg.Pages, CachedBytes: cg.Pages * ps}
			if p, ok := s.CgroupPath(cg.ID); ok {
				e.Cgroup = &p
			}
			cgs = append(cgs, e)
		}
		d.Cgroups = &cgs
	}
	return d
}

// Shown is a row as the outputs show it: a file, or with ByCgroup one
// (cgroup, file) pair of it, with its pages and container.
type Shown struct {
	Row       Row
	Pair      *Pair // ByCgroup: the pair
	Pages     uint64
	Container cgroups.Container
}

// Shown lists the rows the outputs show, in order: the pairs with
// ByCgroup, else the files.
func (s Snapshot) Shown() []Shown {
	var out []Shown
	if s.ByCgroup {
		for i := range s.Pairs {
			p := &s.Pairs[i]
			r := s.Rows[p.Row]
			c := cgroups.Container{}
			if !p.Other {
				c = s.Container(p.ID)
			}
			if c.ID == "" && c.PodUID == "" {
				c = s.RowContainer(r)
			}
			out = append(out, Shown{Row: r, Pair: p, Pages: p.Pages, Container: c})
		}
		return out
	}
	for _, r := range s.Rows {
		out = append(out, Shown{Row: r, Pages: r.Pages, Container: s.RowContainer(r)})
	}
	return out
}

// JSON writes one document (indented) or, with line, one line.
func JSON(w io.Writer, s Snapshot, line bool) error {
	enc := json.NewEncoder(w)
	if !line {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(Document(s)); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// Table writes the rows (with ByCgroup, the (cgroup, file) pairs), the
// cgroups (with the cgroup walk), the filesystems holding pages, and the
// totals against /proc/meminfo.
func Table(w io.Writer, s Snapshot) error {
	ps := uint64(s.PageSize)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	watch := s.Prev != nil && !s.ByCgroup
	shown := s.Shown()
	// Text columns are left-aligned by hand: tabwriter aligns every cell one way.
	fsw, cw, gw := len("FILESYSTEM"), len("CONTAINER"), len("CGROUP")
	containers := s.ByCgroup
	for _, v := range shown {
		fsw = max(fsw, len(units.Display(s.FS[v.Row.FS].FS.Name())))
		cw = max(cw, len(v.Container.Short()))
		containers = containers || v.Container.ID != ""
		if v.Pair != nil {
			gw = max(gw, len(units.Display(s.CgroupLabel(v.Pair.ID, v.Pair.Other))))
		}
	}
	head := "CACHED\tSIZE\tPERCENT\t"
	if watch {
		head += "CHANGE\t"
	}
	head += fmt.Sprintf("  %-*s", fsw, "FILESYSTEM")
	if containers {
		head += fmt.Sprintf("  %-*s", cw, "CONTAINER")
	}
	if s.ByCgroup {
		head += fmt.Sprintf("  %-*s", gw, "CGROUP")
	}
	fmt.Fprintf(tw, "%s  PATH\n", head)
	for _, v := range shown {
		r := v.Row
		fs := s.FS[r.FS].FS
		line := fmt.Sprintf("%s\t%s\t%.1f%%\t", units.Human(v.Pages*ps), units.Human(r.Size),
			units.Percent(v.Pages, units.PagesOf(int64(r.Size))))
		if watch {
			c, _ := s.Change(r)
			line += signed(c, ps) + "\t"
		}
		line += fmt.Sprintf("  %-*s", fsw, units.Display(fs.Name()))
		if containers {
			line += fmt.Sprintf("  %-*s", cw, orDash(v.Container.Short()))
		}
		if v.Pair != nil {
			line += fmt.Sprintf("  %-*s", gw, units.Display(s.CgroupLabel(v.Pair.ID, v.Pair.Other)))
		}
		p := rowPath(r, fs)
		if r.NSPid != 0 && v.Container.ID != "" {
			// The container's own path: the container column says whose.
			p = rowPath(Row{Path: r.NSPath, NoName: r.NoName, Deleted: r.Deleted, Ino: r.Ino}, fs)
		}
		fmt.Fprintf(tw, "%s  %s\n", line, p)
		if s.Holders {
			// Under the row, as --map draws under a file: empty cells keep the columns.
			fmt.Fprintf(tw, "\t\t\t%s  %s\n", strings.Repeat("\t", strings.Count(head, "\t")-3), holders(r.Holders))
		}
	}
	if s.CgroupWalk {
		fmt.Fprintln(tw)
		writeCgroups(tw, s)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CACHED\tINODES\tCACHED INODES\tTYPE\t  FILESYSTEM")
	for _, t := range s.FS {
		if t.Err != nil || t.Pages == 0 {
			continue
		}
		note := ""
		if t.Partial != "" {
			note = " (partial: " + t.Partial + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t  %s%s\n", units.Human(t.Pages*ps), t.Inodes, t.Cached, t.FS.FSType,
			units.Display(t.FS.Name()), note)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return writeSummary(w, s)
}

// writeCgroups writes the cgroups' table: each cgroup's pages over the
// filesystems walked, its container and pod.
func writeCgroups(tw io.Writer, s Snapshot) {
	ps := uint64(s.PageSize)
	cw, pw := len("CONTAINER"), len("POD")
	for _, cg := range s.Cgroups {
		c := s.Container(cg.ID)
		cw, pw = max(cw, len(c.Short())), max(pw, len(c.PodUID))
	}
	fmt.Fprintf(tw, "CACHED\t  %-*s  %-*s  CGROUP\n", cw, "CONTAINER", pw, "POD")
	for _, cg := range s.Cgroups {
		c := s.Container(cg.ID)
		fmt.Fprintf(tw, "%s\t  %-*s  %-*s  %s\n", units.Human(cg.Pages*ps), cw, orDash(c.Short()), pw, orDash(c.PodUID),
			units.Display(s.CgroupLabel(cg.ID, false)))
	}
}

// holders says which processes hold a file: "held by PID (COMM, fd N,
// mapped), ...".
func holders(hs []procs.Holder) string {
	if len(hs) == 0 {
		return "  held by no process"
	}
	var parts []string
	for _, h := range hs {
		var how []string
		for _, fd := range h.FDs {
			how = append(how, fmt.Sprintf("fd %d", fd))
		}
		if h.Mapped {
			how = append(how, "mapped")
		}
		parts = append(parts, fmt.Sprintf("%d (%s, %s)", h.PID, units.Display(h.Comm), strings.Join(how, ", ")))
	}
	return "  held by " + strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeSummary(w io.Writer, s Snapshot) error {
	ps := uint64(s.PageSize)
	pages, shmem, buffers := s.Accounted()
	var b strings.Builder
	fmt.Fprintf(&b, "total %s in %d filesystem(s)", units.Human(pages*ps), countWalked(s))
	if s.Mem.Read {
		fmt.Fprintf(&b, ": %.1f%% of Cached %s; shmem %s of Shmem %s; block devices %s of Buffers %s",
			units.Percent(pages*ps, s.Mem.Cached), units.Human(s.Mem.Cached), units.Human(shmem*ps),
			units.Human(s.Mem.Shmem), units.Human(buffers*ps), units.Human(s.Mem.Buffers))
	}
	if s.Restricted {
		b.WriteString(" (--mount: only some filesystems walked)")
	}
	if s.CgroupWalk {
		fmt.Fprintf(&b, "; %d cgroup(s)", len(s.Cgroups))
	}
	if len(s.Filter) > 0 {
		fmt.Fprintf(&b, " (--cgroup: only pages charged to %s and below)", strings.Join(s.Filter, ", "))
	}
	fmt.Fprintln(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func countWalked(s Snapshot) int {
	n := 0
	for _, t := range s.FS {
		if t.Err == nil {
			n++
		}
	}
	return n
}

// Problems writes one line for each filesystem that could not be walked
// or was walked in part, and for an unreadable /proc/meminfo.
func Problems(w io.Writer, s Snapshot) {
	for _, t := range s.FS {
		switch {
		case t.Err != nil:
			fmt.Fprintf(w, "filecache: %s: %v\n", units.Display(t.FS.Name()), t.Err)
		case t.Partial != "":
			fmt.Fprintf(w, "filecache: %s: partial: %s\n", units.Display(t.FS.Name()), t.Partial)
		}
	}
	if s.MemErr != nil {
		fmt.Fprintf(w, "filecache: /proc/meminfo: %v\n", s.MemErr)
	}
}

// rowPath is how the table shows a row's file.
func rowPath(r Row, fs Filesystem) string {
	p := units.Display(r.Path)
	if r.NoName {
		p = fmt.Sprintf("(no name: inode %d on %s)", r.Ino, dev(fs.Dev))
	}
	if r.Deleted {
		p += " (deleted)"
	}
	return p
}

func signed(pages int64, ps uint64) string {
	switch {
	case pages > 0:
		return "+" + units.Human(uint64(pages)*ps)
	case pages < 0:
		return "-" + units.Human(uint64(-pages)*ps)
	}
	return "0"
}

// Prometheus writes the rows and the filesystems' sums in the Prometheus
// text exposition format, for node_exporter's textfile collector.
func Prometheus(w io.Writer, s Snapshot) error {
	ps := uint64(s.PageSize)
	var b strings.Builder
	metric := func(name, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	metric("filecache_top_cached_bytes", "Page cache held by one of the inodes holding the most (with --by-cgroup, one cgroup's share of one).")
	for _, v := range s.Shown() {
		r := v.Row
		fs := s.FS[r.FS].FS
		cg := ""
		if v.Pair != nil {
			cg = s.CgroupLabel(v.Pair.ID, v.Pair.Other)
		}
		fmt.Fprintf(&b, "filecache_top_cached_bytes{path=%s,filesystem=%s,device=%s,inode=\"%d\",deleted=\"%t\",cgroup=%s,container_id=%s,pod_uid=%s} %d\n",
			label(PromPath(r, v.Container)), label(fs.Name()), label(dev(fs.Dev)), r.Ino, r.Deleted, label(cg),
			label(v.Container.ID), label(v.Container.PodUID), v.Pages*ps)
	}
	if s.CgroupWalk {
		metric("filecache_cgroup_cached_bytes", "Page cache charged to a memory cgroup, over the filesystems walked.")
		for _, cg := range s.Cgroups {
			c := s.Container(cg.ID)
			fmt.Fprintf(&b, "filecache_cgroup_cached_bytes{cgroup=%s,container_id=%s,pod_uid=%s} %d\n",
				label(s.CgroupLabel(cg.ID, false)), label(c.ID), label(c.PodUID), cg.Pages*ps)
		}
	}
	type fsMetric struct {
		name, help string
		value      func(FSTotal) uint64
	}
	for _, m := range []fsMetric{
		{"filecache_filesystem_cached_bytes", "Page cache held by all inodes of a filesystem.", func(t FSTotal) uint64 { return t.Pages * ps }},
		{"filecache_filesystem_cached_inodes", "Inodes of a filesystem with pages in the page cache.", func(t FSTotal) uint64 { return t.Cached }},
		{"filecache_filesystem_walk_complete", "1 if the walk visited every inode of the filesystem.", func(t FSTotal) uint64 {
			if t.Complete {
				return 1
			}
			return 0
		}},
	} {
		metric(m.name, m.help)
		for _, t := range s.FS {
			if t.Err != nil {
				continue
			}
			fmt.Fprintf(&b, "%s{filesystem=%s,fstype=%s,device=%s} %d\n", m.name, label(t.FS.Name()),
				label(t.FS.FSType), label(dev(t.FS.Dev)), m.value(t))
		}
	}
	pages, _, _ := s.Accounted()
	metric("filecache_accounted_bytes", "Page cache found by walking every filesystem.")
	fmt.Fprintf(&b, "filecache_accounted_bytes %d\n", pages*ps)
	if s.Mem.Read {
		metric("filecache_meminfo_cached_bytes", "Cached in /proc/meminfo when the walk ended.")
		fmt.Fprintf(&b, "filecache_meminfo_cached_bytes %d\n", s.Mem.Cached)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// PromPath is a row's path label: inside its container when it was
// reached through a container's root (the container_id label says whose),
// which stays the same when the process it was reached through changes.
func PromPath(r Row, c cgroups.Container) string {
	if r.NSPid != 0 && c.ID != "" && !r.NoName {
		return r.NSPath
	}
	return r.Path
}

// label quotes a Prometheus label value: UTF-8, with \, " and newline escaped.
func label(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
	return `"` + v + `"`
}
