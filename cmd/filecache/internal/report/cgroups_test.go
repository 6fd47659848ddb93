package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
)

// Overlay files say where their pages are; a real path is given only when
// one was found (and checked).
func TestJSONOverlay(t *testing.T) {
	r := Report{Engine: "bpf", Method: "bpf_loop", PageSize: 4096}
	r.Add(scan.File{Path: "/m/lo", Kind: scan.KindFile, Size: 8192, Pages: 2,
		Real: &pagecache.RealFile{Layer: "lower", Dev: unix.Mkdev(0, 41), Ino: 11, Path: "/l/lo"}}, false)
	r.Add(scan.File{Path: "/m/cu", Kind: scan.KindFile, Size: 4096, Pages: 1,
		Real: &pagecache.RealFile{Layer: "upper", Dev: unix.Mkdev(8, 1), Ino: 12}}, false)
	r.Add(scan.File{Path: "/plain", Kind: scan.KindFile, Size: 4096, Pages: 1}, false)
	var buf bytes.Buffer
	if err := JSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc struct{ Files []map[string]any }
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	lo, cu, plain := doc.Files[0], doc.Files[1], doc.Files[2]
	if lo["layer"] != "lower" || lo["real_path"] != "/l/lo" || lo["real_device"] != "0:41" || lo["real_inode"] != 11.0 {
		t.Errorf("lower file: %v", lo)
	}
	if _, ok := cu["real_path"]; ok || cu["layer"] != "upper" || cu["real_device"] != "8:1" {
		t.Errorf("upper file without a path found: %v", cu)
	}
	for _, k := range []string{"layer", "real_path", "real_device", "real_inode", "cgroups"} {
		if _, ok := plain[k]; ok {
			t.Errorf("a plain file has %q: %v", k, plain)
		}
	}
	if strings.Contains(buf.String(), "memory_cgroup") {
		t.Error("memory_cgroup in a report not by cgroup")
	}
}

func TestCgroupLabels(t *testing.T) {
	named := &Cgroups{Version: 2, Mount: "/sys/fs/cgroup", Path: func(id uint64) (string, bool) { return "/a", id == 5 }}
	for id, want := range map[uint64]string{5: "/a", 0: "(none)", 9: "(removed, id 9)"} {
		if got := named.label(id); got != want {
			t.Errorf("label(%d) = %q, want %q", id, got, want)
		}
	}
	if notes := named.Notes(); len(notes) != 1 || !strings.Contains(notes[0], "id 9 is not a directory of /sys/fs/cgroup") {
		t.Errorf("notes %q", notes)
	}
	none := &Cgroups{}
	if got := none.label(9); got != "(id 9)" || len(none.Notes()) != 0 {
		t.Errorf("no hierarchy: label %q, notes %q (the run notes once that no hierarchy is mounted)", got, none.Notes())
	}
	// A report by cgroup with no hierarchy says so in JSON: null.
	r := Report{PageSize: 4096, Cgroups: none}
	r.Add(scan.File{Path: "/f", Kind: scan.KindFile, Size: 4096, Pages: 1, Cgroups: []pagecache.CgroupPages{{ID: 9, Pages: 1}}}, false)
	var buf bytes.Buffer
	if err := JSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		MemoryCgroup *json.RawMessage `json:"memory_cgroup"`
		Files        []struct {
			Cgroups []struct {
				Cgroup *string
				ID     uint64
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"memory_cgroup": null`) || len(doc.Files[0].Cgroups) != 1 || doc.Files[0].Cgroups[0].Cgroup != nil || doc.Files[0].Cgroups[0].ID != 9 {
		t.Errorf("no hierarchy:\n%s", buf.String())
	}
}
