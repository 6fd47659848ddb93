// Package units holds the few facts every part of filecache must agree on:
// the page size, how many pages hold a span of bytes, percentages, byte
// sizes as printed and as typed, and how a path is shown on one line.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// PageSize is this machine's page size in bytes.
var PageSize = unix.Getpagesize()

// PagesOf is how many pages a file of size bytes spans.
func PagesOf(size int64) uint64 { return PagesIn(0, size) }

// PagesIn is how many pages hold bytes [off, end).
func PagesIn(off, end int64) uint64 {
	if off >= end || off < 0 {
		return 0
	}
	page := int64(PageSize)
	return uint64((end-1)/page - off/page + 1)
}

// Bytes is n pages in bytes.
func Bytes(pages uint64) uint64 { return pages * uint64(PageSize) }

// Percent of total that is cached, rounded to 0.01. A mapping may hold
// pages past EOF (fallocate KEEP_SIZE, a truncate in flight): it can pass 100.
func Percent(cached, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return math.Round(float64(cached)*10000/float64(total)) / 100
}

// Human formats a byte count the way fincore and du -h do: 0B, 4K, 1.2M, 16G.
func Human(n uint64) string {
	const units = "BKMGTPE"
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%dB", n)
	}
	if v < 10 {
		s := strconv.FormatFloat(v, 'f', 1, 64)
		return strings.TrimSuffix(s, ".0") + units[u:u+1]
	}
	return fmt.Sprintf("%.0f%c", v, units[u])
}

// ParseSize reads a byte count with an optional K, M, G or T suffix
// (powers of 1024, either case).
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	if i := strings.IndexAny(s, "KMGTkmgt"); i >= 0 && i == len(s)-1 {
		mult = int64(1) << (10 * (1 + strings.IndexByte("KMGT", byte(unicode.ToUpper(rune(s[i]))))))
		s = s[:i]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}

// Display is how a path is shown on one terminal line: as it is, or
// Go-quoted when it is empty, not UTF-8 or holds unprintable characters.
func Display(p string) string {
	if p == "" || !utf8.ValidString(p) || strings.IndexFunc(p, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(p)
	}
	return p
}
