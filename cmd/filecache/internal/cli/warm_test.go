package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/warm"
)

// fakeRanges says every even page of a file is cached.
type fakeRanges struct{}

func (fakeRanges) Name() string   { return "fake" }
func (fakeRanges) Method() string { return "even" }
func (fakeRanges) BatchSize() int { return 64 }
func (fakeRanges) Close()         {}
func (fakeRanges) Query(hs []pagecache.Handle) ([]pagecache.Answer, error) {
	out := make([]pagecache.Answer, len(hs))
	for i, h := range hs {
		var st unix.Stat_t
		unix.Fstat(h.Fd, &st)
		runs := []pagecache.Extent{}
		for p := uint64(0); p*4096 < uint64(st.Size); p += 2 {
			runs = append(runs, pagecache.Extent{First: p, Pages: 1})
		}
		out[i] = pagecache.Answer{Size: st.Size, Pages: uint64(len(runs)), Extents: runs, Dev: st.Dev, Ino: st.Ino}
	}
	return out, nil
}

func warmEnv() Env {
	return Env{LoadRanges: func(LoadOptions) (pagecache.Engine, error) { return fakeRanges{}, nil }}
}

func TestSnapshotUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--ndjson", "snapshot", "/tmp"},
		{"--json", "snapshot", "/tmp"},
		{"snapshot", "--top", "/tmp"},
		{"snapshot", "--mount", "/", "/tmp"},
		{"--engine", "mincore", "snapshot", "--top"},
		{"snapshot"},
		{"restore"},
		{"restore", "--rate", "fast", "x"},
		{"restore", "--jobs", "-1", "x"},
		{"--ndjson", "restore", "x"},
	} {
		r := runCLI(t, warmEnv(), args...)
		if r.status != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, "--help") {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want a usage error", args, r.status, r.stdout, r.stderr)
		}
	}
}

// snapshot writes what the engine lists, a directory's files under their
// root; restore of it brings the files back and reports them as touch does,
// a changed file skipped with its reason.
func TestSnapshotRestoreCLI(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"a": 5 * 4096, "b": 3*4096 + 100, "empty": 0} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "snap.ndjson.gz")
	r := runCLI(t, warmEnv(), "--engine", "bpf", "snapshot", "-o", out, dir)
	if r.status != 0 || !strings.HasPrefix(r.stdout, "snapshot of 2 files: 20K cached in 5 ranges, found with fake (even); ") || r.stderr != "" {
		t.Fatalf("snapshot: %+v", r)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, _ := f.Stat(); st.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", st.Mode())
	}
	sr, err := warm.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Header.Engine != "fake" || sr.Header.Method != "even" || sr.Header.Source != warm.SourcePaths {
		t.Errorf("header %+v", sr.Header)
	}
	var files []*warm.File
	for {
		x, err := sr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, x)
	}
	slices.SortFunc(files, func(a, b *warm.File) int { return strings.Compare(a.Path, b.Path) })
	if len(files) != 2 || files[0].Root != dir || !slices.Equal(files[0].Ranges, []pagecache.Extent{{First: 0, Pages: 1}, {First: 2, Pages: 1}, {First: 4, Pages: 1}}) ||
		!slices.Equal(files[1].Ranges, []pagecache.Extent{{First: 0, Pages: 1}, {First: 2, Pages: 1}}) || sr.End == nil || sr.End.Skipped != 1 {
		t.Fatalf("snapshot holds %+v, end %+v", files, sr.End)
	}

	// The same as JSON, and a failed path.
	r = runCLI(t, warmEnv(), "--json", "--engine", "bpf", "snapshot", "-o", out, dir, filepath.Join(dir, "nope"))
	var sum struct {
		Engine string
		Files  int
		Pages  uint64 `json:"cached_pages"`
		Ranges uint64
		Errors []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.status != ExitFailed || sum.Engine != "fake" || sum.Files != 2 || sum.Pages != 5 ||
		len(sum.Errors) != 1 || !strings.Contains(r.stderr, "nope: no such file") {
		t.Errorf("snapshot --json with a missing path: %v %+v %+v", err, sum, r)
	}

	if err := os.Chtimes(filepath.Join(dir, "b"), time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, warmEnv(), "--engine", "bpf", "restore", out)
	if r.status != 0 || !strings.Contains(strings.Fields(r.stdout)[0], "BEFORE") || !strings.Contains(r.stdout, "  "+dir+" (2 files)\n") ||
		!strings.Contains(r.stderr, filepath.Join(dir, "b")+": skipped: changed since the snapshot: modified ") {
		t.Errorf("restore: %+v", r)
	}
	r = runCLI(t, warmEnv(), "--json", "--engine", "bpf", "restore", "--dry-run", out)
	var doc struct {
		Action string
		DryRun bool `json:"dry_run"`
		Engine string
		Files  []struct {
			Path    string
			Files   int
			Total   uint64 `json:"total_pages"`
			Before  uint64 `json:"before_pages"`
			After   uint64 `json:"after_pages"`
			Skipped int
		}
		Skips []struct{ Path, Reason string } `json:"skipped_files"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if doc.Action != "restore" || !doc.DryRun || doc.Engine != "fake" || len(doc.Files) != 1 || doc.Files[0].Path != dir ||
		doc.Files[0].Files != 2 || doc.Files[0].Total != 5 || doc.Files[0].Before != 3 || doc.Files[0].Skipped != 1 ||
		len(doc.Skips) != 1 || doc.Skips[0].Path != filepath.Join(dir, "b") {
		t.Errorf("restore --json --dry-run: %+v\n%s", doc, r.stdout)
	}

	notSnap := filepath.Join(dir, "a")
	if r := runCLI(t, warmEnv(), "restore", notSnap); r.status != ExitFailed || !strings.Contains(r.stderr, "not a filecache snapshot") {
		t.Errorf("restore of a file that is no snapshot: %+v", r)
	}
	var b bytes.Buffer
	w := warm.NewWriter(&b, false, warm.Header{PageSize: 4096})
	w.File(*files[0])
	w.Close()
	cut := filepath.Join(t.TempDir(), "cut")
	whole := b.Bytes()
	os.WriteFile(cut, whole[:bytes.LastIndexByte(whole[:len(whole)-1], '\n')+1], 0o644) // no end line
	if r := runCLI(t, warmEnv(), "--engine", "bpf", "restore", cut); r.status != ExitFailed || !strings.Contains(r.stderr, "ends early") {
		t.Errorf("restore of a snapshot without its end line: %+v", r)
	}
}
