//go:build cgo

package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/filecache/filecache/cgo/fastpath"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// The fast path (cgo/fastpath/fastpath.c) prints the table the Go path
// prints: its sizes are units.Human's, its percentages the PERCENT column's
// and its table report.Table's, byte for byte. (The integration suite runs
// both on real files; here the formatting alone, on many more figures.)
func TestFastPathFormatsAsGo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var sizes []uint64
	for e := 0; e < 64; e++ {
		for _, d := range []int64{-2, -1, 0, 1, 2} {
			if v := int64(1)<<e + d; v >= 0 {
				sizes = append(sizes, uint64(v))
			}
		}
	}
	// Around each rounding edge of a unit: 9.95, 10, 1023.5 of it.
	for u := uint64(1); u < 1<<60; u <<= 10 {
		for _, f := range []float64{0.95, 1, 9.94, 9.95, 9.96, 10, 10.5, 1023.4, 1023.5, 1023.6} {
			sizes = append(sizes, uint64(f*float64(u)))
		}
	}
	for range 20000 {
		sizes = append(sizes, r.Uint64()>>r.IntN(64))
	}
	for _, n := range sizes {
		if got, want := fastpath.Human(n), units.Human(n); got != want {
			t.Errorf("Human(%d): C %q, Go %q", n, got, want)
		}
	}
	for range 50000 {
		total := r.Uint64N(1 << r.IntN(40))
		cached := r.Uint64N(total + 2)
		if r.IntN(10) == 0 {
			cached = total + r.Uint64N(3) // pages past EOF pass 100%
		}
		got := fastpath.Percent(cached, total)
		if want := fmt.Sprintf("%.1f%%", units.Percent(cached, total)); got != want {
			t.Errorf("Percent(%d, %d): C %q, Go %q", cached, total, got, want)
		}
	}

	for n := 1; n <= 64; n = n*2 + 1 {
		for try := range 50 {
			var files []fastpath.File
			rep := report.Report{PageSize: units.PageSize}
			for i := range n {
				size := r.Uint64() >> r.IntN(64)
				pages := units.PagesOf(int64(size >> 1))
				size >>= 1
				cached := r.Uint64N(pages + 1)
				path := fmt.Sprintf("/some/dir%d/%s%d", try, strings.Repeat("x", r.IntN(40)), i)
				files = append(files, fastpath.File{Path: path, Cached: cached, Pages: pages, Size: size})
				rep.Add(scan.File{Path: path, Kind: scan.KindFile, Size: int64(size), Pages: cached}, false)
			}
			var want bytes.Buffer
			if err := report.Table(&want, rep, report.TableOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := fastpath.Table(files, units.PageSize); got != want.String() {
				t.Fatalf("%d files: C table\n%s\nGo table\n%s", n, got, want.String())
			}
		}
	}
}
