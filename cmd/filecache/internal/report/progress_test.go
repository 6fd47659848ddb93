package report

import (
	"strings"
	"testing"
	"time"
)

func TestRenderBar(t *testing.T) {
	for _, c := range []struct {
		done, total uint64
		want        string
	}{
		{0, 4 << 20, "filecache: touch [----------] 0B/4M   0%"},
		{1 << 20, 4 << 20, "filecache: touch [##--------] 1M/4M  25%"},
		{4 << 20, 4 << 20, "filecache: touch [##########] 4M/4M 100%"},
		{5 << 20, 4 << 20, "filecache: touch [##########] 5M/4M 100%"}, // a file that grew
		{0, 0, "filecache: touch [##########] 0B/0B 100%"},
	} {
		if got := RenderBar(c.done, c.total, 10); got != c.want {
			t.Errorf("RenderBar(%d, %d) = %q, want %q", c.done, c.total, got, c.want)
		}
	}
}

// The bar redraws at most every BarEvery, and clear erases it.
func TestBarThrottle(t *testing.T) {
	var out strings.Builder
	now := time.Unix(0, 0)
	b := &Bar{w: &out, total: 10, now: func() time.Time { return now }, last: now}
	b.Add(1) // too soon
	now = now.Add(BarEvery)
	b.Add(1)
	now = now.Add(BarEvery / 2)
	b.Add(1) // too soon again
	b.Clear()
	if got, want := out.String(), "\r\033[K"+RenderBar(2, 10, 30)+"\r\033[K"; got != want {
		t.Errorf("drawn %q, want %q", got, want)
	}
	var nothing *Bar // not a terminal
	nothing.Add(1)
	nothing.Clear()
}
