package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/scripts/deploy"
)

// warmUnitCommand is a warm-restart unit's command line (the snapshot
// unit's ExecStop, the restore unit's ExecStart) with this test's binary
// and snapshot file in place of the installed ones, and more arguments.
func warmUnitCommand(t *testing.T, bin, unit, name, key, snap string, more ...string) []string {
	t.Helper()
	argv, err := deploy.Command(unit, name, key)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, a := range argv {
		if strings.HasSuffix(a, ".ndjson.gz") {
			argv[i] = snap
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%s %s=%q: want one snapshot path", name, key, argv)
	}
	return append(append([]string{bin}, argv[1:]...), more...)
}

// warmUnitCaps are a unit's capabilities, less those named in without.
func warmUnitCaps(t *testing.T, unit, name string, without ...string) []uintptr {
	t.Helper()
	names, err := deploy.UnitCapabilities(unit, name)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]uintptr{"CAP_BPF": unix.CAP_BPF, "CAP_PERFMON": unix.CAP_PERFMON, "CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH}
	var caps []uintptr
	for _, n := range names {
		c, ok := byName[n]
		if !ok {
			t.Fatalf("%s grants %s, which this test does not know", name, n)
		}
		if !slices.Contains(without, n) {
			caps = append(caps, c)
		}
	}
	return caps
}

// warmUnitMemlock is a unit's LimitMEMLOCK in bytes (systemd's K, M, G).
func warmUnitMemlock(t *testing.T, unit, name string) uint64 {
	t.Helper()
	v := deploy.Values(unit, "Service", "LimitMEMLOCK")
	if len(v) != 1 {
		t.Fatalf("%s: LimitMEMLOCK %q, want one value", name, v)
	}
	s, mult := v[0], uint64(1)
	if i := strings.IndexAny(s, "KMG"); i == len(s)-1 {
		mult = 1 << (10 * (1 + strings.IndexByte("KMG", s[i])))
		s = s[:i]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: LimitMEMLOCK %q: %v", name, v[0], err)
	}
	return n * mult
}

// runAsUnit runs argv as a unit runs it: as a user of its own, holding the
// unit's capabilities less without, under its LimitMEMLOCK (which systemd
// sets before dropping privileges; the child inherits it from this
// process, which lends it its own for the run, as serve_test does).
func runAsUnit(t *testing.T, unit, name string, argv []string, without ...string) result {
	t.Helper()
	limit := warmUnitMemlock(t, unit, name)
	var was unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &was); err != nil {
		t.Fatal(err)
	}
	switch err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: limit, Max: limit}); {
	case err == nil:
		defer unix.Setrlimit(unix.RLIMIT_MEMLOCK, &was)
	case kernelAtLeast(t, featMemcgBPF):
		// Where even root may not raise it (this project's machines),
		// a kernel that charges BPF maps to the memory cgroup does not
		// need it.
	default:
		t.Fatalf("RLIMIT_MEMLOCK %d (%s's LimitMEMLOCK): %v", limit, name, err)
	}
	o := runOpts{cred: nobody(), caps: warmUnitCaps(t, unit, name, without...), ownEngine: true}
	return runWith(t, o, argv[0], argv[1:]...)
}

// TestWarmUnits runs the warm-restart units' commands as they run: as a
// user of their own (nobody here; DynamicUser in the units) holding
// exactly the units' capabilities and memlock limit. The snapshot unit's records a file its
// user may neither search for nor read (0600, under a 0700 directory);
// the restore unit's brings its pages back, and without
// CAP_DAC_READ_SEARCH cannot and says so. The walk is held to this test's
// filesystem (--mount) so that it does not record the whole machine.
func TestWarmUnits(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	mnt := roImage(t, "ext4", func(t *testing.T, src string) {
		p := filepath.Join(src, "secret")
		writeAt(t, p, 0, 4*mib)
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if err := os.Chmod(filepath.Dir(mnt), 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(mnt, "secret")
	want := everyThird(4 * mib)
	state := tempDir(t)
	if err := os.Chown(state, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(state, "snapshot.ndjson.gz")
	user := binForAll(t, bin)
	const sname, rname = "filecache-snapshot.service", "filecache-restore.service"
	snapArgv := warmUnitCommand(t, user, deploy.SnapshotUnit, sname, "ExecStop", snap, "--mount", mnt)
	restArgv := warmUnitCommand(t, user, deploy.RestoreUnit, rname, "ExecStart", snap)

	res := runAsUnit(t, deploy.SnapshotUnit, sname, snapArgv, "CAP_DAC_READ_SEARCH")
	if res.code == 0 || !strings.Contains(res.stderr, "permission denied") {
		t.Errorf("snapshot without CAP_DAC_READ_SEARCH reached %s under a 0700 directory\n%s", mnt, res)
	}
	for try := 0; ; try++ {
		cache(t, secret, want)
		release := hold(t, secret, want)
		res = runAsUnit(t, deploy.SnapshotUnit, sname, snapArgv)
		held := kernelRuns(t, secret)
		release()
		if res.code != 0 {
			t.Fatalf("the snapshot unit's command:\n%s", res)
		}
		if slices.Equal(held, want) {
			break
		}
		if try == retries {
			t.Fatalf("the page cache did not hold still around the snapshot in %d tries", retries+1)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(snap, &st); err != nil || st.Uid != 65534 || st.Mode&0o777 != 0o600 {
		t.Errorf("the snapshot: %v, owner %d, mode %o; want the unit's user's, 0600", err, st.Uid, st.Mode&0o777)
	}
	s := readSnapshot(t, snap)
	checkRecorded(t, s, secret, mnt, want)

	cache(t, secret, nil)
	res = runAsUnit(t, deploy.RestoreUnit, rname, restArgv, "CAP_DAC_READ_SEARCH")
	if got := kernelRuns(t, secret); res.code != 1 || !strings.Contains(res.stderr, secret+": open: permission denied") || len(got) != 0 {
		t.Errorf("restore without CAP_DAC_READ_SEARCH: want exit 1 and %s not read (it holds %v)\n%s", secret, got, res)
	}
	for try := 0; ; try++ {
		cache(t, secret, nil)
		res = runAsUnit(t, deploy.RestoreUnit, rname, restArgv)
		got := kernelRuns(t, secret)
		if res.code != 0 || pagecache.Overlap(got, want) != pagesIn(got) {
			t.Fatalf("the restore unit's command left %v cached of %v\n%s", got, want, res)
		}
		if slices.Equal(got, want) {
			break
		}
		if try == retries {
			t.Fatalf("restore left %v cached, want %v\n%s", got, want, res)
		}
	}
}
