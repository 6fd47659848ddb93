package cli

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/cachectl"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
)

// EvictCmd drops files' clean pages from the page cache.
type EvictCmd struct {
	Action `embed:""`
	Sync   bool `help:"Write dirty pages back first: the kernel cannot drop a dirty page."`
}

// Run evicts every file of the selection.
func (e *EvictCmd) Run(g *Globals) error {
	r := &actRun{g: g, a: &e.Action, v: e}
	if err := r.run(); err != nil {
		return err
	}
	return status(r.status())
}

func (e *EvictCmd) name() string                       { return "evict" }
func (e *EvictCmd) prepare(*actRun, []scan.File) error { return nil }
func (e *EvictCmd) skip(scan.File) bool                { return false }

func (e *EvictCmd) apply(r *actRun, fd int, f scan.File, off, end int64) (applied, error) {
	var out applied
	// Dirty pages are counted before the eviction: fadvise starts their
	// writeback, and by the time the file is measured again they may be
	// clean but still cached.
	if n := end - off; r.rng == nil || n > 0 {
		if r.rng == nil {
			n = 0 // to the end of the mapping, past EOF too
		}
		if cs, err := pagecache.CachestatRange(fd, off, n); err == nil {
			out.dirty = cs.Dirty + cs.Writeback
		}
	}
	return out, cachectl.Evict(fd, e.Sync, off, end, r.rng == nil || off < end && end == f.Size)
}

// notes says why pages stayed cached.
func (e *EvictCmd) notes(r *actRun) {
	if r.rep.Total.After == 0 || r.a.DryRun {
		return
	}
	why := "pages in use (mapped, locked) stay"
	switch {
	case e.Sync:
	case r.rep.Total.Dirty > 0:
		why = fmt.Sprintf("%d pages were dirty or under writeback, which cannot be evicted: --sync writes them back first", r.rep.Total.Dirty)
	case !haveCachestat():
		why = "dirty pages cannot be evicted (--sync writes them back first), nor pages in use"
	}
	r.note(fmt.Sprintf("%d pages stayed cached: %s", r.rep.Total.After, why))
}

// haveCachestat says whether this kernel has cachestat(2) (Linux >= 6.5).
func haveCachestat() bool {
	_, err := pagecache.CachestatRange(-1, 0, 0)
	return !errors.Is(err, unix.ENOSYS)
}
