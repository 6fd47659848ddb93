package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
)

// Action is what touch, evict and lock share.
type Action struct {
	Selection `embed:""`
	DryRun    bool   `name:"dry-run" help:"Measure and say what would be done; change nothing."`
	Range     string `placeholder:"OFFSET:LENGTH" help:"Act on the pages holding only these bytes of each file, and measure those (sizes take K, M, G, T; no LENGTH: to the end). Uses cachestat or mincore."`
}

// TouchCmd brings files into the page cache.
type TouchCmd struct {
	Action  `embed:""`
	MaxSize string `name:"max-size" placeholder:"SIZE" help:"Skip files larger than SIZE (K, M, G, T), like vmtouch -m."`
}

// EvictCmd drops files' clean pages from the page cache.
type EvictCmd struct {
	Action `embed:""`
	Sync   bool `help:"Write dirty pages back first: the kernel cannot drop a dirty page."`
}

// acted is one line of an action's report: a file, or a directory
// argument's sums.
type acted struct {
	Path          string `json:"path"`
	PathB64       string `json:"path_b64,omitempty"`
	Files         int    `json:"files"`
	SizeBytes     int64  `json:"size_bytes"`
	TotalPages    uint64 `json:"total_pages"`
	Before        uint64 `json:"before_pages"`
	After         uint64 `json:"after_pages"`
	Skipped       int    `json:"skipped,omitempty"` // larger than --max-size
	dirtyRemained uint64 // dirty or under writeback when evict was asked (cachestat)
	tree          bool
}

// actReport is what an action prints.
type actReport struct {
	verb  string
	dry   bool
	chain *pagecache.Chain
	rng   *pagecache.Range
	rows  []acted
	total acted
	errs  []scan.File
	notes []string
}

// act runs touch, evict or lock: measure every file, then act on each and
// measure it again with the same engine.
func (c *CLI) act(env Env, verb string, a *Action) int {
	if verb == "lock" && c.Lock.Daemon && !a.DryRun && os.Getenv(daemonEnv) == "" {
		return c.spawnDaemon(env)
	}
	var maxSize int64
	if verb == "touch" && c.Touch.MaxSize != "" {
		n, err := parseSize(c.Touch.MaxSize)
		if err != nil {
			fmt.Fprintf(env.Stderr, "filecache: --max-size: %v (see filecache --help)\n", err)
			return ExitUsage
		}
		maxSize = n
	}
	var sigs <-chan os.Signal
	if verb == "lock" && !a.DryRun {
		// From the start: a signal while locking must still release.
		var stop func()
		sigs, stop = lockSignals(env)
		defer stop()
	}
	rep := actReport{verb: verb, dry: a.DryRun, rng: c.rng}
	rep.chain = c.chain(env, &rep.notes)
	s := &scan.Scanner{Engine: func() (pagecache.Engine, error) { return rep.chain, nil }, Walk: a.walkOptions(), Ranged: c.rng != nil}
	defer s.Close()
	paths, listErr, closeList, err := a.paths(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		return ExitFailed
	}
	defer closeList()

	// Every file is measured before any is acted on: the sums size the
	// progress bar and lock's RLIMIT_MEMLOCK check.
	var found []scan.File
	err = s.ScanSeq(paths, func(f scan.File) {
		if f.Err != nil {
			fmt.Fprintln(env.Stderr, report.ErrorLine(f))
			rep.errs = append(rep.errs, f)
			return
		}
		found = append(found, f)
	})
	if err == nil {
		err = *listErr
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		return ExitFailed
	}
	skip := func(f scan.File) bool { return verb == "touch" && maxSize > 0 && f.Size > maxSize }
	var work, pages uint64 // bytes to act on, and the pages holding them
	for _, f := range found {
		if off, end := c.span(f.Size); f.Kind != scan.KindDir && !skip(f) {
			work += uint64(end - off)
			pages += pagesIn(off, end)
		}
	}
	if verb == "lock" {
		if f, err := c.checkMemlock(env, found); err != nil {
			fmt.Fprintln(env.Stderr, report.ErrorLine(scan.File{Path: f.Path, Err: err}))
			return ExitFailed
		}
	}
	prog := newBar(env.Stderr, verb == "touch" && env.Terminal && !c.JSON && !a.DryRun, work)
	var held holding
	trees := map[string]*acted{}
	for _, f := range found {
		if f.Kind == scan.KindDir {
			t := trees[f.Path]
			if t == nil {
				t = &acted{Path: f.Path}
			}
			t.tree = true
			rep.rows = append(rep.rows, *t)
			delete(trees, f.Path)
			continue
		}
		row := acted{Path: f.Path, Files: 1, SizeBytes: f.Size, TotalPages: scan.PagesOf(f.Size), Before: f.Pages, After: f.Pages}
		if c.rng != nil {
			row.TotalPages = f.Span
		}
		select {
		case sig := <-sigs: // nil unless locking: never ready
			held.release()
			prog.clear()
			fmt.Fprintf(env.Stderr, "filecache: %v while locking: nothing stays locked\n", sig)
			return ExitFailed
		default:
		}
		switch {
		case a.DryRun:
		case skip(f):
			row.Skipped = 1
		default:
			out, err := c.apply(verb, f, s.EngineInUse(), prog)
			if out.mem != nil {
				held.add(out.mem)
			}
			var ml *memlockError
			if errors.As(err, &ml) {
				// Nothing stays half-locked: the run ends here.
				ml.locked, ml.capable = held.bytes, ipcLock(env)
				held.release()
				prog.clear()
				fmt.Fprintln(env.Stderr, report.ErrorLine(scan.File{Path: f.Path, Err: err}))
				return ExitFailed
			}
			if err != nil {
				f.Err = err
				prog.clear()
				fmt.Fprintln(env.Stderr, report.ErrorLine(f))
				rep.errs = append(rep.errs, f)
				continue
			}
			row.After, row.dirtyRemained = out.after, out.dirty
		}
		if f.Root == "" {
			rep.rows = append(rep.rows, row)
			continue
		}
		t := trees[f.Root]
		if t == nil {
			t = &acted{Path: f.Root}
			trees[f.Root] = t
		}
		t.add(row)
	}
	prog.clear()
	for _, r := range rep.rows {
		rep.total.add(r)
	}
	if verb == "evict" && rep.total.After > 0 && !a.DryRun {
		why := "pages in use (mapped, locked) stay"
		switch {
		case c.Evict.Sync:
		case rep.total.dirtyRemained > 0:
			why = fmt.Sprintf("%d pages were dirty or under writeback, which cannot be evicted: --sync writes them back first", rep.total.dirtyRemained)
		case !haveCachestat():
			why = "dirty pages cannot be evicted (--sync writes them back first), nor pages in use"
		}
		rep.note(env, fmt.Sprintf("%d pages stayed cached: %s", rep.total.After, why))
	}
	if verb == "lock" && a.DryRun {
		rep.note(env, fmt.Sprintf("would lock %d pages (%s) of %d files", pages, report.Human(pages*uint64(unix.Getpagesize())), rep.total.Files))
	}
	if c.JSON {
		err = rep.json(env.Stdout)
	} else {
		err = rep.table(env.Stdout)
	}
	if err != nil {
		held.release()
		return writeErrExit(env.Stderr, err)
	}
	status := ExitOK
	if len(rep.errs) > 0 {
		status = ExitFailed
	}
	if verb == "lock" && !a.DryRun {
		return c.hold(env, &held, sigs, status)
	}
	return status
}

// note says something about the whole run, on stderr and in the JSON.
func (r *actReport) note(env Env, note string) {
	fmt.Fprintf(env.Stderr, "filecache: %s\n", note)
	r.notes = append(r.notes, note)
}

// span is the part of a file of size bytes that an action covers: all of
// it, or the --range clipped to it.
func (c *CLI) span(size int64) (off, end int64) {
	if c.rng == nil {
		return 0, size
	}
	off, end = min(c.rng.Off, size), size
	if c.rng.Len > 0 && c.rng.Len < size-off {
		end = off + c.rng.Len
	}
	return off, end
}

// pagesIn is how many pages hold bytes [off, end).
func pagesIn(off, end int64) uint64 {
	if off >= end {
		return 0
	}
	page := int64(unix.Getpagesize())
	return uint64((end-1)/page - off/page + 1)
}

// applied is what acting on one file left.
type applied struct {
	after, dirty uint64
	mem          []byte // lock: the locked mapping, held until the end
}

// apply touches, evicts or locks one measured file and measures it again
// with the same engine. The file is reopened read-only by its path and
// must still be the inode that was measured.
func (c *CLI) apply(verb string, f scan.File, eng pagecache.Engine, prog *bar) (out applied, err error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	fd, err := unix.Open(f.Path, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) { // O_NOATIME needs ownership
		fd, err = unix.Open(f.Path, flags, 0)
	}
	if err != nil {
		return out, fmt.Errorf("open for %s: %w", verb, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Dev != f.Dev || st.Ino != f.Ino {
		return out, errors.New("replaced since it was measured")
	}
	off, end := c.span(f.Size)
	switch verb {
	case "touch":
		err = touchFd(fd, off, end, prog)
	case "evict":
		// Dirty pages are counted before the eviction: fadvise starts
		// their writeback, and by the time it is measured again they
		// may be clean but still cached.
		if n := end - off; c.rng == nil || n > 0 {
			if c.rng == nil {
				n = 0 // to the end of the mapping, past EOF too
			}
			if cs, err := pagecache.CachestatRange(fd, off, n); err == nil {
				out.dirty = cs.Dirty + cs.Writeback
			}
		}
		err = evictFd(fd, c.Evict.Sync, off, end, c.rng == nil || off < end && end == f.Size)
	case "lock":
		out.mem, err = lockFd(fd, off, end)
	}
	if err != nil {
		return out, err
	}
	ans, err := eng.Query([]pagecache.Handle{{Fd: fd, Mode: st.Mode}})
	if err == nil {
		err = ans[0].Err
	}
	if err != nil {
		if out.mem != nil {
			unix.Munmap(out.mem)
		}
		return applied{}, fmt.Errorf("measure after %s: %w", verb, err)
	}
	out.after = ans[0].Pages
	return out, nil
}

// touchFd brings bytes [off, end) of fd into the page cache.
func touchFd(fd int, off, end int64, prog *bar) error {
	if off >= end {
		return nil
	}
	if err := unix.Fadvise(fd, off, end-off, unix.FADV_WILLNEED); err != nil {
		return fmt.Errorf("fadvise WILLNEED: %w", err)
	}
	// The hint may be ignored or cut short: read the bytes, 1 MiB at a
	// time, which leaves every page cached.
	buf := make([]byte, 1<<20)
	for off < end {
		n, err := unix.Pread(fd, buf[:min(int64(len(buf)), end-off)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			break
		}
		off += int64(n)
		prog.add(uint64(n))
	}
	return nil
}

// evictFd drops the pages holding bytes [off, end) of fd; toEOF drops
// those past the end of the file too.
func evictFd(fd int, sync bool, off, end int64, toEOF bool) error {
	if off >= end && !toEOF {
		return nil
	}
	if sync {
		if err := unix.Fdatasync(fd); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
	}
	// The kernel drops only pages wholly inside the range it is given:
	// widen it to the pages that hold the bytes, as they are measured.
	page := int64(unix.Getpagesize())
	start, n := off/page*page, int64(0)
	if !toEOF {
		n = (end+page-1)/page*page - start
	}
	if err := unix.Fadvise(fd, start, n, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise DONTNEED: %w", err)
	}
	return nil
}

func (r *actReport) json(w io.Writer) error {
	type jerr struct {
		Path    string `json:"path"`
		PathB64 string `json:"path_b64,omitempty"`
		Error   string `json:"error"`
	}
	type jrange struct {
		Offset int64 `json:"offset"`
		Length int64 `json:"length"` // 0: to the end of each file
	}
	doc := struct {
		Action   string   `json:"action"`
		DryRun   bool     `json:"dry_run"`
		Engine   *string  `json:"engine"`
		PageSize int      `json:"page_size"`
		Range    *jrange  `json:"range"`
		Pid      int      `json:"pid,omitempty"` // lock: the process holding the pages
		Files    []acted  `json:"files"`
		Total    acted    `json:"total"`
		Errors   []jerr   `json:"errors"`
		Notes    []string `json:"notes"`
	}{Action: r.verb, DryRun: r.dry, PageSize: unix.Getpagesize(), Files: []acted{}, Errors: []jerr{}, Notes: append([]string{}, r.notes...)}
	if name := r.chain.Name(); name != "none" {
		doc.Engine = &name
	}
	if r.rng != nil {
		doc.Range = &jrange{r.rng.Off, r.rng.Len}
	}
	if r.verb == "lock" && !r.dry {
		doc.Pid = os.Getpid()
	}
	for _, f := range r.rows {
		f.Path, f.PathB64 = report.JSONPath(f.Path)
		doc.Files = append(doc.Files, f)
	}
	doc.Total = r.total
	doc.Total.Path = "total"
	for _, e := range r.errs {
		p, b := report.JSONPath(e.Path)
		doc.Errors = append(doc.Errors, jerr{p, b, e.Err.Error()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func (r *actReport) table(w io.Writer) error {
	if len(r.rows) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BEFORE\tAFTER\tPAGES\tSIZE\t  PATH")
	line := func(r acted, name string) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t  %s\n", report.Human(r.Before*uint64(unix.Getpagesize())),
			report.Human(r.After*uint64(unix.Getpagesize())), r.TotalPages, report.Human(uint64(r.SizeBytes)), name)
	}
	for _, row := range r.rows {
		name := report.DisplayPath(row.Path)
		if row.tree {
			name = fmt.Sprintf("%s (%d files)", name, row.Files)
		}
		line(row, name)
	}
	if len(r.rows) > 1 {
		line(r.total, fmt.Sprintf("total (%d files)", r.total.Files))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// haveCachestat says whether this kernel has cachestat(2) (Linux >= 6.5).
func haveCachestat() bool {
	_, err := pagecache.CachestatFd(-1)
	return !errors.Is(err, unix.ENOSYS)
}

// add sums r into a.
func (a *acted) add(r acted) {
	a.Files += r.Files
	a.SizeBytes += r.SizeBytes
	a.TotalPages += r.TotalPages
	a.Before += r.Before
	a.After += r.After
	a.Skipped += r.Skipped
	a.dirtyRemained += r.dirtyRemained
}
