package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/filecache/filecache/cmd/filecache/internal/report"
)

// barEvery is how often the bar is redrawn at most; a touch shorter than
// this never draws it.
var barEvery = 100 * time.Millisecond

// bar draws touch's progress on a terminal's stderr: bytes read of the
// bytes to read. A nil or switched-off bar draws nothing.
type bar struct {
	w           io.Writer
	done, total uint64
	now         func() time.Time
	last        time.Time
	drawn       bool
}

func newBar(w io.Writer, on bool, total uint64) *bar {
	if !on {
		return nil
	}
	return &bar{w: w, total: total, now: time.Now, last: time.Now()}
}

func (b *bar) add(n uint64) {
	if b == nil {
		return
	}
	b.done += n
	if t := b.now(); t.Sub(b.last) >= barEvery {
		b.last = t
		fmt.Fprint(b.w, "\r\033[K"+renderBar(b.done, b.total, 30))
		b.drawn = true
	}
}

// clear erases the bar before other output, and at the end.
func (b *bar) clear() {
	if b != nil && b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// renderBar is the bar's line: width cells, a cell filled for each
// 1/width of total done.
func renderBar(done, total uint64, width int) string {
	frac := 1.0
	if total > 0 {
		frac = float64(min(done, total)) / float64(total)
	}
	fill := int(frac * float64(width))
	return fmt.Sprintf("filecache: touch [%s%s] %s/%s %3d%%", strings.Repeat("#", fill), strings.Repeat("-", width-fill),
		report.Human(done), report.Human(total), int(frac*100))
}
