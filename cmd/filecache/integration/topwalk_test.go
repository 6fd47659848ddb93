package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The two walks of filecache top: bpf_loop's, one test run a filesystem
// (Linux >= 5.17), and the bounded one, test runs of at most 16384 inodes
// that each resume after a cursor they check first (every kernel).

// runSteps is what top tests give --run-steps when the walk is the bounded
// one: the small filesystems they make then take a run every 7 inodes, so
// every figure they check was put together across resumed runs.
const runSteps = 7

// topConfig skips the top tests in the suite's runs that force a query
// program or engine top does not use; they run unforced (the kernel's walk)
// and with FILECACHE_BPF_METHOD=bounded-loop (the bounded walk, wherever
// bpf_loop's is the kernel's).
func topConfig(t *testing.T) {
	t.Helper()
	if e := os.Getenv(envEngine); e != "" {
		skipConfig(t, "top walks with the bpf engine; this run forces %s", e)
	}
	if m := os.Getenv(envMethod); m != "" && m != "bounded-loop" {
		skipConfig(t, "this run forces the %s query program; top's walks run unforced and with bounded-loop", m)
	}
}

// wantWalk is the walk top must report: the bounded one when forced, else
// the kernel's (bpf_loop's from Linux 5.17).
func wantWalk(t *testing.T) string {
	if os.Getenv(envMethod) == "bounded-loop" {
		return "bounded-loop"
	}
	return kernelMethod(t)
}

// topArgs adds --run-steps to a bounded walk of the filesystems --mount
// names (a whole-machine run keeps the program's 16384).
func topArgs(t *testing.T, args []string) []string {
	if wantWalk(t) != "bounded-loop" || !slices.Contains(args, "--mount") {
		return args
	}
	return append(slices.Clone(args), "--run-steps", fmt.Sprint(runSteps))
}

// checkWalk holds a top document to the walk it should have made: the
// method, and for a complete filesystem walked once, the test runs that
// walk takes (the bounded walk's last run finds the list head).
func checkWalk(t *testing.T, d topDoc, args []string) {
	t.Helper()
	method := wantWalk(t)
	if d.Method != method {
		t.Errorf("top walked with %q, want %s", d.Method, method)
	}
	steps := uint64(1 << 14)
	if slices.Contains(args, "--mount") {
		steps = runSteps
	}
	for _, fs := range d.Filesystems {
		want := fs.Walks
		if method == "bounded-loop" {
			want = int(fs.Inodes/steps) + 1
		}
		if fs.Complete && fs.Walks == 1 && fs.Runs != want || fs.Runs < fs.Walks {
			t.Errorf("%s: %d inodes in %d walks took %d test runs, want %d (%s)", fs.Filesystem, fs.Inodes, fs.Walks, fs.Runs, want, method)
		}
	}
}

// TestTopWalks: the walk each way of choosing it gives. Forced bpf_loop on
// a kernel without it fails in one line naming bpf_loop and Linux 5.17; on
// a kernel with it, both walks (the bounded one resuming every 3 inodes)
// give the same rows and totals as cachestat on a quiet tmpfs.
func TestTopWalks(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	if kernelMethod(t) != "bpf_loop" {
		res := run(t, bin, "--bpf-method=bpf_loop", "top", "-n", "1")
		if res.code != 1 || !strings.Contains(res.stderr, "bpf_loop") || !strings.Contains(res.stderr, "5.17") ||
			res.stdout != "" || strings.Count(res.stderr, "\n") != 1 {
			t.Errorf("forced bpf_loop walk without bpf_loop: want one line naming bpf_loop and Linux 5.17, exit 1\n%s", res)
		}
	}
	a := tmpfsDir(t)
	var paths []string
	for i := 0; i < 100; i++ {
		p := filepath.Join(a, fmt.Sprintf("f%03d", i))
		writeAt(t, p, 0, int64(1+i%17)*pageSize)
		paths = append(paths, p)
	}
	refs := takeRefs(t, paths)
	var total uint64
	for _, r := range refs {
		total += r.Cache
	}
	for _, m := range []string{"bpf_loop", "bounded-loop"} {
		if m == "bpf_loop" && kernelMethod(t) != "bpf_loop" {
			continue
		}
		res := run(t, bin, "--json", "--bpf-method="+m, "top", "-n", "0", "--mount", a, "--run-steps", "3")
		var d topDoc
		if err := jsonDoc(res, &d); err != nil || res.code != 0 {
			t.Fatalf("top with %s: %v\n%s", m, err, res)
		}
		if d.Method != m || len(d.Filesystems) != 1 || len(d.Rows) != len(paths) {
			t.Fatalf("top with %s: method %q, %d filesystems, %d rows; want %s, 1, %d\n%s", m, d.Method, len(d.Filesystems), len(d.Rows), m, len(paths), res)
		}
		fs := d.Filesystems[0]
		runs := 1
		if m == "bounded-loop" {
			runs = int(fs.Inodes/3) + 1
		}
		if !fs.Complete || fs.Inodes != uint64(len(paths)+1) || fs.CachedPages != total || fs.Runs != runs {
			t.Errorf("top with %s: %+v; want complete, %d inodes, %d pages, %d runs", m, fs, len(paths)+1, total, runs)
		}
		for i, p := range paths {
			row, ok := findRow(d, refs[i].Ino, refs[i].Dev)
			if !ok || row.Path != p || row.CachedPages != refs[i].Cache {
				t.Errorf("top with %s: %s: row %+v (found %v), want %d pages", m, p, row, ok, refs[i].Cache)
			}
		}
	}
}

// TestTopResumeChurn: files created, grown and deleted on a tmpfs while
// the bounded walk goes through it 3 inodes a run, so the inode a run
// stopped at is often deleted, or its neighbours, before the next run: each
// run of top ends with a valid document, the file nobody touches has its
// exact figure, every other row is a churned file (or, deleted, one with no
// name left) with a figure it can have had, never a row of anything else,
// and a filesystem walked in vain three times says it is partial.
func TestTopResumeChurn(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	a := tmpfsDir(t)
	still := filepath.Join(a, "still")
	writeAt(t, still, 0, 5*mib)
	r := takeRefs(t, []string{still})[0]
	// Each churn file gets 3 pages twice, then is deleted: 0 to 6 pages.
	stop := churning(func(i int) {
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // leaves the CPU to filecache under emulation
		}
		p := filepath.Join(a, fmt.Sprintf("churn%d", i%200))
		if i%3 == 2 {
			os.Remove(p)
			return
		}
		if f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
			f.Write(make([]byte, 3*pageSize))
			f.Close()
		}
	})
	defer stop()
	runs, partial, lost, resumed := 10, 0, 0, 0
	for i := 0; i < runs; i++ {
		res := run(t, bin, "--json", "--bpf-method=bounded-loop", "top", "-n", "0", "--mount", a, "--run-steps", "3")
		var d topDoc
		if err := jsonDoc(res, &d); err != nil || res.code != 0 {
			t.Fatalf("run %d: %v\n%s", i, err, res)
		}
		if len(d.Filesystems) != 1 {
			t.Fatalf("run %d: %d filesystems walked, want 1\n%s", i, len(d.Filesystems), res)
		}
		fs := d.Filesystems[0]
		lost += fs.Walks - 1
		resumed += fs.Runs - fs.Walks
		if d.Partial {
			partial++
			if fs.Complete {
				t.Errorf("run %d: partial, but the filesystem says it is complete: %+v", i, fs)
			}
		} else if !fs.Complete {
			t.Errorf("run %d: the filesystem is not complete, but the document is not partial: %+v", i, fs)
		}
		if row, ok := findRow(d, r.Ino, r.Dev); !ok || row.CachedPages != r.Cache || row.Path != still {
			t.Errorf("run %d: the untouched file: row %+v (found %v), want %d pages", i, row, ok, r.Cache)
		}
		for _, row := range d.Rows {
			if row.Path == still {
				continue
			}
			// A churned file caught between its unlink and its eviction
			// has no name left: its figure must still be one it can have.
			name, ok := strings.CutPrefix(row.Path, a+"/churn")
			var k int
			if row.NoName {
				ok, name = true, "0"
			}
			if _, err := fmt.Sscanf(name, "%d", &k); !ok || err != nil || k >= 200 || row.CachedPages > 6 || row.CachedPages == 0 {
				t.Errorf("run %d: row %+v: not a churned file with a figure it can have had (1 to 6 pages)", i, row)
			}
		}
	}
	t.Logf("%d runs of top: %d walks lost a race and were done again, %d resumed runs, %d partial", runs, lost, resumed, partial)
	if resumed == 0 {
		t.Errorf("no walk resumed: the test proved nothing")
	}
}

func jsonDoc(res result, d *topDoc) error { return json.Unmarshal([]byte(res.stdout), d) }
