package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The binary under test is built for the machine it runs on and says so:
// --version and doctor --json name the architecture uname(2) reports (the
// vmtest matrix runs the arm64 build on arm64 kernels, the amd64 one on
// x86-64 ones; a release tarball's binary must not claim another).
func TestVersionNamesMachine(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("uname: %v", err)
	}
	machine := unix.ByteSliceToString(u.Machine[:])
	goarch, ok := map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[machine]
	if !ok {
		t.Fatalf("uname says machine %q, which this test knows no Go architecture of", machine)
	}
	want := "linux/" + goarch
	res := run(t, bin, "--version")
	if res.code != 0 || !strings.HasSuffix(strings.TrimSpace(res.stdout), ", "+want+")") {
		t.Errorf("on a %s machine --version should end with %q\n%s", machine, ", "+want+")", res)
	}
	res = runWith(t, runOpts{ownEngine: true}, bin, "doctor", "--json")
	var d struct {
		Build struct {
			Arch string `json:"arch"`
		} `json:"build"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, res)
	}
	if d.Build.Arch != want {
		t.Errorf("on a %s machine doctor --json says build.arch %q, want %q", machine, d.Build.Arch, want)
	}
}
