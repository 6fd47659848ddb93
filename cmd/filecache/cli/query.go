package cli

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/pagecache"
	"github.com/filecache/filecache/cmd/filecache/report"
	"github.com/filecache/filecache/cmd/filecache/scan"
	"github.com/filecache/filecache/cmd/filecache/walk"
)

// query measures the paths and prints the report.
func (c *CLI) query(env Env) int {
	r := report.Report{PageSize: unix.Getpagesize()}
	chain := &pagecache.Chain{
		Stages: c.stages(env),
		Note: func(engine string, err error) {
			// Only an automatic choice moves on; a forced engine's
			// failure ends the run with its own message.
			if c.Engine == "auto" {
				note := fmt.Sprintf("not using the %s engine: %v", engine, err)
				fmt.Fprintf(env.Stderr, "filecache: %s\n", note)
				c.printLoadLog(env.Stderr, err)
				r.Notes = append(r.Notes, note)
			}
		},
	}
	q := c.Query
	s := &scan.Scanner{
		Engine: func() (pagecache.Engine, error) { return chain, nil },
		Walk:   walk.Options{MaxDepth: q.MaxDepth, XDev: q.XDev, Follow: q.Follow, Include: q.Include, Exclude: q.Exclude},
	}
	defer s.Close()

	err := s.Scan(c.Query.Paths, func(f scan.File) {
		if f.Err != nil {
			fmt.Fprintln(env.Stderr, report.ErrorLine(f))
		}
		r.Add(f, q.Files)
	})
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
	if c.JSON {
		err = report.JSON(env.Stdout, r)
	} else {
		err = report.Table(env.Stdout, r)
	}
	if err != nil {
		return writeErr(env.Stderr, err)
	}
	if r.Failed() {
		return ExitFailed
	}
	return ExitOK
}
