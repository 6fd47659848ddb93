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
	for _, r := range s.Rows {
		fs := s.FS[r.FS].FS
		p, b64 := report.JSONPath(r.Path)
		row := DocRow{Path: p, PathB64: b64, Deleted: r.Deleted, NoName: r.NoName, Truncated: r.Truncated,
			Filesystem: fs.Name(), Device: dev(fs.Dev), Inode: r.Ino, CachedPages: r.Pages,
			CachedBytes: r.Pages * ps, SizeBytes: r.Size, Percent: units.Percent(r.Pages, units.PagesOf(int64(r.Size)))}
		if c, ok := s.Change(r); ok {
			row.ChangePages = &c
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
			Shmem: t.Shmem, Complete: t.Complete, Partial: t.Partial, Walks: t.Walks, Runs: t.Runs}
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
	return d
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

// Table writes the rows, the filesystems holding pages, and the totals
// against /proc/meminfo.
func Table(w io.Writer, s Snapshot) error {
	ps := uint64(s.PageSize)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	watch := s.Prev != nil
	// Text columns are left-aligned by hand: tabwriter aligns every cell one way.
	fsw := len("FILESYSTEM")
	for _, r := range s.Rows {
		fsw = max(fsw, len(units.Display(s.FS[r.FS].FS.Name())))
	}
	head := "CACHED\tSIZE\tPERCENT\t"
	if watch {
		head += "CHANGE\t"
	}
	fmt.Fprintf(tw, "%s  %-*s  PATH\n", head, fsw, "FILESYSTEM")
	for _, r := range s.Rows {
		fs := s.FS[r.FS].FS
		line := fmt.Sprintf("%s\t%s\t%.1f%%\t", units.Human(r.Pages*ps), units.Human(r.Size),
			units.Percent(r.Pages, units.PagesOf(int64(r.Size))))
		if watch {
			c, _ := s.Change(r)
			line += signed(c, ps) + "\t"
		}
		fmt.Fprintf(tw, "%s  %-*s  %s\n", line, fsw, units.Display(fs.Name()), rowPath(r, fs))
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
	metric("filecache_top_cached_bytes", "Page cache held by one of the inodes holding the most.")
	for _, r := range s.Rows {
		fs := s.FS[r.FS].FS
		fmt.Fprintf(&b, "filecache_top_cached_bytes{path=%s,filesystem=%s,device=%s,inode=\"%d\",deleted=\"%t\"} %d\n",
			label(r.Path), label(fs.Name()), label(dev(fs.Dev)), r.Ino, r.Deleted, r.Pages*ps)
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

// label quotes a Prometheus label value: UTF-8, with \, " and newline escaped.
func label(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
	return `"` + v + `"`
}
