//go:build cgo

package cgo

// The bounded walk's records as the C compiler sees filecache.h;
// boundedlayout_test.go holds bpf/bounded.go to them.

/*
#include <linux/types.h>
#include "../bpf/filecache.h"
*/
import "C"

import "unsafe"

func cBoundedLayout() map[string]uintptr {
	var c C.struct_fc_cursor
	var l C.struct_fc_link
	var wp C.struct_fc_walk_params
	return map[string]uintptr{
		"FC_CHUNK":                 C.FC_CHUNK,
		"FC_CHUNKS":                C.FC_CHUNKS,
		"FC_GROUPS":                C.FC_GROUPS,
		"FC_RUN_STEPS":             C.FC_RUN_STEPS,
		"FC_WALK_MORE":             C.FC_WALK_MORE,
		"FC_CUR_OK":                C.FC_CUR_OK,
		"FC_CUR_FAULT":             C.FC_CUR_FAULT,
		"FC_CUR_UNLINKED":          C.FC_CUR_UNLINKED,
		"FC_CUR_SB":                C.FC_CUR_SB,
		"FC_CUR_INODE":             C.FC_CUR_INODE,
		"FC_CUR_NEIGHBOURS":        C.FC_CUR_NEIGHBOURS,
		"FC_CUR_SUPER":             C.FC_CUR_SUPER,
		"sizeof(fc_cursor)":        unsafe.Sizeof(c),
		"sizeof(fc_link)":          unsafe.Sizeof(l),
		"fc_link.addr":             unsafe.Offsetof(l.addr),
		"fc_link.ino":              unsafe.Offsetof(l.ino),
		"fc_link.gen":              unsafe.Offsetof(l.gen),
		"fc_cursor.node":           unsafe.Offsetof(c.node),
		"fc_cursor.prev":           unsafe.Offsetof(c.prev),
		"fc_cursor.next":           unsafe.Offsetof(c.next),
		"fc_cursor.sb":             unsafe.Offsetof(c.sb),
		"fc_cursor.steps":          unsafe.Offsetof(c.steps),
		"fc_cursor.runs":           unsafe.Offsetof(c.runs),
		"fc_cursor.refused":        unsafe.Offsetof(c.refused),
		"fc_cursor.left":           unsafe.Offsetof(c.left),
		"fc_walk_params.run_steps": unsafe.Offsetof(wp.run_steps),
	}
}
