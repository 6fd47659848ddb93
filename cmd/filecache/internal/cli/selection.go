package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
	"github.com/filecache/filecache/cmd/filecache/internal/walk"
)

// Selection is which files a command works on: paths, directories walked,
// and lists.
type Selection struct {
	From     string   `placeholder:"FILE" help:"Also measure the paths listed in FILE, one a line (- for standard input)."`
	Null     bool     `short:"0" help:"The --from list is separated by NUL bytes (find -print0), not newlines."`
	MaxDepth int      `name:"max-depth" placeholder:"N" help:"Descend at most N levels below a directory argument (1: its own files only; 0: no limit)."`
	XDev     bool     `name:"xdev" help:"Stay on the filesystem of each directory argument."`
	Follow   bool     `help:"Follow symlinks inside directories (each directory and file is still counted once; loops are reported)."`
	Include  []string `placeholder:"GLOB" sep:"none" help:"Measure only the files in directories whose name matches GLOB (repeatable)."`
	Exclude  []string `placeholder:"GLOB" sep:"none" help:"Skip files and directories whose name matches GLOB (repeatable)."`
	Paths    []string `arg:"" optional:"" name:"path" help:"Files, block devices or directories (walked recursively) to measure. Symlinks named here are followed; use -- before paths that start with a dash, ./ before a path named like a command."`
}

// check rejects a selection that names nothing or has a bad glob.
func (q Selection) check() error {
	if len(q.Paths) == 0 && q.From == "" {
		return usagef("expected a path or --from FILE")
	}
	for _, globs := range [][]string{q.Include, q.Exclude} {
		if err := walk.CheckPatterns(globs); err != nil {
			return usageError{err}
		}
	}
	return nil
}

func (q Selection) walkOptions() walk.Options {
	return walk.Options{MaxDepth: q.MaxDepth, XDev: q.XDev, Follow: q.Follow, Include: q.Include, Exclude: q.Exclude}
}

// paths are the command line's, then those of the --from list, read as
// they are needed; *listErr says why the list could not be read to its end.
func (q Selection) paths(env *Env) (_ iter.Seq[string], listErr *error, closeList func(), _ error) {
	listErr = new(error)
	if q.From == "" {
		return slices.Values(q.Paths), listErr, func() {}, nil
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
			*listErr = fmt.Errorf("--from %s: %w", q.From, err)
		}
	}
	return seq, listErr, closeList, nil
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

// ParseRange reads OFFSET:LENGTH, each a byte count with an optional K, M,
// G or T (powers of 1024); an empty LENGTH reaches the end of each file.
func ParseRange(s string) (pagecache.Range, error) {
	off, n, ok := strings.Cut(s, ":")
	if !ok {
		return pagecache.Range{}, fmt.Errorf("--range %q: want OFFSET:LENGTH", s)
	}
	var r pagecache.Range
	var err error
	if r.Off, err = units.ParseSize(off); err != nil {
		return r, fmt.Errorf("--range %q: offset: %w", s, err)
	}
	if n != "" {
		if r.Len, err = units.ParseSize(n); err != nil || r.Len == 0 {
			return r, fmt.Errorf("--range %q: length must be a size above 0", s)
		}
	}
	return r, nil
}
