package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestPidfile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pid")
	if err := WritePidfile(p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("pidfile holds %q (%v), want our pid", b, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d entries beside the pidfile: a temporary file was left", len(ents)-1)
	}
	if err := RemovePidfile(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("pidfile still there: %v", err)
	}
	// Taken over by another process: left alone.
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RemovePidfile(p); !errors.Is(err, ErrPidfileTaken) {
		t.Errorf("removing another process's pidfile: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("another process's pidfile was removed: %v", err)
	}
	if err := WritePidfile(filepath.Join(dir, "missing", "pid")); err == nil {
		t.Error("a pidfile in a missing directory was written")
	}
}
