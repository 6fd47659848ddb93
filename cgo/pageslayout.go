//go:build cgo

package cgo

// The page walk's records as the C compiler sees filecache.h;
// pageslayout_test.go holds the Go decoder in package bpf (pages.go) to it.

/*
#include <linux/types.h>
#include "../bpf/filecache.h"
*/
import "C"

import "unsafe"

func cPagesLayout() map[string]uintptr {
	var p C.struct_fc_pg_params
	var f C.struct_fc_pg_file
	var r C.struct_fc_pg_rec
	var s C.struct_fc_pg_state
	return map[string]uintptr{
		"FC_PG_CAP":              C.FC_PG_CAP,
		"FC_PG_STEPS":            C.FC_PG_STEPS,
		"FC_PG_DONE":             C.FC_PG_DONE,
		"FC_PG_MORE":             C.FC_PG_MORE,
		"FC_PG_UNSET":            C.FC_PG_UNSET,
		"FC_PG_RACE":             C.FC_PG_RACE,
		"FC_PG_NO_MEMCG":         C.FC_PG_NO_MEMCG,
		"FC_PG_LAYOUT":           C.FC_PG_LAYOUT,
		"FC_PG_RANGES":           C.FC_PG_RANGES,
		"sizeof(fc_pg_params)":   unsafe.Sizeof(p),
		"sizeof(fc_pg_file)":     unsafe.Sizeof(f),
		"sizeof(fc_pg_rec)":      unsafe.Sizeof(r),
		"sizeof(fc_pg_state)":    unsafe.Sizeof(s),
		"fc_pg_params.fds":       unsafe.Offsetof(p.fds),
		"fc_pg_params.count":     unsafe.Offsetof(p.count),
		"fc_pg_params.cap":       unsafe.Offsetof(p.cap),
		"fc_pg_params.max_steps": unsafe.Offsetof(p.max_steps),
		"fc_pg_params.flags":     unsafe.Offsetof(p.flags),
		"fc_pg_file.nrpages":     unsafe.Offsetof(f.nrpages),
		"fc_pg_file.nrpages_end": unsafe.Offsetof(f.nrpages_end),
		"fc_pg_file.walked":      unsafe.Offsetof(f.walked),
		"fc_pg_file.size":        unsafe.Offsetof(f.size),
		"fc_pg_file.ino":         unsafe.Offsetof(f.ino),
		"fc_pg_file.magic":       unsafe.Offsetof(f.magic),
		"fc_pg_file.real_ino":    unsafe.Offsetof(f.real_ino),
		"fc_pg_file.dev":         unsafe.Offsetof(f.dev),
		"fc_pg_file.mode":        unsafe.Offsetof(f.mode),
		"fc_pg_file.nlink":       unsafe.Offsetof(f.nlink),
		"fc_pg_file.status":      unsafe.Offsetof(f.status),
		"fc_pg_file.real_dev":    unsafe.Offsetof(f.real_dev),
		"fc_pg_file.layer":       unsafe.Offsetof(f.layer),
		"fc_pg_rec.memcg":        unsafe.Offsetof(r.memcg),
		"fc_pg_rec.id":           unsafe.Offsetof(r.id),
		"fc_pg_rec.pages":        unsafe.Offsetof(r.pages),
		"fc_pg_rec.first":        unsafe.Offsetof(r.first),
		"fc_pg_rec.slot":         unsafe.Offsetof(r.slot),
		"fc_pg_state.next":       unsafe.Offsetof(s.next),
		"fc_pg_state.steps":      unsafe.Offsetof(s.steps),
		"fc_pg_state.slot":       unsafe.Offsetof(s.slot),
		"fc_pg_state.nrec":       unsafe.Offsetof(s.nrec),
		"fc_pg_state.status":     unsafe.Offsetof(s.status),
		"fc_pg_state.files":      unsafe.Offsetof(s.files),
	}
}
