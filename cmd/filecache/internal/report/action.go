package report

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// Acted is one line of touch's, evict's or lock's report: a file, a
// directory argument's sums, or the total.
type Acted struct {
	Path       string `json:"path"`
	PathB64    string `json:"path_b64,omitempty"`
	Files      int    `json:"files"`
	SizeBytes  int64  `json:"size_bytes"`
	TotalPages uint64 `json:"total_pages"`
	Before     uint64 `json:"before_pages"`
	After      uint64 `json:"after_pages"`
	Skipped    int    `json:"skipped,omitempty"` // larger than --max-size; restore: changed since the snapshot too
	// Dirty: pages dirty or under writeback when evict was asked (cachestat).
	Dirty uint64 `json:"-"`
	Tree  bool   `json:"-"`
}

// Add sums r into a.
func (a *Acted) Add(r Acted) {
	a.Files += r.Files
	a.SizeBytes += r.SizeBytes
	a.TotalPages += r.TotalPages
	a.Before += r.Before
	a.After += r.After
	a.Skipped += r.Skipped
	a.Dirty += r.Dirty
}

// Action is what touch, evict or lock report.
type Action struct {
	Verb   string // touch, evict or lock
	DryRun bool
	Engine string // "" when no engine was needed
	Range  *pagecache.Range
	Pid    int // lock: the process holding the pages (0: none)
	Rows   []Acted
	Total  Acted
	Errors []scan.File
	Notes  []string
	// Skips: restore's files left alone, each with its reason.
	Skips []Skip
}

// Skip is a file an action left alone, and why.
type Skip struct{ Path, Reason string }

// ActionJSON writes a as one JSON document (schema in README.md).
func ActionJSON(w io.Writer, a Action) error {
	doc := struct {
		Action   string      `json:"action"`
		DryRun   bool        `json:"dry_run"`
		Engine   *string     `json:"engine"`
		PageSize int         `json:"page_size"`
		Range    *jsonRange  `json:"range"`
		Pid      int         `json:"pid,omitempty"`
		Files    []Acted     `json:"files"`
		Total    Acted       `json:"total"`
		Errors   []jsonError `json:"errors"`
		Skips    []jsonSkip  `json:"skipped_files,omitempty"`
		Notes    []string    `json:"notes"`
	}{Action: a.Verb, DryRun: a.DryRun, PageSize: units.PageSize, Pid: a.Pid,
		Files: []Acted{}, Errors: []jsonError{}, Notes: append([]string{}, a.Notes...)}
	if a.Engine != "" {
		doc.Engine = &a.Engine
	}
	if a.Range != nil {
		doc.Range = &jsonRange{Offset: a.Range.Off, Length: a.Range.Len}
	}
	for _, f := range a.Rows {
		f.Path, f.PathB64 = JSONPath(f.Path)
		doc.Files = append(doc.Files, f)
	}
	doc.Total = a.Total
	doc.Total.Path = "total"
	for _, e := range a.Errors {
		p, b := JSONPath(e.Path)
		doc.Errors = append(doc.Errors, jsonError{Path: p, PathB64: b, Error: e.Err.Error()})
	}
	for _, s := range a.Skips {
		p, b := JSONPath(s.Path)
		doc.Skips = append(doc.Skips, jsonSkip{Path: p, PathB64: b, Reason: s.Reason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

type jsonSkip struct {
	Path    string `json:"path"`
	PathB64 string `json:"path_b64,omitempty"`
	Reason  string `json:"reason"`
}

// ActionTable writes a as BEFORE AFTER PAGES SIZE PATH lines.
func ActionTable(w io.Writer, a Action) error {
	if len(a.Rows) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BEFORE\tAFTER\tPAGES\tSIZE\t  PATH")
	line := func(r Acted, name string) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t  %s\n", units.Human(units.Bytes(r.Before)),
			units.Human(units.Bytes(r.After)), r.TotalPages, units.Human(uint64(r.SizeBytes)), name)
	}
	for _, row := range a.Rows {
		name := units.Display(row.Path)
		if row.Tree {
			name = fmt.Sprintf("%s (%d files)", name, row.Files)
		}
		line(row, name)
	}
	if len(a.Rows) > 1 {
		line(a.Total, fmt.Sprintf("total (%d files)", a.Total.Files))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
