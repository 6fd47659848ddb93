package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/pagecache"
	"github.com/filecache/filecache/cmd/filecache/report"
	"github.com/filecache/filecache/cmd/filecache/scan"
)

// Action is what touch and evict share.
type Action struct {
	Selection `embed:""`
	DryRun    bool `name:"dry-run" help:"Measure and say what would be done; change nothing."`
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

// acted is one line of touch's or evict's report: a file, or a directory
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

// act runs touch or evict: measure each file, act on it, measure it again.
func (c *CLI) act(env Env, verb string, a *Action) int {
	var maxSize int64
	if verb == "touch" && c.Touch.MaxSize != "" {
		n, err := parseSize(c.Touch.MaxSize)
		if err != nil {
			fmt.Fprintf(env.Stderr, "filecache: --max-size: %v (see filecache --help)\n", err)
			return ExitUsage
		}
		maxSize = n
	}
	var notes []string
	chain := c.chain(env, &notes)
	s := &scan.Scanner{Engine: func() (pagecache.Engine, error) { return chain, nil }, Walk: a.walkOptions()}
	defer s.Close()
	paths, listErr, closeList, err := a.paths(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		return ExitFailed
	}
	defer closeList()

	var rows []acted
	var errs []scan.File
	trees := map[string]*acted{}
	err = s.ScanSeq(paths, func(f scan.File) {
		if f.Err != nil {
			fmt.Fprintln(env.Stderr, report.ErrorLine(f))
			errs = append(errs, f)
			return
		}
		if f.Kind == scan.KindDir {
			t := trees[f.Path]
			if t == nil {
				t = &acted{Path: f.Path}
			}
			t.tree = true
			rows = append(rows, *t)
			delete(trees, f.Path)
			return
		}
		row := acted{Path: f.Path, Files: 1, SizeBytes: f.Size, TotalPages: scan.PagesOf(f.Size), Before: f.Pages, After: f.Pages}
		switch {
		case a.DryRun:
		case verb == "touch" && maxSize > 0 && f.Size > maxSize:
			row.Skipped = 1
		default:
			after, dirty, err := c.apply(verb, f, s.EngineInUse())
			if err != nil {
				f.Err = err
				fmt.Fprintln(env.Stderr, report.ErrorLine(f))
				errs = append(errs, f)
				return
			}
			row.After, row.dirtyRemained = after, dirty
		}
		if f.Root == "" {
			rows = append(rows, row)
			return
		}
		t := trees[f.Root]
		if t == nil {
			t = &acted{Path: f.Root}
			trees[f.Root] = t
		}
		t.add(row)
	})
	if err == nil {
		err = *listErr
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		return ExitFailed
	}
	var total acted
	for _, r := range rows {
		total.add(r)
	}
	if verb == "evict" && total.After > 0 && !a.DryRun {
		why := "pages in use (mapped, locked) stay"
		switch {
		case c.Evict.Sync:
		case total.dirtyRemained > 0:
			why = fmt.Sprintf("%d pages were dirty or under writeback, which cannot be evicted: --sync writes them back first", total.dirtyRemained)
		case !haveCachestat():
			why = "dirty pages cannot be evicted (--sync writes them back first), nor pages in use"
		}
		note := fmt.Sprintf("%d pages stayed cached: %s", total.After, why)
		fmt.Fprintf(env.Stderr, "filecache: %s\n", note)
		notes = append(notes, note)
	}
	if c.JSON {
		err = writeActed(env.Stdout, verb, a.DryRun, chain, rows, total, errs, notes)
	} else {
		err = tableActed(env.Stdout, rows, total)
	}
	if err != nil {
		return writeErrExit(env.Stderr, err)
	}
	if len(errs) > 0 {
		return ExitFailed
	}
	return ExitOK
}

// apply touches or evicts one measured file and measures it again with the
// same engine. The file is reopened read-only by its path and must still be
// the inode that was measured.
func (c *CLI) apply(verb string, f scan.File, eng pagecache.Engine) (after, dirty uint64, err error) {
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
	// Dirty pages are counted before the eviction: fadvise starts their
	// writeback, and by the time it is measured again they may be clean
	// but still cached.
	if cs, err := pagecache.CachestatFd(fd); err == nil {
		dirty = cs.Dirty + cs.Writeback
	}
	if verb == "touch" {
		err = touchFd(fd, f.Size)
	} else {
		err = evictFd(fd, c.Evict.Sync)
	}
	if err != nil {
		return 0, 0, err
	}
	ans, err := eng.Query([]pagecache.Handle{{Fd: fd, Mode: st.Mode}})
	if err != nil {
		return 0, 0, fmt.Errorf("measure after %s: %w", verb, err)
	}
	if ans[0].Err != nil {
		return 0, 0, fmt.Errorf("measure after %s: %w", verb, ans[0].Err)
	}
	return ans[0].Pages, dirty, nil
}

func touchFd(fd int, size int64) error {
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_WILLNEED); err != nil {
		return fmt.Errorf("fadvise WILLNEED: %w", err)
	}
	// The hint may be ignored or cut short: read the file, 1 MiB at a
	// time, which leaves every page cached.
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		n, err := unix.Pread(fd, buf, off)
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
	}
	return nil
}

func evictFd(fd int, sync bool) error {
	if sync {
		if err := unix.Fdatasync(fd); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise DONTNEED: %w", err)
	}
	return nil
}

func writeActed(w io.Writer, verb string, dry bool, eng *pagecache.Chain, rows []acted, total acted, errs []scan.File, notes []string) error {
	type jerr struct {
		Path    string `json:"path"`
		PathB64 string `json:"path_b64,omitempty"`
		Error   string `json:"error"`
	}
	doc := struct {
		Action   string   `json:"action"`
		DryRun   bool     `json:"dry_run"`
		Engine   *string  `json:"engine"`
		PageSize int      `json:"page_size"`
		Files    []acted  `json:"files"`
		Total    acted    `json:"total"`
		Errors   []jerr   `json:"errors"`
		Notes    []string `json:"notes"`
	}{Action: verb, DryRun: dry, PageSize: unix.Getpagesize(), Files: []acted{}, Errors: []jerr{}, Notes: append([]string{}, notes...)}
	if name := eng.Name(); name != "none" {
		doc.Engine = &name
	}
	for _, r := range rows {
		r.Path, r.PathB64 = report.JSONPath(r.Path)
		doc.Files = append(doc.Files, r)
	}
	total.Path = "total"
	doc.Total = total
	for _, e := range errs {
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

func tableActed(w io.Writer, rows []acted, total acted) error {
	if len(rows) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BEFORE\tAFTER\tPAGES\tSIZE\t  PATH")
	line := func(r acted, name string) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t  %s\n", report.Human(r.Before*uint64(unix.Getpagesize())),
			report.Human(r.After*uint64(unix.Getpagesize())), r.TotalPages, report.Human(uint64(r.SizeBytes)), name)
	}
	for _, r := range rows {
		name := report.DisplayPath(r.Path)
		if r.tree {
			name = fmt.Sprintf("%s (%d files)", name, r.Files)
		}
		line(r, name)
	}
	if len(rows) > 1 {
		line(total, fmt.Sprintf("total (%d files)", total.Files))
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
