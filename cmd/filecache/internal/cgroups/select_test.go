package cgroups

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// A hierarchy of plain directories stands in for a cgroup mount.
func TestSelectAndSubtree(t *testing.T) {
	mount := t.TempDir()
	for _, d := range []string{"docker/abc/inner", "docker/def", "system.slice"} {
		if err := os.MkdirAll(filepath.Join(mount, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(mount, "docker", "memory.stat"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ino := func(rel string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(mount, rel), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	h := Hierarchy{Version: 1, Mount: mount, Root: "/"}
	for _, arg := range []string{"/docker", "docker", mount + "/docker", mount + "/docker/"} {
		sel, err := Select(h, arg)
		if err != nil || sel.Path != "/docker" || sel.Dir != filepath.Join(mount, "docker") {
			t.Errorf("Select(%q) = %+v, %v; want /docker", arg, sel, err)
		}
	}
	if sel, err := Select(h, mount); err != nil || sel.Path != "/" {
		t.Errorf("the mount itself: %+v %v", sel, err)
	}
	// A mount showing a sub-tree (another cgroup namespace, a bind mount).
	sub := Hierarchy{Version: 2, Mount: filepath.Join(mount, "docker"), Root: "/kubepods"}
	if sel, err := Select(sub, "/kubepods/abc"); err != nil || sel.Dir != filepath.Join(mount, "docker", "abc") || sel.Path != "/kubepods/abc" {
		t.Errorf("below a sub-tree's root: %+v %v", sel, err)
	}
	if sel, err := Select(sub, filepath.Join(mount, "docker", "def")); err != nil || sel.Path != "/kubepods/def" {
		t.Errorf("a directory of a sub-tree mount: %+v %v", sel, err)
	}
	for arg, want := range map[string]string{
		"/nope":                   "no such file",
		"/docker/memory.stat":     "not a cgroup's directory",
		"/other":                  "not below the root",
		filepath.Dir(mount) + "/": "no such file",
	} {
		h := h
		if arg == "/other" {
			h = sub
		}
		if _, err := Select(h, arg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Select(%q): %v, want %q", arg, err, want)
		}
	}
	ids, err := Subtree(filepath.Join(mount, "docker"))
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{ino("docker"), ino("docker/abc"), ino("docker/abc/inner"), ino("docker/def")}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("subtree %v, want %v", ids, want)
	}
	if _, err := Subtree(filepath.Join(mount, "gone")); err == nil {
		t.Error("the subtree of a missing cgroup")
	}
}

// In a container with its own cgroup namespace, the host's hierarchy under
// --path.rootfs is shown relative to the container's cgroup; the host's
// mount shows the whole hierarchy all the same.
func TestFindMemoryUnder(t *testing.T) {
	mi := `30 20 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw
41 40 0:26 /../../.. /host/sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw
42 40 0:5 / /host/proc rw - proc proc rw
`
	ctl := func(string) (string, error) { return "cpu memory io", nil }
	h, err := FindMemoryUnder(strings.NewReader(mi), ctl, "/host/")
	if err != nil || h.Mount != "/host/sys/fs/cgroup" || h.Root != "/" || h.Version != 2 {
		t.Errorf("under /host: %+v %v", h, err)
	}
	if _, err := FindMemoryUnder(strings.NewReader(mi), ctl, "/elsewhere"); err == nil {
		t.Error("no hierarchy under /elsewhere, yet one found")
	}
	if h, err := FindMemory(strings.NewReader(mi), ctl); err != nil || h.Mount != "/sys/fs/cgroup" {
		t.Errorf("without a root: %+v %v", h, err)
	}
}
