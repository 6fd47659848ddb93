package units

import "testing"

func TestHuman(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 1023: "1023B", 1024: "1K", 1229: "1.2K", 16 << 20: "16M", 1 << 40: "1T", 3 << 29: "1.5G"} {
		if got := Human(n); got != want {
			t.Errorf("Human(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDisplay(t *testing.T) {
	for in, want := range map[string]string{"/a b/c": "/a b/c", "": `""`, "two\nlines": `"two\nlines"`, "bad\xff": `"bad\xff"`, "-dash": "-dash", "é": "é", "\x1b[31m": `"\x1b[31m"`} {
		if got := Display(in); got != want {
			t.Errorf("Display(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPages(t *testing.T) {
	p := int64(PageSize)
	for _, c := range []struct {
		off, end int64
		want     uint64
	}{{0, 0, 0}, {0, 1, 1}, {0, p, 1}, {0, p + 1, 2}, {p - 1, p + 1, 2}, {p, 2 * p, 1}, {5, 4, 0}, {-1, 4, 0}} {
		if got := PagesIn(c.off, c.end); got != c.want {
			t.Errorf("PagesIn(%d, %d) = %d, want %d", c.off, c.end, got, c.want)
		}
	}
	if PagesOf(3*p+1) != 4 || PagesOf(0) != 0 || PagesOf(-5) != 0 {
		t.Errorf("PagesOf: %d %d %d", PagesOf(3*p+1), PagesOf(0), PagesOf(-5))
	}
}

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		cached, total uint64
		want          float64
	}{{0, 0, 0}, {1, 3, 33.33}, {2, 3, 66.67}, {3, 3, 100}, {5, 4, 125}, {1, 200000, 0}, {1, 20000, 0.01}} {
		if got := Percent(c.cached, c.total); got != c.want {
			t.Errorf("Percent(%d, %d) = %v, want %v", c.cached, c.total, got, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "12": 12, "4k": 4096, "4K": 4096, "2M": 2 << 20, "1g": 1 << 30, "3T": 3 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "K", "1Q", "1.5M", "9999999999999T", "1KB"} {
		if got, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, accepted", bad, got)
		}
	}
}
