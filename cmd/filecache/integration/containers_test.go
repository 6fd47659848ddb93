package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// top --by-cgroup and --cgroup, and container identity, against the
// kernel: child cgroups made under the suite's own memory cgroup (as
// cgroups_test.go makes them), named as container runtimes name theirs.

// The JSON of top --by-cgroup (README.md, "top --by-cgroup").
type cgTopDoc struct {
	Method       string     `json:"method"`
	ByCgroup     bool       `json:"by_cgroup"`
	CgroupFilter []string   `json:"cgroup_filter"`
	Rows         []cgTopRow `json:"rows"`
	Cgroups      *[]cgTopCg `json:"cgroups"`
	Filesystems  []cgTopFS  `json:"filesystems"`
	Errors       []struct{} `json:"errors"`
	MemoryCgroup *struct{}  `json:"memory_cgroup"`
	Total        struct{}   `json:"total"`
	Partial      bool       `json:"partial"`
}

type cgTopRow struct {
	Path            string  `json:"path"`
	Device          string  `json:"device"`
	Inode           uint64  `json:"inode"`
	CachedPages     uint64  `json:"cached_pages"`
	FileCachedPages *uint64 `json:"file_cached_pages"`
	CgroupID        *uint64 `json:"cgroup_id"`
	Cgroup          *string `json:"cgroup"`
	ContainerID     string  `json:"container_id"`
	PodUID          string  `json:"pod_uid"`
	ContainerPath   string  `json:"container_path"`
	NamespacePID    int     `json:"namespace_pid"`
	Changed         bool    `json:"changed"`
}

type cgTopCg struct {
	Cgroup      *string `json:"cgroup"`
	ID          uint64  `json:"id"`
	ContainerID string  `json:"container_id"`
	PodUID      string  `json:"pod_uid"`
	Runtime     string  `json:"runtime"`
	CachedPages uint64  `json:"cached_pages"`
}

type cgTopFS struct {
	Filesystem    string  `json:"filesystem"`
	CachedPages   uint64  `json:"cached_pages"`
	WalkedPages   *uint64 `json:"walked_pages"`
	ChangedInodes uint64  `json:"changed_inodes"`
	Complete      bool    `json:"complete"`
}

// cgTop runs filecache top with the cgroup walk and decodes its JSON. With
// --mount and the bounded walk forced, runs take 7 steps, so they resume
// inside files' page-cache trees.
func cgTop(t *testing.T, bin string, args ...string) (cgTopDoc, result) {
	t.Helper()
	res := run(t, bin, append([]string{"--json", "top"}, topArgs(t, args)...)...)
	if res.code != 0 {
		t.Fatalf("top failed\n%s", res)
	}
	var d cgTopDoc
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
		t.Fatalf("top --json: %v\n%s", err, res)
	}
	if d.Method != wantWalk(t) || d.Cgroups == nil || d.Partial {
		t.Fatalf("method %q (want %s), cgroups %v, partial %v\n%s", d.Method, wantWalk(t), d.Cgroups, d.Partial, res)
	}
	return d, res
}

// cgOf is the cgroups[] entry of id.
func (d cgTopDoc) cgOf(id uint64) (cgTopCg, bool) {
	for _, c := range *d.Cgroups {
		if c.ID == id {
			return c, true
		}
	}
	return cgTopCg{}, false
}

// pair is the (cgroup, file) row of cgroup id and the file at path.
func (d cgTopDoc) pair(t *testing.T, path string, id uint64) (cgTopRow, bool) {
	t.Helper()
	var st = statOf(t, path)
	for _, r := range d.Rows {
		if r.Inode == st.Ino && r.CgroupID != nil && *r.CgroupID == id {
			return r, true
		}
	}
	return cgTopRow{}, false
}

type inodeStat struct{ Dev, Ino uint64 }

func statOf(t *testing.T, path string) inodeStat {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return inodeStat{Dev: st.Dev, Ino: st.Ino}
}

// memStat is the cgroup's own accounting of its page cache, in pages:
// memory.stat "file" on cgroup v2, "cache" (and "total_cache", the same for
// a cgroup without children) on v1.
func memStat(t *testing.T, m memcg) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.dir, "memory.stat"))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]uint64{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			fields[k] = n
		}
	}
	key := "file"
	if m.h.Version == 1 {
		key = "cache"
		if fields["total_cache"] != fields["cache"] {
			t.Fatalf("%s: cache %d, total_cache %d: a leaf cgroup's must agree", m.path, fields["cache"], fields["total_cache"])
		}
	}
	v, ok := fields[key]
	if !ok {
		t.Fatalf("%s: memory.stat has no %q:\n%s", m.path, key, b)
	}
	return v / uint64(pageSize)
}

// statSlack is how far memory.stat may lag the pages themselves: the
// kernel batches the counters per CPU and folds them into what
// memory.stat reads once more than MEMCG_CHARGE_BATCH (64) updates a CPU
// are pending, or every 2 seconds (Linux >= 6.1; 5.10 reads per-CPU
// counters summed, 32 a CPU).
func statSlack() uint64 { return 64 * uint64(runtime.NumCPU()) }

// TestTopByCgroup: two child cgroups write files of their own and half of
// a third on a tmpfs, the suite a fourth. top --by-cgroup --cgroup (the
// suite's own cgroup) gives each (cgroup, file) pair exactly the pages its
// writer wrote (dd's own count), and each child's sum over every
// filesystem equals what its memory.stat says, read right before and
// after; --cgroup a child lists that child's pages only.
func TestTopByCgroup(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	own := ownMemcg(t)
	a, b := own.child(t, "ta"), own.child(t, "tb")
	dir := tmpfsDir(t)
	fa, fb, fc, fd := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c"), filepath.Join(dir, "d")
	na := ddIn(t, a, nil, "if=/dev/zero", "of="+fa, "bs=64k", "count=96")
	nb := ddIn(t, b, nil, "if=/dev/zero", "of="+fb, "bs=64k", "count=48")
	nc1 := ddIn(t, a, nil, "if=/dev/zero", "of="+fc, "bs=64k", "count=20", "conv=notrunc")
	nc2 := ddIn(t, b, nil, "if=/dev/zero", "of="+fc, "bs=64k", "seek=20", "count=12", "conv=notrunc")
	writeAt(t, fd, 0, mib+5)

	// The pairs of the tmpfs, exactly.
	d, res := cgTop(t, bin, "--by-cgroup", "--cgroup", own.path, "--mount", dir, "-n", "0")
	for _, w := range []struct {
		path  string
		m     memcg
		pages uint64
	}{{fa, a, pagesFor(na)}, {fb, b, pagesFor(nb)}, {fc, a, pagesFor(nc1)}, {fc, b, pagesFor(nc2)}, {fd, own, pagesFor(mib + 5)}} {
		r, ok := d.pair(t, w.path, w.m.id(t))
		switch {
		case !ok:
			t.Errorf("no row of %s in %s\n%s", w.path, w.m.path, res)
		case r.CachedPages != w.pages || r.Cgroup == nil || *r.Cgroup != w.m.path:
			t.Errorf("%s in %s: %d pages named %v, want %d (its writer's count)", w.path, w.m.path, r.CachedPages, r.Cgroup, w.pages)
		case *r.FileCachedPages != cachestatPages(t, w.path):
			t.Errorf("%s: file_cached_pages %d, cachestat %d", w.path, *r.FileCachedPages, cachestatPages(t, w.path))
		}
	}
	if len(d.Rows) != 5 || !slicesEqual(d.CgroupFilter, []string{own.path}) {
		t.Errorf("%d rows (want 5), filter %q\n%s", len(d.Rows), d.CgroupFilter, res)
	}

	// Each child's sum, over every filesystem, against its memory.stat.
	for try := 1; ; try++ {
		before := []uint64{memStat(t, a), memStat(t, b)}
		d, res = cgTop(t, bin, "--by-cgroup", "--cgroup", own.path, "-n", "5")
		after := []uint64{memStat(t, a), memStat(t, b)}
		if before[0] != after[0] || before[1] != after[1] {
			if try < retries {
				t.Logf("try %d: memory.stat moved during the run (%v, %v); again", try, before, after)
				continue
			}
			t.Fatalf("memory.stat never held still: %v, %v", before, after)
		}
		for i, m := range []memcg{a, b} {
			c, ok := d.cgOf(m.id(t))
			diff := int64(c.CachedPages) - int64(after[i])
			if !ok || c.Cgroup == nil || *c.Cgroup != m.path || uint64(max(diff, -diff)) > statSlack() {
				t.Errorf("%s: %+v (found %v); memory.stat %d pages; want within %d\n%s", m.path, c, ok, after[i], statSlack(), res)
			}
			t.Logf("%s: walk %d pages, memory.stat %d (%+d)", m.path, c.CachedPages, after[i], diff)
		}
		break
	}
	// Only the suite's subtree is listed.
	for _, c := range *d.Cgroups {
		if c.Cgroup == nil || own.path != "/" && *c.Cgroup != own.path && !strings.HasPrefix(*c.Cgroup, own.path+"/") {
			t.Errorf("cgroup %+v listed, outside --cgroup %s", c, own.path)
		}
	}

	// --cgroup a, by its directory: b's pages and the suite's own are gone.
	d, res = cgTop(t, bin, "--cgroup", a.dir, "--mount", dir, "-n", "0")
	want := map[uint64]uint64{statOf(t, fa).Ino: pagesFor(na), statOf(t, fc).Ino: pagesFor(nc1)}
	if len(d.Rows) != 2 || len(*d.Cgroups) != 1 || (*d.Cgroups)[0].CachedPages != pagesFor(na)+pagesFor(nc1) {
		t.Errorf("--cgroup %s: %d rows, cgroups %+v\n%s", a.dir, len(d.Rows), d.Cgroups, res)
	}
	for _, r := range d.Rows {
		if want[r.Inode] != r.CachedPages || r.CgroupID != nil || *r.FileCachedPages < r.CachedPages {
			t.Errorf("--cgroup %s: row %+v, want %d pages", a.dir, r, want[r.Inode])
		}
	}
	if fs := d.Filesystems; len(fs) != 1 || fs[0].CachedPages != pagesFor(na)+pagesFor(nc1) || fs[0].WalkedPages == nil ||
		*fs[0].WalkedPages != pagesFor(na)+pagesFor(nb)+pagesFor(nc1+nc2)+pagesFor(mib+5) {
		t.Errorf("--cgroup %s: filesystems %+v", a.dir, d.Filesystems)
	}

	// --cgroup twice (a by directory, b by path): both children's pairs,
	// not the suite's own file.
	d, res = cgTop(t, bin, "--by-cgroup", "--cgroup", a.dir, "--cgroup", b.path, "--mount", dir, "-n", "0")
	pairs := map[[2]uint64]uint64{
		{statOf(t, fa).Ino, a.id(t)}: pagesFor(na), {statOf(t, fc).Ino, a.id(t)}: pagesFor(nc1),
		{statOf(t, fb).Ino, b.id(t)}: pagesFor(nb), {statOf(t, fc).Ino, b.id(t)}: pagesFor(nc2),
	}
	if len(d.Rows) != len(pairs) || len(*d.Cgroups) != 2 {
		t.Errorf("--cgroup %s --cgroup %s: %d rows (want %d), cgroups %+v\n%s", a.dir, b.path, len(d.Rows), len(pairs), d.Cgroups, res)
	}
	for _, r := range d.Rows {
		if r.CgroupID == nil || pairs[[2]uint64{r.Inode, *r.CgroupID}] != r.CachedPages {
			t.Errorf("--cgroup %s --cgroup %s: row %+v not one of the children's pairs %v", a.dir, b.path, r, pairs)
		}
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// The cgroups a container runtime makes, under the suite's own: path
// components, each a directory in the last.
type runtimeCgroup struct {
	what           string
	parts          []string
	container, pod string // what filecache must read from the path
}

const (
	testCtrID  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testPodUID = "5a0e1d2c-3b4a-4f5e-8d7c-6b5a4f3e2d1c"
)

var runtimeCgroups = []runtimeCgroup{
	{"containerd under Kubernetes (systemd driver)", []string{"kubepods.slice", "kubepods-besteffort.slice",
		"kubepods-besteffort-pod" + strings.ReplaceAll(testPodUID, "-", "_") + ".slice", "cri-containerd-" + testCtrID + ".scope"}, testCtrID, testPodUID},
	{"docker (cgroupfs driver)", []string{"docker", testCtrID}, testCtrID, ""},
	{"podman", []string{"machine.slice", "libpod-" + testCtrID + ".scope"}, testCtrID, ""},
	{"CRI-O under Kubernetes (cgroupfs driver)", []string{"kubepods", "burstable", "pod" + testPodUID, "crio-" + testCtrID}, testCtrID, testPodUID},
	{"systemd-nspawn", []string{"machine.slice", "systemd-nspawn@web\\x2d1.service", "payload"}, "web-1", ""},
}

// nested makes the cgroup m/parts... (each removed at the end, deepest
// first), with the memory controller on for the children of m and each
// on v2.
func (m memcg) nested(t *testing.T, parts ...string) memcg {
	t.Helper()
	cur := m
	for _, p := range parts {
		if cur.h.Version == 2 {
			enableMemory(t, cur.dir)
		}
		dir := filepath.Join(cur.dir, p)
		switch err := os.Mkdir(dir, 0o755); {
		case err == nil:
			t.Cleanup(func() { rmdirCgroup(t, dir) })
		case !os.IsExist(err): // a parent two runtimes share (machine.slice)
			t.Fatal(err)
		}
		cur = memcg{h: m.h, path: strings.TrimSuffix(cur.path, "/") + "/" + p, dir: dir}
	}
	return cur
}

// TestTopByCgroupContainers: a writer in each cgroup named as a runtime
// names its containers' is reported with that container's id (and pod
// UID, dashed as the API shows it) in every output: top's table, JSON and
// Prometheus text, filecache --by-cgroup's JSON; --cgroup on a pod's slice
// keeps that pod's pages only.
func TestTopByCgroupContainers(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	own := ownMemcg(t)
	base := own.child(t, "rt")
	dir := tmpfsDir(t)
	var cgs []memcg
	for i, rc := range runtimeCgroups {
		m := base.nested(t, rc.parts...)
		cgs = append(cgs, m)
		n := ddIn(t, m, nil, "if=/dev/zero", "of="+filepath.Join(dir, fmt.Sprint(i)), "bs=64k", fmt.Sprint("count=", 8+i))
		if pagesFor(n) != uint64(16*(8+i)) {
			t.Fatalf("%s: dd wrote %d bytes", rc.what, n)
		}
	}
	d, res := cgTop(t, bin, "--by-cgroup", "--cgroup", base.path, "--mount", dir, "-n", "0")
	for i, rc := range runtimeCgroups {
		p := filepath.Join(dir, fmt.Sprint(i))
		r, ok := d.pair(t, p, cgs[i].id(t))
		c, cok := d.cgOf(cgs[i].id(t))
		if !ok || r.ContainerID != rc.container || r.PodUID != rc.pod || r.CachedPages != uint64(16*(8+i)) {
			t.Errorf("%s: row %+v (found %v), want container %q pod %q\n%s", rc.what, r, ok, rc.container, rc.pod, res)
		}
		if !cok || c.ContainerID != rc.container || c.PodUID != rc.pod || c.CachedPages != uint64(16*(8+i)) || c.Cgroup == nil || *c.Cgroup != cgs[i].path {
			t.Errorf("%s: cgroups entry %+v (found %v), want container %q pod %q\n%s", rc.what, c, cok, rc.container, rc.pod, res)
		}
	}

	// The table: a container column with the short id, or the name.
	tab := run(t, bin, append([]string{"top"}, topArgs(t, []string{"--by-cgroup", "--cgroup", base.path, "--mount", dir, "-n", "0"})...)...)
	for i, rc := range runtimeCgroups {
		short := rc.container
		if len(short) == 64 {
			short = short[:12]
		}
		row := regexp.MustCompile(`(?m)\s` + regexp.QuoteMeta(short) + `\s+` + regexp.QuoteMeta(cgs[i].path) + `\s+` + regexp.QuoteMeta(filepath.Join(dir, fmt.Sprint(i))) + `$`)
		if tab.code != 0 || !row.MatchString(tab.stdout) {
			t.Errorf("table: no row of %s with container %s\n%s", rc.what, short, tab)
		}
	}
	if !strings.Contains(tab.stdout, "CONTAINER") || !strings.Contains(tab.stdout, testPodUID) {
		t.Errorf("table: no container or pod column\n%s", tab)
	}

	// Prometheus text: the labels.
	prom := run(t, bin, append([]string{"top"}, topArgs(t, []string{"--by-cgroup", "--cgroup", base.path, "--mount", dir, "-n", "0", "--format", "prometheus"})...)...)
	want := fmt.Sprintf(`filecache_cgroup_cached_bytes{cgroup=%q,container_id=%q,pod_uid=%q} %d`, cgs[0].path, testCtrID, testPodUID, 16*8*pageSize)
	wantRow := fmt.Sprintf(`cgroup=%q,container_id=%q,pod_uid=%q} %d`, cgs[0].path, testCtrID, testPodUID, 16*8*pageSize)
	if prom.code != 0 || !strings.Contains(prom.stdout, want) || !strings.Contains(prom.stdout, wantRow) {
		t.Errorf("prometheus: want %s and a file series ending %s\n%s", want, wantRow, prom)
	}

	// filecache --by-cgroup: the split carries them too.
	rep, res2 := byCgroup(t, bin, filepath.Join(dir, "0"))
	var raw struct {
		Files []struct {
			Cgroups []struct {
				ID          uint64 `json:"id"`
				ContainerID string `json:"container_id"`
				PodUID      string `json:"pod_uid"`
			} `json:"cgroups"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(res2.stdout), &raw); err != nil || len(rep.Files) != 1 || len(raw.Files[0].Cgroups) != 1 ||
		raw.Files[0].Cgroups[0].ContainerID != testCtrID || raw.Files[0].Cgroups[0].PodUID != testPodUID {
		t.Errorf("--by-cgroup: %+v %v\n%s", raw, err, res2)
	}

	// --cgroup on the pod's slice (its path as /proc/PID/cgroup writes it):
	// the pod's container only.
	pod := strings.Join(strings.Split(cgs[0].path, "/")[:len(strings.Split(cgs[0].path, "/"))-1], "/")
	d, res = cgTop(t, bin, "--cgroup", pod, "--mount", dir, "-n", "0")
	if len(d.Rows) != 1 || d.Rows[0].Inode != statOf(t, filepath.Join(dir, "0")).Ino || len(*d.Cgroups) != 1 || (*d.Cgroups)[0].PodUID != testPodUID {
		t.Errorf("--cgroup %s: rows %+v, cgroups %+v\n%s", pod, d.Rows, d.Cgroups, res)
	}
}

// TestTopContainerNamespace: a tmpfs mounted only in the mount namespace of
// a process in a docker-named cgroup (a container, as far as the kernel
// can tell) is reached through /proc/PID/root; its file is shown with its
// path inside the container and the container's id, in the table, JSON and
// Prometheus text.
func TestTopContainerNamespace(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("skip[config:unshare]: no unshare(1)")
	}
	own := ownMemcg(t)
	ctr := own.child(t, "ns").nested(t, "docker", testCtrID)
	d := tempDir(t)
	// The shell moves itself into the container's cgroup, then into a
	// mount namespace of its own (unshare execs, keeping the cgroup).
	cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" || exit 111; exec "$2" --mount --propagation private sh -c 'mount -t tmpfs none "$1" && head -c 2097152 /dev/zero > "$1/inner" && echo ready && exec sleep 60' sh "$3"`,
		"sh", ctr.dir, unshare, d)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("the container did not get ready: %q %v", line, err)
	}
	pid := cmd.Process.Pid
	inner := fmt.Sprintf("/proc/%d/root%s", pid, d)
	doc, res := cgTopPlain(t, bin, "--mount", inner, "-n", "0")
	st := statOf(t, inner+"/inner")
	var row *cgTopRow
	for i := range doc.Rows {
		if doc.Rows[i].Inode == st.Ino {
			row = &doc.Rows[i]
		}
	}
	if row == nil || row.Path != inner+"/inner" || row.ContainerPath != d+"/inner" || row.ContainerID != testCtrID || row.NamespacePID != pid || row.CachedPages != 512 {
		t.Fatalf("the container's file: %+v\n%s", row, res)
	}
	tab := run(t, bin, append([]string{"top"}, topArgs(t, []string{"--mount", inner, "-n", "0"})...)...)
	if !regexp.MustCompile(`(?m)\s` + testCtrID[:12] + `\s+` + regexp.QuoteMeta(d+"/inner") + `$`).MatchString(tab.stdout) {
		t.Errorf("table: want the container's short id and its own path\n%s", tab)
	}
	prom := run(t, bin, append([]string{"top"}, topArgs(t, []string{"--mount", inner, "-n", "0", "--format", "prometheus"})...)...)
	if !strings.Contains(prom.stdout, fmt.Sprintf(`path=%q,`, d+"/inner")) || !strings.Contains(prom.stdout, fmt.Sprintf(`container_id=%q`, testCtrID)) {
		t.Errorf("prometheus: want the path in the container and its id\n%s", prom)
	}
}

// cgTopPlain is runTop decoding the rows' container fields.
func cgTopPlain(t *testing.T, bin string, args ...string) (cgTopDoc, result) {
	t.Helper()
	res := run(t, bin, append([]string{"--json", "top"}, topArgs(t, args)...)...)
	if res.code != 0 {
		t.Fatalf("top failed\n%s", res)
	}
	var d cgTopDoc
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
		t.Fatalf("top --json: %v\n%s", err, res)
	}
	return d, res
}

// TestServeByCgroup: serve --by-cgroup serves each cgroup's page cache with
// its container and pod, and the (cgroup, file) pairs with their labels.
func TestServeByCgroup(t *testing.T) {
	bin := filecacheBin(t)
	serveKernel(t, bin)
	own := ownMemcg(t)
	m := own.child(t, "srv").nested(t, runtimeCgroups[0].parts...)
	dir := tmpfsDir(t)
	p := filepath.Join(dir, "f")
	// Large enough to be among the 500 largest pairs of any machine's.
	n := ddIn(t, m, nil, "if=/dev/zero", "of="+p, "bs=1M", "count=64")
	s := startServe(t, serveOpts{}, bin, "serve", "--by-cgroup", "--web.listen-address", "127.0.0.1:0", "--max-age", "0", "-n", "500")
	mx := s.scrape(t)
	c, ok := mx.get("filecache_cgroup_cached_bytes", "cgroup", m.path, "container_id", testCtrID, "pod_uid", testPodUID)
	f, fok := mx.get("filecache_file_cached_bytes", "path", p, "mountpoint", dir, "cgroup", m.path, "container_id", testCtrID, "pod_uid", testPodUID)
	if !ok || !fok || c != float64(n) || f != float64(n) {
		t.Errorf("want the cgroup's and the file's series of %s with %d bytes: cgroup %v (%v), file %v (%v)\n%s", m.path, n, c, ok, f, fok, s.stderr)
	}
	if v := mx.must(t, "filecache_scrape_error"); v != 0 {
		t.Errorf("scrape error %v\n%s", v, s.stderr)
	}
}
