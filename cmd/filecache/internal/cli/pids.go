package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/procs"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
	"github.com/filecache/filecache/cmd/filecache/internal/walk"
)

// procRoot is where processes are read (/proc).
const procRoot = "/proc"

// checkPaths is Selection.check, where --pid may stand for the paths.
func (q *QueryCmd) checkPaths() error {
	if len(q.Pid) == 0 {
		return q.check()
	}
	for _, globs := range [][]string{q.Include, q.Exclude} {
		if err := walk.CheckPatterns(globs); err != nil {
			return usageError{err}
		}
	}
	return nil
}

// held are the files the --pid processes hold, by the path the scanner
// opens each through (/proc/PID/fd/N, ...): what the rows show instead,
// and who holds it.
type held struct {
	files map[string]*heldFile
	// measured: the inode each file measured was found to be (an
	// overlayfs file's real one), and its row: a file held open through
	// overlayfs and mapped (whose mapping names the real file) is one.
	measured map[[2]uint64]int
	failed   bool // some --pid could not be read
}

type heldFile struct {
	path    string
	deleted bool
	holders []procs.Holder
}

// pidPaths reads the files each --pid process holds, each inode once over
// all of them, and returns the paths that open them. A process that does
// not exist, or cannot be read, gets its line on stderr; one that exits
// while it is read is passed over.
func (q *QueryCmd) pidPaths(g *Globals, r *report.Report) ([]string, *held) {
	h := &held{files: map[string]*heldFile{}, measured: map[[2]uint64]int{}}
	var vias []string
	at := map[[2]uint64]string{}
	for _, pid := range q.Pid {
		if slices.ContainsFunc(r.Processes, func(p report.Process) bool { return p.PID == pid }) {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("%s/%d", procRoot, pid)); err != nil || pid <= 0 {
			fmt.Fprintf(g.env.Stderr, "filecache: pid %d: no such process\n", pid)
			h.failed = true
			continue
		}
		files, err := procs.Of(procRoot, pid)
		if errors.Is(err, procs.ErrGone) {
			continue
		}
		if err != nil {
			fmt.Fprintf(g.env.Stderr, "filecache: %v\n", err)
			h.failed = true
			continue
		}
		r.Processes = append(r.Processes, report.Process{PID: pid, Comm: procs.Comm(procRoot, pid), Container: top.ProcessContainer(procRoot, pid)})
		for _, f := range files {
			key := [2]uint64{f.Dev, f.Ino}
			if via, ok := at[key]; ok {
				h.files[via].holders = append(h.files[via].holders, f.Holder)
				continue
			}
			at[key] = f.Via
			h.files[f.Via] = &heldFile{path: f.Path, deleted: f.Deleted, holders: []procs.Holder{f.Holder}}
			vias = append(vias, f.Via)
		}
	}
	return vias, h
}

// then is paths, then more.
func then(paths iter.Seq[string], more []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for p := range paths {
			if !yield(p) {
				return
			}
		}
		for _, p := range more {
			if !yield(p) {
				return
			}
		}
	}
}

// resolve turns an outcome of a held file's path back into the file as
// its processes name it, with them, counted in their sums; false for one to
// leave out: gone since it was listed (closed, unmapped, its process
// exited), or the same file as one already shown, whose holders it joins.
func (h *held) resolve(f scan.File, r *report.Report) (scan.File, bool) {
	hf, ok := h.files[f.Path]
	if !ok {
		return f, true
	}
	if f.Err != nil && (errors.Is(f.Err, fs.ErrNotExist) || errors.Is(f.Err, unix.ESRCH)) {
		return f, false
	}
	f.Path, f.Holders = hf.path, hf.holders
	if hf.deleted {
		f.Path += " (deleted)"
	}
	if f.Err != nil {
		return f, true
	}
	key := [2]uint64{f.Dev, f.Ino}
	if f.Real != nil {
		key = [2]uint64{f.Real.Dev, f.Real.Ino}
	}
	i, dup := h.measured[key]
	if !dup {
		h.measured[key] = len(r.Files)
		r.AddHeld(f)
		return f, true
	}
	if i >= len(r.Files) {
		return f, false // streamed (--ndjson): already written
	}
	first := &r.Files[i]
	var joined []procs.Holder
	for _, x := range f.Holders {
		if j := slices.IndexFunc(first.Holders, func(y procs.Holder) bool { return y.PID == x.PID }); j >= 0 {
			first.Holders[j].FDs = append(first.Holders[j].FDs, x.FDs...)
			first.Holders[j].Mapped = first.Holders[j].Mapped || x.Mapped
		} else {
			first.Holders = append(first.Holders, x)
			joined = append(joined, x)
		}
	}
	if len(joined) > 0 {
		c := *first
		c.Holders = joined
		r.AddHeld(c)
	}
	return f, false
}
