package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
	"github.com/filecache/filecache/cmd/filecache/internal/warm"
)

// SnapshotCmd records which pages of which files are cached.
type SnapshotCmd struct {
	Selection `embed:""`
	Top       bool     `help:"Record every cached file of every mounted filesystem, found by filecache top's walk (needs the bpf engine), instead of PATHs."`
	Mount     []string `placeholder:"PATH" help:"With --top: only the filesystem of PATH (repeatable)."`
	Output    string   `short:"o" placeholder:"FILE" help:"Write the snapshot to FILE (gzip'd if FILE ends in .gz), whole: through a temporary file beside it, renamed over it; then print a summary. Default: standard output."`
}

// snapshotRun is one run of snapshot.
type snapshotRun struct {
	g       *Globals
	w       *warm.Writer
	chain   *pagecache.Chain
	notes   []string
	errors  []string // paths without figures, as printed
	skipped map[string]int
	failed  bool
}

// Run writes the snapshot and, with --output, a summary.
func (c *SnapshotCmd) Run(g *Globals) error {
	env := g.env
	switch {
	case g.NDJSON:
		return usagef("snapshot writes NDJSON itself; --ndjson does not apply")
	case g.JSON && c.Output == "":
		return usagef("--json prints a summary of the snapshot, which then needs --output FILE")
	case c.Top && (len(c.Paths) > 0 || c.From != ""):
		return usagef("--top records every cached file; it takes no PATH or --from")
	case !c.Top && len(c.Mount) > 0:
		return usagef("--mount goes with --top")
	case c.Top && (g.Engine == "cachestat" || g.Engine == "mincore"):
		return usagef("--top walks filesystems with the bpf engine only, not --engine %s", g.Engine)
	}
	if !c.Top {
		if err := c.check(); err != nil {
			return err
		}
	}
	out := env.Stdout
	var file *atomicFile
	if c.Output != "" {
		f, err := createAtomic(c.Output)
		if err != nil {
			return g.failed(err)
		}
		defer f.abort()
		file, out = f, f
	}
	counted := &countingWriter{w: out}
	source := warm.SourcePaths
	if c.Top {
		source = warm.SourceTop
	}
	host, _ := os.Hostname()
	var u unix.Utsname
	unix.Uname(&u)
	r := &snapshotRun{g: g, skipped: map[string]int{}}
	r.chain = g.extentChain(&r.notes)
	r.w = warm.NewWriter(counted, strings.HasSuffix(c.Output, ".gz"), warm.Header{Time: time.Now(), Host: host,
		Kernel: unix.ByteSliceToString(u.Release[:]), PageSize: units.PageSize, Source: source})
	s := &scan.Scanner{Engine: func() (pagecache.Engine, error) { return warm.Stable{Engine: r.chain}, nil }, Walk: c.walkOptions()}
	defer s.Close()

	var err error
	if c.Top {
		err = c.top(r, s)
	} else {
		err = c.paths(r, s)
	}
	if err != nil {
		if g.Engine != "auto" {
			defer g.printLoadLog(err)
		}
		return g.failed(err)
	}
	r.setEngine()
	end, err := r.w.Close()
	if err == nil && file != nil {
		err = file.commit()
	}
	if err != nil {
		return g.failed(err)
	}
	for why, n := range r.skipped {
		r.note(fmt.Sprintf("%d %s left out: %s", n, plural(n, "file", "files"), why))
	}
	if c.Output != "" {
		if err := r.summary(c.Output, end, counted.n); err != nil {
			return g.failed(err)
		}
	}
	if r.failed {
		return exitStatus(ExitFailed)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// note says something about the run on stderr, and in the summary.
func (r *snapshotRun) note(msg string) {
	fmt.Fprintf(r.g.env.Stderr, "filecache: %s\n", msg)
	r.notes = append(r.notes, msg)
}

// setEngine names in the header the engine that lists pages, once one ran.
func (r *snapshotRun) setEngine() {
	if name := r.chain.Name(); name != "none" {
		r.w.SetEngine(name, r.chain.Method())
	}
}

// record writes one measured file, or reports why it has no line.
func (r *snapshotRun) record(f scan.File, root string) error {
	switch {
	case f.Err != nil:
		r.fail(f)
		return nil
	case f.Kind == scan.KindDir:
		return nil
	case f.Kind != scan.KindFile:
		f.Err = errors.New("is a block device: a snapshot records regular files")
		r.fail(f)
		return nil
	}
	runs := pagecache.ClipExtents(f.Extents, units.PagesOf(f.Size))
	if len(runs) == 0 {
		r.w.Skip() // nothing to bring back
		return nil
	}
	r.setEngine()
	rec := warm.File{Path: f.Path, Root: root, Device: fmt.Sprintf("%d:%d", unix.Major(f.Dev), unix.Minor(f.Dev)),
		Inode: f.Ino, Size: f.Size, Mtime: f.Mtime, Ranges: runs}
	for _, e := range runs {
		rec.Pages += e.Pages
	}
	if f.Engine != r.w.Engine() {
		rec.Engine = f.Engine
	}
	return r.w.File(rec)
}

func (r *snapshotRun) fail(f scan.File) {
	line := report.ErrorLine(f)
	fmt.Fprintln(r.g.env.Stderr, line)
	r.errors = append(r.errors, strings.TrimPrefix(line, "filecache: "))
	r.w.Fail()
	r.failed = true
}

// paths records the files of the selection.
func (c *SnapshotCmd) paths(r *snapshotRun, s *scan.Scanner) error {
	paths, listErr, closeList, err := c.Selection.paths(r.g.env)
	if err != nil {
		return err
	}
	defer closeList()
	var werr error
	err = s.ScanSeq(paths, func(f scan.File) {
		if werr == nil {
			werr = r.record(f, f.Root)
		}
	})
	if err == nil {
		err = werr
	}
	if err == nil {
		err = *listErr
	}
	return err
}

// top records every cached file of the filesystems filecache top walks:
// the walk finds each inode with pages and its path, then the path is
// opened and must still be that inode. Inodes no path leads to (deleted,
// no name in the dentry cache, a name cut short, a filesystem seen only in
// another mount namespace) are counted, not recorded; so are the kernel's
// shmem mount and the block devices' cache, which no path restores.
func (c *SnapshotCmd) top(r *snapshotRun, s *scan.Scanner) error {
	g, env := r.g, r.g.env
	fss, bad, err := filesystems(c.Mount, env.Stderr)
	if err != nil {
		return err
	}
	if bad > 0 {
		r.failed = true
	}
	if env.LoadWalker == nil {
		return errors.New("snapshot --top: no BPF loader in this build")
	}
	var w top.Walker
	var closeW func()
	err = g.checkedLoad(func() (err error) {
		w, closeW, err = env.LoadWalker(LoadOptions{BTF: g.BTF, Method: g.bpfMethod()})
		return err
	})
	if err != nil {
		return fmt.Errorf("snapshot --top needs the bpf engine to walk filesystems, which cannot run here: %w", err)
	}
	defer closeW()
	for _, fs := range fss {
		if fs.Label != "" {
			continue // memfds, SysV memory, block devices: no path
		}
		// One filesystem at a time: memory follows its cached inodes.
		totals, rows := top.Scan(w, []top.Filesystem{fs}, top.OpenAnchor, top.Options{})
		t := totals[0]
		switch {
		case t.Err != nil && top.Skipped(t.Err):
			continue
		case t.Err != nil:
			fmt.Fprintf(env.Stderr, "filecache: %s: %v\n", fs.Name(), t.Err)
			r.errors = append(r.errors, fmt.Sprintf("%s: %v", fs.Name(), t.Err))
			r.failed = true
			continue
		case t.Partial != "":
			r.note(fmt.Sprintf("%s: partial: %s", fs.Name(), t.Partial))
		}
		if err := r.topRows(s, fs, rows); err != nil {
			return err
		}
	}
	return nil
}

// topRows records one filesystem's rows, in path order.
func (r *snapshotRun) topRows(s *scan.Scanner, fs top.Filesystem, rows []top.Row) error {
	var keep []top.Row
	for _, row := range rows {
		why := ""
		switch {
		case row.Mode&unix.S_IFMT != unix.S_IFREG:
			why = "not a regular file (directories, symlinks)"
		case row.Deleted:
			why = "deleted, still open or mapped"
		case row.NoName || row.Path == "":
			why = "no name in the dentry cache"
		case row.Truncated:
			why = "a path too long for the walk"
		case strings.HasPrefix(row.Path, "/proc/"):
			why = "only in another mount namespace"
		case !strings.HasPrefix(row.Path, "/"):
			why = "on no mount of this mount namespace"
		}
		if why != "" {
			r.skip(why)
			continue
		}
		keep = append(keep, row)
	}
	slices.SortFunc(keep, func(a, b top.Row) int { return strings.Compare(a.Path, b.Path) })
	i := 0
	var werr error
	err := s.ScanSeq(func(yield func(string) bool) {
		for _, row := range keep {
			if !yield(row.Path) {
				return
			}
		}
	}, func(f scan.File) {
		row := keep[i]
		i++
		switch {
		case werr != nil:
		case errors.Is(f.Err, unix.ENOENT):
			r.skip("gone before it was opened")
		case errors.As(f.Err, new(*warm.ErrChanging)):
			// A log being written: a restore would skip it anyway.
			r.skip("changing while its pages were listed")
		case f.Err == nil && (f.Dev != fs.Dev || f.Ino != row.Ino):
			r.skip("its path names another inode now")
		default:
			werr = r.record(f, fs.Name())
		}
	})
	if err == nil {
		err = werr
	}
	return err
}

func (r *snapshotRun) skip(why string) {
	r.skipped[why]++
	r.w.Skip()
}

// summary prints what the snapshot holds, as a line or (--json) a document.
func (r *snapshotRun) summary(path string, end warm.End, written int64) error {
	env := r.g.env
	engine, method := r.chain.Name(), r.chain.Method()
	if r.g.JSON {
		doc := struct {
			Output      string   `json:"output"`
			OutputB64   string   `json:"output_b64,omitempty"`
			Engine      *string  `json:"engine"`
			Method      string   `json:"method,omitempty"`
			PageSize    int      `json:"page_size"`
			Files       int      `json:"files"`
			Pages       uint64   `json:"cached_pages"`
			CachedBytes uint64   `json:"cached_bytes"`
			Ranges      uint64   `json:"ranges"`
			Skipped     int      `json:"skipped"`
			Bytes       int64    `json:"bytes_written"`
			Errors      []string `json:"errors"`
			Notes       []string `json:"notes"`
		}{Files: end.Files, PageSize: units.PageSize, Pages: end.Pages, CachedBytes: units.Bytes(end.Pages), Ranges: end.Ranges,
			Skipped: end.Skipped, Bytes: written, Method: method, Errors: append([]string{}, r.errors...), Notes: append([]string{}, r.notes...)}
		doc.Output, doc.OutputB64 = report.JSONPath(path)
		if engine != "none" {
			doc.Engine = &engine
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("write JSON: %w", err)
		}
		return nil
	}
	how := ""
	if engine != "none" {
		how = fmt.Sprintf(", found with %s (%s)", engine, method)
	}
	_, err := fmt.Fprintf(env.Stdout, "snapshot of %d %s: %s cached in %d ranges%s; %s written to %s\n",
		end.Files, plural(end.Files, "file", "files"), units.Human(units.Bytes(end.Pages)), end.Ranges, how,
		units.Human(uint64(written)), units.Display(path))
	return err
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// atomicFile is a file written whole or not at all: a temporary file
// beside path, synced and renamed over path by commit (see replaceFile).
type atomicFile struct {
	*os.File
	path string
	done bool
}

func createAtomic(path string) (*atomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &atomicFile{File: f, path: path}, nil
}

// commit makes the file's contents durable and puts it at its path: a
// snapshot taken while a machine shuts down must survive the power-off.
func (a *atomicFile) commit() error {
	if err := a.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", a.Name(), err)
	}
	// It lists the machine's cached files: readable by its owner only.
	if err := a.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", a.Name(), err)
	}
	if err := a.Close(); err != nil {
		return fmt.Errorf("write %s: %w", a.Name(), err)
	}
	if err := os.Rename(a.Name(), a.path); err != nil {
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	a.done = true
	if d, err := os.Open(filepath.Dir(a.path)); err == nil {
		d.Sync() // the rename itself
		d.Close()
	}
	return nil
}

// abort removes the temporary file unless it was committed.
func (a *atomicFile) abort() {
	if !a.done {
		a.Close()
		os.Remove(a.Name())
	}
}
