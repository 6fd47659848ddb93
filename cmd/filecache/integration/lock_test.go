package integration

import (
	"bytes"
	"encoding/json"
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
)

// startLock starts `filecache --json lock ARGS` and returns once it has
// printed its report, which it does when every page is locked.
func startLock(t *testing.T, bin string, args ...string) (*exec.Cmd, actReport, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, forced(runOpts{}, append([]string{"--json", "lock"}, args...))...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	// A lock that never reports is killed, which ends the decoding.
	timer := time.AfterFunc(runTimeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	var r actReport
	if err := json.NewDecoder(out).Decode(&r); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("lock %v: no report: %v\nstderr:\n%s", args, err, stderr.String())
	}
	return cmd, r, &stderr
}

// openRead opens path read-only until the test ends.
func openRead(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// stop sends SIGTERM to a lock run and wants it to release and exit 0.
func stop(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(stderr.String(), "pages unlocked") {
			t.Fatalf("lock after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(runTimeout):
		cmd.Process.Kill()
		t.Fatalf("lock did not end within %v of SIGTERM", runTimeout)
	}
}

// vmLck is a process's locked memory in bytes (/proc/PID/status).
func vmLck(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmLck:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/proc/%d/status has no VmLck line", pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10
}

// lock reads an evicted file into memory and holds it: the kernel counts
// every page cached, posix_fadvise(DONTNEED) drops none of them, and once
// lock has ended on SIGTERM the same call drops them all.
func TestLockHolds(t *testing.T) {
	bin := filecacheBin(t)
	f := filepath.Join(ext4Dir(t), "data")
	writeAt(t, f, 0, 2*mib)
	evict(t, f)
	want := 2 * mib / pageSize
	cmd, r, stderr := startLock(t, bin, f)
	if len(r.Files) != 1 || r.Action != "lock" || r.Pid != cmd.Process.Pid || r.Files[0].TotalPages != want || r.Files[0].After != want {
		t.Fatalf("lock report %+v, want all %d pages after, pid %d\nstderr:\n%s", r, want, cmd.Process.Pid, stderr)
	}
	if got := vmLck(t, cmd.Process.Pid); got != 2*mib {
		t.Errorf("VmLck of the lock process: %d bytes, want %d", got, 2*mib)
	}
	fd := openRead(t, f)
	before, err := cachedPages(fd)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	after, err := cachedPages(fd)
	if err != nil {
		t.Fatal(err)
	}
	if before != uint64(want) || after != before {
		t.Errorf("locked file: %d of %d pages cached, %d after DONTNEED; want all, and all kept", before, want, after)
	}
	stop(t, cmd, stderr)
	evictFd(t, fd, f) // fails unless every page can be dropped now
}

// --range locks only the pages holding those bytes.
func TestLockRange(t *testing.T) {
	bin := filecacheBin(t)
	rangeTest(t)
	f := filepath.Join(ext4Dir(t), "data")
	writeAt(t, f, 0, 2*mib)
	evict(t, f)
	cmd, r, stderr := startLock(t, bin, "--range", "1048676:4096", f) // 1 MiB + 100: two pages
	if len(r.Files) != 1 || r.Files[0].TotalPages != 2 || r.Files[0].After != 2 {
		t.Fatalf("lock --range report %+v, want 2 of 2 pages\nstderr:\n%s", r, stderr)
	}
	if got := vmLck(t, cmd.Process.Pid); got != 2*pageSize {
		t.Errorf("VmLck %d bytes, want two pages", got)
	}
	fd := openRead(t, f)
	// mlock's fault read ahead around the range; pages still being read
	// cannot be dropped yet, so DONTNEED is repeated until they are. The
	// two locked pages must stay every time.
	var all, in int64
	for i := 0; i < 50; i++ {
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		all, in = rangePages(t, fd, 0, 2*mib), rangePages(t, fd, mib, 2*pageSize)
		if in != 2 || all == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if all != 2 || in != 2 {
		t.Errorf("after DONTNEED: %d pages cached, %d of them in the range; want the 2 locked ones", all, in)
	}
	stop(t, cmd, stderr)
}

// --daemon returns once the pages are locked, leaving a daemon in its own
// session with stdio on /dev/null, whose pid is in the pidfile; SIGTERM
// ends it, with the pidfile removed.
func TestLockDaemon(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	dir := tmpfsDir(t)
	f, pidfile := filepath.Join(dir, "data"), filepath.Join(dir, "run", "lock.pid")
	if err := os.Mkdir(filepath.Dir(pidfile), 0o755); err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, 0, mib)
	// The daemon's parent exits: as subreaper this test inherits it and
	// can wait for it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	pid := 0
	t.Cleanup(func() { // a daemon the test failed to stop
		if b, err := os.ReadFile(pidfile); pid == 0 && err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if pid > 0 && unix.Kill(pid, unix.SIGKILL) == nil {
			unix.Wait4(pid, nil, 0, nil)
		}
	})
	r, res := act(t, bin, "lock", "--daemon", "--pidfile", pidfile, f)
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("no pidfile once --daemon returned: %v\n%s", err, res)
	}
	if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		t.Fatalf("pidfile holds %q", b)
	}
	if res.code != 0 || r.Pid != pid || len(r.Files) != 1 || r.Files[0].After != mib/pageSize || !strings.Contains(res.stderr, fmt.Sprintf("locked by pid %d", pid)) {
		t.Fatalf("pidfile says %d\n%s", pid, res)
	}
	if got := vmLck(t, pid); got != mib {
		t.Errorf("VmLck of the daemon: %d bytes, want %d", got, mib)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("daemon session %d, %v: want its own (%d)", sid, err, pid)
	}
	for fd := 0; fd <= 2; fd++ {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); l != "/dev/null" {
			t.Errorf("daemon fd %d: %q, %v; want /dev/null", fd, l, err)
		}
	}
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(pidfile), "*")); len(names) != 1 {
		t.Errorf("beside the pidfile: %v", names)
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		done <- ws
	}()
	select {
	case ws := <-done:
		pid = 0 // reaped
		if !ws.Exited() || ws.ExitStatus() != 0 {
			t.Errorf("daemon after SIGTERM: wait status %#x, want exit 0", ws)
		}
	case <-time.After(runTimeout):
		t.Fatalf("daemon %d still running %v after SIGTERM", pid, runTimeout)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile after SIGTERM: %v, want it gone", err)
	}
}

// Without CAP_IPC_LOCK, a lock over RLIMIT_MEMLOCK fails at once with one
// line naming the file and the limit, and nothing stays locked; with
// --daemon too, and no pidfile is written.
func TestLockMemlockLimit(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	dir := ext4Dir(t)
	f, pidfile := filepath.Join(dir, "data"), filepath.Join(dir, "pid")
	writeAt(t, f, 0, 2*mib)
	wrap := []string{"prlimit", "--memlock=1048576:1048576", "setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-all", "--"}
	line := regexp.MustCompile(`^filecache: ` + regexp.QuoteMeta(f) + `: needs 2M \(2097152 bytes\) locked in all, but RLIMIT_MEMLOCK allows 1048576 bytes \(hard limit 1048576 bytes\): .*CAP_IPC_LOCK.*\n$`)
	for _, args := range [][]string{{"lock", f}, {"lock", "--daemon", "--pidfile", pidfile, f}} {
		// mincore: before Linux 5.11 the BPF program would count against
		// this small limit too, and auto would add a line about that.
		res := runWith(t, runOpts{wrap: wrap, ownEngine: true}, bin, append([]string{"--engine=mincore"}, args...)...)
		if res.code != 1 || res.stdout != "" || !line.MatchString(res.stderr) {
			t.Errorf("want exit 1 and one line matching %s\n%s", line, res)
		}
		// Nobody holds the pages: they can all be dropped.
		evict(t, f)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile of a failed --daemon: %v", err)
	}
}
