//go:build cgo

package cgo

import _ "embed"

// object is the compiled CO-RE object (make cgo/filecache.bpf.o, from
// bpf/filecache.bpf.c). It is loaded from memory; nothing is written to disk
// at run time. Only the loader embeds it, so the plain-Go packages build and
// test before the object exists (the build tag keeps `go vet ./...` with
// CGO_ENABLED=0 off this file too).
//
//go:embed filecache.bpf.o
var object []byte
