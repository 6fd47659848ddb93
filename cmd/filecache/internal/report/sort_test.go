package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
)

// sortedFigures are the figures of the file rows as the table and the JSON
// show them, in the order they show them.
type sortedFigures struct {
	path    []string
	cached  []uint64
	size    []int64
	percent []float64
}

// shown renders r as a table (exact bytes) and as JSON and returns the file
// rows of each, failing t if the two disagree on the order.
func shown(t *testing.T, r Report) sortedFigures {
	t.Helper()
	var tb bytes.Buffer
	if err := Table(&tb, r, TableOptions{Bytes: true, NoHeadings: true, Columns: []string{"cached", "size", "percent", "path"}}); err != nil {
		t.Fatal(err)
	}
	var tab sortedFigures
	for _, l := range strings.Split(strings.TrimSuffix(tb.String(), "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 || strings.HasPrefix(f[3], "total") || strings.HasPrefix(f[3], "/tree") {
			continue
		}
		cached, err1 := strconv.ParseUint(f[0], 10, 64)
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		pct, err3 := strconv.ParseFloat(strings.TrimSuffix(f[2], "%"), 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("table row %q: %v", l, err)
		}
		tab.path = append(tab.path, f[3])
		tab.cached = append(tab.cached, cached/uint64(r.PageSize))
		tab.size = append(tab.size, size)
		tab.percent = append(tab.percent, pct)
	}
	var jb bytes.Buffer
	if err := JSON(&jb, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Files []struct {
			Path    string  `json:"path"`
			Cached  uint64  `json:"cached_pages"`
			Size    int64   `json:"size_bytes"`
			Percent float64 `json:"percent"`
		} `json:"files"`
	}
	if err := json.Unmarshal(jb.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var js sortedFigures
	for _, f := range doc.Files {
		js.path = append(js.path, f.Path)
		js.cached = append(js.cached, f.Cached)
		js.size = append(js.size, f.Size)
		js.percent = append(js.percent, f.Percent)
	}
	if fmt.Sprint(tab.path) != fmt.Sprint(js.path) {
		t.Fatalf("table lists %q, JSON %q", tab.path, js.path)
	}
	// The table rounds percents to 0.1 point, JSON to 0.01: JSON's are
	// the finer test of the order.
	return js
}

// sortReport is the call the CLI makes for --sort.
func sortReport(r *Report, key string) { r.Sort(key) }

// descending reports the first place where v is not non-increasing.
func descending[T int64 | uint64 | float64](v []T) string {
	for i := 1; i < len(v); i++ {
		if v[i] > v[i-1] {
			return fmt.Sprintf("row %d (%v) listed below row %d (%v)", i+1, v[i], i, v[i-1])
		}
	}
	return ""
}

// Every --sort key orders the rows by the very figures the table and the
// JSON show for them, with --range (the range's pages) and without (the
// whole file's): a 100% row is never listed below a 50% row.
func TestSortByShownFigures(t *testing.T) {
	files := func(ranged bool) []scan.File {
		span := func(n uint64) uint64 {
			if ranged {
				return n
			}
			return 0
		}
		// With the range 0:64K (16 pages): a is 16/16 of its range but
		// 16/256 of the file; b 4/8 of both; c 12/16 of its range,
		// 12/2560 of the file; d 1/2 of both.
		return []scan.File{
			{Path: "/b", Kind: scan.KindFile, Size: 32 << 10, Pages: 4, Span: span(8)},
			{Path: "/gone", Err: errors.New("no such file or directory")},
			{Path: "/a", Kind: scan.KindFile, Size: 1 << 20, Pages: 16, Span: span(16)},
			{Path: "/tree", Kind: scan.KindDir, Files: 1, Size: 5000, Pages: 1, TotalPages: 2},
			{Path: "/c", Kind: scan.KindFile, Size: 10 << 20, Pages: 12, Span: span(16)},
			{Path: "/d", Kind: scan.KindFile, Size: 5000, Pages: 1, Span: span(2)},
		}
	}
	for _, ranged := range []bool{false, true} {
		for _, key := range []string{"cached", "size", "percent", "path"} {
			t.Run(fmt.Sprintf("range=%v/%s", ranged, key), func(t *testing.T) {
				r := Report{PageSize: 4096}
				if ranged {
					r.Range = &pagecache.Range{Off: 0, Len: 64 << 10}
				}
				for _, f := range files(ranged) {
					r.Add(f, true)
				}
				sortReport(&r, key)
				got := shown(t, r)
				var bad string
				switch key {
				case "cached":
					bad = descending(got.cached)
				case "size":
					bad = descending(got.size)
				case "percent":
					bad = descending(got.percent)
				case "path":
					for i := 1; i < len(got.path); i++ {
						if got.path[i] < got.path[i-1] {
							bad = fmt.Sprintf("%q listed below %q", got.path[i], got.path[i-1])
						}
					}
				}
				if bad != "" {
					t.Errorf("--sort %s: %s; shown %+v", key, bad, got)
				}
				// Directories' rows and errors keep their order, after the files.
				var tail []string
				for _, f := range r.Files[len(r.Files)-2:] {
					tail = append(tail, f.Path)
				}
				if tail[0] != "/gone" || tail[1] != "/tree" {
					t.Errorf("the error and the tree row are %q, want them last in their order", tail)
				}
			})
		}
	}
}
