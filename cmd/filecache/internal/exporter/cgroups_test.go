package exporter

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// serve --by-cgroup: file series are (cgroup, file) pairs with their
// cgroup, container and pod; cgroups holding less than --min fold into one
// series; the file series still sum to the filesystems'. A file reached
// through a container's root is named by its path in the container.
func TestCgroupMetrics(t *testing.T) {
	const id = "3f1b6c0a9e2d4b5c8a7f6e5d4c3b2a190817263544536271809a8b7c6d5e4f3a"
	const uid = "7c2b1e4a-5d3f-4a1b-9c8e-2f6d0a1b3c4d"
	pod := "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod7c2b1e4a_5d3f_4a1b_9c8e_2f6d0a1b3c4d.slice"
	ctr := pod + "/cri-containerd-" + id + ".scope"
	names := map[uint64]string{10: ctr, 11: "/system.slice/sshd.service", 12: pod}
	root := filesystem("/", "ext4", "/dev/vda", unix.Mkdev(254, 0))
	ns := top.Filesystem{Dev: unix.Mkdev(0, 60), FSType: "overlay", Source: "overlay",
		Mounts: []top.Mount{{Dev: unix.Mkdev(0, 60), Root: "/", Point: "/proc/42/root", FSType: "overlay", Source: "overlay", NSPid: 42, NSRoot: "/proc/42/root"}}}
	ps := 4096.0
	s := top.Snapshot{PageSize: 4096, CgroupWalk: true, ByCgroup: true,
		FS: []top.FSTotal{{FS: root, Pages: 1000, Complete: true}, {FS: ns, Pages: 300, Complete: true}},
		Rows: []top.Row{
			{FS: 0, Path: "/var/lib/db", Pages: 600, Ino: 5, Shares: []top.Share{{ID: 10, Pages: 600}, {ID: 11, Pages: 100}}},
			{FS: 1, Path: "/proc/42/root/app/data", NSPid: 42, NSPath: "/app/data", Pages: 300, Ino: 6, Shares: []top.Share{{ID: 0, Pages: 300}}},
		},
		Pairs:        []top.Pair{{Row: 0, ID: 10, Pages: 600}, {Row: 1, ID: 0, Pages: 300}, {Row: 0, ID: 11, Pages: 100}},
		Cgroups:      []top.CgroupTotal{{ID: 10, Pages: 900}, {ID: 0, Pages: 300}, {ID: 11, Pages: 100}, {ID: 12, Pages: 1}},
		Names:        top.CgroupNames{Version: 2, Mount: "/sys/fs/cgroup", Path: func(i uint64) (string, bool) { p, ok := names[i]; return p, ok }},
		NSContainers: map[int]cgroups.Container{42: {ID: "feed", Runtime: "docker"}},
		Mem:          top.Meminfo{Read: true},
	}
	e := New(func() (top.Snapshot, error) { return s, nil }, Config{N: 20, MinBytes: 8192})
	m := gather(t, e)
	for k, want := range map[string]float64{
		`filecache_file_cached_bytes{cgroup="` + ctr + `",container_id="` + id + `",mountpoint="/",path="/var/lib/db",pod_uid="` + uid + `"}`: 600 * ps,
		`filecache_file_cached_bytes{cgroup="/system.slice/sshd.service",mountpoint="/",path="/var/lib/db"}`:                                  100 * ps,
		// Charged to no cgroup, reached through a container's root.
		`filecache_file_cached_bytes{cgroup="(none)",container_id="feed",mountpoint="/proc/42/root",path="/app/data"}`: 300 * ps,
		`filecache_file_cached_bytes{mountpoint="(other)",path="(other)"}`:                                             300 * ps,
		`filecache_cgroup_cached_bytes{cgroup="` + ctr + `",container_id="` + id + `",pod_uid="` + uid + `"}`:          900 * ps,
		`filecache_cgroup_cached_bytes{cgroup="(none)"}`:                                                               300 * ps,
		`filecache_cgroup_cached_bytes{cgroup="/system.slice/sshd.service"}`:                                           100 * ps,
		// The pod's own cgroup holds one page: below --min.
		`filecache_cgroup_cached_bytes{cgroup="(other)"}`: 1 * ps,
		`filecache_cgroups_folded`:                        1,
	} {
		got, ok := m[k]
		if !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if f, fs := sum(m, "filecache_file_cached_bytes"), sum(m, "filecache_filesystem_cached_bytes"); f != fs {
		t.Errorf("file series sum to %v, filesystems to %v", f, fs)
	}
	if n := count(m, "filecache_cgroup_cached_bytes"); n != 4 {
		t.Errorf("%d cgroup series, want 4", n)
	}
}
