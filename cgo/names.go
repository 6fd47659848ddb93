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
var objectPrograms = []string{progQueryLoop, progQueryBounded, progQueryAttached, progWalk, progWalkBounded}

// objectMaps are all the object's maps.
var objectMaps = []string{mapParams, mapResults, mapWalkParams, mapWalk, mapWalkRecords, mapWalkCursor}
