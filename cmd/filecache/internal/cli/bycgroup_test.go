package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
)

// fakePages splits each file's pages: a third to cgroup 11, the rest to 22,
// and one page to no cgroup (id 0); files of one page to cgroup 33, which
// has no directory (a removed cgroup).
type fakePages struct{ closed *bool }

func (fakePages) Name() string   { return "bpf" }
func (fakePages) Method() string { return "bpf_loop" }
func (fakePages) BatchSize() int { return 64 }
func (f fakePages) Close() {
	if f.closed != nil {
		*f.closed = true
	}
}
func (fakePages) Query(hs []pagecache.Handle) ([]pagecache.Answer, error) {
	out := make([]pagecache.Answer, len(hs))
	for i, h := range hs {
		var st unix.Stat_t
		unix.Fstat(h.Fd, &st)
		pages := uint64((st.Size + 4095) / 4096)
		a := pagecache.Answer{Size: st.Size, Pages: pages, Dev: st.Dev, Ino: st.Ino, Nlink: uint32(st.Nlink)}
		switch {
		case pages == 1:
			a.Cgroups = []pagecache.CgroupPages{{ID: 33, Pages: 1}}
		case pages > 1:
			a.Cgroups = []pagecache.CgroupPages{{ID: 22, Pages: pages - 1 - pages/3}, {ID: 11, Pages: pages / 3}, {ID: 0, Pages: 1}}
		}
		out[i] = a
	}
	return out, nil
}

func cgroupEnv(loads *int) Env {
	return Env{
		LoadPages: func(LoadOptions) (pagecache.Engine, error) { *loads++; return fakePages{}, nil },
		CgroupNames: func() (CgroupNames, error) {
			names := map[uint64]string{11: "/kubepods/a", 22: "/system.slice/b"}
			return CgroupNames{Version: 1, Mount: "/sys/fs/cgroup/memory", Path: func(id uint64) (string, bool) {
				p, ok := names[id]
				return p, ok
			}}, nil
		},
	}
}

func TestByCgroupJSON(t *testing.T) {
	dir := t.TempDir()
	a := tempFile(t, "a", 9*4096)
	one := filepath.Join(dir, "one")
	for p, n := range map[string]int{one: 100, filepath.Join(dir, "two"): 3 * 4096} {
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	loads := 0
	r := runCLI(t, cgroupEnv(&loads), "--json", "--by-cgroup", a, dir)
	if r.status != 0 || loads != 1 {
		t.Fatalf("status %d, %d loads of the page walk\n%s\n%s", r.status, loads, r.stdout, r.stderr)
	}
	var doc struct {
		Engine, Method string
		Files          []struct {
			Path    string
			Cgroups []struct {
				Cgroup *string
				ID     uint64
				Cached uint64 `json:"cached_pages"`
				Bytes  uint64 `json:"cached_bytes"`
			}
		}
		Trees []struct {
			Cgroups []struct {
				Cgroup *string
				ID     uint64
				Cached uint64 `json:"cached_pages"`
			}
		}
		Notes        []string
		MemoryCgroup struct {
			Version int
			Mount   string
		} `json:"memory_cgroup"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if doc.Engine != "bpf" || doc.Method != "bpf_loop" || doc.MemoryCgroup.Version != 1 || doc.MemoryCgroup.Mount != "/sys/fs/cgroup/memory" {
		t.Errorf("header %+v", doc)
	}
	cg := doc.Files[0].Cgroups
	if len(cg) != 3 || *cg[0].Cgroup != "/system.slice/b" || cg[0].ID != 22 || cg[0].Cached != 5 || cg[0].Bytes != 5*4096 ||
		*cg[1].Cgroup != "/kubepods/a" || cg[1].Cached != 3 || cg[2].Cgroup != nil || cg[2].ID != 0 || cg[2].Cached != 1 {
		t.Errorf("file a's split: %+v", cg)
	}
	// The tree sums its files' splits: two (2+1+0... ) and one (33).
	tc := doc.Trees[0].Cgroups
	sums := map[uint64]uint64{}
	for _, c := range tc {
		sums[c.ID] += c.Cached
	}
	if len(tc) != 4 || sums[22] != 1 || sums[11] != 1 || sums[0] != 1 || sums[33] != 1 {
		t.Errorf("tree split %+v", tc)
	}
	// Cgroup 33 has no directory: null, and one note saying why, on stderr too.
	if len(doc.Notes) != 1 || !strings.Contains(doc.Notes[0], "memory cgroup id 33 is not a directory of /sys/fs/cgroup/memory") ||
		!strings.Contains(r.stderr, doc.Notes[0]) {
		t.Errorf("notes %q, stderr %q", doc.Notes, r.stderr)
	}
}

func TestByCgroupTable(t *testing.T) {
	a := tempFile(t, "a", 9*4096)
	loads := 0
	r := runCLI(t, cgroupEnv(&loads), "--by-cgroup", a)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if r.status != 0 || len(lines) != 4 {
		t.Fatalf("status %d, want a heading and 3 rows:\n%s", r.status, r.stdout)
	}
	for i, want := range [][]string{
		{"CACHED", "PAGES", "SIZE", "PERCENT", "CGROUP", "PATH"},
		{"20K", "5/9", "36K", "55.6%", "/system.slice/b", a},
		{"12K", "3/9", "36K", "33.3%", "/kubepods/a", a},
		{"4K", "1/9", "36K", "11.1%", "(none)", a},
	} {
		if got := strings.Fields(lines[i]); !slices.Equal(got, want) {
			t.Errorf("line %d: %q, want %q", i, got, want)
		}
	}
}

func TestByCgroupRefuses(t *testing.T) {
	a := tempFile(t, "a", 4096)
	for _, args := range [][]string{
		{"--by-cgroup", "--engine=cachestat", a},
		{"--by-cgroup", "--engine", "mincore", a},
		{"--by-cgroup", "--range", "0:4096", a},
	} {
		loads := 0
		r := runCLI(t, cgroupEnv(&loads), args...)
		if r.status != ExitUsage || loads != 0 || !strings.Contains(r.stderr, "--by-cgroup") {
			t.Errorf("%q: status %d, %d loads, stderr %q; want a usage error naming --by-cgroup", args, r.status, loads, r.stderr)
		}
	}
	// A page walk that cannot load ends the run in one line: no other
	// engine can say which cgroup a page is charged to.
	env := cgroupEnv(new(int))
	env.LoadPages = func(LoadOptions) (pagecache.Engine, error) { return nil, errors.New("boom") }
	r := runCLI(t, env, "--json", "--by-cgroup", a)
	if r.status != ExitFailed || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "boom") || r.stdout != "" {
		t.Errorf("load failure: status %d, stdout %q, stderr %q", r.status, r.stdout, r.stderr)
	}
	// No hierarchy to name cgroups: ids only, and a note.
	env = cgroupEnv(new(int))
	env.CgroupNames = func() (CgroupNames, error) { return CgroupNames{}, errors.New("nothing mounted") }
	r = runCLI(t, env, "--by-cgroup", a)
	if r.status != 0 || !strings.Contains(r.stdout, "(id 33)") || !strings.Contains(r.stderr, "shown by id only: nothing mounted") {
		t.Errorf("no hierarchy: status %d\n%s\n%s", r.status, r.stdout, r.stderr)
	}
}
