package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The JSON of filecache top (README.md, "filecache top").
type topDoc struct {
	PageSize    int64      `json:"page_size"`
	Partial     bool       `json:"partial"`
	Restricted  bool       `json:"restricted"`
	Method      string     `json:"method"`
	Rows        []topRow   `json:"rows"`
	Filesystems []topFS    `json:"filesystems"`
	Total       topTotal   `json:"total"`
	Errors      []struct{} `json:"errors"`
}

type topRow struct {
	Path        string `json:"path"`
	Deleted     bool   `json:"deleted"`
	NoName      bool   `json:"no_name"`
	Filesystem  string `json:"filesystem"`
	Device      string `json:"device"`
	Inode       uint64 `json:"inode"`
	CachedPages uint64 `json:"cached_pages"`
	SizeBytes   uint64 `json:"size_bytes"`
	ChangePages *int64 `json:"change_pages"`
}

type topFS struct {
	Filesystem  string `json:"filesystem"`
	FSType      string `json:"fstype"`
	Device      string `json:"device"`
	CachedPages uint64 `json:"cached_pages"`
	Inodes      uint64 `json:"inodes"`
	Complete    bool   `json:"complete"`
	Walks       int    `json:"walks"`
	Runs        int    `json:"runs"`
}

type topTotal struct {
	CachedBytes         uint64  `json:"cached_bytes"`
	BuffersBytes        uint64  `json:"buffers_bytes"`
	MeminfoBuffersBytes uint64  `json:"meminfo_buffers_bytes"`
	MeminfoCachedBytes  uint64  `json:"meminfo_cached_bytes"`
	AccountedPercent    float64 `json:"accounted_percent"`
}

// topKernel: the top tests run on every kernel (bpf_loop's walk from 5.17,
// the bounded one before), in the suite's unforced run and in the one that
// forces the bounded loop; see topwalk_test.go.
func topKernel(t *testing.T, bin string) {
	t.Helper()
	topConfig(t)
}

func runTop(t *testing.T, bin string, args ...string) topDoc {
	t.Helper()
	res := run(t, bin, append([]string{"--json", "top"}, topArgs(t, args)...)...)
	if res.code != 0 {
		t.Fatalf("top failed\n%s", res)
	}
	var d topDoc
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
		t.Fatalf("top --json: %v\n%s", err, res)
	}
	checkWalk(t, d, args)
	return d
}

func findRow(d topDoc, ino uint64, dev uint64) (topRow, bool) {
	want := fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
	for _, r := range d.Rows {
		if r.Inode == ino && r.Device == want {
			return r, true
		}
	}
	return topRow{}, false
}

// TestTopFigures: top lists known files on two tmpfs mounts and ext4 with
// the page counts cachestat gives right before and after, under their
// paths; a deleted file still held open is marked; a hard-linked inode is
// one row; a memfd is found on the kernel's shmem mount.
func TestTopFigures(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	a, b, e := tmpfsDir(t), tmpfsDir(t), ext4Dir(t)
	big := filepath.Join(a, "big")
	writeAt(t, big, 0, 64*mib)
	linked := filepath.Join(a, "linked")
	writeAt(t, linked, 0, 4*mib)
	if err := os.Link(linked, filepath.Join(a, "linked2")); err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(b, "second")
	// Half of it written, the rest a hole: a figure that is not the file's size.
	sized(t, second, 16*mib)
	writeAt(t, second, 4*mib, 8*mib)
	gone := filepath.Join(a, "gone")
	writeAt(t, gone, 0, 8*mib)
	held, err := unix.Open(gone, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(held)
	var goneSt unix.Stat_t
	if err := unix.Fstat(held, &goneSt); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	mfd, err := unix.MemfdCreate("filecache-top-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mfd)
	if _, err := unix.Pwrite(mfd, make([]byte, 2*mib), 0); err != nil {
		t.Fatal(err)
	}
	var mst unix.Stat_t
	if err := unix.Fstat(mfd, &mst); err != nil {
		t.Fatal(err)
	}
	ext := filepath.Join(e, "ext4file")
	writeAt(t, ext, 0, 32*mib)

	tmpfsFiles := map[string]string{big: big, linked: linked, second: second}
	for try := 1; ; try++ {
		// ext4 may lose pages to the host at any time: a sandwich of
		// cachestat readings that agree pins its figure.
		readAt(t, ext, 0, 32*mib)
		before := takeRefs(t, []string{ext})
		d := runTop(t, bin, "-n", "0", "--min", "1M", "--mount", a, "--mount", b, "--mount", e)
		after := takeRefs(t, []string{ext})
		if same, _ := sameRefs([]string{ext}, before, after); !same {
			if try < retries {
				continue
			}
			t.Fatalf("the ext4 file's cache kept changing over %d tries", try)
		}
		if !d.Restricted {
			t.Error("top --mount: the document does not say it is restricted")
		}
		row, ok := findRow(d, after[0].Ino, after[0].Dev)
		if !ok || row.CachedPages != after[0].Cache || row.Path != ext {
			t.Errorf("ext4 file: row %+v (found %v), want %d pages at %s", row, ok, after[0].Cache, ext)
		}
		for p := range tmpfsFiles {
			r := takeRefs(t, []string{p})[0]
			row, ok := findRow(d, r.Ino, r.Dev)
			if !ok || row.CachedPages != r.Cache || row.Deleted {
				t.Errorf("%s: row %+v (found %v), want %d pages, not deleted", p, row, ok, r.Cache)
			}
			if p == linked {
				if row.Path != linked && row.Path != filepath.Join(a, "linked2") {
					t.Errorf("hard-linked file shown as %q, want one of its names", row.Path)
				}
			} else if row.Path != p {
				t.Errorf("row path %q, want %q", row.Path, p)
			}
		}
		n := 0
		for _, r := range d.Rows {
			if r.Inode == takeRefs(t, []string{linked})[0].Ino {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the hard-linked inode has %d rows, want 1", n)
		}
		want, err := cachedPages(held)
		if err != nil {
			t.Fatal(err)
		}
		row, ok = findRow(d, goneSt.Ino, goneSt.Dev)
		if !ok || !row.Deleted || row.CachedPages != want || row.Path != gone {
			t.Errorf("deleted file held open: row %+v (found %v), want deleted, %d pages, path %s", row, ok, want, gone)
		}
		for _, fs := range d.Filesystems {
			if !fs.Complete {
				t.Errorf("filesystem %s: walk not complete", fs.Filesystem)
			}
		}
		if len(d.Filesystems) != 3 {
			t.Errorf("--mount three times: %d filesystems walked, want 3: %+v", len(d.Filesystems), d.Filesystems)
		}
		break
	}

	// The whole machine: the memfd on the kernel's shmem mount, and totals
	// held against /proc/meminfo.
	d := runTop(t, bin, "-n", "0", "--min", "2M")
	want, err := cachedPages(mfd)
	if err != nil {
		t.Fatal(err)
	}
	row, ok := findRow(d, mst.Ino, mst.Dev)
	if !ok || row.CachedPages != want || row.Path != "memfd:filecache-top-test" || row.Deleted || row.Filesystem != "shmem" {
		t.Errorf("memfd: row %+v (found %v), want %d pages as memfd:filecache-top-test on shmem", row, ok, want)
	}
	if row, ok := findRow(d, goneSt.Ino, goneSt.Dev); !ok || !row.Deleted {
		t.Errorf("whole-machine run: deleted file row %+v (found %v)", row, ok)
	}
	tot := d.Total
	t.Logf("accounted %d of Cached %d bytes (%.1f%%)", tot.CachedBytes, tot.MeminfoCachedBytes, tot.AccountedPercent)
	if tot.MeminfoCachedBytes == 0 || tot.AccountedPercent < 50 ||
		float64(tot.CachedBytes) > 1.05*float64(tot.MeminfoCachedBytes)+float64(16*mib) {
		t.Errorf("walked %d bytes against Cached %d (%.1f%%): outside 50%%..105%%", tot.CachedBytes, tot.MeminfoCachedBytes, tot.AccountedPercent)
	}
	// Block devices' own pages are Buffers; the walk of their filesystem,
	// reached through /var/tmp's ext4, must find them all.
	bdev := false
	for _, fs := range d.Filesystems {
		bdev = bdev || fs.FSType == "bdev"
	}
	t.Logf("block devices %d of Buffers %d bytes", tot.BuffersBytes, tot.MeminfoBuffersBytes)
	if !bdev {
		t.Errorf("no bdev filesystem walked, though %s is ext4 on a block device", e)
	} else if diff := int64(tot.BuffersBytes) - int64(tot.MeminfoBuffersBytes); diff > 4*mib+int64(tot.MeminfoBuffersBytes)/10 || -diff > 4*mib+int64(tot.MeminfoBuffersBytes)/10 {
		t.Errorf("block devices hold %d bytes, Buffers says %d", tot.BuffersBytes, tot.MeminfoBuffersBytes)
	}
}

// TestTopTopN: -n keeps the largest; with many files of one size the rows
// are still the largest (ties at the bottom may be any of them).
func TestTopTopN(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	a := tmpfsDir(t)
	// 300 small files of 2 pages, and five larger ones of distinct sizes.
	for i := 0; i < 300; i++ {
		writeAt(t, filepath.Join(a, fmt.Sprintf("small%03d", i)), 0, 2*pageSize)
	}
	sizes := []int64{3, 5, 9, 40, 700}
	for i, s := range sizes {
		writeAt(t, filepath.Join(a, fmt.Sprintf("large%d", i)), 0, s*pageSize)
	}
	d := runTop(t, bin, "-n", "7", "--mount", a)
	if len(d.Rows) != 7 {
		t.Fatalf("-n 7: %d rows", len(d.Rows))
	}
	for i, want := range []uint64{700, 40, 9, 5, 3, 2, 2} {
		if d.Rows[i].CachedPages != want {
			t.Errorf("row %d: %d pages (%s), want %d", i, d.Rows[i].CachedPages, d.Rows[i].Path, want)
		}
	}
	d = runTop(t, bin, "-n", "0", "--mount", a)
	if len(d.Rows) != 305 {
		t.Errorf("-n 0: %d rows, want every one of the 305 files", len(d.Rows))
	}
	d = runTop(t, bin, "-n", "0", "--min", fmt.Sprint(9*pageSize), "--mount", a)
	if len(d.Rows) != 3 {
		t.Errorf("--min 9 pages: %d rows, want 3", len(d.Rows))
	}

	// The kernel's heap against a sort: 400 files of 1 to 60 pages in a
	// shuffled order (the list holds them newest first), top 50 and top 300.
	b := tmpfsDir(t)
	rng := rand.New(rand.NewSource(7))
	var all []uint64
	for i, s := range rng.Perm(400) {
		pages := int64(1 + s%60)
		writeAt(t, filepath.Join(b, fmt.Sprintf("r%03d", i)), 0, pages*pageSize)
		all = append(all, uint64(pages))
	}
	slices.Sort(all)
	slices.Reverse(all)
	for _, n := range []int{50, 300} {
		d = runTop(t, bin, "-n", fmt.Sprint(n), "--mount", b)
		var got []uint64
		for _, r := range d.Rows {
			got = append(got, r.CachedPages)
		}
		if !slices.Equal(got, all[:n]) {
			t.Errorf("-n %d: pages %v\nwant %v", n, got, all[:n])
		}
	}
}

// TestTopFormats: Prometheus text with the figures of the JSON, and --watch
// writing one line a refresh with changes since the last.
func TestTopFormats(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	a := tmpfsDir(t)
	f := filepath.Join(a, "metric \"file\"")
	writeAt(t, f, 0, 3*mib)
	res := run(t, bin, "top", "--format", "prometheus", "-n", "5", "--mount", a)
	if res.code != 0 {
		t.Fatalf("prometheus\n%s", res)
	}
	r := takeRefs(t, []string{f})[0]
	line := regexp.MustCompile(`(?m)^filecache_top_cached_bytes\{path="` + regexp.QuoteMeta(strings.ReplaceAll(f, `"`, `\"`)) + `",[^}]*\} (\d+)$`)
	m := line.FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("no metric line for %s\n%s", f, res)
	}
	if v, _ := strconv.ParseUint(m[1], 10, 64); v != r.Cache*uint64(pageSize) {
		t.Errorf("metric %d bytes, cachestat %d pages", v, r.Cache)
	}
	for _, want := range []string{"# TYPE filecache_top_cached_bytes gauge", "filecache_filesystem_cached_bytes{", "filecache_accounted_bytes "} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("prometheus output lacks %q", want)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		if !strings.HasPrefix(l, "# ") && !regexp.MustCompile(`^[a-z_]+(\{.*\})? \d+$`).MatchString(l) {
			t.Errorf("not a Prometheus sample line: %q", l)
		}
	}

	res = run(t, bin, "--ndjson", "top", "--watch", "0.2", "--iterations", "3", "-n", "3", "--mount", a)
	if res.code != 0 {
		t.Fatalf("--watch\n%s", res)
	}
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	sc.Buffer(nil, 1<<24)
	n := 0
	for sc.Scan() {
		var d topDoc
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("line %d: %v\n%s", n+1, err, res)
		}
		row, ok := findRow(d, r.Ino, r.Dev)
		switch {
		case !ok:
			t.Errorf("line %d: no row of %s", n+1, f)
		case n == 0 && row.ChangePages != nil:
			t.Errorf("line 1 has a change with nothing to compare to")
		case n > 0 && (row.ChangePages == nil || *row.ChangePages != 0):
			t.Errorf("line %d: change %v of an unchanged tmpfs file, want 0", n+1, row.ChangePages)
		}
		n++
	}
	if n != 3 {
		t.Errorf("--watch --iterations 3: %d lines", n)
	}
}

// TestTopRefusals: without privileges, or asked for another engine, top
// says so in one line; a bad --mount path is named and the others walked.
func TestTopRefusals(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	res := runWith(t, runOpts{cred: nobody()}, binForAll(t, bin), "top", "-n", "1")
	if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "top needs the bpf engine") ||
		!strings.Contains(res.stderr, "CAP_BPF") || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
		t.Errorf("unprivileged top: want one line naming CAP_BPF and exit 1\n%s", res)
	}
	res = runWith(t, runOpts{ownEngine: true}, bin, "--engine", "cachestat", "top")
	if res.code != 2 || !strings.Contains(res.stderr, "bpf") {
		t.Errorf("top --engine cachestat: want a usage error\n%s", res)
	}
	a := tmpfsDir(t)
	writeAt(t, filepath.Join(a, "f"), 0, mib)
	res = run(t, bin, "--json", "top", "--mount", "/nonexistent/x", "--mount", a)
	if res.code != 1 || !strings.Contains(res.stderr, "/nonexistent/x") {
		t.Errorf("a bad --mount: want exit 1 and the path named\n%s", res)
	}
	var d topDoc
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil || len(d.Rows) != 1 {
		t.Errorf("the good --mount must still be answered (%v)\n%s", err, res)
	}
}

// TestTopOtherNamespace: a tmpfs mounted only in another mount namespace (a
// container's) is walked through /proc/PID/root, and its file is shown
// under that path with the figures the kernel gives through it.
func TestTopOtherNamespace(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		skipFeature(t, "unshare", "no unshare(1) on PATH: %v", err)
	}
	d := tempDir(t)
	// The namespace lives until the test closes the shell's stdin (cat
	// ends), not for a time that a slow guest might outlast.
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs none "$1" && head -c 3145728 /dev/zero > "$1/inner" && echo ready && exec cat >/dev/null`, "sh", d)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	hold, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { hold.Close(); cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("the namespace did not get ready: %q %v", line, err)
	}
	inner := fmt.Sprintf("/proc/%d/root%s/inner", cmd.Process.Pid, d)
	if _, err := os.Stat(filepath.Join(d, "inner")); err == nil {
		t.Fatal("the tmpfs leaked into this namespace")
	}
	doc := runTop(t, bin, "-n", "0", "--min", "2M")
	r := takeRefs(t, []string{inner})[0]
	row, ok := findRow(doc, r.Ino, r.Dev)
	if !ok || row.Path != inner || row.CachedPages != r.Cache || r.Cache != 768 {
		t.Errorf("file in another mount namespace: row %+v (found %v), want %s with %d pages (768)", row, ok, inner, r.Cache)
	}
}

// TestTopWatchTerminal: on a terminal, --watch redraws the screen in place
// and shows what grew since the last refresh. The file grows by 1M after a
// frame shows it; the first frame that shows the growth whole, after one
// that showed none of it, must say +1M. A frame taken while the write was
// under way shows part of it: then the file grows by 1M again.
func TestTopWatchTerminal(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		skipFeature(t, "pty", "no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		skipFeature(t, "pty", "cannot open the terminal's other end: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 150}); err != nil {
		t.Fatal(err)
	}
	a := tmpfsDir(t)
	f := filepath.Join(a, "growing")
	writeAt(t, f, 0, mib)
	cmd := exec.Command(bin, "top", "--watch", "0.3", "--mount", a) // until SIGTERM
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	defer cmd.Process.Kill()
	killer := time.AfterFunc(runTimeout, func() { cmd.Process.Kill() }) // ends the reads below
	defer killer.Stop()

	const clear = "\x1b[H\x1b[2J"
	complete := regexp.MustCompile(`(?m)^total .*\n`)
	first := regexp.MustCompile(`(?m)^\s*(\S+)\s+\S+\s+\S+%\s+\S+\s+` + regexp.QuoteMeta(f) + `\r?$`)
	later := regexp.MustCompile(`(?m)^\s*(\S+)\s+\S+\s+\S+%\s+(\S+)\s+\S+\s+` + regexp.QuoteMeta(f) + `\r?$`)
	var screen strings.Builder
	buf := make([]byte, 4096)
	size := int64(1)    // MiB written so far
	prev := ""          // the file's CACHED in the last frame
	next, seen := 1, "" // the frame to look at next; what was found
	for seen == "" {
		k, err := master.Read(buf)
		screen.Write(buf[:k])
		if err != nil { // EIO: the program has exited
			t.Fatalf("top --watch ended before a frame showed the growth: %v\n%q", err, screen.String())
		}
		frames := strings.Split(screen.String(), clear)
		for ; next < len(frames) && complete.MatchString(frames[next]) && seen == ""; next++ {
			re := later
			if next == 1 {
				re = first
			}
			m := re.FindStringSubmatch(frames[next])
			if m == nil {
				t.Fatalf("frame %d has no row for %s\n%q", next, f, frames[next])
			}
			cached := m[1]
			switch {
			case next > 1 && cached == inMiB(size*mib) && prev == inMiB((size-1)*mib):
				seen = m[2] // the growth, whole, after none of it
			case cached == inMiB(size*mib): // grow now: this frame saw all of the file
				writeAt(t, f, size*mib, mib)
				size++
			}
			prev = cached
		}
	}
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for { // read to the end, or the program blocks writing
		k, err := master.Read(buf)
		screen.Write(buf[:k])
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("top --watch after SIGTERM: %v\n%s", err, screen.String())
	}
	if seen != "+1M" {
		t.Errorf("the frame showing the file grown from %dM to %dM says %q, want +1M\n%s", size-1, size, seen, screen.String())
	}
	frames := strings.Split(screen.String(), clear)
	if len(frames) < 3 || frames[0] != "" {
		t.Fatalf("want frames each starting with a screen clear, got %d\n%q", len(frames)-1, screen.String())
	}
	if !strings.Contains(frames[1], "CACHED") || strings.Contains(frames[1], "CHANGE") || !strings.Contains(frames[2], "CHANGE") {
		t.Errorf("want a CACHED heading in the first frame, CHANGE only from the second\n%s", screen.String())
	}
}

// inMiB is a whole number of MiB as top prints it.
func inMiB(n int64) string { return fmt.Sprintf("%dM", n/mib) }

// TestTopChurn: files created, grown and deleted on a tmpfs while top walks
// it: every run ends, prints a valid document, and gives the file nobody
// touches its exact figure; a walk that lost a race says it is partial.
func TestTopChurn(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	a := tmpfsDir(t)
	still := filepath.Join(a, "still")
	writeAt(t, still, 0, 5*mib)
	r := takeRefs(t, []string{still})[0]
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 3*pageSize)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Leave the CPU to filecache: under emulation a busy loop
			// would make every walk wait for it.
			time.Sleep(200 * time.Microsecond)
			p := filepath.Join(a, fmt.Sprintf("churn%d", i%200))
			if i%3 == 2 {
				os.Remove(p)
				continue
			}
			if f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
				f.Write(buf)
				f.Close()
			}
		}
	}()
	partial, runs := 0, 8
	for i := 0; i < runs; i++ {
		d := runTop(t, bin, "-n", "5", "--mount", a)
		row, ok := findRow(d, r.Ino, r.Dev)
		if !ok || row.CachedPages != r.Cache || row.Path != still {
			t.Errorf("run %d: the untouched file: row %+v (found %v), want %d pages", i, row, ok, r.Cache)
		}
		if d.Partial {
			partial++
			if len(d.Filesystems) != 1 || d.Filesystems[0].Complete {
				t.Errorf("run %d: partial, but no filesystem says so: %+v", i, d.Filesystems)
			}
		}
	}
	close(stop)
	<-done
	t.Logf("%d of %d runs partial (a lost race three walks in a row)", partial, runs)
}
