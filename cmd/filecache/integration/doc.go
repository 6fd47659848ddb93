// Package integration holds filecache's root integration tests: they run the
// built binary (FILECACHE_BIN) on files and block devices the tests create,
// and compare every figure it prints with cachestat(2) and mincore(2) taken
// back to back on the same files.
//
// The references are system calls made in this package (refs_test.go):
// cachestat(2) where the kernel has it and mincore(2) on a mapping made
// here, never the code under test, and TestReferencesAgreeWithTools holds
// them to vmtouch and fincore. Every skip carries a tag (skip_test.go) that
// scripts/vmtest.sh checks against the row's configuration and kernel.
//
// The tests run only when FILECACHE_INTEGRATION is set (make integration sets
// it, and FILECACHE_BIN); otherwise each one skips, so a plain `go test ./...`
// without root passes. When it is set, a missing binary or a caller that is
// not root is a failure, not a skip.
//
// The host reclaims this machine's page cache on its own every few minutes,
// so no test compares against a number taken earlier. Each measurement is a
// "stable sandwich": reference R1 (cachestat + mincore), one filecache run,
// reference R2; only when R1 equals R2 must filecache equal them exactly,
// otherwise the state is set up again and the measurement retried. Files on
// a tmpfs the tests mount themselves are never reclaimed, so there the first
// sandwich must already be stable.
//
// Everything the tests write lives in temporary directories under /var/tmp
// (ext4 here) or on tmpfs mounts inside them, removed or unmounted when the
// test ends; loop devices are detached the same way.
package integration
