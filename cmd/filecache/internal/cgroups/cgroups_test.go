package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountinfo of this project's machines: cgroup v1 for memory, cgroup2 beside it.
const v1Mountinfo = `23 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// A systemd machine on cgroup v2 only, plus a bind mount of a sub-tree.
const v2Mountinfo = `23 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 23 0:27 /system.slice /mnt/sub rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
31 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestFindMemory(t *testing.T) {
	ctl := func(c string) func(string) (string, error) {
		return func(string) (string, error) { return c, nil }
	}
	for _, c := range []struct {
		name, mountinfo, controllers string
		want                         Hierarchy
		err                          error
	}{
		{"v1 memory", v1Mountinfo, "cpuset cpu io", Hierarchy{1, "/sys/fs/cgroup/memory", "/"}, nil},
		// The cgroup2 mount lists memory only where v1 does not hold it;
		// a v1 memory mount wins whatever cgroup2 says.
		{"v1 memory, v2 claims memory", v1Mountinfo, "memory pids", Hierarchy{1, "/sys/fs/cgroup/memory", "/"}, nil},
		{"v2 memory, root mount preferred", v2Mountinfo, "cpuset cpu io memory pids", Hierarchy{2, "/sys/fs/cgroup", "/"}, nil},
		{"v2 without memory", v2Mountinfo, "cpuset cpu io pids", Hierarchy{}, ErrNoMemory},
		{"nothing mounted", "23 1 254:0 / / rw - ext4 /dev/vda rw\n", "", Hierarchy{}, ErrNoMemory},
		{"escaped mount point", `35 31 0:32 / /cg\040mem rw - cgroup cgroup rw,nosuid,memory` + "\n", "", Hierarchy{1, "/cg mem", "/"}, nil},
		{"memory as a word inside another option", `35 31 0:32 / /x rw - cgroup cgroup rw,name=memory` + "\n", "", Hierarchy{}, ErrNoMemory},
	} {
		got, err := FindMemory(strings.NewReader(c.mountinfo), ctl(c.controllers))
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v, %v", c.name, got, err, c.want, c.err)
		}
	}
}

func TestOwnMemoryCgroup(t *testing.T) {
	for _, c := range []struct {
		in      string
		path    string
		version int
		ok      bool
	}{
		{"9:name=systemd:/\n4:memory:/process_api/41630b\n0::/\n", "/process_api/41630b", 1, true},
		{"5:cpu,memory,pids:/a/b\n", "/a/b", 1, true},
		{"0::/user.slice/user-0.slice/session-1.scope\n", "/user.slice/user-0.slice/session-1.scope", 2, true},
		{"0::/\n", "/", 2, true},
		// A colon inside the path stays part of it.
		{"0::/odd:name\n", "/odd:name", 2, true},
		{"3:cpu:/\n", "", 0, false},
	} {
		p, v, err := OwnMemoryCgroup([]byte(c.in))
		if (err == nil) != c.ok || p != c.path || v != c.version {
			t.Errorf("%q: %q v%d %v; want %q v%d ok=%v", c.in, p, v, err, c.path, c.version, c.ok)
		}
	}
}

func ino(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// A directory tree stands in for a hierarchy: ids are its inode numbers.
func TestNames(t *testing.T) {
	mnt := t.TempDir()
	for _, d := range []string{"a", "a/b", "c"} {
		if err := os.Mkdir(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Interface files are not cgroups.
	if err := os.WriteFile(filepath.Join(mnt, "a", "memory.stat"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n := &Names{H: Hierarchy{Version: 2, Mount: mnt, Root: "/"}}
	for rel, want := range map[string]string{".": "/", "a": "/a", "a/b": "/a/b", "c": "/c"} {
		if got, ok := n.Path(ino(t, filepath.Join(mnt, rel))); !ok || got != want {
			t.Errorf("%s: %q %v, want %q", rel, got, ok, want)
		}
	}
	// A cgroup made after the first walk is found by a second one...
	if err := os.Mkdir(filepath.Join(mnt, "late"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, ok := n.Path(ino(t, filepath.Join(mnt, "late"))); !ok || got != "/late" {
		t.Errorf("late: %q %v, want /late", got, ok)
	}
	// ...but the walks are bounded: a third is never made.
	if err := os.Mkdir(filepath.Join(mnt, "later"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Path(ino(t, filepath.Join(mnt, "later"))); ok || n.walks != maxWalks {
		t.Errorf("later found (%v) after %d walks, want not found after %d", ok, n.walks, maxWalks)
	}
	if _, ok := (&Names{H: n.H}).Path(ino(t, filepath.Join(mnt, "a", "memory.stat"))); ok {
		t.Error("a file's inode named as a cgroup")
	}

	// A mount of a sub-tree names paths from its root.
	sub := &Names{H: Hierarchy{Version: 1, Mount: filepath.Join(mnt, "a"), Root: "/kubepods"}}
	if got, ok := sub.Path(ino(t, filepath.Join(mnt, "a", "b"))); !ok || got != "/kubepods/b" {
		t.Errorf("sub-tree mount: %q %v, want /kubepods/b", got, ok)
	}
}

func TestDir(t *testing.T) {
	h := Hierarchy{Version: 1, Mount: "/sys/fs/cgroup/memory", Root: "/"}
	for p, want := range map[string]string{"/": "/sys/fs/cgroup/memory", "/a/b": "/sys/fs/cgroup/memory/a/b"} {
		if got, ok := Dir(h, p); !ok || got != want {
			t.Errorf("Dir(%q) = %q %v, want %q", p, got, ok, want)
		}
	}
	sub := Hierarchy{Version: 2, Mount: "/mnt/sub", Root: "/system.slice"}
	if got, ok := Dir(sub, "/system.slice/x.service"); !ok || got != "/mnt/sub/x.service" {
		t.Errorf("sub-tree: %q %v", got, ok)
	}
	if _, ok := Dir(sub, "/system.slicex/y"); ok {
		t.Error("a sibling with a longer name taken as inside the mount's root")
	}
	if _, ok := Dir(sub, "/user.slice"); ok {
		t.Error("a cgroup outside the mount's root given a directory")
	}
}
