package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/cachectl"
	"github.com/filecache/filecache/cmd/filecache/internal/daemon"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// LockCmd maps and locks files in memory until it is signalled.
type LockCmd struct {
	Action  `embed:""`
	Daemon  bool   `help:"Lock, then go on in the background (like vmtouch -d): return once every page is locked."`
	Pidfile string `placeholder:"FILE" help:"Write the pid of the process holding the pages to FILE once they are locked; it is removed on release."`
}

// Run locks every file of the selection and holds the pages until a
// signal; with --daemon, a child in its own session holds them.
func (l *LockCmd) Run(g *Globals) error {
	if l.Daemon && !l.DryRun && !daemon.Child() {
		st, err := daemon.Spawn(g.args, g.env.Stdout, g.env.Stderr)
		if err != nil {
			return g.failed(fmt.Errorf("--daemon: %w", err))
		}
		return status(st)
	}
	r := &actRun{g: g, a: &l.Action, v: l}
	if !l.DryRun {
		// From the start: a signal while locking must still release.
		sigs, stop := lockSignals(g.env)
		defer stop()
		r.sigs = sigs
	}
	defer r.held.Release()
	if err := r.run(); err != nil {
		return err
	}
	if l.DryRun {
		return status(r.status())
	}
	return l.hold(r)
}

// lockSignals is the channel whose first signal ends a lock run.
func lockSignals(env *Env) (<-chan os.Signal, func()) {
	if env.Signals != nil {
		return env.Signals, func() {}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

func (l *LockCmd) name() string        { return "lock" }
func (l *LockCmd) skip(scan.File) bool { return false }

// prepare refuses, before anything is locked, a run whose pages pass
// RLIMIT_MEMLOCK, naming the file that passes it.
func (l *LockCmd) prepare(r *actRun, found []scan.File) error {
	if !l.DryRun {
		r.rep.Pid = os.Getpid()
	}
	var files []scan.File
	var spans []uint64
	for _, f := range found {
		if f.Kind != scan.KindDir {
			files = append(files, f)
			spans = append(spans, units.Bytes(units.PagesIn(r.span(f.Size))))
		}
	}
	if i, err := cachectl.CheckMemlock(spans, ipcLock(r.g.env)); err != nil {
		fmt.Fprintln(r.g.env.Stderr, report.ErrorLine(scan.File{Path: files[i].Path, Err: err}))
		return exitStatus(ExitFailed)
	}
	return nil
}

func (l *LockCmd) apply(r *actRun, fd int, _ scan.File, off, end int64) (applied, error) {
	mem, err := cachectl.Lock(fd, off, end)
	var ml *cachectl.MemlockError
	if errors.As(err, &ml) {
		// Nothing stays half-locked: the run ends here.
		ml.Locked, ml.Capable = r.held.Bytes, ipcLock(r.g.env)
		r.held.Release()
		return applied{}, stopAll{err}
	}
	return applied{mem: mem}, err
}

func (l *LockCmd) notes(r *actRun) {
	if l.DryRun {
		pages := r.rep.Total.TotalPages
		r.note(fmt.Sprintf("would lock %d pages (%s) of %d files", pages, units.Human(units.Bytes(pages)), r.rep.Total.Files))
	}
}

// ipcLock says whether this process may lock memory past RLIMIT_MEMLOCK.
func ipcLock(env *Env) bool {
	caps, err := env.Caps()
	return err == nil && caps.Has(unix.CAP_IPC_LOCK)
}

// hold keeps the pages locked until a signal, with the pidfile written
// while they are; a daemon tells its parent first.
func (l *LockCmd) hold(r *actRun) error {
	env, st := r.g.env, r.status()
	if r.held.Len() == 0 {
		if st == ExitOK {
			fmt.Fprintln(env.Stderr, "filecache: nothing to lock")
		}
		return status(st)
	}
	if l.Pidfile != "" {
		if err := daemon.WritePidfile(l.Pidfile); err != nil {
			return r.g.failed(fmt.Errorf("--pidfile: %v; nothing stays locked", err))
		}
		defer func() {
			if err := daemon.RemovePidfile(l.Pidfile); err != nil {
				fmt.Fprintf(env.Stderr, "filecache: --pidfile %s: %v\n", units.Display(l.Pidfile), err)
			}
		}()
	}
	all := "all "
	if st != ExitOK {
		all = "" // some paths failed
	}
	fmt.Fprintf(env.Stderr, "filecache: %s%d pages (%s) locked by pid %d, held until SIGTERM, SIGINT or SIGHUP\n",
		all, r.held.Bytes/uint64(units.PageSize), units.Human(r.held.Bytes), os.Getpid())
	if env.Held != nil {
		env.Held()
	}
	if daemon.Child() {
		if err := daemon.Ready(st); err != nil {
			return exitStatus(ExitFailed) // the parent is gone: nobody knows of these locks
		}
	}
	sig := <-r.sigs
	fmt.Fprintf(env.Stderr, "filecache: %v: pages unlocked\n", sig)
	return status(st)
}
