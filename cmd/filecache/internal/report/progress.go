package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// Both lines below are drawn on a terminal's stderr only, redrawn in place
// ("\r" and erase-line) at most once per interval, and erased before any
// other output. A nil one draws nothing.

// ProgressEvery is how often the measuring line is redrawn.
var ProgressEvery = 200 * time.Millisecond

// Progress is the line a long measuring run shows: files measured so far
// and what of them is cached.
type Progress struct {
	w     io.Writer
	files int
	bytes uint64
	last  time.Time
	drawn bool
}

// NewProgress returns a Progress drawing on w, or nil when off.
func NewProgress(w io.Writer, on bool) *Progress {
	if !on {
		return nil
	}
	return &Progress{w: w}
}

// Add counts one outcome of the scan.
func (p *Progress) Add(f scan.File) {
	if p == nil || f.Err != nil || f.Kind == scan.KindDir {
		return
	}
	p.files++
	p.bytes += units.Bytes(f.Pages)
	if now := time.Now(); now.Sub(p.last) >= ProgressEvery {
		p.last = now
		fmt.Fprintf(p.w, "\r\033[Kfilecache: %d files measured, %s of them cached", p.files, units.Human(p.bytes))
		p.drawn = true
	}
}

// Clear erases the line.
func (p *Progress) Clear() {
	if p != nil && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// BarEvery is how often the bar is redrawn at most; a touch shorter than
// this never draws it.
var BarEvery = 100 * time.Millisecond

// Bar draws touch's (or restore's) progress: bytes read of the bytes to read.
type Bar struct {
	w           io.Writer
	verb        string
	done, total uint64
	now         func() time.Time
	last        time.Time
	drawn       bool
}

// NewBar returns a Bar of total bytes drawing on w, or nil when off.
func NewBar(w io.Writer, on bool, total uint64) *Bar {
	if !on {
		return nil
	}
	return &Bar{w: w, verb: "touch", total: total, now: time.Now, last: time.Now()}
}

// Named makes the bar say verb instead of touch.
func (b *Bar) Named(verb string) *Bar {
	if b != nil {
		b.verb = verb
	}
	return b
}

// Add counts n more bytes done.
func (b *Bar) Add(n uint64) {
	if b == nil {
		return
	}
	b.done += n
	if t := b.now(); t.Sub(b.last) >= BarEvery {
		b.last = t
		fmt.Fprint(b.w, "\r\033[K"+renderBar(b.verb, b.done, b.total, 30))
		b.drawn = true
	}
}

// Clear erases the bar.
func (b *Bar) Clear() {
	if b != nil && b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// RenderBar is the bar's line: width cells, a cell filled for each
// 1/width of total done.
func RenderBar(done, total uint64, width int) string { return renderBar("touch", done, total, width) }

func renderBar(verb string, done, total uint64, width int) string {
	if verb == "" {
		verb = "touch"
	}
	frac := 1.0
	if total > 0 {
		frac = float64(min(done, total)) / float64(total)
	}
	fill := int(frac * float64(width))
	return fmt.Sprintf("filecache: %s [%s%s] %s/%s %3d%%", verb, strings.Repeat("#", fill), strings.Repeat("-", width-fill),
		units.Human(done), units.Human(total), int(frac*100))
}
