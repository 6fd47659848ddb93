package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

const ctrID = "3f1b6c0a9e2d4b5c8a7f6e5d4c3b2a190817263544536271809a8b7c6d5e4f3a"

// cgWalker answers every cgroup walk with one inode "f" of 3 pages, 2
// charged to cgroup 11 and 1 to cgroup 22, and records what it was asked.
type cgWalker struct {
	walks  int
	allow  [][]uint64
	flags  []uint32
	closed int
}

func (w *cgWalker) Method() string { return "test" }

func (w *cgWalker) Allow(ids []uint64) error {
	w.allow = append(w.allow, slices.Clone(ids))
	return nil
}

func (w *cgWalker) WalkCgroups(p bpf.WalkParams, each func(bpf.Inode, bpf.CgSplit) error) (bpf.Walk, bpf.CgWalk, error) {
	w.walks++
	w.flags = append(w.flags, p.Flags)
	split := bpf.CgSplit{Walked: 3, Pairs: []bpf.CgPair{{ID: 11, Pages: 2}, {ID: 22, Pages: 1}}}
	if err := each(bpf.Inode{NrPages: 2, Size: 3 * 4096, Ino: 7, Nlink: 1, Names: [][]byte{[]byte("f")}}, split); err != nil {
		return bpf.Walk{}, bpf.CgWalk{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(p.FD), &st); err != nil {
		return bpf.Walk{}, bpf.CgWalk{}, err
	}
	dev := unix.Major(st.Dev)<<20 | unix.Minor(st.Dev)
	return bpf.Walk{Inodes: 1, Pages: 3, Cached: 1, Matched: 1, Emitted: 1, Status: bpf.WalkDone, Dev: dev},
		bpf.CgWalk{CgState: bpf.CgState{Walked: 3}, Sums: map[uint64]uint64{11: 2, 22: 1}}, nil
}

// cgHierarchy makes a directory tree standing in for the memory hierarchy:
// /docker/ID (cgroup 11 is named so) and /system.slice/x.service (22).
func cgHierarchy(t *testing.T, w *cgWalker) (Env, string) {
	t.Helper()
	mount := t.TempDir()
	for _, d := range []string{"docker/" + ctrID + "/inner", "system.slice/x.service"} {
		if err := os.MkdirAll(filepath.Join(mount, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	names := map[uint64]string{11: "/docker/" + ctrID, 22: "/system.slice/x.service"}
	return Env{
		LoadCgroupWalker: func(LoadOptions) (top.CgroupWalker, func(), error) { return w, func() { w.closed++ }, nil },
		CgroupNames: func() (CgroupNames, error) {
			return CgroupNames{Version: 2, Mount: mount, Root: "/", Path: func(id uint64) (string, bool) { p, ok := names[id]; return p, ok }}, nil
		},
	}, mount
}

func ino(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestTopByCgroup(t *testing.T) {
	w := &cgWalker{}
	env, mount := cgHierarchy(t, w)
	r := runCLI(t, env, "--json", "top", "--by-cgroup", "-n", "5", "--mount", "/")
	if r.status != ExitOK || w.closed != 1 {
		t.Fatalf("top --by-cgroup: status %d, closed %d\n%s", r.status, w.closed, r.stderr)
	}
	var d top.Doc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatal(err)
	}
	if !d.ByCgroup || len(d.Rows) != 2 || d.Rows[0].CachedPages != 2 || *d.Rows[0].CgroupID != 11 || d.Rows[0].ContainerID != ctrID ||
		*d.Rows[0].Cgroup != "/docker/"+ctrID || *d.Rows[1].CgroupID != 22 || d.Rows[1].ContainerID != "" || *d.Rows[0].FileCachedPages != 3 {
		t.Errorf("rows %+v\n%s", d.Rows, r.stdout)
	}
	if d.Cgroups == nil || len(*d.Cgroups) != 2 || (*d.Cgroups)[0].ContainerID != ctrID || (*d.Cgroups)[0].Runtime != "docker" ||
		d.MemoryCgroup == nil || d.MemoryCgroup.Mount != mount {
		t.Errorf("cgroups %+v, memory cgroup %+v", d.Cgroups, d.MemoryCgroup)
	}
	if w.flags[0]&bpf.WalkPairs == 0 || w.flags[0]&bpf.WalkFilter != 0 || w.allow[0] != nil {
		t.Errorf("walk flags %v, allowed %v: want pairs, no filter", w.flags, w.allow)
	}

	// --cgroup, named both ways: the cgroup and those below it count.
	for _, arg := range []string{"/docker", filepath.Join(mount, "docker")} {
		w.allow, w.flags = nil, nil
		r = runCLI(t, env, "--json", "top", "--cgroup", arg, "--mount", "/")
		if r.status != ExitOK {
			t.Fatalf("--cgroup %s: status %d\n%s", arg, r.status, r.stderr)
		}
		want := []uint64{ino(t, filepath.Join(mount, "docker")), ino(t, filepath.Join(mount, "docker", ctrID)), ino(t, filepath.Join(mount, "docker", ctrID, "inner"))}
		slices.Sort(want)
		got := slices.Sorted(slices.Values(w.allow[0]))
		if !slices.Equal(got, want) || w.flags[0]&bpf.WalkFilter == 0 || w.flags[0]&bpf.WalkPairs != 0 {
			t.Errorf("--cgroup %s: allowed %v (want %v), flags %v", arg, got, want, w.flags)
		}
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || !slices.Equal(d.CgroupFilter, []string{"/docker"}) {
			t.Errorf("--cgroup %s: filter %q %v", arg, d.CgroupFilter, err)
		}
	}
	for _, c := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"top", "--cgroup", "/nope"}, ExitFailed, "--cgroup: cgroup /nope"},
		{[]string{"top", "--processes", "--format", "prometheus"}, ExitUsage, "--processes"},
	} {
		r := runCLI(t, env, c.args...)
		if r.status != c.status || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: status %d, stderr %q; want %d and %q", c.args, r.status, r.stderr, c.status, c.want)
		}
	}
	// Without a hierarchy, --cgroup cannot be resolved.
	noHier := env
	noHier.CgroupNames = func() (CgroupNames, error) { return CgroupNames{}, os.ErrNotExist }
	if r := runCLI(t, noHier, "top", "--cgroup", "/docker"); r.status != ExitFailed || !strings.Contains(r.stderr, "--cgroup") {
		t.Errorf("no hierarchy: status %d, stderr %q", r.status, r.stderr)
	}
}

// --pid: the files a child holds open, measured once each, named as it
// names them, with it as their holder and a line of its sums.
func TestPid(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, make([]byte, 3*4096*4), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", "-c", `exec 7<"$1" 8<"$2" 9<"$1"; echo ready; read x`, "sh", a, b)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	r := runCLI(t, Env{}, "--json", "--pid", strconv.Itoa(pid))
	if r.status != ExitOK {
		t.Fatalf("status %d\n%s", r.status, r.stderr)
	}
	var doc struct {
		Files []struct {
			Path      string
			Cached    uint64 `json:"cached_pages"`
			Processes []struct {
				PID    int
				Comm   string
				FDs    []int
				Mapped bool
			}
		}
		Processes []struct {
			PID    int
			Comm   string
			Files  int
			Cached uint64 `json:"cached_pages"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	var sum uint64
	found := 0
	for _, f := range doc.Files {
		sum += f.Cached
		if len(f.Processes) != 1 || f.Processes[0].PID != pid || f.Processes[0].Comm != "sh" {
			t.Errorf("%s: processes %+v", f.Path, f.Processes)
		}
		switch f.Path {
		case a:
			found++
			if !slices.Equal(f.Processes[0].FDs, []int{7, 9}) || f.Cached != 4 {
				t.Errorf("a: %+v", f)
			}
		case b:
			found++
			if !slices.Equal(f.Processes[0].FDs, []int{8}) {
				t.Errorf("b: %+v", f)
			}
		}
	}
	if found != 2 || len(doc.Processes) != 1 || doc.Processes[0].Files != len(doc.Files) || doc.Processes[0].Cached != sum || doc.Processes[0].Comm != "sh" {
		t.Errorf("files %+v\nprocesses %+v", doc.Files, doc.Processes)
	}
	tab := runCLI(t, Env{}, "--pid", strconv.Itoa(pid))
	if !strings.Contains(tab.stdout, "pid "+strconv.Itoa(pid)+" (sh): ") || !strings.Contains(tab.stdout, a) {
		t.Errorf("table:\n%s", tab.stdout)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if r := runCLI(t, Env{}, "--pid", strconv.Itoa(pid)); r.status != ExitFailed || !strings.Contains(r.stderr, "no such process") {
		t.Errorf("a pid gone: status %d, stderr %q", r.status, r.stderr)
	}
}
