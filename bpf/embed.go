// Package bpf holds filecache's BPF program (filecache.bpf.c), the record
// layout it shares with user space (filecache.h), the compiled object
// embedded as bytes, and the plain-Go encoder and decoder for that layout.
package bpf

import _ "embed"

// Object is the compiled CO-RE object (make bpf/filecache.bpf.o). It is
// loaded from memory; nothing is written to disk at run time.
//
//go:embed filecache.bpf.o
var Object []byte
