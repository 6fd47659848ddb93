package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/walk"
)

// query measures the paths and prints the report.
func (c *CLI) query(env Env) int {
	r := report.Report{PageSize: unix.Getpagesize(), Range: c.rng}
	chain := c.chain(env, &r.Notes)
	q := c.Query
	var eng pagecache.Engine = chain
	if q.Detail {
		eng = &pagecache.Detailed{Engine: chain, Note: func(err error) {
			fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
			r.Notes = append(r.Notes, err.Error())
		}}
	}
	if q.Map {
		eng = pagecache.Mapped{Engine: eng}
	}
	s := &scan.Scanner{
		Engine: func() (pagecache.Engine, error) { return eng, nil },
		Walk:   q.walkOptions(),
		Ranged: c.rng != nil,
	}
	defer s.Close()

	paths, listErr, closeList, err := q.paths(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		return ExitFailed
	}
	defer closeList()
	nd := &report.NDJSON{W: env.Stdout}
	prog := progress{w: env.Stderr, on: env.Terminal && !c.JSON && !c.NDJSON, page: r.PageSize}
	defer prog.clear()
	var top []scan.File // --top: the tree's files with the most cached pages
	var writeErr error
	err = s.ScanSeq(paths, func(f scan.File) {
		if f.Err != nil {
			prog.clear()
			fmt.Fprintln(env.Stderr, report.ErrorLine(f))
		}
		prog.add(f)
		if !c.NDJSON {
			if q.Top > 0 && f.Root != "" && f.Err == nil {
				r.Count(f)
				top = keepTop(top, f, q.Top)
				return
			}
			if f.Kind == scan.KindDir {
				r.Files = append(r.Files, top...)
				top = top[:0]
			}
			r.Add(f, q.Files)
			return
		}
		r.Count(f)
		if writeErr == nil {
			writeErr = nd.Write(r, f)
		}
	})
	if err == nil && writeErr != nil {
		return writeErrExit(env.Stderr, writeErr)
	}
	prog.clear()
	if err == nil {
		err = *listErr
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "filecache: %v\n", err)
		if c.Engine != "auto" {
			c.printLoadLog(env.Stderr, err)
		}
		return ExitFailed
	}
	if s.EngineInUse() != nil && chain.Name() != "none" {
		r.Engine, r.Method = chain.Name(), chain.Method()
	}
	r.Sort(q.Sort)
	switch {
	case c.NDJSON:
		err = nd.Summary(r)
	case c.JSON:
		err = report.JSON(env.Stdout, r)
	default:
		err = report.Table(env.Stdout, r, report.TableOptions{Bytes: q.Bytes, NoHeadings: q.NoHead, Detail: q.Detail, Columns: q.Output})
	}
	if err != nil {
		return writeErrExit(env.Stderr, err)
	}
	if r.Failed() {
		return ExitFailed
	}
	return ExitOK
}

// paths are the command line's, then those of the --from list, read as
// they are needed; *listErr says why the list could not be read to its end.
func (q Selection) paths(env Env) (iter.Seq[string], *error, func(), error) {
	var listErr error
	if q.From == "" {
		return slices.Values(q.Paths), &listErr, func() {}, nil
	}
	in, closeList := env.Stdin, func() {}
	if q.From != "-" {
		f, err := os.Open(q.From)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--from: %w", err)
		}
		in, closeList = f, func() { f.Close() }
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1<<20) // a path is at most PATH_MAX; names inside trees longer
	if q.Null {
		sc.Split(splitNUL)
	}
	seq := func(yield func(string) bool) {
		for _, p := range q.Paths {
			if !yield(p) {
				return
			}
		}
		for sc.Scan() {
			if sc.Text() == "" {
				continue // a blank line or a trailing separator names nothing
			}
			if !yield(sc.Text()) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			listErr = fmt.Errorf("--from %s: %w", q.From, err)
		}
	}
	return seq, &listErr, closeList, nil
}

// splitNUL splits a NUL-separated list (find -print0).
func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// keepTop keeps the n files with the most cached pages, most first.
func keepTop(top []scan.File, f scan.File, n int) []scan.File {
	i := sort.Search(len(top), func(i int) bool { return top[i].Pages < f.Pages })
	if i >= n {
		return top
	}
	top = slices.Insert(top, i, f)
	if len(top) > n {
		top = top[:n]
	}
	return top
}

// progressEvery is how often the progress line is redrawn.
var progressEvery = 200 * time.Millisecond

// progress draws one line on a terminal's stderr while a long run goes on:
// files measured so far and what of them is cached. Never in JSON, never
// when stderr is not a terminal.
type progress struct {
	w            io.Writer
	on           bool
	page         int
	files        int
	cached, size uint64
	last         time.Time
	drawn        bool
}

func (p *progress) add(f scan.File) {
	if !p.on || f.Err != nil || f.Kind == scan.KindDir {
		return
	}
	p.files++
	p.cached += f.Pages * uint64(p.page)
	if now := time.Now(); now.Sub(p.last) >= progressEvery {
		p.last = now
		fmt.Fprintf(p.w, "\r\033[Kfilecache: %d files measured, %s of them cached", p.files, report.Human(p.cached))
		p.drawn = true
	}
}

// clear erases the line before other output.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (q Selection) walkOptions() walk.Options {
	return walk.Options{MaxDepth: q.MaxDepth, XDev: q.XDev, Follow: q.Follow, Include: q.Include, Exclude: q.Exclude}
}

// check rejects a selection that names nothing or has a bad glob.
func (q Selection) check() error {
	if len(q.Paths) == 0 && q.From == "" {
		return fmt.Errorf("expected a path or --from FILE")
	}
	for _, globs := range [][]string{q.Include, q.Exclude} {
		if err := walk.CheckPatterns(globs); err != nil {
			return err
		}
	}
	return nil
}

// chain is the engines --engine names, in order. When the automatic choice
// passes one over, it says why on stderr (with libbpf's log under -v) and in
// notes; a forced engine's failure ends the run with its own message.
func (c *CLI) chain(env Env, notes *[]string) *pagecache.Chain {
	return &pagecache.Chain{
		Stages: c.stages(env),
		Note: func(engine string, err error) {
			if c.Engine == "auto" {
				note := fmt.Sprintf("not using the %s engine: %v", engine, err)
				fmt.Fprintf(env.Stderr, "filecache: %s\n", note)
				c.printLoadLog(env.Stderr, err)
				*notes = append(*notes, note)
			}
		},
	}
}
