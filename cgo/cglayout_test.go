//go:build cgo

package cgo

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/filecache/filecache/bpf"
)

// TestCgLayout holds the cgroup walk's Go decoder (bpf/cgwalk.go) to
// filecache.h: values written at the C offsets must come back out of it.
func TestCgLayout(t *testing.T) {
	c := cCgLayout()
	le := binary.LittleEndian
	for name, goValue := range map[string]uintptr{
		"FC_CG_PAIRS": bpf.CgPairs, "FC_CG_CHUNK": bpf.CgChunk, "FC_CG_CHUNKS": bpf.CgChunks,
		"FC_CG_STEPS": bpf.CgSteps, "FC_CG_LOOP": bpf.CgLoop, "FC_CG_SUMS": bpf.CgSums,
		"FC_WALK_FILTER": uintptr(bpf.WalkFilter), "FC_WALK_PAIRS": uintptr(bpf.WalkPairs),
		"FC_WALK_NO_MEMCG": uintptr(bpf.WalkNoMemcg), "FC_WALK_LAYOUT": uintptr(bpf.WalkLayout),
		"FC_CGS_CHANGED":    uintptr(bpf.CgSplitChanged),
		"sizeof(fc_cg_sum)": bpf.CgSumSize, "sizeof(fc_cg_pair)": bpf.CgPairSize, "sizeof(fc_cg_split)": bpf.CgSplitSize, "sizeof(fc_cg_state)": bpf.CgStateSize,
	} {
		if c[name] != goValue {
			t.Errorf("%s: C says %d, Go says %d", name, c[name], goValue)
		}
	}

	s := make([]byte, bpf.CgSplitSize)
	le.PutUint64(s[c["fc_cg_split.walked"]:], 1000)
	le.PutUint64(s[c["fc_cg_split.other"]:], 7)
	le.PutUint32(s[c["fc_cg_split.npairs"]:], 3)
	le.PutUint32(s[c["fc_cg_split.flags"]:], bpf.CgSplitChanged)
	for i := 0; i < bpf.CgPairs; i++ {
		p := s[c["fc_cg_split.pairs"]+uintptr(i)*c["sizeof(fc_cg_pair)"]:]
		le.PutUint64(p[c["fc_cg_pair.id"]:], uint64(40+i))
		le.PutUint64(p[c["fc_cg_pair.pages"]:], uint64(500+i))
	}
	got, err := bpf.DecodeCgSplit(s)
	if err != nil {
		t.Fatal(err)
	}
	// Pairs past npairs are stale: never read.
	want := bpf.CgSplit{Walked: 1000, Other: 7, Flags: bpf.CgSplitChanged,
		Pairs: []bpf.CgPair{{ID: 40, Pages: 500}, {ID: 41, Pages: 501}, {ID: 42, Pages: 502}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("split decoded as %+v, want %+v", got, want)
	}
	le.PutUint32(s[c["fc_cg_split.npairs"]:], bpf.CgPairs+1)
	if _, err := bpf.DecodeCgSplit(s); err == nil {
		t.Error("a split of more pairs than it holds decoded")
	}

	sum := bpf.CgSum{Pages: 77, Allowed: true}.Encode()
	if le.Uint64(sum[c["fc_cg_sum.pages"]:]) != 77 || le.Uint32(sum[c["fc_cg_sum.allowed"]:]) != 1 {
		t.Errorf("sum encoded as %x", sum)
	}
	if got, err := bpf.DecodeCgSum(sum); err != nil || got != (bpf.CgSum{Pages: 77, Allowed: true}) {
		t.Errorf("sum decoded as %+v, %v", got, err)
	}

	st := make([]byte, bpf.CgStateSize)
	le.PutUint64(st[c["fc_cg_state.walked"]:], 11)
	le.PutUint64(st[c["fc_cg_state.changed"]:], 12)
	le.PutUint64(st[c["fc_cg_state.unsummed"]:], 13)
	cs, err := bpf.DecodeCgState(st)
	if err != nil {
		t.Fatal(err)
	}
	if cs != (bpf.CgState{Walked: 11, Changed: 12, Unsummed: 13}) {
		t.Errorf("state decoded as %+v", cs)
	}
}
