package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// testBuild is what runCLI's binary says it is.
var testBuild = Build{Version: "v-test", Commit: "c0ffee", Go: "go1.99", Libbpf: "9.9", Arch: "linux/test64"}

// TestDoctorBuild: doctor says which build it is, in the table and in JSON.
func TestDoctorBuild(t *testing.T) {
	r := runCLI(t, Env{}, "doctor", "--json")
	var d struct{ Build Build }
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("doctor --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	if d.Build != testBuild {
		t.Errorf("doctor --json build = %+v, want %+v", d.Build, testBuild)
	}
	r = runCLI(t, Env{}, "doctor")
	first, _, _ := strings.Cut(r.stdout, "\n")
	if want := "filecache                  v-test (commit c0ffee), go1.99, libbpf 9.9, linux/test64"; first != want {
		t.Errorf("doctor's first line = %q, want %q", first, want)
	}
}
