package cgo

// The record layout as the C compiler sees filecache.h; layout_test.go holds
// the Go decoder in package bpf to it.

/*
#include <linux/types.h>
#include "../bpf/filecache.h"
*/
import "C"

import "unsafe"

func cLayout() map[string]uintptr {
	var r C.struct_fc_result
	var p C.struct_fc_params
	return map[string]uintptr{
		"FC_BATCH":           C.FC_BATCH,
		"FC_STEP":            C.FC_STEP,
		"FC_OK":              C.FC_OK,
		"FC_NO_FILE":         C.FC_NO_FILE,
		"FC_NO_MAPPING":      C.FC_NO_MAPPING,
		"FC_FAULT":           C.FC_FAULT,
		"FC_UNSET":           C.FC_UNSET,
		"sizeof(fc_result)":  unsafe.Sizeof(r),
		"sizeof(fc_params)":  unsafe.Sizeof(p),
		"sizeof(fc_results)": unsafe.Sizeof(C.struct_fc_results{}),
		"fc_result.nrpages":  unsafe.Offsetof(r.nrpages),
		"fc_result.size":     unsafe.Offsetof(r.size),
		"fc_result.ino":      unsafe.Offsetof(r.ino),
		"fc_result.magic":    unsafe.Offsetof(r.magic),
		"fc_result.dev":      unsafe.Offsetof(r.dev),
		"fc_result.mode":     unsafe.Offsetof(r.mode),
		"fc_result.status":   unsafe.Offsetof(r.status),
		"fc_result.nlink":    unsafe.Offsetof(r.nlink),
		"fc_params.fds":      unsafe.Offsetof(p.fds),
		"fc_params.count":    unsafe.Offsetof(p.count),
		"fc_params.start":    unsafe.Offsetof(p.start),
		"fc_params.tid":      unsafe.Offsetof(p.tid),
		"fc_params.trigger":  unsafe.Offsetof(p.trigger),
	}
}
