package integration

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Every skip of this suite goes through one of three helpers, whose message
// starts with a tag that scripts/vmtest.sh reads to tell an expected skip
// from a hidden failure (as cilium/ebpf's feature tests do):
//
//	skip[config]: ...         the test does not apply to the engine or BPF
//	                          method this run forces (FILECACHE_ENGINE,
//	                          FILECACHE_BPF_METHOD), or the suite is off
//	skip[kernel<X.Y]: ...     this kernel lacks a feature that Linux X.Y
//	                          has; on X.Y or newer the helper fails instead
//	skip[feature:NAME]: ...   this machine lacks NAME (a filesystem, a
//	                          device, a tool); when FILECACHE_FEATURES (a
//	                          space-separated list) names NAME, the helper
//	                          fails instead
//	skip[guest]: ...          the test runs on the host only (a vmtest
//	                          guest sets FILECACHE_VMTEST_GUEST): what it
//	                          shows does not depend on the kernel, and
//	                          emulation makes it too slow or lacks its tool
//
// vmtest.sh sets FILECACHE_FEATURES to what it put in the guest, and on the
// host to what scripts/deps.sh installs and the running kernel has built
// in; a row of its table fails on any skip its configuration, kernel and
// place (host or guest) do not explain.

const envFeatures = "FILECACHE_FEATURES"

// skipConfig skips a test that does not apply to the forced configuration.
func skipConfig(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Skipf("skip[config]: "+format, args...)
}

// hostOnly skips a test in a vmtest guest; it runs on the host.
func hostOnly(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(envGuest) != "" {
		t.Skipf("skip[guest]: "+format, args...)
	}
}

// envGuest is set in vmtest's guests.
const envGuest = "FILECACHE_VMTEST_GUEST"

// kernelFeature is a kernel feature and the first Linux version with it.
type kernelFeature struct {
	name         string
	major, minor int
}

var (
	featCachestat = kernelFeature{"cachestat(2)", 6, 5}
	featBPFLoop   = kernelFeature{"the bpf_loop helper", 5, 17}
	// Module BTF (CONFIG_DEBUG_INFO_BTF_MODULES) came with 5.11: overlayfs
	// built as a module has no BTF before.
	featModuleBTF = kernelFeature{"BTF of kernel modules", 5, 11}
	// From 5.11 BPF maps are charged to the memory cgroup, not RLIMIT_MEMLOCK.
	featMemcgBPF = kernelFeature{"BPF memory charged to the memory cgroup", 5, 11}
)

// skipKernel skips a test because this kernel lacks f, which the caller
// found missing; it fails the test instead on a kernel new enough to have f.
func skipKernel(t testing.TB, f kernelFeature, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if major, minor := kernelVersion(t); major > f.major || major == f.major && minor >= f.minor {
		t.Fatalf("Linux %d.%d seems to lack %s, which every kernel from %d.%d has: %s", major, minor, f.name, f.major, f.minor, why)
	}
	t.Skipf("skip[kernel<%d.%d]: %s", f.major, f.minor, why)
}

// skipFeature skips a test because this machine lacks feature name; it
// fails the test instead when FILECACHE_FEATURES says the machine has it.
func skipFeature(t testing.TB, name, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if slices.Contains(strings.Fields(os.Getenv(envFeatures)), name) {
		t.Fatalf("%s lists %s, yet: %s", envFeatures, name, why)
	}
	t.Skipf("skip[feature:%s]: %s", name, why)
}

// kernelVersion is the running kernel's major and minor version.
func kernelVersion(t testing.TB) (major, minor int) {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("uname: %v", err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", release, err)
	}
	return major, minor
}

// kernelAtLeast says whether the running kernel has f by its version.
func kernelAtLeast(t testing.TB, f kernelFeature) bool {
	major, minor := kernelVersion(t)
	return major > f.major || major == f.major && minor >= f.minor
}

// The probes the suite adapts to agree with the kernel's version, so no
// test takes the path for an older kernel on a kernel that should have
// the feature.
func TestKernelFeatures(t *testing.T) {
	filecacheBin(t)
	once(t)
	if have, want := haveCachestat(), kernelAtLeast(t, featCachestat); have != want {
		t.Errorf("cachestat(2) present: %v; Linux >= %d.%d: %v", have, featCachestat.major, featCachestat.minor, want)
	}
	for _, f := range strings.Fields(os.Getenv(envFeatures)) {
		if !slices.Contains(knownFeatures, f) {
			t.Errorf("%s names %q, which no test knows (known: %q)", envFeatures, f, knownFeatures)
		}
	}
}

// knownFeatures are the names skipFeature is called with, and the tools
// the suite runs without skipping (losetup, setpriv, prlimit: it fails
// without them).
var knownFeatures = []string{"fuse", "overlay", "squashfs", "ext4", "loop", "pty", "memcg", "thp",
	"mkfs.ext4", "mksquashfs", "unshare", "vmtouch", "fincore", "losetup", "setpriv", "prlimit", "prometheus"}
