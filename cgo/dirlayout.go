//go:build cgo

package cgo

// The dentry walk's records as the C compiler sees filecache.h;
// dirlayout_test.go holds the Go decoder in package bpf (dir.go) to it.

/*
#include <linux/types.h>
#include "../bpf/filecache.h"
*/
import "C"

import "unsafe"

func cDirLayout() map[string]uintptr {
	var d C.struct_fc_dir
	var c C.struct_fc_child
	return map[string]uintptr{
		"FC_DIR_SLOTS":      C.FC_DIR_SLOTS,
		"FC_DIR_STEPS":      C.FC_DIR_STEPS,
		"FC_DIR_CAP":        C.FC_DIR_CAP,
		"FC_DIR_ARGS":       C.FC_DIR_ARGS,
		"FC_DIR_ARG_FD":     C.FC_DIR_ARG_FD,
		"FC_DIR_ARG_SLOT":   C.FC_DIR_ARG_SLOT,
		"FC_DIR_ARG_RESUME": C.FC_DIR_ARG_RESUME,
		"FC_DIR_ARG_LEGACY": C.FC_DIR_ARG_LEGACY,
		"FC_DIR_DONE":       C.FC_DIR_DONE,
		"FC_DIR_MORE":       C.FC_DIR_MORE,
		"FC_DIR_LOST":       C.FC_DIR_LOST,
		"FC_DIR_NO_FILE":    C.FC_DIR_NO_FILE,
		"FC_DIR_LAYOUT":     C.FC_DIR_LAYOUT,
		"FC_DIR_OVERLAY":    C.FC_DIR_OVERLAY,
		"FC_DIR_UNSET":      C.FC_DIR_UNSET,
		"sizeof(fc_dir)":    unsafe.Sizeof(d),
		"sizeof(fc_child)":  unsafe.Sizeof(c),
		"fc_dir.magic":      unsafe.Offsetof(d.magic),
		"fc_dir.steps":      unsafe.Offsetof(d.steps),
		"fc_dir.dev":        unsafe.Offsetof(d.dev),
		"fc_dir.status":     unsafe.Offsetof(d.status),
		"fc_dir.count":      unsafe.Offsetof(d.count),
		"fc_dir.runs":       unsafe.Offsetof(d.runs),
		"fc_child.ino":      unsafe.Offsetof(c.ino),
		"fc_child.size":     unsafe.Offsetof(c.size),
		"fc_child.nrpages":  unsafe.Offsetof(c.nrpages),
		"fc_child.nlink":    unsafe.Offsetof(c.nlink),
		"fc_child.mode":     unsafe.Offsetof(c.mode),
	}
}
