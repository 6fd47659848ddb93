package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
	"github.com/filecache/filecache/cmd/filecache/internal/warm"
)

// RestoreCmd brings a snapshot's pages back into the page cache.
type RestoreCmd struct {
	Snapshot string `arg:"" name:"snapshot" placeholder:"FILE" help:"A snapshot written by filecache snapshot (gzip'd or not)."`
	DryRun   bool   `name:"dry-run" help:"Measure and say what would be read; read nothing."`
	MaxSize  string `name:"max-size" placeholder:"SIZE" help:"Skip files larger than SIZE (K, M, G, T), like touch --max-size."`
	Rate     string `placeholder:"BYTES/s" help:"Read at most this many bytes a second, all files together (K, M, G, T; /s optional)."`
	Jobs     int    `placeholder:"N" help:"Read N files at once on every device (default: 4, and one at a time on a spinning disk)."`
}

// Run restores the snapshot and prints what it did, as touch does.
func (c *RestoreCmd) Run(g *Globals) error {
	env := g.env
	if g.NDJSON {
		return usagef("restore prints a table or, with --json, one document; --ndjson does not apply")
	}
	o := warm.Options{DryRun: c.DryRun, Jobs: c.Jobs}
	if c.Jobs < 0 {
		return usagef("--jobs %d: want 1 or more", c.Jobs)
	}
	if c.Jobs > 0 {
		o.Rotational = func(uint64) bool { return false } // N on every device
	}
	if c.MaxSize != "" {
		n, err := units.ParseSize(c.MaxSize)
		if err != nil {
			return usagef("--max-size: %v", err)
		}
		o.MaxSize = n
	}
	if c.Rate != "" {
		n, err := units.ParseSize(strings.TrimSuffix(c.Rate, "/s"))
		if err != nil || n == 0 {
			return usagef("--rate %s: want a size a second above 0, like 100M", units.Display(c.Rate))
		}
		o.Rate = n
	}
	sr, closeSnap, err := openSnapshot(c.Snapshot)
	if err != nil {
		return g.failed(err)
	}
	defer closeSnap()

	rep := report.Action{Verb: "restore", DryRun: c.DryRun}
	chain := g.extentChain(&rep.Notes)
	defer chain.Close()
	o.Engine = chain

	barOn := env.Terminal && !g.JSON && !c.DryRun
	var bar *report.Bar
	if barOn {
		// The bar's total: the bytes of every range, from a first pass.
		total, err := plan(c.Snapshot, o.MaxSize)
		if err != nil {
			return g.failed(err)
		}
		bar = report.NewBar(env.Stderr, true, total).Named("restore")
	}
	var barMu sync.Mutex
	o.Progress = func(n uint64) {
		barMu.Lock()
		bar.Add(n)
		barMu.Unlock()
	}

	// A directory or filesystem the snapshot found files under is one row
	// with their sums, as touch's trees; a file named itself is its own.
	trees := map[string]*report.Acted{}
	var order []*report.Acted
	o.Result = func(res warm.Result) {
		f := res.File
		switch {
		case res.Err != nil:
			barMu.Lock()
			bar.Clear()
			barMu.Unlock()
			sf := scan.File{Path: f.Path, Err: res.Err}
			fmt.Fprintln(env.Stderr, report.ErrorLine(sf))
			rep.Errors = append(rep.Errors, sf)
			return
		case res.Skip != "":
			barMu.Lock()
			bar.Clear()
			barMu.Unlock()
			fmt.Fprintf(env.Stderr, "filecache: %s: skipped: %s\n", units.Display(f.Path), res.Skip)
			rep.Skips = append(rep.Skips, report.Skip{Path: f.Path, Reason: res.Skip})
		}
		row := report.Acted{Path: f.Path, Files: 1, SizeBytes: f.Size, TotalPages: res.Pages, Before: res.Before, After: res.After}
		if res.Skip != "" {
			row.Skipped = 1
		}
		if f.Root == "" {
			order = append(order, &row)
			return
		}
		t := trees[f.Root]
		if t == nil {
			t = &report.Acted{Path: f.Root, Tree: true}
			trees[f.Root] = t
			order = append(order, t)
		}
		t.Add(row)
	}
	err = warm.Restore(sr, o)
	barMu.Lock()
	bar.Clear()
	barMu.Unlock()
	for _, row := range order {
		rep.Rows = append(rep.Rows, *row)
		rep.Total.Add(*row)
	}
	if name := chain.Name(); name != "none" {
		rep.Engine = name
	}
	if err == nil && sr.End == nil {
		msg := "the snapshot ends early (no end line, written by a snapshot that did not finish): its files were restored, later ones are missing"
		fmt.Fprintf(env.Stderr, "filecache: %s\n", msg)
		rep.Notes = append(rep.Notes, msg)
		rep.Errors = append(rep.Errors, scan.File{Path: c.Snapshot, Err: errors.New("cut short")})
	}
	var werr error
	if g.JSON {
		werr = report.ActionJSON(env.Stdout, rep)
	} else {
		werr = report.ActionTable(env.Stdout, rep)
	}
	if err != nil {
		return g.failed(err)
	}
	if werr != nil {
		return g.failed(werr)
	}
	if len(rep.Errors) > 0 {
		return exitStatus(ExitFailed)
	}
	return nil
}

// openSnapshot opens a snapshot and reads its header.
func openSnapshot(path string) (*warm.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: %w", err)
	}
	r, err := warm.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", units.Display(path), err)
	}
	return r, func() { r.Close(); f.Close() }, nil
}

// plan reads a snapshot through and sums the bytes of its files' ranges
// (of files within maxSize).
func plan(path string, maxSize int64) (uint64, error) {
	r, closeSnap, err := openSnapshot(path)
	if err != nil {
		return 0, err
	}
	defer closeSnap()
	var total uint64
	for {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return 0, err
		}
		if maxSize == 0 || f.Size <= maxSize {
			total += warm.Bytes(f, r.Header.PageSize)
		}
	}
}
