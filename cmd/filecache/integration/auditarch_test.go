package integration

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// auditArch is seccomp_data.arch for this test binary's own system calls
// (the seccomp filter of TestSeccompDeniesBPF matches it): the integration
// suite runs on amd64 and arm64 kernels.
var auditArch = func() uint32 {
	a, ok := map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]
	if !ok {
		panic("auditArch: no seccomp audit architecture known for " + runtime.GOARCH)
	}
	return a
}()
