package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/scripts/deploy"
)

// The warm-restart units (scripts/deploy/filecache-snapshot.service and
// filecache-restore.service) held to filecache's grammar and to each
// other: the snapshot the one writes at stop is the one the other restores
// at start; both run as one user with the capabilities the bpf engine's
// check asks for plus CAP_DAC_READ_SEARCH, and nothing else; no sandboxing
// hides or moves the files whose paths they record.

func warmUnits(t *testing.T) (snap, rest *CLI, snapArgv, restArgv []string) {
	t.Helper()
	var err error
	if snapArgv, err = deploy.Command(deploy.SnapshotUnit, "filecache-snapshot.service", "ExecStop"); err != nil {
		t.Fatal(err)
	}
	if restArgv, err = deploy.Command(deploy.RestoreUnit, "filecache-restore.service", "ExecStart"); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{snapArgv, restArgv} {
		if argv[0] != "/usr/local/bin/filecache" {
			t.Fatalf("%q: want /usr/local/bin/filecache ...", argv)
		}
	}
	if snap, _, err = parse(snapArgv[1:], &Env{}); err != nil {
		t.Fatalf("ExecStop %q does not parse: %v", snapArgv, err)
	}
	if rest, _, err = parse(restArgv[1:], &Env{}); err != nil {
		t.Fatalf("ExecStart %q does not parse: %v", restArgv, err)
	}
	if snapArgv[1] != "snapshot" || restArgv[1] != "restore" {
		t.Fatalf("ExecStop %q and ExecStart %q: want snapshot, then restore", snapArgv, restArgv)
	}
	return snap, rest, snapArgv, restArgv
}

func TestWarmUnits(t *testing.T) {
	snap, rest, snapArgv, _ := warmUnits(t)
	out := snap.Snapshot.Output
	if !snap.Snapshot.Top || out == "" || rest.Restore.Snapshot != out {
		t.Errorf("the snapshot unit writes %q (--top %v), the restore unit reads %q", out, snap.Snapshot.Top, rest.Restore.Snapshot)
	}
	if !strings.HasSuffix(out, ".gz") {
		t.Errorf("the snapshot %s is not gzip'd", out)
	}
	if v := deploy.Values(deploy.RestoreUnit, "Unit", "ConditionPathExists"); len(v) != 1 || v[0] != out {
		t.Errorf("the restore unit runs when %q exists, not when the snapshot %s does", v, out)
	}
	for name, unit := range map[string]string{"snapshot": deploy.SnapshotUnit, "restore": deploy.RestoreUnit} {
		sd := deploy.Values(unit, "Service", "StateDirectory")
		if len(sd) != 1 || filepath.Dir(out) != "/var/lib/"+sd[0] {
			t.Errorf("%s unit: StateDirectory %q, the snapshot is %s", name, sd, out)
		}
		if u := deploy.Values(unit, "Service", "User"); len(u) != 1 || u[0] != "filecache" ||
			!slices.Equal(deploy.Values(unit, "Service", "DynamicUser"), []string{"yes"}) {
			t.Errorf("%s unit: User %q: want the dynamic user both units share (the state directory is theirs)", name, u)
		}
		for _, k := range []string{"PrivateTmp", "PrivateDevices", "TemporaryFileSystem", "InaccessiblePaths", "ProtectProc", "RootDirectory", "MemoryMax"} {
			if v := deploy.Values(unit, "Service", k); len(v) > 0 {
				t.Errorf("%s unit: %s=%q hides or moves files, or evicts the pages read", name, k, v)
			}
		}
		if v := deploy.Values(unit, "Service", "ProtectHome"); len(v) != 1 || v[0] != "read-only" {
			t.Errorf("%s unit: ProtectHome=%q: yes would hide /home, /root and /run/user", name, v)
		}
		if v := deploy.Values(unit, "Unit", "After"); !slices.Contains(v, "local-fs.target") {
			t.Errorf("%s unit: After=%q: the snapshot must be taken before the filesystems go, the restore after they come", name, v)
		}
		if v := deploy.Values(unit, "Service", "LimitMEMLOCK"); !slices.Equal(v, deploy.UnitValues("Service", "LimitMEMLOCK")) {
			t.Errorf("%s unit: LimitMEMLOCK=%q, the serve unit's %q: BPF maps count against it before Linux 5.11", name, v, deploy.UnitValues("Service", "LimitMEMLOCK"))
		}
		names, err := deploy.UnitCapabilities(unit, name)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH"}; !slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s unit: capabilities %q, want %q", name, names, want)
		}
		var caps pagecache.Caps
		for _, n := range names {
			caps |= 1 << unitCaps[n]
		}
		ok := func(string) error { return nil }
		if err := pagecache.CheckBPF(caps, "", ok); err != nil {
			t.Errorf("%s unit: its capabilities do not pass the bpf engine's check: %v", name, err)
		}
	}
	// The snapshot is taken at stop, and only then.
	if v := deploy.Values(deploy.SnapshotUnit, "Service", "ExecStart"); len(v) != 0 ||
		!slices.Equal(deploy.Values(deploy.SnapshotUnit, "Service", "Type"), []string{"oneshot"}) ||
		!slices.Equal(deploy.Values(deploy.SnapshotUnit, "Service", "RemainAfterExit"), []string{"yes"}) {
		t.Errorf("the snapshot unit must be a oneshot that stays active with nothing to start (ExecStart %q), so that stopping it takes the snapshot", v)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("skip[feature:systemd-analyze]: no systemd-analyze to verify the units with")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, unit := range map[string]string{"filecache-snapshot.service": deploy.SnapshotUnit, "filecache-restore.service": deploy.RestoreUnit} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(unit, snapArgv[0]+" ", self+" ")), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(analyze, "verify", p).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}
