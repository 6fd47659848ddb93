//go:build cgo

package cgo

import (
	"encoding/binary"
	"testing"

	"github.com/filecache/filecache/bpf"
)

// TestLayout holds the Go decoder to the C header: a field moved or resized
// in filecache.h without the same change in bpf/record.go fails here.
func TestLayout(t *testing.T) {
	// Encode a result with distinct values at the C offsets and decode it.
	c := cLayout()
	b := make([]byte, bpf.ResultsSize)
	put64 := func(off uintptr, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
	put32 := func(off uintptr, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
	put64(c["fc_result.nrpages"], 11)
	put64(c["fc_result.size"], 22)
	put64(c["fc_result.ino"], 33)
	put64(c["fc_result.magic"], 0x794c7630)
	put32(c["fc_result.dev"], 44)
	put32(c["fc_result.mode"], 55)
	put32(c["fc_result.status"], 3)
	put32(c["fc_result.nlink"], 66)
	put64(c["fc_result.real_ino"], 77)
	put32(c["fc_result.real_dev"], 88)
	put32(c["fc_result.layer"], 2)
	got, err := bpf.DecodeResults(b, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := bpf.Result{NrPages: 11, Size: 22, Ino: 33, Magic: 0x794c7630, Dev: 44, Mode: 55, Status: bpf.StatusFault, Nlink: 66,
		RealIno: 77, RealDev: 88, Layer: bpf.LayerLower}
	if got[0] != want {
		t.Errorf("decoded %+v, want %+v", got[0], want)
	}

	p, err := bpf.Params{FDs: []int32{7, 9}, Start: 5, TID: 6, Trigger: 8}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if fd := binary.LittleEndian.Uint32(p[c["fc_params.fds"]+4:]); fd != 9 {
		t.Errorf("params fds[1] = %d, want 9", fd)
	}
	for field, want := range map[string]uint32{"count": 2, "start": 5, "tid": 6, "trigger": 8} {
		if n := binary.LittleEndian.Uint32(p[c["fc_params."+field]:]); n != want {
			t.Errorf("params %s = %d, want %d", field, n, want)
		}
	}

	for name, goValue := range map[string]uintptr{
		"FC_BATCH":           bpf.Batch,
		"FC_STEP":            bpf.Step,
		"FC_OK":              uintptr(bpf.StatusOK),
		"FC_NO_FILE":         uintptr(bpf.StatusNoFile),
		"FC_NO_MAPPING":      uintptr(bpf.StatusNoMapping),
		"FC_FAULT":           uintptr(bpf.StatusFault),
		"FC_UNSET":           uintptr(bpf.StatusUnset),
		"FC_NO_OVL":          uintptr(bpf.StatusNoOverlay),
		"FC_LAYER_NONE":      uintptr(bpf.LayerNone),
		"FC_LAYER_UPPER":     uintptr(bpf.LayerUpper),
		"FC_LAYER_LOWER":     uintptr(bpf.LayerLower),
		"sizeof(fc_result)":  bpf.ResultSize,
		"sizeof(fc_params)":  bpf.ParamsSize,
		"sizeof(fc_results)": bpf.ResultsSize,
	} {
		if c[name] != goValue {
			t.Errorf("%s: C says %d, Go says %d", name, c[name], goValue)
		}
	}
}
