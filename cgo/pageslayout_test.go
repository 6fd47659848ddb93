//go:build cgo

package cgo

import (
	"encoding/binary"
	"testing"

	"github.com/filecache/filecache/bpf"
)

// TestPagesLayout holds the page walk's Go decoder (bpf/pages.go) to
// filecache.h: values written at the C offsets must come back out of the Go
// decoders, and the encoders must write at the C offsets.
func TestPagesLayout(t *testing.T) {
	c := cPagesLayout()
	le := binary.LittleEndian
	for name, goValue := range map[string]uintptr{
		"FC_PG_CAP": bpf.PageCap, "FC_PG_STEPS": bpf.PageSteps,
		"FC_PG_DONE": uintptr(bpf.PageDone), "FC_PG_MORE": uintptr(bpf.PageMore), "FC_PG_UNSET": uintptr(bpf.PageUnset),
		"FC_PG_RACE": uintptr(bpf.StatusPageRace), "FC_PG_NO_MEMCG": uintptr(bpf.StatusNoMemcg), "FC_PG_LAYOUT": uintptr(bpf.StatusLayout),
		"FC_PG_RANGES":         bpf.PageRanges,
		"sizeof(fc_pg_params)": bpf.PageParamsSize, "sizeof(fc_pg_file)": bpf.PageFileSize,
		"sizeof(fc_pg_rec)": bpf.PageRecSize, "sizeof(fc_pg_state)": bpf.PageStateSize,
	} {
		if c[name] != goValue {
			t.Errorf("%s: C says %d, Go says %d", name, c[name], goValue)
		}
	}

	p, err := bpf.PageParams{FDs: []int32{5, 6, 7}, Cap: 99, MaxSteps: 1 << 40, Flags: bpf.PageRanges}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if fd := le.Uint32(p[c["fc_pg_params.fds"]+8:]); fd != 7 {
		t.Errorf("params fds[2] = %d, want 7", fd)
	}
	if n := le.Uint32(p[c["fc_pg_params.count"]:]); n != 3 {
		t.Errorf("params count = %d, want 3", n)
	}
	if n := le.Uint32(p[c["fc_pg_params.cap"]:]); n != 99 {
		t.Errorf("params cap = %d, want 99", n)
	}
	if n := le.Uint64(p[c["fc_pg_params.max_steps"]:]); n != 1<<40 {
		t.Errorf("params max_steps = %d, want 2^40", n)
	}
	if n := le.Uint32(p[c["fc_pg_params.flags"]:]); n != bpf.PageRanges {
		t.Errorf("params flags = %d, want FC_PG_RANGES", n)
	}

	s := bpf.NewPageState()
	if st := le.Uint32(s[c["fc_pg_state.status"]:]); st != uint32(bpf.PageUnset) {
		t.Errorf("a new state's status is %#x, want FC_PG_UNSET", st)
	}
	le.PutUint64(s[c["fc_pg_state.next"]:], 11)
	le.PutUint64(s[c["fc_pg_state.steps"]:], 12)
	le.PutUint32(s[c["fc_pg_state.slot"]:], 13)
	le.PutUint32(s[c["fc_pg_state.nrec"]:], 14)
	le.PutUint32(s[c["fc_pg_state.status"]:], uint32(bpf.PageMore))
	f := s[c["fc_pg_state.files"]+3*c["sizeof(fc_pg_file)"]:]
	for i, name := range []string{"nrpages", "nrpages_end", "walked", "size", "ino", "magic", "real_ino"} {
		le.PutUint64(f[c["fc_pg_file."+name]:], uint64(100+i))
	}
	for i, name := range []string{"dev", "mode", "nlink", "status", "real_dev", "layer"} {
		le.PutUint32(f[c["fc_pg_file."+name]:], uint32(200+i))
	}
	got, err := bpf.DecodePageState(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Next != 11 || got.Steps != 12 || got.Slot != 13 || got.Nrec != 14 || got.Status != bpf.PageMore {
		t.Errorf("state decoded as %+v", got)
	}
	want := bpf.PageFile{NrPages: 100, NrPagesEnd: 101, Walked: 102, Size: 103, Ino: 104, Magic: 105, RealIno: 106,
		Dev: 200, Mode: 201, Nlink: 202, Status: 203, RealDev: 204, Layer: 205}
	if got.Files[3] != want {
		t.Errorf("files[3] decoded as %+v, want %+v", got.Files[3], want)
	}

	r := make([]byte, bpf.PageRecSize)
	le.PutUint64(r[c["fc_pg_rec.memcg"]:], 0xffff888100000000)
	le.PutUint64(r[c["fc_pg_rec.id"]:], 42)
	le.PutUint64(r[c["fc_pg_rec.pages"]:], 512)
	le.PutUint64(r[c["fc_pg_rec.first"]:], 1<<33)
	le.PutUint32(r[c["fc_pg_rec.slot"]:], 9)
	rec, err := bpf.DecodePageRec(r)
	if err != nil {
		t.Fatal(err)
	}
	if rec != (bpf.PageRec{Memcg: 0xffff888100000000, ID: 42, Pages: 512, First: 1 << 33, Slot: 9}) {
		t.Errorf("record decoded as %+v", rec)
	}
}
