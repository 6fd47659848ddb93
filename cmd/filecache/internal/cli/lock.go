package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
)

// LockCmd maps and locks files in memory until it is signalled.
type LockCmd struct {
	Action  `embed:""`
	Daemon  bool   `help:"Lock, then go on in the background (like vmtouch -d): return once every page is locked."`
	Pidfile string `placeholder:"FILE" help:"Write the pid of the process holding the pages to FILE once they are locked; it is removed on release."`
}

// daemonEnv marks the re-executed daemon of lock --daemon (Go cannot fork)
// and names the fd on which it tells the parent that the pages are locked.
const daemonEnv = "FILECACHE_LOCK_DAEMON_FD"

// lockSignals is the channel whose first signal ends a lock run.
func lockSignals(env Env) (<-chan os.Signal, func()) {
	if env.Signals != nil {
		return env.Signals, func() {}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// lockFd maps the pages holding bytes [off, end) of fd and locks them in
// memory; mlock reads in those not yet cached.
func lockFd(fd int, off, end int64) ([]byte, error) {
	if off >= end {
		return nil, nil // an empty file or range: nothing to lock
	}
	page := int64(unix.Getpagesize())
	start := off / page * page // mmap wants a page-aligned offset
	mem, err := unix.Mmap(fd, start, int(end-start), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	if err := unix.Mlock(mem); err != nil {
		unix.Munmap(mem)
		if errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EAGAIN) {
			return nil, &memlockError{need: pagesIn(start, end) * uint64(page), err: err}
		}
		return nil, fmt.Errorf("mlock: %w", err)
	}
	return mem, nil
}

// holding is what a lock run holds locked.
type holding struct {
	maps  [][]byte
	bytes uint64 // whole pages
}

func (h *holding) add(mem []byte) {
	h.maps = append(h.maps, mem)
	h.bytes += pagesIn(0, int64(len(mem))) * uint64(unix.Getpagesize()) // whole pages are locked
}

// release unmaps every mapping, which also unlocks its pages.
func (h *holding) release() {
	for _, m := range h.maps {
		unix.Munmap(m)
	}
	h.maps = nil
}

// memlockError is a lock refused by RLIMIT_MEMLOCK (or, with
// CAP_IPC_LOCK, by memory itself): need bytes more on top of locked.
type memlockError struct {
	need, locked uint64
	capable      bool  // CAP_IPC_LOCK: the limit does not apply
	err          error // mlock's errno; nil when refused before locking
}

func (e *memlockError) Unwrap() error { return e.err }

func (e *memlockError) Error() string {
	all := e.need + e.locked
	what := fmt.Sprintf("%s (%d bytes) locked in all", report.Human(all), all)
	if e.capable {
		return fmt.Sprintf("mlock: %v: not enough memory for %s; nothing stays locked", e.err, what)
	}
	var lim unix.Rlimit
	limit := "RLIMIT_MEMLOCK (unreadable)"
	if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim) == nil {
		limit = fmt.Sprintf("RLIMIT_MEMLOCK allows %s (hard limit %s)", rlimitText(lim.Cur), rlimitText(lim.Max))
	}
	prefix := ""
	if e.err != nil {
		prefix = fmt.Sprintf("mlock: %v: ", e.err)
	}
	return fmt.Sprintf("%sneeds %s, but %s: raise it (ulimit -l, prlimit --memlock) or run with CAP_IPC_LOCK; nothing stays locked", prefix, what, limit)
}

func rlimitText(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return fmt.Sprintf("%d bytes", v)
}

// checkMemlock refuses, before anything is locked, a run whose pages pass
// RLIMIT_MEMLOCK, naming the file that passes it; a process with
// CAP_IPC_LOCK is not bound by the limit.
func (c *CLI) checkMemlock(env Env, files []scan.File) (scan.File, error) {
	if ipcLock(env) {
		return scan.File{}, nil
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return scan.File{}, nil
	}
	var sum uint64
	for _, f := range files {
		if f.Kind == scan.KindDir {
			continue
		}
		need := pagesIn(c.span(f.Size)) * uint64(unix.Getpagesize())
		if sum+need > lim.Cur {
			return f, &memlockError{need: need, locked: sum}
		}
		sum += need
	}
	return scan.File{}, nil
}

// ipcLock says whether this process may lock memory past RLIMIT_MEMLOCK.
func ipcLock(env Env) bool {
	caps, err := env.Caps()
	return err == nil && caps.Has(unix.CAP_IPC_LOCK)
}

// hold keeps the pages locked until a signal, with the pidfile written
// while they are; a daemon tells its parent first.
func (c *CLI) hold(env Env, h *holding, sigs <-chan os.Signal, status int) int {
	defer h.release()
	ready := os.Getenv(daemonEnv)
	if len(h.maps) == 0 {
		if status == ExitOK {
			fmt.Fprintln(env.Stderr, "filecache: nothing to lock")
		}
		return status
	}
	if c.Lock.Pidfile != "" {
		if err := writePidfile(c.Lock.Pidfile); err != nil {
			fmt.Fprintf(env.Stderr, "filecache: --pidfile: %v; nothing stays locked\n", err)
			return ExitFailed
		}
		defer removePidfile(env, c.Lock.Pidfile)
	}
	all := "all "
	if status != ExitOK {
		all = "" // some paths failed
	}
	fmt.Fprintf(env.Stderr, "filecache: %s%d pages (%s) locked by pid %d, held until SIGTERM, SIGINT or SIGHUP\n",
		all, h.bytes/uint64(unix.Getpagesize()), report.Human(h.bytes), os.Getpid())
	if ready != "" {
		if err := daemonReady(ready, status); err != nil {
			return ExitFailed // the parent is gone: nobody knows of these locks
		}
	}
	sig := <-sigs
	fmt.Fprintf(env.Stderr, "filecache: %v: pages unlocked\n", sig)
	return status
}

// writePidfile writes this process's pid to path through a temporary file
// beside it, so a reader never sees a partial pid.
func writePidfile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temporary name would only confuse
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = fmt.Fprintf(tmp, "%d\n", os.Getpid())
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// removePidfile removes path if it still holds this process's pid: another
// process may have taken it over since.
func removePidfile(env Env, path string) {
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		fmt.Fprintf(env.Stderr, "filecache: --pidfile %s no longer holds pid %d: left alone\n", path, os.Getpid())
		return
	}
	if err := os.Remove(path); err != nil {
		fmt.Fprintf(env.Stderr, "filecache: --pidfile: %v\n", err)
	}
}

// spawnDaemon runs this command again as a daemon in its own session and
// waits until it says the pages are locked, or ends. The daemon writes the
// report to this process's stdout and stderr, then leaves them for
// /dev/null before it says so, so whoever reads them sees their end.
func (c *CLI) spawnDaemon(env Env) int {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: --daemon: %v\n", err)
		return ExitFailed
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", c.args...)
	cmd.Args[0] = "filecache"
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: --daemon: start: %v\n", err)
		return ExitFailed
	}
	msg, _ := io.ReadAll(r)
	if s, err := strconv.Atoi(string(msg)); err == nil && len(msg) > 0 {
		cmd.Process.Release()
		return s
	}
	// The daemon ended without holding anything; it said why on stderr.
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	}
	fmt.Fprintf(env.Stderr, "filecache: --daemon: %v\n", err)
	return ExitFailed
}

// daemonReady detaches the daemon's stdio and tells the parent (on fd) the
// exit status to return.
func daemonReady(fd string, status int) error {
	n, err := strconv.Atoi(fd)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", daemonEnv, fd, err)
	}
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/null: %w", err)
	}
	for std := 0; std <= 2; std++ {
		if err := unix.Dup3(null, std, 0); err != nil {
			return fmt.Errorf("stdio to /dev/null: %w", err)
		}
	}
	unix.Close(null)
	pipe := os.NewFile(uintptr(n), "ready")
	defer pipe.Close()
	_, err = pipe.WriteString(strconv.Itoa(status))
	return err
}
