package cli

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/cachectl"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// Action is what touch, evict and lock share on the command line.
type Action struct {
	Selection `embed:""`
	DryRun    bool   `name:"dry-run" help:"Measure and say what would be done; change nothing."`
	Range     string `placeholder:"OFFSET:LENGTH" help:"Act on the pages holding only these bytes of each file, and measure those (sizes take K, M, G, T; no LENGTH: to the end). Uses cachestat or mincore."`
}

// verb is what touch, evict and lock do differently.
type verb interface {
	name() string
	// prepare sees every measured file before any is acted on.
	prepare(r *actRun, found []scan.File) error
	// skip says whether a measured file is left alone (touch --max-size).
	skip(f scan.File) bool
	// apply acts on bytes [off, end) of the file open read-only as fd.
	apply(r *actRun, fd int, f scan.File, off, end int64) (applied, error)
	// notes adds what the run as a whole should say.
	notes(r *actRun)
}

// applied is what acting on one file left.
type applied struct {
	dirty uint64 // evict: pages dirty or under writeback beforehand
	mem   []byte // lock: the locked mapping, held until the end
}

// actRun is one run of touch, evict or lock.
type actRun struct {
	g    *Globals
	a    *Action
	v    verb
	rng  *pagecache.Range
	rep  report.Action
	bar  *report.Bar
	sigs <-chan os.Signal // lock: the first signal ends it (nil otherwise)
	held cachectl.Held    // lock: what is locked
}

// measure finds and measures every file of the selection before any is
// acted on (the sums size the progress bar and lock's RLIMIT_MEMLOCK
// check); bad paths are reported and kept in the report's errors.
func (r *actRun) measure(s *scan.Scanner) ([]scan.File, error) {
	env := r.g.env
	paths, listErr, closeList, err := r.a.paths(env)
	if err != nil {
		return nil, err
	}
	defer closeList()
	var found []scan.File
	err = s.ScanSeq(paths, func(f scan.File) {
		if f.Err != nil {
			fmt.Fprintln(env.Stderr, report.ErrorLine(f))
			r.rep.Errors = append(r.rep.Errors, f)
			return
		}
		found = append(found, f)
	})
	if err == nil {
		err = *listErr
	}
	return found, err
}

// span is the part of a file of size bytes that an action covers: all of
// it, or the --range clipped to it.
func (r *actRun) span(size int64) (off, end int64) {
	if r.rng == nil {
		return 0, size
	}
	return r.rng.Clip(size)
}

// run measures every file, then acts on each and measures it again with
// the same engine, and prints the report. An error ends the run early;
// paths that failed are in the report (see status).
func (r *actRun) run() error {
	g, a, v := r.g, r.a, r.v
	if err := a.check(); err != nil {
		return err
	}
	rng, err := g.parseRange(a.Range)
	if err != nil {
		return err
	}
	r.rng = rng
	r.rep = report.Action{Verb: v.name(), DryRun: a.DryRun, Range: rng}
	chain := g.chain(rng, &r.rep.Notes)
	s := &scan.Scanner{Engine: func() (pagecache.Engine, error) { return chain, nil }, Walk: a.walkOptions(), Ranged: rng != nil}
	defer s.Close()
	found, err := r.measure(s)
	if err != nil {
		return g.failed(err)
	}
	if err := v.prepare(r, found); err != nil {
		return err
	}
	var work uint64 // bytes to act on
	for _, f := range found {
		if off, end := r.span(f.Size); f.Kind != scan.KindDir && !v.skip(f) {
			work += uint64(end - off)
		}
	}
	_, touching := v.(*TouchCmd)
	r.bar = report.NewBar(g.env.Stderr, touching && g.env.Terminal && !g.JSON && !a.DryRun, work)
	trees := map[string]*report.Acted{}
	for _, f := range found {
		if f.Kind == scan.KindDir {
			t := trees[f.Path]
			if t == nil {
				t = &report.Acted{Path: f.Path}
			}
			t.Tree = true
			r.rep.Rows = append(r.rep.Rows, *t)
			delete(trees, f.Path)
			continue
		}
		row := report.Acted{Path: f.Path, Files: 1, SizeBytes: f.Size, TotalPages: units.PagesOf(f.Size), Before: f.Pages, After: f.Pages}
		if rng != nil {
			row.TotalPages = f.Span
		}
		select {
		case sig := <-r.sigs: // nil unless locking: never ready
			r.bar.Clear()
			return g.failed(fmt.Errorf("%v while locking: nothing stays locked", sig))
		default:
		}
		switch {
		case a.DryRun:
		case v.skip(f):
			row.Skipped = 1
		default:
			after, dirty, err := r.apply(f, s.EngineInUse())
			if err != nil {
				r.bar.Clear()
				f.Err = err
				fmt.Fprintln(g.env.Stderr, report.ErrorLine(f))
				var stop stopAll
				if errors.As(err, &stop) {
					return exitStatus(ExitFailed) // nothing stays half-done
				}
				r.rep.Errors = append(r.rep.Errors, f)
				continue
			}
			row.After, row.Dirty = after, dirty
		}
		if f.Root == "" {
			r.rep.Rows = append(r.rep.Rows, row)
			continue
		}
		t := trees[f.Root]
		if t == nil {
			t = &report.Acted{Path: f.Root}
			trees[f.Root] = t
		}
		t.Add(row)
	}
	r.bar.Clear()
	for _, row := range r.rep.Rows {
		r.rep.Total.Add(row)
	}
	if name := chain.Name(); name != "none" {
		r.rep.Engine = name
	}
	v.notes(r)
	if g.JSON {
		err = report.ActionJSON(g.env.Stdout, r.rep)
	} else {
		err = report.ActionTable(g.env.Stdout, r.rep)
	}
	if err != nil {
		return g.failed(err)
	}
	return nil
}

// status is the run's exit status once its report is out: failed if some
// path had no figures.
func (r *actRun) status() int {
	if len(r.rep.Errors) > 0 {
		return ExitFailed
	}
	return ExitOK
}

// note says something about the whole run, on stderr and in the JSON.
func (r *actRun) note(msg string) {
	fmt.Fprintf(r.g.env.Stderr, "filecache: %s\n", msg)
	r.rep.Notes = append(r.rep.Notes, msg)
}

// stopAll is a failure after which nothing may stay done (a lock refused
// by RLIMIT_MEMLOCK): the run ends at once.
type stopAll struct{ error }

func (s stopAll) Unwrap() error { return s.error }

// apply acts on one measured file and measures it again with the same
// engine. The file is reopened read-only by its path and must still be the
// inode that was measured.
func (r *actRun) apply(f scan.File, eng pagecache.Engine) (after, dirty uint64, err error) {
	verb := r.v.name()
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	fd, err := unix.Open(f.Path, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) { // O_NOATIME needs ownership
		fd, err = unix.Open(f.Path, flags, 0)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("open for %s: %w", verb, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Dev != f.Dev || st.Ino != f.Ino {
		return 0, 0, errors.New("replaced since it was measured")
	}
	off, end := r.span(f.Size)
	out, err := r.v.apply(r, fd, f, off, end)
	if err != nil {
		return 0, 0, err
	}
	ans, err := eng.Query([]pagecache.Handle{{Fd: fd, Mode: st.Mode}})
	if err == nil {
		err = ans[0].Err
	}
	if err != nil {
		if out.mem != nil {
			unix.Munmap(out.mem)
		}
		return 0, 0, fmt.Errorf("measure after %s: %w", verb, err)
	}
	r.held.Add(out.mem)
	return ans[0].Pages, out.dirty, nil
}
