// Package daemon runs a command again in the background (Go cannot fork):
// the parent re-executes its own binary in a new session and waits until
// the child says it is ready, then returns the exit status the child chose.
// It also keeps a pidfile the way daemons do: written whole, removed only
// while it still names this process.
package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// envReady marks the re-executed child and names the fd on which it tells
// the parent that it is ready.
const envReady = "FILECACHE_DAEMON_READY_FD"

// Child says whether this process is the background child of Spawn.
func Child() bool { return os.Getenv(envReady) != "" }

// Spawn runs this binary again with args as a child in its own session,
// its stdout and stderr those given, and waits until it calls Ready (then
// returns the status it passed) or ends (then its exit status).
func Spawn(args []string, stdout, stderr io.Writer) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 1, err
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = "filecache"
	cmd.Env = append(os.Environ(), envReady+"=3")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 1, fmt.Errorf("start: %w", err)
	}
	msg, _ := io.ReadAll(r)
	if s, err := strconv.Atoi(string(msg)); err == nil && len(msg) > 0 {
		cmd.Process.Release()
		return s, nil
	}
	// The child ended without being ready; it said why on stderr.
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode(), nil
	}
	return 1, err
}

// Ready, in the child, moves stdin, stdout and stderr to /dev/null (so
// whoever reads the parent's output sees its end) and tells the parent the
// exit status to return.
func Ready(status int) error {
	fd, err := strconv.Atoi(os.Getenv(envReady))
	if err != nil {
		return fmt.Errorf("%s=%q: %w", envReady, os.Getenv(envReady), err)
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
	pipe := os.NewFile(uintptr(fd), "ready")
	defer pipe.Close()
	_, err = pipe.WriteString(strconv.Itoa(status))
	return err
}

// WritePidfile writes this process's pid to path through a temporary file
// beside it, so a reader never sees a partial pid.
func WritePidfile(path string) error {
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

// ErrPidfileTaken: the pidfile no longer names this process (another took
// it over), so it is left alone.
var ErrPidfileTaken = errors.New("no longer holds this process's pid: left alone")

// RemovePidfile removes path if it still holds this process's pid.
func RemovePidfile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		return ErrPidfileTaken
	}
	return os.Remove(path)
}
