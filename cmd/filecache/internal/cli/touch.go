package cli

import (
	"github.com/filecache/filecache/cmd/filecache/internal/cachectl"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// TouchCmd brings files into the page cache.
type TouchCmd struct {
	Action  `embed:""`
	MaxSize string `name:"max-size" placeholder:"SIZE" help:"Skip files larger than SIZE (K, M, G, T), like vmtouch -m."`

	maxSize int64
}

// Run touches every file of the selection.
func (t *TouchCmd) Run(g *Globals) error {
	if t.MaxSize != "" {
		n, err := units.ParseSize(t.MaxSize)
		if err != nil {
			return usagef("--max-size: %v", err)
		}
		t.maxSize = n
	}
	r := &actRun{g: g, a: &t.Action, v: t}
	if err := r.run(); err != nil {
		return err
	}
	return status(r.status())
}

func (t *TouchCmd) name() string                       { return "touch" }
func (t *TouchCmd) prepare(*actRun, []scan.File) error { return nil }
func (t *TouchCmd) skip(f scan.File) bool              { return t.maxSize > 0 && f.Size > t.maxSize }
func (t *TouchCmd) notes(*actRun)                      {}

func (t *TouchCmd) apply(r *actRun, fd int, _ scan.File, off, end int64) (applied, error) {
	return applied{}, cachectl.Touch(fd, off, end, r.bar.Add)
}
