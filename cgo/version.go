//go:build cgo

package cgo

import "github.com/aquasecurity/libbpfgo"

// LibbpfVersion is the version of the libbpf linked in, as its headers
// say it (vMAJOR.MINOR).
func LibbpfVersion() string { return libbpfgo.LibbpfVersionString() }
