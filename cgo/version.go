//go:build cgo

package cgo

/*
#include <bpf/libbpf.h>
*/
import "C"

import "fmt"

// LibbpfVersion is the version of the libbpf linked into this binary,
// MAJOR.MINOR, as the library itself says (not its headers' macros).
func LibbpfVersion() string {
	return fmt.Sprintf("%d.%d", C.libbpf_major_version(), C.libbpf_minor_version())
}
