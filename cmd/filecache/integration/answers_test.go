package integration

// Wrong answers of issue #11 that no test caught, each checked against the
// kernel through system calls written here (not the wrappers the engines
// use): --follow counting a directory once per symlink, --sort percent
// with --range ordering by whole files, --detail and --map with --range
// describing whole files, and mountinfo lines with an empty source.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// rawCache is what the page cache holds of bytes [off, off+n) of the file
// behind fd (n 0: to the end of the file): cachestat(2) called here, or
// before Linux 6.5 (ok false) mincore(2) on a mapping made here, which
// gives only the cached count.
func rawCache(t *testing.T, fd int, off, n int64) (cs unix.Cachestat_t, ok bool) {
	t.Helper()
	err := unix.Cachestat(uint(fd), &unix.CachestatRange{Off: uint64(off), Len: uint64(n)}, &cs, 0)
	if err == nil {
		return cs, true
	}
	if !errors.Is(err, unix.ENOSYS) {
		t.Fatalf("cachestat: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	end := st.Size
	if n > 0 {
		end = min(end, off+n)
	}
	start := off / pageSize * pageSize
	if start >= end {
		return cs, false
	}
	mem, err := unix.Mmap(fd, start, int(end-start), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	defer unix.Munmap(mem)
	vec := make([]byte, (end-start+pageSize-1)/pageSize)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	for _, v := range vec {
		cs.Cache += uint64(v & 1)
	}
	return cs, false
}

func rawCacheOf(t *testing.T, path string, off, n int64) unix.Cachestat_t {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cs, _ := rawCache(t, fd, off, n)
	return cs
}

// needCachestat skips a test that needs cachestat(2) on a kernel older
// than 6.5, and fails it on a newer kernel that lacks it.
func needCachestat(t *testing.T) {
	t.Helper()
	if !haveCachestat() {
		skipKernel(t, featCachestat, "the test needs cachestat(2)")
	}
}

// ---- --follow: each directory and each file inode once per run ----

type inode struct{ dev, ino uint64 }

// followRef walks root as --follow should, with the standard library:
// symlinks followed, each directory entered once, each regular file's inode
// counted once. It returns the files by inode, with one path of each.
func followRef(t *testing.T, roots ...string) []map[inode]string {
	t.Helper()
	dirs := map[inode]bool{}
	files := map[inode]bool{}
	var out []map[inode]string
	var walk func(dir string, got map[inode]string)
	walk = func(dir string, got map[inode]string) {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if dirs[inode{st.Dev, st.Ino}] {
			return
		}
		dirs[inode{st.Dev, st.Ino}] = true
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			p := filepath.Join(dir, de.Name())
			if err := unix.Stat(p, &st); err != nil {
				continue // a dangling link
			}
			switch k := (inode{st.Dev, st.Ino}); st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				walk(p, got)
			case unix.S_IFREG:
				if !files[k] {
					files[k] = true
					got[k] = p
				}
			}
		}
	}
	for _, r := range roots {
		got := map[inode]string{}
		walk(r, got)
		out = append(out, got)
	}
	return out
}

type followTree struct {
	Path        string `json:"path"`
	Files       int    `json:"files"`
	Failed      int    `json:"failed"`
	SizeBytes   int64  `json:"size_bytes"`
	TotalPages  int64  `json:"total_pages"`
	CachedPages int64  `json:"cached_pages"`
}

// sums are what a tree of these files must show.
func sums(t *testing.T, root string, files map[inode]string) followTree {
	t.Helper()
	s := followTree{Path: root, Files: len(files)}
	for _, p := range files {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		s.SizeBytes += st.Size
		s.TotalPages += (st.Size + pageSize - 1) / pageSize
		s.CachedPages += int64(rawCacheOf(t, p, 0, 0).Cache)
	}
	return s
}

// A directory reached by several symlinks (and a bind mount), a file
// reached by a symlink and a hard link, a directory outside the tree reached
// twice: with --follow, the tree's sums count each inode once, --files and
// --ndjson list each once, a loop is reported once, and a second directory
// argument counts only what the first did not.
func TestFollowCountsEachInodeOnce(t *testing.T) {
	bin := filecacheBin(t)
	root, outside := tmpfsDir(t), tmpfsDir(t)
	for _, d := range []string{"real/sub", "b/c", "bind"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// tmpfs keeps exactly the pages written: figures that stay put.
	writeAt(t, filepath.Join(root, "real/a"), 0, 96*1024)
	sized(t, filepath.Join(root, "real/sparse"), 4*mib)
	writeAt(t, filepath.Join(root, "real/sparse"), mib, mib)
	writeAt(t, filepath.Join(root, "real/sub/c"), 0, 12*1024)
	writeAt(t, filepath.Join(root, "b/c/x"), 0, 5000)
	writeAt(t, filepath.Join(outside, "f3"), 0, 256*1024)
	for link, target := range map[string]string{
		"b/l1":   "../real",
		"b/c/l2": "../../real",
		"l3":     "real/sub",
		"lf":     "real/a",
		"ext1":   outside,
		"b/ext2": outside,
		"b/lf3":  filepath.Join(outside, "f3"),
		"b/c/up": "../..", // a loop
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(root, "real/a"), filepath.Join(root, "b/hard")); err != nil {
		t.Fatal(err)
	}
	bind := filepath.Join(root, "bind")
	if err := unix.Mount(filepath.Join(root, "real/sub"), bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(bind, unix.MNT_DETACH) })

	ref := followRef(t, root)[0]
	if len(ref) != 5 {
		t.Fatalf("reference walk found %d files, want a, sparse, c, x and f3: %v", len(ref), ref)
	}
	want := sums(t, root, ref)

	res := run(t, bin, "--json", "--follow", "--files", root)
	rep := mustReport(t, res)
	var doc struct {
		Trees  []followTree `json:"trees"`
		Errors []errEntry   `json:"errors"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Trees) != 1 {
		t.Fatalf("want one tree\n%s", res)
	}
	got := doc.Trees[0]
	if got.Failed != len(doc.Errors) {
		t.Errorf("tree failed %d, errors %d", got.Failed, len(doc.Errors))
	}
	got.Failed = 0
	if got != want {
		t.Errorf("tree %+v\nwant %+v (each inode once, the kernel's figures)\n%s", got, want, res)
	}
	if res.code != 1 || len(doc.Errors) != 1 || !strings.Contains(doc.Errors[0].Error, "loop") {
		t.Errorf("want the loop reported once (one way into b/c), exit 1; errors %+v\n%s", doc.Errors, res)
	}
	listed := map[inode]string{}
	for _, f := range rep.Files {
		var st unix.Stat_t
		if err := unix.Stat(f.Path, &st); err != nil {
			t.Fatal(err)
		}
		k := inode{st.Dev, st.Ino}
		if p, dup := listed[k]; dup {
			t.Errorf("--files lists %s and %s, the same inode", p, f.Path)
		}
		listed[k] = f.Path
		if _, ok := ref[k]; !ok {
			t.Errorf("--files lists %s, not a file of the tree", f.Path)
		}
	}
	if len(listed) != len(ref) {
		t.Errorf("--files lists %d inodes, want %d", len(listed), len(ref))
	}

	// --ndjson streams the same files, each once.
	res = run(t, bin, "--ndjson", "--follow", root)
	var streamed []string
	var summary struct{ Files int }
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	for sc.Scan() {
		var rec struct {
			Record string `json:"record"`
			Path   string `json:"path"`
			Inode  uint64 `json:"inode"`
			Total  struct {
				Files int `json:"files"`
			} `json:"total"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%v\n%s", err, res)
		}
		switch rec.Record {
		case "file":
			streamed = append(streamed, fmt.Sprint(rec.Inode))
		case "summary":
			summary.Files = rec.Total.Files
		}
	}
	slices.Sort(streamed)
	if len(streamed) != len(ref) || len(slices.Compact(slices.Clone(streamed))) != len(ref) || summary.Files != len(ref) {
		t.Errorf("--ndjson streamed inodes %v (summary %d files), want %d distinct\n%s", streamed, summary.Files, len(ref), res)
	}

	// Two arguments: the second counts only what the first did not.
	realDir := filepath.Join(root, "real")
	refs := followRef(t, realDir, root)
	res = run(t, bin, "--json", "--follow", realDir, root)
	doc.Trees = nil
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	if len(doc.Trees) != 2 {
		t.Fatalf("want two trees\n%s", res)
	}
	for i, r := range []string{realDir, root} {
		got, want := doc.Trees[i], sums(t, r, refs[i])
		got.Failed = 0
		if got != want {
			t.Errorf("tree %s: %+v\nwant %+v (what no earlier argument counted)\n%s", r, got, want, res)
		}
	}
}

// ---- --sort with --range ----

// --sort percent with --range orders by the range's percentages, the ones
// printed: a file 100% cached in its range comes before one 75% and one
// 50% cached, whatever their whole-file figures.
func TestSortPercentWithRange(t *testing.T) {
	bin := filecacheBin(t)
	if os.Getenv(envEngine) == "bpf" {
		skipConfig(t, "--range is not the bpf engine's")
	}
	dir := tmpfsDir(t)
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	sized(t, a, mib) // range 0:64K: 16/16 cached; whole file 16/256
	writeAt(t, a, 0, 64*1024)
	sized(t, b, 128*1024) // 8/16; whole 8/32
	writeAt(t, b, 0, 32*1024)
	sized(t, c, 256*1024) // 12/16; whole 12/64
	writeAt(t, c, 0, 48*1024)
	wantOrder := []string{a, c, b}
	const rng = 64 * 1024

	res := run(t, bin, "--json", "--sort", "percent", "--range", "0:64K", b, a, c)
	rep, err := parseReport(res.stdout) // a range is measured by cachestat or mincore, not the suite's engine
	if err != nil || res.code != 0 {
		t.Fatalf("%v\n%s", err, res)
	}
	var order []string
	for i, f := range rep.Files {
		order = append(order, f.Path)
		want := int64(rawCacheOf(t, f.Path, 0, rng).Cache)
		if f.CachedPages != want || f.TotalPages != rng/pageSize {
			t.Errorf("%s: %d/%d pages, the kernel says %d/%d", f.Path, f.CachedPages, f.TotalPages, want, rng/pageSize)
		}
		if i > 0 && f.Percent > rep.Files[i-1].Percent {
			t.Errorf("%s (%.2f%%) listed below %s (%.2f%%)", f.Path, f.Percent, rep.Files[i-1].Path, rep.Files[i-1].Percent)
		}
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("--json --sort percent --range: order %q, want %q\n%s", order, wantOrder, res)
	}

	// The table: the same order, and its PERCENT column decreasing.
	res = run(t, bin, "--sort", "percent", "--range", "0:64K", "--no-headings", "--output", "percent,path", b, a, c)
	order = nil
	var pcts []string
	for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] != "total" {
			pcts, order = append(pcts, f[0]), append(order, f[1])
		}
	}
	if !slices.Equal(order, wantOrder) || !slices.Equal(pcts, []string{"100.0%", "75.0%", "50.0%"}) {
		t.Errorf("table --sort percent --range: %q at %q, want %q at 100, 75, 50%%\n%s", order, pcts, wantOrder, res)
	}
}

// ---- --detail and --map with --range ----

type detailFile struct {
	Path            string  `json:"path"`
	CachedPages     uint64  `json:"cached_pages"`
	TotalPages      uint64  `json:"total_pages"`
	Map             string  `json:"map"`
	Dirty           *uint64 `json:"dirty_pages"`
	Writeback       *uint64 `json:"writeback_pages"`
	Evicted         *uint64 `json:"evicted_pages"`
	RecentlyEvicted *uint64 `json:"recently_evicted_pages"`
}

// rangeState is cachestat(2) over a range and page by page: the figures
// and the map --detail --map --range must print.
type rangeState struct {
	cs    unix.Cachestat_t
	cells string
}

func rangeRef(t *testing.T, path string, off, n int64) rangeState {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	var r rangeState
	end := min(st.Size, off+n)
	if off >= end {
		return r // no page of the file measured
	}
	r.cs, _ = rawCache(t, fd, off, end-off)
	var cells strings.Builder
	for p := off / pageSize; p <= (end-1)/pageSize; p++ { // 60 pages at most here: a cell each
		if cs, _ := rawCache(t, fd, p*pageSize, pageSize); cs.Cache == 1 {
			cells.WriteByte('O')
		} else {
			cells.WriteByte(' ')
		}
	}
	r.cells = cells.String()
	return r
}

// On ext4, a file whose first 128 KiB are cached and clean while pages
// further on are dirty: --detail --map --range 0:128K shows the range's
// counts and map, with every engine that measures ranges; a range past the
// end shows no page at all.
func TestDetailAndMapOfRange(t *testing.T) {
	bin := filecacheBin(t)
	needCachestat(t)
	f := filepath.Join(ext4Dir(t), "f")
	prepare := func() {
		writeAt(t, f, 0, mib)
		evict(t, f) // written back and dropped: clean from here
		readAt(t, f, 0, 128*1024)
		writeAt(t, f, 512*1024, 128*1024) // 32 dirty pages outside the range
	}
	for _, engine := range []string{"mincore", "cachestat"} {
		for _, c := range []struct {
			arg    string
			off, n int64
		}{
			{"0:128K", 0, 128 * 1024},
			{"2M:64K", 2 * mib, 64 * 1024},
		} {
			t.Run(engine+"/"+c.arg, func(t *testing.T) {
				var why string
				for try := 1; try <= retries; try++ {
					prepare()
					r1 := rangeRef(t, f, c.off, c.n)
					res := runWith(t, runOpts{ownEngine: true}, bin, "--json", "--engine", engine, "--detail", "--map", "--range", c.arg, f)
					r2 := rangeRef(t, f, c.off, c.n)
					if res.code != 0 {
						t.Fatalf("exit %d\n%s", res.code, res)
					}
					var doc struct{ Files []detailFile }
					if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || len(doc.Files) != 1 {
						t.Fatalf("%v\n%s", err, res)
					}
					if r1 != r2 {
						why = fmt.Sprintf("%+v then %+v", r1, r2)
						t.Logf("try %d: the range changed during the run (%s); again", try, why)
						continue
					}
					if whole := rawCacheOf(t, f, 0, 0); whole.Dirty == 0 {
						why = "no dirty page left outside the range"
						t.Logf("try %d: %s; again", try, why)
						continue
					}
					g := doc.Files[0]
					if g.Dirty == nil || g.Writeback == nil || g.Evicted == nil || g.RecentlyEvicted == nil {
						t.Fatalf("no detail\n%s", res)
					}
					got := unix.Cachestat_t{Cache: g.CachedPages, Dirty: *g.Dirty, Writeback: *g.Writeback,
						Evicted: *g.Evicted, Recently_evicted: *g.RecentlyEvicted}
					if got != r1.cs || g.Map != r1.cells {
						t.Errorf("--range %s: %+v, map %q\nthe kernel over the range: %+v, map %q\n%s", c.arg, got, g.Map, r1.cs, r1.cells, res)
					}
					return
				}
				t.Fatalf("no stable measurement in %d tries: %s", retries, why)
			})
		}
	}
}

// ---- mountinfo: an empty source ----

// A tmpfs mounted with an empty source (and one with "-", and one with a
// space), at mount points with a space and a tab: the kernel's own
// /proc/self/mountinfo lines parse to the source as given, and filecache
// top reports it.
func TestMountinfoEmptySource(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	base := tempDir(t)
	cases := []struct{ source, dir string }{
		{"", "empty source"},
		{"-", "dash\tsource"},
		{"with space", "spaced"},
	}
	var devs []uint64
	for i, c := range cases {
		d := filepath.Join(base, c.dir)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(c.source, d, "tmpfs", 0, "size=1024k"); err != nil {
			t.Fatalf("mount tmpfs with source %q: %v", c.source, err)
		}
		t.Cleanup(func() { unix.Unmount(d, unix.MNT_DETACH) })
		cases[i].dir = d
		writeAt(t, filepath.Join(d, "f"), 0, 64*1024)
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, st.Dev)
	}
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), " - tmpfs  rw") {
		t.Fatalf("the kernel wrote no line with an empty source:\n%s", raw)
	}
	ms, err := top.ParseMountinfo(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		found := false
		for _, m := range ms {
			if m.Dev != devs[i] {
				continue
			}
			found = true
			if m.Source != c.source || m.FSType != "tmpfs" || m.Point != c.dir || m.Root != "/" {
				t.Errorf("parsed %+v, want source %q, tmpfs, at %q", m, c.source, c.dir)
			}
		}
		if !found {
			t.Errorf("no mount of %q in the parsed table", c.dir)
		}
	}

	args := []string{"--json", "top", "-n", "1"}
	for _, c := range cases {
		args = append(args, "--mount", c.dir)
	}
	res := run(t, bin, args...)
	if res.code != 0 {
		t.Fatalf("top failed\n%s", res)
	}
	var doc struct {
		Filesystems []struct {
			FSType string `json:"fstype"`
			Source string `json:"source"`
			Device string `json:"device"`
		} `json:"filesystems"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	for i, c := range cases {
		dev := fmt.Sprintf("%d:%d", unix.Major(devs[i]), unix.Minor(devs[i]))
		found := false
		for _, fs := range doc.Filesystems {
			if fs.Device == dev {
				found = true
				if fs.Source != c.source || fs.FSType != "tmpfs" {
					t.Errorf("top: %s (%s) has source %q, fstype %q; mounted with %q, tmpfs", c.dir, dev, fs.Source, fs.FSType, c.source)
				}
			}
		}
		if !found {
			t.Errorf("top lists no filesystem %s (%s)\n%s", dev, c.dir, res)
		}
	}
}
