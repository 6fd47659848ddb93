package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
)

// The memory cgroup tests (--by-cgroup). They make child cgroups only under
// the test process's own memory cgroup, run a process in each (moved there
// through cgroup.procs before it execs), and remove them at the end. Where
// no hierarchy holds the memory controller (a vmtest guest boots with none
// mounted) they mount one on a directory of their own: cgroup v1's memory
// hierarchy where the kernel has it, else cgroup2.

// memcg is the test process's own memory cgroup.
type memcg struct {
	h    cgroups.Hierarchy
	path string // as /proc/self/cgroup writes it
	dir  string // its directory
}

// ownMemcg finds (or mounts) the memory hierarchy and the test process's
// memory cgroup in it, with the memory controller enabled for its children.
func ownMemcg(t *testing.T) memcg {
	t.Helper()
	h, err := cgroups.Find()
	if errors.Is(err, cgroups.ErrNoMemory) {
		h = mountMemoryHierarchy(t)
	} else if err != nil {
		t.Fatal(err)
	}
	return ownMemcgIn(t, h)
}

// ownMemcgIn is the test process's memory cgroup in hierarchy h.
func ownMemcgIn(t *testing.T, h cgroups.Hierarchy) memcg {
	t.Helper()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	p, v, err := cgroups.OwnMemoryCgroup(self)
	if err != nil || v != h.Version {
		t.Fatalf("own memory cgroup: %q v%d (%v) in a v%d hierarchy; /proc/self/cgroup:\n%s", p, v, err, h.Version, self)
	}
	dir, ok := cgroups.Dir(h, p)
	if !ok {
		skipFeature(t, "memcg", "own memory cgroup %s is outside the mount of %s (root %s)", p, h.Mount, h.Root)
	}
	if h.Version == 2 {
		enableMemory(t, dir)
	}
	t.Logf("memory cgroup v%d at %s; this process's: %s", h.Version, h.Mount, p)
	return memcg{h: h, path: p, dir: dir}
}

// mountMemoryHierarchy mounts, where none is mounted (a vmtest guest), the
// memory controller's hierarchy on a directory of the test: cgroup v1's
// where the kernel still has it (CONFIG_MEMCG_V1; Debian's kernels dropped
// it with 6.12), as this project's own machines run, else cgroup2. So the
// matrix covers both: v1 on the host, 5.10 and 6.1, v2 from 6.12 on. v1
// comes first because once removed cgroups with pages still charged bind
// the controller to cgroup2, v1 could not take it back.
func mountMemoryHierarchy(t *testing.T) cgroups.Hierarchy {
	t.Helper()
	d := tempDir(t)
	v1err := unix.Mount("cgroup", d, "cgroup", 0, "memory")
	if v1err == nil {
		t.Cleanup(func() { unmountRetry(t, d) })
		return cgroups.Hierarchy{Version: 1, Mount: d, Root: "/"}
	}
	if err := unix.Mount("cgroup2", d, "cgroup2", 0, ""); err == nil {
		t.Cleanup(func() { unmountRetry(t, d) })
		if c, err := cgroups.Controllers(d); err == nil && strings.Contains(" "+c+" ", " memory") {
			return cgroups.Hierarchy{Version: 2, Mount: d, Root: "/"}
		}
	}
	// /proc/cgroups is no witness: Linux 7.x lists only controllers
	// cgroup v1 can have there.
	skipFeature(t, "memcg", "no memory controller: mounting cgroup v1's on %s failed (%v), and cgroup2 does not list it", d, v1err)
	panic("unreachable")
}

func unmountRetry(t *testing.T, d string) {
	if err := unix.Unmount(d, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		t.Logf("unmount %s: %v; detaching", d, err)
		unix.Unmount(d, unix.MNT_DETACH)
	}
}

// enableMemory turns the memory controller on for dir's children (cgroup
// v2), and off again at the end if it was off.
func enableMemory(t *testing.T, dir string) {
	t.Helper()
	ctl := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(ctl)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(" "+strings.TrimSpace(string(b))+" ", " memory ") {
		return
	}
	if err := os.WriteFile(ctl, []byte("+memory"), 0); err != nil {
		if errors.Is(err, unix.EBUSY) {
			skipFeature(t, "memcg", "cannot enable memory for children of %s (processes in it): %v", dir, err)
		}
		t.Fatalf("enable memory in %s: %v", ctl, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(ctl, []byte("-memory"), 0); err != nil {
			t.Logf("disable memory in %s again: %v", ctl, err)
		}
	})
}

// child makes a child cgroup of m, removed at the end (once its processes
// are gone: the tests wait for theirs).
func (m memcg) child(t *testing.T, name string) memcg {
	t.Helper()
	name = fmt.Sprintf("filecache-it-%d-%s", os.Getpid(), name)
	dir := filepath.Join(m.dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rmdirCgroup(t, dir) })
	return memcg{h: m.h, path: strings.TrimSuffix(m.path, "/") + "/" + name, dir: dir}
}

// rmdirCgroup removes a cgroup, waiting a little for exited processes to
// leave it (their release is asynchronous).
func rmdirCgroup(t *testing.T, dir string) {
	var err error
	for i := 0; i < 100; i++ {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("remove cgroup %s: %v", dir, err)
}

// id is the cgroup's id: its directory's inode number.
func (m memcg) id(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(m.dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

var (
	ddBytes   = regexp.MustCompile(`(?m)^(\d+) bytes`)
	ddRecords = regexp.MustCompile(`(?m)^(\d+)\+(\d+) records out`)
)

// ddIn runs dd in cgroup m (the shell moves itself there, then execs dd) and
// returns the bytes dd says it copied: the process's own count. stdin, if
// set, is dd's input.
func ddIn(t *testing.T, m memcg, stdin *os.File, args ...string) int64 {
	t.Helper()
	script := `echo $$ > "$1/cgroup.procs" || exit 111; shift; exec dd "$@"`
	cmd := exec.Command("sh", append([]string{"-c", script, "sh", m.dir}, args...)...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dd %s in %s: %v\n%s", strings.Join(args, " "), m.path, err, out)
	}
	if mm := ddBytes.FindSubmatch(out); mm != nil {
		n, _ := strconv.ParseInt(string(mm[1]), 10, 64)
		return n
	}
	// busybox's dd may count records only: whole ones of bs bytes each.
	mm := ddRecords.FindSubmatch(out)
	bs := ddSize(args)
	if mm == nil || string(mm[2]) != "0" || bs == 0 {
		t.Fatalf("dd %s: no byte count in its output:\n%s", strings.Join(args, " "), out)
	}
	n, _ := strconv.ParseInt(string(mm[1]), 10, 64)
	return n * bs
}

// ddSize is dd's bs= operand in bytes (k and M suffixes), 0 if none.
func ddSize(args []string) int64 {
	for _, a := range args {
		v, ok := strings.CutPrefix(a, "bs=")
		if !ok {
			continue
		}
		mult := int64(1)
		switch {
		case strings.HasSuffix(v, "k"):
			mult, v = 1024, strings.TrimSuffix(v, "k")
		case strings.HasSuffix(v, "M"):
			mult, v = mib, strings.TrimSuffix(v, "M")
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		return n * mult
	}
	return 0
}

// cgEntry is one entry of files[].cgroups or trees[].cgroups.
type cgEntry struct {
	Cgroup      *string `json:"cgroup"`
	ID          uint64  `json:"id"`
	CachedPages uint64  `json:"cached_pages"`
	CachedBytes uint64  `json:"cached_bytes"`
}

type cgFile struct {
	Path        string     `json:"path"`
	Files       int        `json:"files"`
	CachedPages uint64     `json:"cached_pages"`
	Cgroups     *[]cgEntry `json:"cgroups"`
}

type cgReport struct {
	Engine       string   `json:"engine"`
	Method       string   `json:"method"`
	Files        []cgFile `json:"files"`
	Trees        []cgFile `json:"trees"`
	Notes        []string `json:"notes"`
	MemoryCgroup *struct {
		Version int    `json:"version"`
		Mount   string `json:"mount"`
	} `json:"memory_cgroup"`
}

// byCgroup runs filecache --json --by-cgroup and decodes its report, which
// must also pass the suite's common checks.
func byCgroup(t *testing.T, bin string, paths ...string) (cgReport, result) {
	t.Helper()
	res := run(t, bin, append([]string{"--json", "--by-cgroup"}, paths...)...)
	if res.code != 0 {
		t.Fatalf("exit status %d\n%s", res.code, res)
	}
	common, err := parseReport(res.stdout)
	if err != nil {
		t.Fatalf("bad JSON report: %v\n%s", err, res)
	}
	if len(common.Trees) == 0 {
		checkTotals(t, common)
	}
	// The page walk runs as a test run: the attached method has none, and
	// the walk then takes the kernel's own choice.
	method := kernelMethod(t)
	if m := os.Getenv(envMethod); m == "bpf_loop" || m == "bounded-loop" {
		method = m
	}
	if common.Engine != "bpf" || common.Method != method {
		t.Errorf("engine %q method %q, want bpf %q\n%s", common.Engine, common.Method, method, res)
	}
	var rep cgReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, res)
	}
	return rep, res
}

// want is a split expected of one file or tree: pages by cgroup.
type want map[memcg]uint64

// checkSplit compares one file's (or tree's) split with the expected one,
// exactly: every cgroup named with its path and id, nothing else.
func checkSplit(t *testing.T, what string, got cgFile, w want, pageSize uint64, res result) {
	t.Helper()
	if got.Cgroups == nil {
		t.Errorf("%s: no cgroups key\n%s", what, res)
		return
	}
	var sum, wsum uint64
	seen := map[uint64]bool{}
	for _, e := range *got.Cgroups {
		sum += e.CachedPages
		if e.CachedBytes != e.CachedPages*pageSize {
			t.Errorf("%s: cgroup %d: cached_bytes %d for %d pages", what, e.ID, e.CachedBytes, e.CachedPages)
		}
		if seen[e.ID] {
			t.Errorf("%s: cgroup id %d listed twice", what, e.ID)
		}
		seen[e.ID] = true
	}
	for m, pages := range w {
		wsum += pages
		id := m.id(t)
		var e *cgEntry
		for i := range *got.Cgroups {
			if (*got.Cgroups)[i].ID == id {
				e = &(*got.Cgroups)[i]
			}
		}
		switch {
		case e == nil:
			t.Errorf("%s: no entry for cgroup %s (id %d), want %d pages; got %s", what, m.path, id, pages, showCgroups(*got.Cgroups))
		case e.CachedPages != pages:
			t.Errorf("%s: cgroup %s: %d pages, want %d (its process's own count)", what, m.path, e.CachedPages, pages)
		case e.Cgroup == nil || *e.Cgroup != m.path:
			t.Errorf("%s: cgroup id %d named %v, want %q", what, id, e.Cgroup, m.path)
		}
	}
	if len(*got.Cgroups) != len(w) || sum != got.CachedPages || sum != wsum {
		t.Errorf("%s: split %s (sum %d) of %d cached pages, want %d cgroups summing to %d", what, showCgroups(*got.Cgroups), sum, got.CachedPages, len(w), wsum)
	}
}

func showCgroups(cgs []cgEntry) string {
	var s []string
	for _, e := range cgs {
		name := "null"
		if e.Cgroup != nil {
			name = *e.Cgroup
		}
		s = append(s, fmt.Sprintf("%s(id %d)=%d", name, e.ID, e.CachedPages))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func pagesFor(n int64) uint64 { return uint64((n + pageSize - 1) / pageSize) }

// cachestatPages is cachestat's (before 6.5, mincore's) count for path.
func cachestatPages(t *testing.T, path string) uint64 {
	t.Helper()
	r, err := takeRef(path)
	if err != nil {
		t.Fatal(err)
	}
	return r.Cache
}

// Two child cgroups each write a file of their own and half of a third, on
// a tmpfs (whose pages the host never reclaims, and are charged to their
// writer); the test process writes a fourth. --by-cgroup must give every
// page to the cgroup whose process brought it in, exactly: cachestat for
// each file's total, each dd's own byte count for the split. The tree of
// those files is split the same way, summed.
func TestByCgroup(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	byCgroupWriters(t, bin, ownMemcg(t))
}

func byCgroupWriters(t *testing.T, bin string, own memcg) {
	t.Helper()
	a, b := own.child(t, "a"), own.child(t, "b")
	dir := tmpfsDir(t) // unmounted before the cgroups go: their pages leave first
	fa, fb, fc, fd := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c"), filepath.Join(dir, "d")
	na := ddIn(t, a, nil, "if=/dev/zero", "of="+fa, "bs=64k", "count=128")
	nb := ddIn(t, b, nil, "if=/dev/zero", "of="+fb, "bs=64k", "count=64")
	nc1 := ddIn(t, a, nil, "if=/dev/zero", "of="+fc, "bs=64k", "count=40", "conv=notrunc")
	nc2 := ddIn(t, b, nil, "if=/dev/zero", "of="+fc, "bs=64k", "seek=40", "count=24", "conv=notrunc")
	writeAt(t, fd, 0, mib+5) // the test process itself: own cgroup, a partial last page

	rep, res := byCgroup(t, bin, fa, fb, fc, fd, dir)
	if rep.MemoryCgroup == nil || rep.MemoryCgroup.Version != own.h.Version || rep.MemoryCgroup.Mount != own.h.Mount {
		t.Errorf("memory_cgroup %+v, want version %d at %s", rep.MemoryCgroup, own.h.Version, own.h.Mount)
	}
	if len(rep.Files) != 4 || len(rep.Trees) != 1 {
		t.Fatalf("%d files, %d trees; want 4 and 1\n%s", len(rep.Files), len(rep.Trees), res)
	}
	for i, p := range []string{fa, fb, fc, fd} {
		if cs := cachestatPages(t, p); rep.Files[i].CachedPages != cs {
			t.Errorf("%s: %d cached pages, cachestat %d", p, rep.Files[i].CachedPages, cs)
		}
	}
	ps := uint64(pageSize)
	checkSplit(t, "a", rep.Files[0], want{a: pagesFor(na)}, ps, res)
	checkSplit(t, "b", rep.Files[1], want{b: pagesFor(nb)}, ps, res)
	checkSplit(t, "c", rep.Files[2], want{a: pagesFor(nc1), b: pagesFor(nc2)}, ps, res)
	checkSplit(t, "d", rep.Files[3], want{own: pagesFor(mib + 5)}, ps, res)
	checkSplit(t, "tree", rep.Trees[0], want{a: pagesFor(na) + pagesFor(nc1), b: pagesFor(nb) + pagesFor(nc2), own: pagesFor(mib + 5)}, ps, res)

	// The table: one row per (file, cgroup), the cgroup's path in it (one
	// file: no total line).
	tab := run(t, bin, "--by-cgroup", fc)
	if tab.code != 0 {
		t.Fatalf("table run: exit %d\n%s", tab.code, tab)
	}
	lines := strings.Split(strings.TrimRight(tab.stdout, "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "CGROUP") {
		t.Fatalf("table: want a heading and a row per cgroup\n%s", tab)
	}
	for _, m := range []memcg{a, b} {
		if !strings.Contains(tab.stdout, fmt.Sprintf("%d/%d", pagesFor(nc1), pagesFor(nc1+nc2))) ||
			!regexp.MustCompile(`(?m)\s`+regexp.QuoteMeta(m.path)+`\s+`+regexp.QuoteMeta(fc)+`$`).MatchString(tab.stdout) {
			t.Errorf("table: no row of %s for %s\n%s", m.path, fc, tab)
		}
	}
}

// Readers on ext4: each child cgroup reads its part of an evicted file,
// with read-ahead off (the fd, opened here with POSIX_FADV_RANDOM, is dd's
// standard input), so each page is charged to the cgroup that read it. The
// host may reclaim ext4 pages at any time: the state is set up again until
// cachestat says it held for the whole run.
func TestByCgroupReaders(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	own := ownMemcg(t)
	a, b := own.child(t, "ra"), own.child(t, "rb")
	p := filepath.Join(ext4Dir(t), "f")
	writeAt(t, p, 0, 6*mib)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var why string
	for try := 1; try <= retries; try++ {
		evictFd(t, int(f.Fd()), p)
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
			t.Fatal(err)
		}
		// dd skips from the shared offset of the open file: start at 0.
		seek0 := func() {
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
		}
		seek0()
		n1 := ddIn(t, a, f, "of=/dev/null", "bs=64k", "count=16") // 1 MiB at 0
		seek0()
		n2 := ddIn(t, b, f, "of=/dev/null", "bs=64k", "skip=48", "count=32") // 2 MiB at 3 MiB
		before := cachestatPages(t, p)
		rep, res := byCgroup(t, bin, p)
		after := cachestatPages(t, p)
		if before != after || before != pagesFor(n1)+pagesFor(n2) {
			why = fmt.Sprintf("cachestat %d before, %d after the run; the readers read %d pages", before, after, pagesFor(n1)+pagesFor(n2))
			t.Logf("try %d: %s; again", try, why)
			continue
		}
		if rep.Files[0].CachedPages != before {
			t.Errorf("%d cached pages, cachestat %d\n%s", rep.Files[0].CachedPages, before, res)
		}
		checkSplit(t, "ext4 file", rep.Files[0], want{a: pagesFor(n1), b: pagesFor(n2)}, uint64(pageSize), res)
		return
	}
	t.Fatalf("no stable state in %d tries: %s", retries, why)
}

// Large folios: on a tmpfs with huge=always each 2 MiB of a file is one
// folio (several slots of the page-cache tree from Linux 5.18; 512 entries
// of one head page before). Halves split on a 2 MiB boundary must still go
// to their writers exactly.
func TestByCgroupHugeTmpfs(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	own := ownMemcg(t)
	a, b := own.child(t, "ha"), own.child(t, "hb")
	d := tempDir(t)
	if err := unix.Mount("tmpfs", d, "tmpfs", 0, "size=64m,huge=always"); err != nil {
		skipFeature(t, "thp", "mount tmpfs -o huge=always: %v", err)
	}
	t.Cleanup(func() { unmountRetry(t, d) })
	p := filepath.Join(d, "f")
	huge0 := meminfo(t, "ShmemHugePages")
	n1 := ddIn(t, a, nil, "if=/dev/zero", "of="+p, "bs=2M", "count=3", "conv=notrunc")
	n2 := ddIn(t, b, nil, "if=/dev/zero", "of="+p, "bs=2M", "seek=3", "count=2", "conv=notrunc")
	huge := meminfo(t, "ShmemHugePages") - huge0
	t.Logf("ShmemHugePages grew by %d kB while writing", huge)
	rep, res := byCgroup(t, bin, p)
	if cs := cachestatPages(t, p); rep.Files[0].CachedPages != cs {
		t.Errorf("%d cached pages, cachestat %d", rep.Files[0].CachedPages, cs)
	}
	checkSplit(t, "huge tmpfs file", rep.Files[0], want{a: pagesFor(n1), b: pagesFor(n2)}, uint64(pageSize), res)
}

// meminfo reads one /proc/meminfo field, in kB.
func meminfo(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// A removed cgroup keeps the pages charged to it (until Linux 7.x, which
// moves them to its parent when it goes): they are reported under its old
// id with no name and a note, or under the parent, never under any other.
func TestByCgroupRemoved(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	own := ownMemcg(t)
	gone := own.child(t, "gone")
	goneID := gone.id(t)
	d := tmpfsDir(t)
	p := filepath.Join(d, "f")
	n := ddIn(t, gone, nil, "if=/dev/zero", "of="+p, "bs=64k", "count=16")
	rmdirCgroup(t, gone.dir)
	rep, res := byCgroup(t, bin, p)
	cgs := rep.Files[0].Cgroups
	if cgs == nil || len(*cgs) != 1 || (*cgs)[0].CachedPages != pagesFor(n) {
		t.Fatalf("want all %d pages in one cgroup: %+v\n%s", pagesFor(n), cgs, res)
	}
	e := (*cgs)[0]
	switch e.ID {
	case goneID:
		if e.Cgroup != nil {
			t.Errorf("the removed cgroup named %q", *e.Cgroup)
		}
		note := fmt.Sprintf("memory cgroup id %d is not a directory of %s", goneID, own.h.Mount)
		if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], note) || !strings.Contains(res.stderr, note) {
			t.Errorf("notes %q, stderr %q: want one note %q", rep.Notes, res.stderr, note)
		}
		t.Logf("pages stay charged to the removed cgroup (id %d)", goneID)
	case own.id(t):
		if e.Cgroup == nil || *e.Cgroup != own.path {
			t.Errorf("pages moved to the parent, named %v, want %q", e.Cgroup, own.path)
		}
		t.Logf("pages moved to the parent cgroup %s on removal", own.path)
	default:
		t.Errorf("pages of the removed cgroup (id %d) given to cgroup id %d (%v)\n%s", goneID, e.ID, e.Cgroup, res)
	}
}
