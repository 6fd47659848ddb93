package pagecache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// scripted answers by fd: a figure, or an error for the fds in refuse.
type scripted struct {
	name     string
	refuse   map[int]error
	batchErr error
	asked    [][]int
	closed   bool
}

func (s *scripted) Name() string   { return s.name }
func (s *scripted) Method() string { return s.name + "-method" }
func (s *scripted) BatchSize() int { return 512 }
func (s *scripted) Close()         { s.closed = true }
func (s *scripted) Query(hs []Handle) ([]Answer, error) {
	var fds []int
	for _, h := range hs {
		fds = append(fds, h.Fd)
	}
	s.asked = append(s.asked, fds)
	if s.batchErr != nil {
		return nil, s.batchErr
	}
	out := make([]Answer, len(hs))
	for i, h := range hs {
		if err := s.refuse[h.Fd]; err != nil {
			out[i].Err = err
			continue
		}
		out[i] = Answer{Pages: uint64(h.Fd) * 10, Size: 4096}
	}
	return out, nil
}

func stage(e Engine, err error) Stage {
	return Stage{Name: strings.Split(e.Name(), "-")[0], Load: func() (Engine, error) { return e, err }}
}

func TestChainFallsBackPerFile(t *testing.T) {
	a := &scripted{name: "a", refuse: map[int]error{2: ErrOverlay, 3: errors.New("a says no")}}
	b := &scripted{name: "b", refuse: map[int]error{3: errors.New("b says no")}}
	var notes []string
	c := &Chain{Stages: []Stage{stage(a, nil), stage(b, nil)}, Note: func(e string, err error) { notes = append(notes, e) }}
	got, err := c.Query([]Handle{{Fd: 1}, {Fd: 2}, {Fd: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Engine != "a" || got[0].Pages != 10 || got[1].Engine != "b" || got[1].Pages != 20 {
		t.Errorf("answers %+v", got)
	}
	if got[2].Err == nil || got[2].Err.Error() != "a: a says no; b: b says no" {
		t.Errorf("refused by all: %v, want each engine's reason", got[2].Err)
	}
	if len(b.asked) != 1 || len(b.asked[0]) != 2 {
		t.Errorf("b was asked %v, want only the two files a refused", b.asked)
	}
	if len(notes) != 0 || c.Name() != "a" || c.Method() != "a-method" {
		t.Errorf("notes %v name %s", notes, c.Name())
	}
	c.Close()
	if !a.closed || !b.closed {
		t.Error("engines not closed")
	}
}

func TestChainSkipsEnginesThatCannotRun(t *testing.T) {
	a := &scripted{name: "a"}
	b := &scripted{name: "b", batchErr: errors.New("b: " + ErrUnavailable.Error())}
	c3 := &scripted{name: "c"}
	var notes []string
	c := &Chain{Stages: []Stage{stage(a, errors.New("no privileges")), stage(b, nil), stage(c3, nil)},
		Note: func(e string, err error) { notes = append(notes, e+": "+err.Error()) }}
	for i := 0; i < 2; i++ {
		got, err := c.Query([]Handle{{Fd: 4}})
		if err != nil || got[0].Engine != "c" || got[0].Pages != 40 {
			t.Fatalf("query %d: %+v %v", i, got, err)
		}
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "no privileges") {
		t.Errorf("notes %q: want each engine noted once", notes)
	}
	if len(b.asked) != 1 {
		t.Errorf("an engine that failed a batch was asked again: %v", b.asked)
	}
	if c.Name() != "c" {
		t.Errorf("primary engine %s, want c", c.Name())
	}
}

func TestChainNoEngine(t *testing.T) {
	one := &Chain{Stages: []Stage{stage(&scripted{name: "a"}, ErrNoPrivilege)}}
	if _, err := one.Query([]Handle{{Fd: 1}}); !errors.Is(err, ErrNoPrivilege) {
		t.Errorf("single engine: %v, want its own error", err)
	}
	two := &Chain{Stages: []Stage{stage(&scripted{name: "a"}, errors.New("x")), stage(&scripted{name: "b"}, errors.New("y"))}}
	_, err := two.Query([]Handle{{Fd: 1}})
	var ne *NoEngineError
	if !errors.As(err, &ne) || err.Error() != "no engine can run here: a: x; b: y" {
		t.Errorf("all engines failing: %v", err)
	}
}

// The syscall engines on a file this test just wrote: the kernel's own
// figures, through fds like the scanner's (O_PATH).
func TestSyscallEngines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 5*4096), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	h := Handle{Fd: fd, Mode: unix.S_IFREG}
	m, err := MincoreEngine{}.Query([]Handle{h})
	if err != nil || m[0].Err != nil || m[0].Pages != 5 || m[0].Size != 5*4096 || m[0].Ino == 0 || m[0].Nlink != 1 {
		t.Errorf("mincore: %+v %v", m, err)
	}
	m, _ = MincoreEngine{Trusted: func(int, *unix.Stat_t) bool { return false }}.Query([]Handle{h})
	if !errors.Is(m[0].Err, ErrMincoreUntrusted) || m[0].Pages != 0 {
		t.Errorf("untrusted mincore: %+v", m[0])
	}
	c, err := CachestatEngine{}.Query([]Handle{h})
	if errors.Is(err, ErrUnavailable) {
		t.Skip("no cachestat(2) on this kernel")
	}
	if err != nil || c[0].Err != nil || c[0].Pages != 5 || c[0].Detail == nil || c[0].Detail.Cache != 5 {
		t.Errorf("cachestat: %+v %v", c, err)
	}
	gone := Handle{Fd: 999999}
	c, _ = CachestatEngine{}.Query([]Handle{gone})
	if c[0].Err == nil {
		t.Error("a closed fd was answered")
	}
}
