package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/filecache/filecache/cmd/filecache/internal/units"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/scan"
)

func sample() Report {
	r := Report{Engine: "bpf", Method: "bpf_loop", PageSize: 4096}
	for _, f := range []scan.File{
		{Path: "/data/a", Kind: scan.KindFile, Dev: unix.Mkdev(254, 1), Ino: 12, Size: 16 << 20, Pages: 1024},
		{Path: "/nope", Err: errors.New("no such file or directory")},
		{Path: "bad\xffname", Kind: scan.KindFile, Dev: unix.Mkdev(0, 27), Ino: 5, Size: 4097, Pages: 2},
		{Path: "", Err: scan.ErrEmptyPath},
		{Path: "/empty", Kind: scan.KindFile, Size: 0, Pages: 0},
	} {
		r.Add(f, false)
	}
	return r
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Engine   string `json:"engine"`
		Method   string `json:"method"`
		PageSize int    `json:"page_size"`
		Files    []map[string]any
		Total    map[string]float64
		Errors   []map[string]string
	}
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, buf.String())
	}
	if doc.Engine != "bpf" || doc.Method != "bpf_loop" || doc.PageSize != 4096 {
		t.Errorf("header: %+v", doc)
	}
	if len(doc.Files) != 3 || len(doc.Errors) != 2 {
		t.Fatalf("%d files, %d errors; want 3 and 2", len(doc.Files), len(doc.Errors))
	}
	a := doc.Files[0]
	want := map[string]any{"path": "/data/a", "type": "file", "device": "254:1", "inode": 12.0,
		"size_bytes": 16777216.0, "total_pages": 4096.0, "cached_pages": 1024.0, "cached_bytes": 4194304.0, "percent": 25.0}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("files[0].%s = %v, want %v", k, a[k], v)
		}
	}
	if _, ok := a["path_b64"]; ok {
		t.Error("path_b64 present for a valid UTF-8 path")
	}
	b := doc.Files[1]
	raw, err := base64.StdEncoding.DecodeString(b["path_b64"].(string))
	if err != nil || string(raw) != "bad\xffname" {
		t.Errorf("path_b64 %q does not round-trip to the exact bytes (%q, %v)", b["path_b64"], raw, err)
	}
	if b["path"] != "bad\uFFFDname" || b["total_pages"] != 2.0 || b["percent"] != 100.0 {
		t.Errorf("files[1] = %v", b)
	}
	if e := doc.Files[2]; e["total_pages"] != 0.0 || e["percent"] != 0.0 {
		t.Errorf("empty file: %v", e)
	}
	if doc.Errors[0]["path"] != "/nope" || doc.Errors[0]["error"] != "no such file or directory" || doc.Errors[1]["error"] != "empty path" {
		t.Errorf("errors = %v", doc.Errors)
	}
	tot := doc.Total
	if tot["files"] != 3 || tot["size_bytes"] != 16777216+4097 || tot["total_pages"] != 4098 || tot["cached_pages"] != 1026 || tot["cached_bytes"] != 1026*4096 {
		t.Errorf("total = %v", tot)
	}
}

func TestJSONNoEngineAndEmptyArrays(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, Report{PageSize: 4096}); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, want := range []string{`"engine": null`, `"files": []`, `"errors": []`} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %s in\n%s", want, s)
		}
	}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, sample(), TableOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want header + 3 files + total:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"PATH", "4M 1024/4096 16M 25.0% /data/a", `"bad\xffname"`, "0B 0/0 0B 0.0% /empty", "1026/4098"} {
		if !strings.Contains(strings.Join(strings.Fields(lines[i]), " "), want) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], want)
		}
	}
	if !strings.HasSuffix(lines[4], "total (3 files)") {
		t.Errorf("total line = %q", lines[4])
	}
	// Columns line up: every row ends its PERCENT column at the same place.
	col := strings.Index(lines[0], "PERCENT") + len("PERCENT")
	for _, l := range lines[1:] {
		if l[col-1] != '%' {
			t.Errorf("misaligned row %q (header %q)", l, lines[0])
		}
	}
	buf.Reset()
	one := Report{PageSize: 4096}
	one.Add(sample().Files[0], false)
	Table(&buf, one, TableOptions{})
	if strings.Contains(buf.String(), "total") {
		t.Errorf("total line for a single file:\n%s", buf.String())
	}
}

func TestErrorLine(t *testing.T) {
	if got := ErrorLine(scan.File{Path: "x\ny", Err: errors.New("boom")}); got != `filecache: "x\ny": boom` {
		t.Errorf("ErrorLine = %q", got)
	}
}

// FuzzPaths: any path prints on one line in the table and error line, and
// JSON gives its exact bytes back.
func FuzzPaths(f *testing.F) {
	for _, s := range []string{"/a b", "", "bad\xffname", "two\nlines", "-dash", "\x00", "\u2028", "\x1b[31m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if d := units.Display(p); strings.ContainsAny(d, "\n\r") || !utf8.ValidString(d) {
			t.Fatalf("units.Display(%q) = %q: not one valid line", p, d)
		}
		var buf bytes.Buffer
		r := Report{PageSize: 4096}
		r.Add(scan.File{Path: p, Kind: scan.KindFile, Size: 1}, false)
		r.Add(scan.File{Path: p, Err: errors.New("x")}, false)
		if err := JSON(&buf, r); err != nil {
			t.Fatal(err)
		}
		type entry struct {
			Path    string `json:"path"`
			PathB64 string `json:"path_b64"`
		}
		var doc struct{ Files, Errors []entry }
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatalf("invalid JSON for %q: %v", p, err)
		}
		for _, e := range []entry{doc.Files[0], doc.Errors[0]} {
			got := e.Path
			if e.PathB64 != "" {
				raw, err := base64.StdEncoding.DecodeString(e.PathB64)
				if err != nil {
					t.Fatal(err)
				}
				got = string(raw)
			}
			if got != p {
				t.Fatalf("path %q came back as %q", p, got)
			}
		}
	})
}

// TestTrees: a directory argument's files are summed, listed only when
// asked, and its sums appear as a tree row and in "trees".
func TestTrees(t *testing.T) {
	build := func(list bool) Report {
		r := Report{Engine: "bpf", Method: "bpf_loop", PageSize: 4096}
		for _, f := range []scan.File{
			{Path: "/d/a", Root: "/d", Kind: scan.KindFile, Size: 8192, Pages: 1},
			{Path: "/d/gone", Root: "/d", Err: errors.New("no such file or directory")},
			{Path: "/d/b", Root: "/d", Kind: scan.KindFile, Size: 100, Pages: 1},
			{Path: "/d", Kind: scan.KindDir, Files: 2, Failed: 1, Size: 8292, Pages: 2, TotalPages: 3},
		} {
			r.Add(f, list)
		}
		return r
	}
	r := build(false)
	if len(r.Files) != 2 || !r.Failed() || r.Totals().Files != 2 || r.Totals().TotalPages != 3 {
		t.Fatalf("unlisted tree: %+v totals %+v", r.Files, r.Totals())
	}
	var buf bytes.Buffer
	if err := JSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Files  []any
		Trees  []map[string]any
		Errors []map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Files) != 0 || len(doc.Trees) != 1 || len(doc.Errors) != 1 || doc.Trees[0]["files"] != 2.0 ||
		doc.Trees[0]["failed"] != 1.0 || doc.Trees[0]["total_pages"] != 3.0 || doc.Trees[0]["cached_pages"] != 2.0 {
		t.Errorf("JSON %s", buf.String())
	}
	buf.Reset()
	Table(&buf, r, TableOptions{})
	if !strings.Contains(buf.String(), "/d (2 files)") || strings.Contains(buf.String(), "total") {
		t.Errorf("table:\n%s", buf.String())
	}
	buf.Reset()
	Table(&buf, build(true), TableOptions{})
	if !strings.Contains(buf.String(), "/d/a") || !strings.Contains(buf.String(), "total (2 files)") {
		t.Errorf("listed tree:\n%s", buf.String())
	}
}
