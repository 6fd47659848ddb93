//go:build cgo

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
	var wp C.struct_fc_walk_params
	var w C.struct_fc_walk
	var in C.struct_fc_inode
	return map[string]uintptr{
		"FC_WALK_CAP":              C.FC_WALK_CAP,
		"FC_DEPTH":                 C.FC_DEPTH,
		"FC_PATH":                  C.FC_PATH,
		"FC_TOPK":                  C.FC_TOPK,
		"FC_WALK_MAPPING":          C.FC_WALK_MAPPING,
		"FC_WALK_BDEV":             C.FC_WALK_BDEV,
		"FC_WALK_DONE":             C.FC_WALK_DONE,
		"FC_WALK_LOST":             C.FC_WALK_LOST,
		"FC_WALK_STEPS":            C.FC_WALK_STEPS,
		"FC_WALK_NO_FILE":          C.FC_WALK_NO_FILE,
		"FC_WALK_UNSET":            C.FC_WALK_UNSET,
		"FC_IN_NO_DENTRY":          C.FC_IN_NO_DENTRY,
		"FC_IN_UNHASHED":           C.FC_IN_UNHASHED,
		"FC_IN_TRUNCATED":          C.FC_IN_TRUNCATED,
		"FC_IN_DISCONNECTED":       C.FC_IN_DISCONNECTED,
		"FC_IN_FAULT":              C.FC_IN_FAULT,
		"sizeof(fc_walk_params)":   unsafe.Sizeof(wp),
		"sizeof(fc_walk)":          unsafe.Sizeof(w),
		"sizeof(fc_inode)":         unsafe.Sizeof(in),
		"fc_walk_params.min_pages": unsafe.Offsetof(wp.min_pages),
		"fc_walk_params.skip":      unsafe.Offsetof(wp.skip),
		"fc_walk_params.max_steps": unsafe.Offsetof(wp.max_steps),
		"fc_walk_params.want":      unsafe.Offsetof(wp.want),
		"fc_walk_params.cap":       unsafe.Offsetof(wp.cap),
		"fc_walk_params.fd":        unsafe.Offsetof(wp.fd),
		"fc_walk_params.flags":     unsafe.Offsetof(wp.flags),
		"fc_walk.inodes":           unsafe.Offsetof(w.inodes),
		"fc_walk.pages":            unsafe.Offsetof(w.pages),
		"fc_walk.cached":           unsafe.Offsetof(w.cached),
		"fc_walk.matched":          unsafe.Offsetof(w.matched),
		"fc_walk.emitted":          unsafe.Offsetof(w.emitted),
		"fc_walk.magic":            unsafe.Offsetof(w.magic),
		"fc_walk.dropped":          unsafe.Offsetof(w.dropped),
		"fc_walk.heap":             unsafe.Offsetof(w.heap),
		"fc_walk.dev":              unsafe.Offsetof(w.dev),
		"fc_walk.status":           unsafe.Offsetof(w.status),
		"fc_walk.heapn":            unsafe.Offsetof(w.heapn),
		"fc_inode.nrpages":         unsafe.Offsetof(in.nrpages),
		"fc_inode.size":            unsafe.Offsetof(in.size),
		"fc_inode.ino":             unsafe.Offsetof(in.ino),
		"fc_inode.mode":            unsafe.Offsetof(in.mode),
		"fc_inode.nlink":           unsafe.Offsetof(in.nlink),
		"fc_inode.rdev":            unsafe.Offsetof(in.rdev),
		"fc_inode.flags":           unsafe.Offsetof(in.flags),
		"fc_inode.depth":           unsafe.Offsetof(in.depth),
		"fc_inode.pathlen":         unsafe.Offsetof(in.pathlen),
		"fc_inode.lens":            unsafe.Offsetof(in.lens),
		"fc_inode.path":            unsafe.Offsetof(in.path),
		"FC_BATCH":                 C.FC_BATCH,
		"FC_STEP":                  C.FC_STEP,
		"FC_OK":                    C.FC_OK,
		"FC_NO_FILE":               C.FC_NO_FILE,
		"FC_NO_MAPPING":            C.FC_NO_MAPPING,
		"FC_FAULT":                 C.FC_FAULT,
		"FC_UNSET":                 C.FC_UNSET,
		"sizeof(fc_result)":        unsafe.Sizeof(r),
		"sizeof(fc_params)":        unsafe.Sizeof(p),
		"sizeof(fc_results)":       unsafe.Sizeof(C.struct_fc_results{}),
		"fc_result.nrpages":        unsafe.Offsetof(r.nrpages),
		"fc_result.size":           unsafe.Offsetof(r.size),
		"fc_result.ino":            unsafe.Offsetof(r.ino),
		"fc_result.magic":          unsafe.Offsetof(r.magic),
		"fc_result.dev":            unsafe.Offsetof(r.dev),
		"fc_result.mode":           unsafe.Offsetof(r.mode),
		"fc_result.status":         unsafe.Offsetof(r.status),
		"fc_result.nlink":          unsafe.Offsetof(r.nlink),
		"fc_result.real_ino":       unsafe.Offsetof(r.real_ino),
		"fc_result.real_dev":       unsafe.Offsetof(r.real_dev),
		"fc_result.layer":          unsafe.Offsetof(r.layer),
		"FC_NO_OVL":                C.FC_NO_OVL,
		"FC_LAYER_NONE":            C.FC_LAYER_NONE,
		"FC_LAYER_UPPER":           C.FC_LAYER_UPPER,
		"FC_LAYER_LOWER":           C.FC_LAYER_LOWER,
		"fc_params.fds":            unsafe.Offsetof(p.fds),
		"fc_params.count":          unsafe.Offsetof(p.count),
		"fc_params.start":          unsafe.Offsetof(p.start),
		"fc_params.tid":            unsafe.Offsetof(p.tid),
		"fc_params.trigger":        unsafe.Offsetof(p.trigger),
	}
}
