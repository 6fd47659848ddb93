package warm

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

var testFiles = []File{
	{Path: "/srv/db/a", Root: "/srv/db", Device: "254:0", Inode: 12, Size: 1 << 30, Mtime: time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC),
		Pages: 20, Ranges: []pagecache.Extent{{First: 0, Pages: 16}, {First: 48, Pages: 3}, {First: 262143, Pages: 1}}},
	{Path: "/srv/\xffodd\nname", Device: "0:27", Inode: 3, Size: 4096, Mtime: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC),
		Pages: 1, Ranges: []pagecache.Extent{{First: 0, Pages: 1}}, Engine: "mincore"},
}

func writeSnapshot(t *testing.T, zip bool, files []File) []byte {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b, zip, Header{Time: time.Unix(1700000000, 5), Host: "h", Kernel: "6.18", PageSize: 4096, Source: SourcePaths})
	w.SetEngine("bpf", "bpf_loop")
	for _, f := range files {
		if err := w.File(f); err != nil {
			t.Fatal(err)
		}
	}
	w.Skip()
	w.Fail()
	end, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if end.Files != len(files) || end.Pages != 21 || end.Ranges != 4 || end.Skipped != 1 || end.Errors != 1 {
		t.Errorf("end %+v", end)
	}
	return b.Bytes()
}

func readAll(t *testing.T, b []byte) (*Reader, []File, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	var out []File
	for {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r, out, nil
		}
		if err != nil {
			return r, out, err
		}
		out = append(out, *f)
	}
}

func sameFile(a, b File) bool {
	return a.Path == b.Path && a.Root == b.Root && a.Device == b.Device && a.Inode == b.Inode && a.Size == b.Size &&
		a.Mtime.Equal(b.Mtime) && a.Pages == b.Pages && slices.Equal(a.Ranges, b.Ranges) && a.Engine == b.Engine
}

// A snapshot reads back as written, plain or gzip'd, a path that is not
// UTF-8 included, with its header and end line.
func TestRoundTrip(t *testing.T) {
	for _, zip := range []bool{false, true} {
		b := writeSnapshot(t, zip, testFiles)
		if zip != (b[0] == 0x1f) {
			t.Errorf("zip %v: starts with %#x", zip, b[0])
		}
		r, got, err := readAll(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(testFiles) {
			t.Fatalf("%d files back, want %d", len(got), len(testFiles))
		}
		for i := range got {
			if !sameFile(got[i], testFiles[i]) {
				t.Errorf("file %d: %+v, want %+v", i, got[i], testFiles[i])
			}
		}
		h := r.Header
		if h.Format != Format || h.Version != Version || h.PageSize != 4096 || h.Engine != "bpf" || h.Method != "bpf_loop" ||
			h.Source != SourcePaths || !h.Time.Equal(time.Unix(1700000000, 5)) {
			t.Errorf("header %+v", h)
		}
		if r.End == nil || r.End.Files != 2 || r.End.Pages != 21 {
			t.Errorf("end %+v", r.End)
		}
	}
}

// Each line is a JSON object jq reads, with the fields the README names.
func TestLinesAreJSON(t *testing.T) {
	b := writeSnapshot(t, false, testFiles)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want header, 2 files, end:\n%s", len(lines), b)
	}
	var f struct {
		Record, Path, Root, Device, Mtime string
		PathB64                           string `json:"path_b64"`
		Inode, Size, Pages                uint64
		Ranges                            [][2]uint64
	}
	if err := json.Unmarshal([]byte(lines[1]), &f); err != nil {
		t.Fatalf("%v: %s", err, lines[1])
	}
	if f.Record != "file" || f.Path != "/srv/db/a" || f.Root != "/srv/db" || f.Device != "254:0" || f.Inode != 12 ||
		f.Size != 1<<30 || f.Mtime != "2026-11-27T10:00:00.123456789Z" || f.Pages != 20 ||
		!slices.Equal(f.Ranges, [][2]uint64{{0, 16}, {48, 3}, {262143, 1}}) || f.PathB64 != "" {
		t.Errorf("file line %s read as %+v", lines[1], f)
	}
	if err := json.Unmarshal([]byte(lines[2]), &f); err != nil || f.PathB64 != "L3Nydi//b2RkCm5hbWU=" || f.Path != "/srv/\uFFFDodd\nname" {
		t.Errorf("a path that is not UTF-8: %v, %s", err, lines[2])
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("not JSON: %v: %s", err, l)
		}
	}
}

// A snapshot without its end line reads (End stays nil); what is not a
// snapshot, another version, a file line whose ranges overlap or do not add
// up to its pages are refused.
func TestReaderRefuses(t *testing.T) {
	b := writeSnapshot(t, false, testFiles)
	cut := b[:bytes.LastIndexByte(b[:len(b)-1], '\n')+1]
	r, got, err := readAll(t, cut)
	if err != nil || len(got) != 2 || r.End != nil {
		t.Errorf("a snapshot cut before its end line: %v, %d files, end %+v", err, len(got), r.End)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"hello":"world"}` + "\n"))
	zw.Close()
	for name, in := range map[string]string{
		"empty":       "",
		"other JSON":  `{"record":"file","path":"/x"}` + "\n",
		"not JSON":    "PK\x03\x04",
		"gzip'd JSON": gz.String(),
	} {
		if _, err := NewReader(strings.NewReader(in)); !errors.Is(err, ErrNotSnapshot) {
			t.Errorf("%s: %v, want ErrNotSnapshot", name, err)
		}
	}
	v2 := bytes.Replace(b, []byte(`"version":1`), []byte(`"version":2`), 1)
	if _, err := NewReader(bytes.NewReader(v2)); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("version 2: %v", err)
	}
	for name, from := range map[string][2]string{
		"overlapping ranges": {`[[0,16],[48,3]`, `[[0,16],[10,3]`},
		"a range of no page": {`[48,3]`, `[48,0]`},
		"pages not the sum":  {`"pages":20`, `"pages":21`},
		"a bad mtime":        {`"mtime":"2026-11-27T10:00:00.123456789Z"`, `"mtime":"yesterday"`},
	} {
		bad := bytes.Replace(b, []byte(from[0]), []byte(from[1]), 1)
		if bytes.Equal(bad, b) {
			t.Fatalf("%s: %q not found", name, from[0])
		}
		if _, _, err := readAll(t, bad); err == nil {
			t.Errorf("%s: read without an error", name)
		}
	}
	// A later revision's record kind is passed over.
	extra := bytes.Replace(b, []byte("\n"), []byte("\n"+`{"record":"comment","text":"x"}`+"\n"), 1)
	if _, got, err := readAll(t, extra); err != nil || len(got) != 2 {
		t.Errorf("an unknown record: %v, %d files", err, len(got))
	}
}

// A million files with a few ranges each make a snapshot of about 200 MB
// before gzip, not a gigabyte (the README's figure): a file line is about
// 200 bytes.
func TestLineSize(t *testing.T) {
	f := File{Path: "/var/lib/postgresql/16/main/base/16384/2619_fsm", Root: "/", Device: "259:1", Inode: 1234567,
		Size: 24576, Mtime: time.Now(), Pages: 6, Ranges: []pagecache.Extent{{First: 0, Pages: 3}, {First: 4, Pages: 3}}}
	if n := len(appendFile(nil, f)); n > 250 {
		t.Errorf("a file line of %d bytes: %s", n, appendFile(nil, f))
	}
}
