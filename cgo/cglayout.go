//go:build cgo

package cgo

// The cgroup walk's records as the C compiler sees filecache.h;
// cglayout_test.go holds the Go decoder in package bpf (cgwalk.go) to it.

/*
#include <linux/types.h>
#include "../bpf/filecache.h"
*/
import "C"

import "unsafe"

func cCgLayout() map[string]uintptr {
	var sum C.struct_fc_cg_sum
	var p C.struct_fc_cg_pair
	var s C.struct_fc_cg_split
	var st C.struct_fc_cg_state
	return map[string]uintptr{
		"FC_CG_PAIRS":          C.FC_CG_PAIRS,
		"FC_CG_CHUNK":          C.FC_CG_CHUNK,
		"FC_CG_CHUNKS":         C.FC_CG_CHUNKS,
		"FC_CG_STEPS":          C.FC_CG_STEPS,
		"FC_CG_LOOP":           C.FC_CG_LOOP,
		"FC_CG_SUMS":           C.FC_CG_SUMS,
		"FC_WALK_FILTER":       C.FC_WALK_FILTER,
		"FC_WALK_PAIRS":        C.FC_WALK_PAIRS,
		"FC_WALK_NO_MEMCG":     C.FC_WALK_NO_MEMCG,
		"FC_WALK_LAYOUT":       C.FC_WALK_LAYOUT,
		"FC_CGS_CHANGED":       C.FC_CGS_CHANGED,
		"sizeof(fc_cg_sum)":    unsafe.Sizeof(sum),
		"fc_cg_sum.pages":      unsafe.Offsetof(sum.pages),
		"fc_cg_sum.allowed":    unsafe.Offsetof(sum.allowed),
		"sizeof(fc_cg_pair)":   unsafe.Sizeof(p),
		"sizeof(fc_cg_split)":  unsafe.Sizeof(s),
		"sizeof(fc_cg_state)":  unsafe.Sizeof(st),
		"fc_cg_pair.id":        unsafe.Offsetof(p.id),
		"fc_cg_pair.pages":     unsafe.Offsetof(p.pages),
		"fc_cg_split.walked":   unsafe.Offsetof(s.walked),
		"fc_cg_split.other":    unsafe.Offsetof(s.other),
		"fc_cg_split.npairs":   unsafe.Offsetof(s.npairs),
		"fc_cg_split.flags":    unsafe.Offsetof(s.flags),
		"fc_cg_split.pairs":    unsafe.Offsetof(s.pairs),
		"fc_cg_state.walked":   unsafe.Offsetof(st.walked),
		"fc_cg_state.changed":  unsafe.Offsetof(st.changed),
		"fc_cg_state.unsummed": unsafe.Offsetof(st.unsummed),
		"fc_cg_state.split":    unsafe.Offsetof(st.split),
	}
}
