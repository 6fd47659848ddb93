//go:build cgo

package cgo

import "github.com/filecache/filecache/bpf"

// The names filecache.bpf.c gives its programs and maps. The loader looks
// them up only through these; names_test.go finds every one, and nothing
// else, in the embedded object, so a rename on either side fails without
// root or a kernel.
const (
	progQueryLoop     = "query_loop"
	progQueryBounded  = "query_bounded"
	progQueryAttached = "query_attached"

	mapParams      = "params"
	mapResults     = "results"
	mapWalkParams  = "walk_params"
	mapWalk        = "walk"
	mapWalkRecords = "walk_records"
	mapWalkCursor  = "walk_cursor"

	// The page walk of --by-cgroup (pages.bpf.c).
	pagesLoopProgram    = "walk_pages"
	pagesBoundedProgram = "walk_pages_bounded"
	pagesParamsMap      = "pg_params"
	pagesStateMap       = "pg_state"
	pagesRecordsMap     = "pg_records"

	// The cgroup walk of top --by-cgroup and --cgroup (cgwalk.bpf.c); it
	// uses the walk's maps too.
	progCgWalk        = "walk_cg"
	progCgWalkBounded = "walk_cg_bounded"
	mapCgState        = "cg_state"
	mapCgSums         = "cg_sums"
	mapCgSplits       = "cg_splits"
	// The dentry walk of directory trees (dir.bpf.c), loaded beside a
	// query program.
	progWalkDir   = "walk_dir"
	mapDirState   = "dir_state"
	mapDirRecords = "dir_records"
)

// The walks of filecache top: their names are bpf.WalkPrograms', which
// doctor shows too.
var (
	progWalk        = bpf.WalkPrograms[bpf.MethodLoop]
	progWalkBounded = bpf.WalkPrograms[bpf.MethodBounded]
)

// programs is the query program of each method.
var programs = map[string]string{
	bpf.MethodLoop:     progQueryLoop,
	bpf.MethodBounded:  progQueryBounded,
	bpf.MethodAttached: progQueryAttached,
}

// objectPrograms are all the object's programs: open disables every one
// but the program it loads, so one missing here would be loaded too.
var objectPrograms = []string{progQueryLoop, progQueryBounded, progQueryAttached, progWalk, progWalkBounded,
	pagesLoopProgram, pagesBoundedProgram, progCgWalk, progCgWalkBounded, progWalkDir}

// objectMaps are all the object's maps.
var objectMaps = []string{mapParams, mapResults, mapWalkParams, mapWalk, mapWalkRecords, mapWalkCursor,
	pagesParamsMap, pagesStateMap, pagesRecordsMap, mapCgState, mapCgSums, mapCgSplits, mapDirState, mapDirRecords}

// programMaps are the maps each program uses. A load creates only those of
// the program it loads: the others would cost their memory for nothing, and
// before Linux 5.11 it counts against RLIMIT_MEMLOCK, 64 KiB by default
// before 5.16, which a process with CAP_BPF but not CAP_SYS_RESOURCE cannot
// raise.
var programMaps = map[string][]string{
	progQueryLoop:       {mapParams, mapResults},
	progQueryBounded:    {mapParams, mapResults},
	progQueryAttached:   {mapParams, mapResults},
	progWalk:            {mapWalkParams, mapWalk, mapWalkRecords},
	progWalkBounded:     {mapWalkParams, mapWalk, mapWalkRecords, mapWalkCursor},
	pagesLoopProgram:    {pagesParamsMap, pagesStateMap, pagesRecordsMap},
	pagesBoundedProgram: {pagesParamsMap, pagesStateMap, pagesRecordsMap},
	progCgWalk:          cgWalkMaps,
	progCgWalkBounded:   cgWalkMaps,
	progWalkDir:         {mapDirState, mapDirRecords},
}

var cgWalkMaps = []string{mapWalkParams, mapWalk, mapWalkRecords, mapWalkCursor, mapCgState, mapCgSums, mapCgSplits}
