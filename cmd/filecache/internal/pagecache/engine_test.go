package pagecache

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

type fakeRunner struct {
	res  []bpf.Result
	err  error
	fds  []int32
	done bool
}

func (f *fakeRunner) Method() string { return "fake" }
func (f *fakeRunner) Close()         { f.done = true }
func (f *fakeRunner) Query(fds []int32) ([]bpf.Result, error) {
	f.fds = fds
	return f.res, f.err
}

func TestBPFQuery(t *testing.T) {
	reg := uint32(unix.S_IFREG | 0o644)
	blk := uint32(unix.S_IFBLK | 0o660)
	r := &fakeRunner{res: []bpf.Result{
		{NrPages: 3, Size: 12288, Mode: reg},
		{Status: bpf.StatusNoFile},
		{NrPages: 9, Size: 4096, Mode: blk},
		{NrPages: 0, Size: 4096, Mode: reg, Magic: overlayfsMagic},
		{Status: bpf.StatusUnset},
		{NrPages: 1, Size: 1 << 63, Mode: reg},
		{Status: bpf.StatusNoOverlay},
		{NrPages: 2, Size: 8192, Mode: reg, Magic: 0xef53, Layer: bpf.LayerLower, RealIno: 5},
		{NrPages: 5, Size: 20480, Mode: reg, Magic: overlayfsMagic, Layer: bpf.LayerUpper, RealIno: 77, RealDev: 8<<20 | 1},
	}}
	files := []Handle{{Fd: 3, Mode: reg}, {Fd: 4, Mode: reg}, {Fd: 5, Mode: reg}, {Fd: 6, Mode: reg}, {Fd: 7, Mode: reg}, {Fd: 8, Mode: reg},
		{Fd: 9, Mode: reg}, {Fd: 10, Mode: reg}, {Fd: 11, Mode: reg}}
	got, err := BPF{Runner: r}.Query(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.fds) != 9 || r.fds[0] != 3 || r.fds[5] != 8 {
		t.Errorf("runner got fds %v", r.fds)
	}
	if got[0].Err != nil || got[0].Pages != 3 || got[0].Size != 12288 {
		t.Errorf("answer 0 = %+v", got[0])
	}
	wantErr := []string{"", "not open", "different kind", "overlayfs", "not answered", "impossible size", "no BTF of overlayfs", "not on overlayfs"}
	for i, w := range wantErr[1:] {
		a := got[i+1]
		if a.Err == nil || !strings.Contains(a.Err.Error(), w) {
			t.Errorf("answer %d = %+v, want error containing %q", i+1, a, w)
		}
		if a.Pages != 0 {
			t.Errorf("answer %d carries a figure with its error: %+v", i+1, a)
		}
	}
	if !errors.Is(got[3].Err, ErrOverlay) {
		t.Errorf("overlay answer %v is not ErrOverlay", got[3].Err)
	}
	want := RealFile{Layer: "upper", Dev: unix.Mkdev(8, 1), Ino: 77}
	if a := got[8]; a.Err != nil || a.Pages != 5 || a.Size != 20480 || a.Real == nil || *a.Real != want {
		t.Errorf("overlay file followed to its upper file: %+v (real %+v), want 5 pages of %+v", a, a.Real, want)
	}
	if got[0].Real != nil {
		t.Errorf("a file not on overlayfs has a real file: %+v", got[0].Real)
	}
}

func TestBPFQueryBatchErrors(t *testing.T) {
	if _, err := (BPF{Runner: &fakeRunner{err: errors.New("boom")}}).Query([]Handle{{Fd: 3}}); err == nil {
		t.Error("runner error not returned")
	}
	short := &fakeRunner{res: []bpf.Result{}}
	if _, err := (BPF{Runner: short}).Query([]Handle{{Fd: 3}}); err == nil {
		t.Error("missing results not reported")
	}
}
