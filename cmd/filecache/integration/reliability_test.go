package integration

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Issue #7 (reliability): which test guards which item, and the breakage
// each was seen to catch (the change built into a copy of the binary, the
// test run against it, failing, and the change undone).
//
//	item                      test                              breakage it caught
//	1 no read, no block       TestErrorPathsOthersAnswered      scan.open with O_RDONLY, not O_PATH: FIFO hangs (killed at the timeout)
//	  FUSE, read-only mounts  TestFUSE, TestReadOnlyMounts      the same: a FUSE open by the bpf engine; syscall engines reopening O_RDWR: EROFS, files unanswered
//	  /proc, /sys             TestProcAndSys                    -
//	2 names                   TestLongNames, TestOddNames       no path_b64 for invalid UTF-8; tree files opened by full path (ENAMETOOLONG past PATH_MAX)
//	3 churn                   TestChurnBounded, TestChurnSettled answers given to the wrong file of a batch (scan.measure)
//	4 concurrency             TestConcurrentRuns (also attached) the attached program without its thread filter
//	5 privileges, refusals    TestNoBPFCapabilities, faults     no capability check before loading: the EPERM is blamed on seccomp
//	6 limits                  TestLowFdLimit, TestClosedPipe    fdBatch 100 under ulimit -n 64, a directory open out of fds not retried; SIGPIPE ignored without the EPIPE case
//	7 fuzzing                 FuzzPaths (report)                path_b64 only for paths holding 0xff: found in under a second
//	8 nothing left behind     TestNothingLeftInKernel           the program pinned in bpffs: seen after exit, error exit and SIGKILL

// once skips a test about the process, not the engine, in the suite's
// runs that force an engine or BPF program: one run proves it, and under
// emulation (vmtest) each run costs.
func once(t *testing.T) {
	if os.Getenv(envEngine) != "" || os.Getenv(envMethod) != "" {
		skipConfig(t, "engine-independent: checked in the unforced run")
	}
}

// bpfIDs lists the ids of every BPF program or link in the kernel
// (BPF_PROG_GET_NEXT_ID = 11, BPF_LINK_GET_NEXT_ID = 31).
func bpfIDs(t *testing.T, cmd uintptr) map[uint32]bool {
	t.Helper()
	ids := map[uint32]bool{}
	var attr struct{ start, next, flags uint32 }
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		if errno == unix.ENOENT {
			return ids
		}
		if errno != 0 {
			t.Fatalf("bpf(%d): %v", cmd, errno)
		}
		ids[attr.next] = true
		attr.start = attr.next
	}
}

// progName is the name of BPF program id, "" if it is gone
// (BPF_PROG_GET_FD_BY_ID = 13, BPF_OBJ_GET_INFO_BY_FD = 15).
func progName(id uint32) string {
	attr := struct{ id, next, flags uint32 }{id: id}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, 13, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return ""
	}
	defer unix.Close(int(fd))
	var info [256]byte
	get := struct {
		fd, len uint32
		info    uint64
	}{uint32(fd), uint32(len(info)), uint64(uintptr(unsafe.Pointer(&info[0])))}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, 15, uintptr(unsafe.Pointer(&get)), unsafe.Sizeof(get)); errno != 0 {
		return ""
	}
	return unix.ByteSliceToString(info[64:80]) // bpf_prog_info.name
}

// Nothing filecache loads, attaches or pins outlives it, whatever program
// it used and however it ended: normally, with an error exit, or killed
// (SIGKILL) while its programs are loaded. Other processes may load
// programs meanwhile (a parallel test run), so only filecache's own
// (query_*) count, and the kernel is given a moment: freeing a program
// waits for an RCU grace period.
func TestNothingLeftInKernel(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	f := filepath.Join(tmpfsDir(t), "f")
	writeAt(t, f, 0, 8192)
	var methods []string
	for _, m := range []string{"bpf_loop", "bounded-loop", "attached"} {
		if m != "bpf_loop" || kernelMethod(t) == "bpf_loop" {
			methods = append(methods, m)
		}
	}
	progs, links, pins := bpfIDs(t, 11), bpfIDs(t, 31), bpffsPins()
	for _, m := range methods {
		if res := runWith(t, runOpts{ownEngine: true}, bin, "--bpf-method="+m, "--engine=bpf", f); res.code != 0 {
			t.Fatalf("%s: %s", m, res)
		}
	}
	runWith(t, runOpts{ownEngine: true}, bin, "doctor")
	nothingLeft(t, "exited normally", progs, links, pins)

	for _, m := range methods {
		res := runWith(t, runOpts{ownEngine: true}, bin, "--bpf-method="+m, "--engine=bpf", "--json", f, f+".missing")
		if res.code != 1 || !strings.Contains(res.stdout, `"cached_pages"`) {
			t.Fatalf("%s: want exit 1 after measuring a file\n%s", m, res)
		}
	}
	nothingLeft(t, "exited with an error", progs, links, pins)

	for _, m := range methods {
		killLoaded(t, bin, m, f, progs)
	}
	nothingLeft(t, "was killed", progs, links, pins)
}

// killLoaded starts filecache reading paths from a pipe it keeps open,
// waits until its program is in the kernel (the first batch of 40 paths
// loads it), and kills it with SIGKILL.
func killLoaded(t *testing.T, bin, method, f string, before map[uint32]bool) {
	t.Helper()
	cmd := exec.Command(bin, "--bpf-method="+method, "--engine=bpf", "--ndjson", "--from", "-")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	defer in.Close()
	if _, err := io.WriteString(in, strings.Repeat(f+"\n", 100)); err != nil {
		t.Fatal(err)
	}
	for try := 0; try < 200; try++ {
		for id := range bpfIDs(t, 11) {
			if !before[id] && strings.HasPrefix(progName(id), "query_") {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				if err := cmd.Wait(); err == nil || cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("%s: filecache ended before it was killed (%v)", method, err)
				}
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: no query_* program of filecache appeared within 10 s", method)
}

// bpffsPins lists what is pinned at the top of the BPF filesystem.
func bpffsPins() map[string]bool {
	pins := map[string]bool{}
	ents, _ := os.ReadDir("/sys/fs/bpf")
	for _, e := range ents {
		pins[e.Name()] = true
	}
	return pins
}

// nothingLeft fails if a query_* program, a link or a pin appeared since
// the sets given were taken.
func nothingLeft(t *testing.T, how string, progs, links map[uint32]bool, pins map[string]bool) {
	t.Helper()
	var left []string
	for try := 0; try < 50; try++ {
		left = nil
		for id := range bpfIDs(t, 11) {
			if name := progName(id); !progs[id] && strings.HasPrefix(name, "query_") {
				left = append(left, fmt.Sprintf("program %d (%s)", id, name))
			}
		}
		for id := range bpfIDs(t, 31) {
			if !links[id] {
				left = append(left, fmt.Sprintf("link %d", id))
			}
		}
		for p := range bpffsPins() {
			if !pins[p] {
				left = append(left, "pin /sys/fs/bpf/"+p)
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("left in the kernel after filecache %s: %v", how, left)
}

// Sixteen filecache processes at once on overlapping files all answer
// right (tmpfs: nothing changes the figures meanwhile). Also run with the
// attached program, the one method where a program of one process sees
// the syscalls of all the others.
func TestConcurrentRuns(t *testing.T) {
	bin := filecacheBin(t)
	if os.Getenv(envMethod) != "attached" {
		once(t)
	}
	dir := tmpfsDir(t)
	var paths []string
	for i := 0; i < 24; i++ {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		sized(t, p, 4*mib)
		writeAt(t, p, int64(i)*128*1024, int64(i+1)*64*1024)
		paths = append(paths, p)
	}
	refs := takeRefs(t, paths)
	// Each run names its 16 files 6 times over: several batches, so the
	// runs' queries overlap in time.
	repeat := func(s []string) []string { return slices.Repeat(s, 6) }
	if os.Getenv(envMethod) == "attached" {
		// Another process making the attached program's trigger syscall
		// all along: the program must answer none but filecache's thread.
		stop := churning(func(int) {
			for range 100 {
				unix.Getppid()
			}
			time.Sleep(50 * time.Microsecond) // leaves the CPU to filecache under emulation
		})
		defer stop()
	}
	var wg sync.WaitGroup
	results := make([]result, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runWith(t, runOpts{}, bin, append([]string{"--json"}, repeat(paths[i%8:i%8+16])...)...)
		}()
	}
	wg.Wait()
	for i, res := range results {
		rep := mustReport(t, res)
		failed := t.Failed()
		checkFiles(t, rep, repeat(paths[i%8:i%8+16]), slices.Repeat(refs[i%8:i%8+16], 6))
		if !failed && t.Failed() {
			t.Logf("run %d: notes %q, stderr %q", i, rep.Notes, res.stderr)
		}
	}
}

// Under a 64-fd limit a 10,000-file tree still comes out right.
func TestLowFdLimit(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	root := tmpfsDir(t)
	for d := 0; d < 20; d++ {
		sub := filepath.Join(root, fmt.Sprintf("d%02d", d), "deeper")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := 0; f < 500; f++ {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", f)), make([]byte, 100+f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// And 100 directories with a subdirectory of one file each: a
	// subdirectory is opened while its parent is open after every file,
	// so some such open comes when the batch holds all the fds the limit
	// leaves (a directory's open must measure the batch and retry too).
	for d := 0; d < 100; d++ {
		sub := filepath.Join(root, fmt.Sprintf("s%03d", d), "deeper")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, _, _, cached, _ := treeRef(t, root, nil)
	// 64 is a process's soft limit at start on many systems; at 48 the
	// loaded object's fds leave less room than a batch takes, and the
	// scanner measures what it holds when an open runs out of fds. The
	// automatic run answers this warm tree from the dentry walk (its
	// object's and the read-ahead's fds count too); a BPF method forced
	// opens every file, which is where the fds run out.
	forced := "--bpf-method=" + kernelMethod(t)
	for _, n := range []string{"64", "48"} {
		for _, args := range [][]string{{"--json", root}, {forced, "--stats", "--json", root}} {
			res := runWith(t, runOpts{wrap: []string{"prlimit", "--nofile=" + n + ":" + n, "--"}}, bin, args...)
			if args[0] == forced && res.code == 0 {
				if st := statsOf(t, &res); st.files != 0 || st.opened != files {
					t.Errorf("under ulimit -n %s with %s: %d files from the dentry walk, %d opened; want 0 and %d", n, forced, st.files, st.opened, files)
				}
			}
			r := parseTrees(t, res)
			if res.code != 0 || len(r.Trees) != 1 || r.Trees[0].Files != files || r.Trees[0].CachedPages != int64(cached) {
				t.Errorf("under ulimit -n %s %q: want %d files, %d cached pages\n%s", n, args[:len(args)-1], files, cached, clip(res.String()))
			}
		}
	}
}

// A reader that goes away early ends filecache quietly: no error message,
// no hang.
func TestClosedPipe(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	root := tmpfsDir(t)
	for i := 0; i < 3000; i++ {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("file-with-a-long-name-%05d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "--ndjson", root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	out.Read(buf)
	out.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("filecache did not end after its reader went away")
	}
	if stderr.Len() != 0 {
		t.Errorf("a closed pipe made filecache complain: %q", stderr.String())
	}
}

// Files created, grown, truncated and deleted while they are measured, and
// a tree renamed mid-walk: every run ends, prints valid JSON, and each path
// gets a figure or a per-path error.
func TestChurn(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	root := tmpfsDir(t)
	tree := filepath.Join(root, "tree")
	for d := 0; d < 10; d++ {
		sub := filepath.Join(tree, fmt.Sprintf("d%d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := 0; f < 100; f++ {
			os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", f)), make([]byte, 4096), 0o644)
		}
	}
	stop := churning(func(i int) {
		p := filepath.Join(tree, fmt.Sprintf("d%d", i%10), fmt.Sprintf("f%d", i%100))
		switch i % 4 {
		case 0:
			os.Remove(p)
		case 1:
			os.WriteFile(p, make([]byte, 4096*(i%7)), 0o644)
		case 2:
			os.Truncate(p, int64(i%5)*4096)
		case 3:
			os.Rename(filepath.Join(tree, "d3"), filepath.Join(tree, "d3-moved"))
			os.Rename(filepath.Join(tree, "d3-moved"), filepath.Join(tree, "d3"))
		}
		// Hundreds of changes during each run, and the CPU left to
		// filecache: under emulation a busy loop made each run five times
		// slower.
		time.Sleep(2 * time.Millisecond)
	})
	for i := 0; i < 6; i++ {
		res := runWith(t, runOpts{}, bin, "--json", "--files", tree, filepath.Join(tree, "d1", "f1"))
		rep, err := parseReport(res.stdout)
		if err != nil || (res.code != 0 && res.code != 1) {
			t.Errorf("run %d under churn: exit %d, %v\n%s", i, res.code, err, clip(res.String()))
			continue
		}
		// Every size the churn makes is 0 to 6 pages, all cached (tmpfs).
		for _, f := range rep.Files {
			if f.CachedPages > 6 || f.SizeBytes > 6*4096 || f.SizeBytes < 0 || !strings.HasPrefix(f.Path, tree+"/") {
				t.Errorf("run %d: a figure no file of the tree ever had: %+v", i, f)
			}
		}
	}
	stop()
	// Settled, the walk equals the kernel.
	files, _, _, cached, _ := treeRef(t, tree, nil)
	res := runWith(t, runOpts{}, bin, "--json", tree)
	if r := parseTrees(t, res); res.code != 0 || len(r.Trees) != 1 || r.Trees[0].Files != files || r.Trees[0].CachedPages != int64(cached) {
		t.Errorf("after the churn: want %d files, %d cached pages\n%s", files, cached, clip(res.String()))
	}
}

// Files of /proc and /sys have no page cache to speak of: they are answered
// (0 pages), never read, never an error.
func TestProcAndSys(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	paths := []string{"/proc/self/status", "/proc/meminfo", "/sys/kernel/btf/vmlinux"}
	res := runWith(t, runOpts{}, bin, append([]string{"--json"}, paths...)...)
	rep := mustReport(t, res)
	if res.code != 0 || len(rep.Files) != len(paths) {
		t.Fatalf("want every file answered\n%s", res)
	}
	for _, f := range rep.Files {
		if f.CachedPages != 0 {
			t.Errorf("%s: %d cached pages, want 0", f.Path, f.CachedPages)
		}
	}
}
