package cli

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// top --output FILE replaces FILE whole: a reader holding the old file
// still reads the old contents, the new one is what stdout would have
// shown, readable by all, and nothing else is left in the directory.
func TestTopOutputFile(t *testing.T) {
	env := Env{LoadWalker: func(LoadOptions) (top.Walker, func(), error) { return &oneFileWalker{}, func() {}, nil }}
	want := runCLI(t, env, "top", "--format", "prometheus", "--mount", "/")
	if want.status != ExitOK || !strings.Contains(want.stdout, "filecache_top_cached_bytes") {
		t.Fatalf("top --format prometheus: %d\n%s", want.status, want.stderr)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "filecache.prom")
	if err := os.WriteFile(out, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	r := runCLI(t, env, "top", "--format", "prometheus", "--mount", "/", "--output", out)
	if r.status != ExitOK || r.stdout != "" {
		t.Fatalf("top --output: status %d, stdout %q\n%s", r.status, r.stdout, r.stderr)
	}
	got, err := os.ReadFile(out)
	// /proc/meminfo's Cached moves between the two runs.
	meminfo := regexp.MustCompile(`(?m)^filecache_meminfo_cached_bytes \d+$`)
	if err != nil || meminfo.ReplaceAllString(string(got), "") != meminfo.ReplaceAllString(want.stdout, "") {
		t.Errorf("%s holds %q (%v), want what stdout shows:\n%s", out, got, err, want.stdout)
	}
	if old, _ := io.ReadAll(held); string(old) != "old\n" {
		t.Errorf("the file held open reads %q: it was rewritten in place, not replaced", old)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("%s: mode %v (%v), want 0644", out, st.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left in the directory: %v", ents)
	}
	r = runCLI(t, env, "top", "--format", "prometheus", "--mount", "/", "--output", filepath.Join(dir, "no", "such.prom"))
	if r.status != ExitFailed || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("--output in a missing directory: status %d, stderr %q", r.status, r.stderr)
	}
}
