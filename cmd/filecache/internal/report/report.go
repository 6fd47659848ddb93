// Package report prints measured files: a table a person reads at a glance,
// or one JSON document for programs. Paths are bytes on Linux; both forms
// keep them exact (the table quotes what a terminal would mangle, JSON adds
// the raw bytes in base64 when a path is not valid UTF-8).
package report

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/filecache/filecache/cmd/filecache/internal/units"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
)

// Report is one run's outcome.
type Report struct {
	Engine   string // engine that measured, "" if none was needed
	Method   string
	PageSize int
	Files    []scan.File // what the report lists, in the order met
	Notes    []string    // why an engine was passed over
	// Range, when set, is the part of each file measured (--range): a
	// file's total pages are then the pages that range covers.
	Range *pagecache.Range
	// Cgroups, when set, makes a --by-cgroup report (cgroups.go).
	Cgroups *Cgroups
	// Processes are the --pid processes, with the sums of the files
	// each holds (procs.go).
	Processes []Process
	total     Totals
	failed    bool
}

// Totals adds up the measured files.
type Totals struct {
	Files      int     `json:"files"`
	SizeBytes  int64   `json:"size_bytes"`
	TotalPages uint64  `json:"total_pages"`
	Cached     uint64  `json:"cached_pages"`
	CachedB    uint64  `json:"cached_bytes"`
	Percent    float64 `json:"percent"`
}

// Add counts one outcome of the scan and lists it, unless it is a file
// found inside a directory argument and listTree is false: a tree of a
// million files is then summed, not kept.
func (r *Report) Add(f scan.File, listTree bool) {
	r.Count(f)
	if f.Root == "" || listTree || f.Err != nil {
		r.Files = append(r.Files, f)
	}
}

// Count adds one outcome to the totals without listing it (--ndjson streams
// instead).
func (r *Report) Count(f scan.File) {
	switch {
	case f.Err != nil:
		r.failed = true
	case f.Kind != scan.KindDir:
		r.total.Files++
		r.total.SizeBytes += f.Size
		r.total.TotalPages += r.pagesOf(f)
		r.total.Cached += f.Pages
	case f.Failed > 0:
		r.failed = true
	}
}

// Totals of every file measured, inside trees too (a hard-linked inode once).
func (r Report) Totals() Totals {
	t := r.total
	t.CachedB = t.Cached * uint64(r.PageSize)
	t.Percent = units.Percent(t.Cached, t.TotalPages)
	return t
}

// Failed says whether any path has no figures.
func (r Report) Failed() bool { return r.failed }

type jsonFile struct {
	Path       string  `json:"path"`
	PathB64    string  `json:"path_b64,omitempty"`
	Engine     string  `json:"engine"`
	Type       string  `json:"type"`
	Device     string  `json:"device"`
	Inode      uint64  `json:"inode"`
	SizeBytes  int64   `json:"size_bytes"`
	TotalPages uint64  `json:"total_pages"`
	Cached     uint64  `json:"cached_pages"`
	CachedB    uint64  `json:"cached_bytes"`
	Percent    float64 `json:"percent"`
	Map        string  `json:"map,omitempty"`
	// cachestat(2)'s extra counts, when that engine answered.
	Dirty           *uint64 `json:"dirty_pages,omitempty"`
	Writeback       *uint64 `json:"writeback_pages,omitempty"`
	Evicted         *uint64 `json:"evicted_pages,omitempty"`
	RecentlyEvicted *uint64 `json:"recently_evicted_pages,omitempty"`
	// An overlayfs file: where its pages are.
	Layer      string  `json:"layer,omitempty"`
	RealPath   *string `json:"real_path,omitempty"`
	RealDevice string  `json:"real_device,omitempty"`
	RealInode  uint64  `json:"real_inode,omitempty"`
	// --by-cgroup: the cached pages by memory cgroup.
	Cgroups *[]jsonCgroup `json:"cgroups,omitempty"`
	// --pid: the processes holding the file.
	Processes *[]jsonHolder `json:"processes,omitempty"`
}

type jsonTree struct {
	Path       string  `json:"path"`
	PathB64    string  `json:"path_b64,omitempty"`
	Files      int     `json:"files"`
	Failed     int     `json:"failed"`
	SizeBytes  int64   `json:"size_bytes"`
	TotalPages uint64  `json:"total_pages"`
	Cached     uint64  `json:"cached_pages"`
	CachedB    uint64  `json:"cached_bytes"`
	Percent    float64 `json:"percent"`
	// --by-cgroup: the tree's cached pages by memory cgroup.
	Cgroups *[]jsonCgroup `json:"cgroups,omitempty"`
}

type jsonRange struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"` // 0: to the end of each file
}

type jsonError struct {
	Path    string `json:"path"`
	PathB64 string `json:"path_b64,omitempty"`
	Error   string `json:"error"`
}

type jsonDoc struct {
	Engine   *string     `json:"engine"`
	Method   *string     `json:"method"`
	PageSize int         `json:"page_size"`
	Range    *jsonRange  `json:"range"`
	Files    []jsonFile  `json:"files"`
	Trees    []jsonTree  `json:"trees"`
	Total    Totals      `json:"total"`
	Errors   []jsonError `json:"errors"`
	Notes    []string    `json:"notes"`
	// --by-cgroup: the memory controller's hierarchy (null: none mounted).
	MemoryCgroup **jsonMemoryCgroup `json:"memory_cgroup,omitempty"`
	// --pid: each process's sums.
	Processes *[]jsonProcess `json:"processes,omitempty"`
}

// JSONPath returns the display form of p (invalid bytes as U+FFFD) and, when
// that loses bytes, the exact bytes in standard base64.
func JSONPath(p string) (string, string) {
	if utf8.ValidString(p) {
		return p, ""
	}
	return strings.ToValidUTF8(p, "\uFFFD"), base64.StdEncoding.EncodeToString([]byte(p))
}

// JSON writes r as one JSON document (schema in README.md).
func JSON(w io.Writer, r Report) error {
	doc := jsonDoc{PageSize: r.PageSize, Files: []jsonFile{}, Trees: []jsonTree{}, Errors: []jsonError{}, Notes: []string{}, Total: r.Totals()}
	doc.Notes = append(doc.Notes, r.Notes...)
	if r.Cgroups != nil {
		mc := r.jsonMemoryCgroup()
		doc.MemoryCgroup = &mc
	}
	if r.Range != nil {
		doc.Range = &jsonRange{Offset: r.Range.Off, Length: r.Range.Len}
	}
	if r.Processes != nil {
		ps := []jsonProcess{}
		for _, p := range r.Processes {
			ps = append(ps, r.jsonProcess(p))
		}
		doc.Processes = &ps
	}
	if r.Engine != "" {
		doc.Engine, doc.Method = &r.Engine, &r.Method
	}
	for _, f := range r.Files {
		switch e := r.entry(f).(type) {
		case jsonError:
			doc.Errors = append(doc.Errors, e)
		case jsonTree:
			doc.Trees = append(doc.Trees, e)
		case jsonFile:
			doc.Files = append(doc.Files, e)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// TableOptions change how Table prints.
type TableOptions struct {
	Bytes      bool     // exact byte counts instead of human sizes
	NoHeadings bool     // no heading line
	Detail     bool     // dirty, writeback, evicted and recently evicted columns
	Columns    []string // --output: the columns, in order; nil for the default
}

// row is one line of the table: a file, a directory's sums or the total.
type row struct {
	cached, total uint64
	size          int64
	f             *scan.File // nil for the total line
	name          string
	cgroup        string // --by-cgroup: the cgroup the row's pages are charged to
	container     string // and the container it is (short id), if any
}

type column struct {
	head string
	cell func(r row, o TableOptions, page int) string
}

func detailCell(pick func(*pagecache.Cachestat) uint64) func(row, TableOptions, int) string {
	return func(r row, _ TableOptions, _ int) string {
		if r.f == nil || r.f.Detail == nil {
			return "-"
		}
		return strconv.FormatUint(pick(r.f.Detail), 10)
	}
}

func sizeCell(o TableOptions, n uint64) string {
	if o.Bytes {
		return strconv.FormatUint(n, 10)
	}
	return units.Human(n)
}

// Columns are what --output may name.
var Columns = map[string]column{
	"cached": {"CACHED", func(r row, o TableOptions, page int) string { return sizeCell(o, r.cached*uint64(page)) }},
	"pages":  {"PAGES", func(r row, _ TableOptions, _ int) string { return fmt.Sprintf("%d/%d", r.cached, r.total) }},
	"size":   {"SIZE", func(r row, o TableOptions, _ int) string { return sizeCell(o, uint64(r.size)) }},
	"percent": {"PERCENT", func(r row, _ TableOptions, _ int) string {
		return fmt.Sprintf("%.1f%%", units.Percent(r.cached, r.total))
	}},
	"dirty":     {"DIRTY", detailCell(func(d *pagecache.Cachestat) uint64 { return d.Dirty })},
	"writeback": {"WRITEBACK", detailCell(func(d *pagecache.Cachestat) uint64 { return d.Writeback })},
	"evicted":   {"EVICTED", detailCell(func(d *pagecache.Cachestat) uint64 { return d.Evicted })},
	"recent":    {"RECENT", detailCell(func(d *pagecache.Cachestat) uint64 { return d.RecentlyEvicted })},
	"engine": {"ENGINE", func(r row, _ TableOptions, _ int) string {
		if r.f == nil || r.f.Engine == "" {
			return "-"
		}
		return r.f.Engine
	}},
	"device": {"DEVICE", func(r row, _ TableOptions, _ int) string {
		if r.f == nil || r.f.Kind == scan.KindDir {
			return "-"
		}
		return fmt.Sprintf("%d:%d", unix.Major(r.f.Dev), unix.Minor(r.f.Dev))
	}},
	"inode": {"INODE", func(r row, _ TableOptions, _ int) string {
		if r.f == nil || r.f.Kind == scan.KindDir {
			return "-"
		}
		return strconv.FormatUint(r.f.Ino, 10)
	}},
	"path": {"PATH", func(r row, _ TableOptions, _ int) string { return r.name }},
	"container": {"CONTAINER", func(r row, _ TableOptions, _ int) string {
		if r.container == "" {
			return "-"
		}
		return r.container
	}},
	"cgroup": {"CGROUP", func(r row, _ TableOptions, _ int) string {
		if r.cgroup == "" {
			return "-"
		}
		return r.cgroup
	}},
	"layer": {"LAYER", func(r row, _ TableOptions, _ int) string {
		if r.f == nil || r.f.Real == nil {
			return "-"
		}
		return r.f.Real.Layer
	}},
}

// CheckColumns rejects --output names Table does not know.
func CheckColumns(names []string) error {
	for _, n := range names {
		if _, ok := Columns[n]; !ok {
			known := slices.Sorted(maps.Keys(Columns))
			return fmt.Errorf("--output: unknown column %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return nil
}

// Table writes the measured files as aligned columns, with a total line when
// there are several.
func Table(w io.Writer, r Report, o TableOptions) error {
	if r.Totals().Files == 0 && !r.hasTree() {
		return nil // nothing measured: the errors on stderr say why
	}
	names := o.Columns
	if len(names) == 0 {
		names = []string{"cached", "pages", "size", "percent"}
		if o.Detail {
			names = append(names, "dirty", "writeback", "evicted", "recent")
		}
		if r.Cgroups != nil {
			if r.Cgroups.anyContainer(r.Files) {
				names = append(names, "container")
			}
			names = append(names, "cgroup")
		}
		names = append(names, "path")
	}
	if err := CheckColumns(names); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	line := func(cell func(column) string) {
		var b strings.Builder
		for i, n := range names {
			// The last column is left as it is: a path is not padded.
			if i == len(names)-1 {
				if n == "path" {
					b.WriteString("  ")
				}
				b.WriteString(cell(Columns[n]))
				break
			}
			b.WriteString(cell(Columns[n]))
			b.WriteByte('\t')
		}
		b.WriteByte('\n')
		io.WriteString(tw, b.String())
	}
	if !o.NoHeadings {
		line(func(c column) string { return c.head })
	}
	emit := func(x row) { line(func(c column) string { return c.cell(x, o, r.PageSize) }) }
	if r.Cgroups != nil {
		// One row per cgroup a file's (or tree's) pages are charged to.
		plain := emit
		emit = func(x row) {
			if x.f == nil {
				plain(x)
				return
			}
			for _, y := range r.cgroupRows(x, x.f.Cgroups) {
				plain(y)
			}
		}
	}
	rows := 0
	for i := range r.Files {
		f := &r.Files[i]
		switch {
		case f.Err != nil:
			continue
		case f.Kind == scan.KindDir:
			emit(row{cached: f.Pages, total: f.TotalPages, size: f.Size, f: f, name: fmt.Sprintf("%s (%d files)", units.Display(f.Path), f.Files)})
		default:
			emit(row{cached: f.Pages, total: r.pagesOf(*f), size: f.Size, f: f, name: units.Display(f.Path)})
			if f.Map != "" {
				// Empty cells keep the columns; the map sits under the path.
				io.WriteString(tw, strings.Repeat("\t", len(names)-1)+"  ["+f.Map+"]\n")
			}
		}
		rows++
	}
	for _, p := range r.Processes {
		emit(row{cached: p.Pages, total: p.Total, size: p.Size, name: processName(p)})
	}
	if t := r.Totals(); rows > 1 {
		emit(row{cached: t.Cached, total: t.TotalPages, size: t.SizeBytes, name: fmt.Sprintf("total (%d files)", t.Files)})
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// ErrorLine is the one-line message for a path that has no figures.
func ErrorLine(f scan.File) string {
	return fmt.Sprintf("filecache: %s: %v", units.Display(f.Path), f.Err)
}

func (r Report) hasTree() bool {
	for _, f := range r.Files {
		if f.Kind == scan.KindDir && f.Err == nil {
			return true
		}
	}
	return false
}

// entry is f as the JSON document and the NDJSON stream show it: a
// jsonFile, a jsonTree or a jsonError.
func (r Report) entry(f scan.File) any {
	path, b64 := JSONPath(f.Path)
	if f.Err != nil {
		return jsonError{Path: path, PathB64: b64, Error: f.Err.Error()}
	}
	if f.Kind == scan.KindDir {
		return jsonTree{Path: path, PathB64: b64, Files: f.Files, Failed: f.Failed,
			SizeBytes: f.Size, TotalPages: f.TotalPages, Cached: f.Pages, CachedB: f.Pages * uint64(r.PageSize),
			Percent: units.Percent(f.Pages, f.TotalPages), Cgroups: r.jsonCgroups(f.Cgroups)}
	}
	total := r.pagesOf(f)
	jf := jsonFile{
		Path: path, PathB64: b64, Engine: f.Engine, Type: f.Kind,
		Device:     fmt.Sprintf("%d:%d", unix.Major(f.Dev), unix.Minor(f.Dev)),
		Inode:      f.Ino,
		SizeBytes:  f.Size,
		TotalPages: total,
		Cached:     f.Pages,
		CachedB:    f.Pages * uint64(r.PageSize),
		Percent:    units.Percent(f.Pages, total),
		Map:        f.Map,
		Cgroups:    r.jsonCgroups(f.Cgroups),
		Processes:  jsonHolders(f.Holders),
	}
	if rf := f.Real; rf != nil {
		jf.Layer, jf.RealInode = rf.Layer, rf.Ino
		jf.RealDevice = fmt.Sprintf("%d:%d", unix.Major(rf.Dev), unix.Minor(rf.Dev))
		if rf.Path != "" {
			p := rf.Path
			jf.RealPath = &p
		}
	}
	if d := f.Detail; d != nil {
		jf.Dirty, jf.Writeback, jf.Evicted, jf.RecentlyEvicted = &d.Dirty, &d.Writeback, &d.Evicted, &d.RecentlyEvicted
	}
	return jf
}

// NDJSON writes one JSON object a line as outcomes come, for trees too
// large for one document: {"record":"file",...} (the fields of files[]),
// {"record":"tree",...}, {"record":"error",...}, and last
// {"record":"summary",...} with the engine, page size, total and notes.
type NDJSON struct {
	W   io.Writer
	enc *json.Encoder
}

// Write streams one outcome.
func (n *NDJSON) Write(r Report, f scan.File) error {
	var line any
	switch e := r.entry(f).(type) {
	case jsonFile:
		line = struct {
			Record string `json:"record"`
			jsonFile
		}{"file", e}
	case jsonTree:
		line = struct {
			Record string `json:"record"`
			jsonTree
		}{"tree", e}
	case jsonError:
		line = struct {
			Record string `json:"record"`
			jsonError
		}{"error", e}
	}
	return n.encode(line)
}

// Summary ends the stream.
func (n *NDJSON) Summary(r Report) error {
	s := struct {
		Record   string   `json:"record"`
		Engine   *string  `json:"engine"`
		Method   *string  `json:"method"`
		PageSize int      `json:"page_size"`
		Total    Totals   `json:"total"`
		Notes    []string `json:"notes"`
		// --by-cgroup: the memory controller's hierarchy (null: none mounted).
		MemoryCgroup **jsonMemoryCgroup `json:"memory_cgroup,omitempty"`
	}{Record: "summary", PageSize: r.PageSize, Total: r.Totals(), Notes: append([]string{}, r.Notes...)}
	if r.Engine != "" {
		s.Engine, s.Method = &r.Engine, &r.Method
	}
	if r.Cgroups != nil {
		mc := r.jsonMemoryCgroup()
		s.MemoryCgroup = &mc
	}
	return n.encode(s)
}

func (n *NDJSON) encode(v any) error {
	if n.enc == nil {
		n.enc = json.NewEncoder(n.W)
	}
	if err := n.enc.Encode(v); err != nil {
		return fmt.Errorf("write NDJSON: %w", err)
	}
	return nil
}

// Sort orders the files listed by key (cached, size, percent: largest
// first; path), by the figures the table and the JSON show for them (with a
// --range, the range's), keeping each directory's row and the errors where
// they are relative to each other, after the files. "none" or "" keeps the
// order.
func (r *Report) Sort(key string) {
	if key == "" || key == "none" {
		return
	}
	rank := func(f scan.File) int {
		if f.Err != nil || f.Kind == scan.KindDir {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(r.Files, func(a, b scan.File) int {
		if ra, rb := rank(a), rank(b); ra != rb || ra == 1 {
			return ra - rb
		}
		switch key {
		case "cached":
			return cmp.Compare(b.Pages, a.Pages)
		case "size":
			return cmp.Compare(b.Size, a.Size)
		case "percent":
			return cmp.Compare(units.Percent(b.Pages, r.pagesOf(b)), units.Percent(a.Pages, r.pagesOf(a)))
		}
		return strings.Compare(a.Path, b.Path)
	})
}

// pagesOf are the pages of f the figures are out of: the whole file, or
// with a --range, the pages the range covers.
func (r Report) pagesOf(f scan.File) uint64 {
	if r.Range != nil {
		return f.Span
	}
	return units.PagesOf(f.Size)
}
