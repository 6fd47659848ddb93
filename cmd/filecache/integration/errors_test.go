package integration

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Paths that cannot be answered get error entries and stderr lines, in
// order; the other paths are still answered; exit status 1.
func TestErrorPathsOthersAnswered(t *testing.T) {
	bin := filecacheBin(t)
	dir := tmpfsDir(t)
	good1 := filepath.Join(dir, "good1")
	good2 := filepath.Join(dir, "good2")
	writeAt(t, good1, 0, 64*1024)
	sized(t, good2, 1*mib)
	writeAt(t, good2, 100*1024, 200*1024)
	missing := filepath.Join(dir, "missing")
	long := "/" + strings.Repeat("abcdefghi/", 460) + "x" // 4602 bytes > PATH_MAX
	notDir := good1 + "/x"
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const chardev = "/dev/null"

	args := []string{good1, missing, "", long, notDir, fifo, sock, chardev, good2}
	bad := []string{missing, "", long, notDir, fifo, sock, chardev}
	goods := []string{good1, good2}

	t.Run("json", func(t *testing.T) {
		rep, refs, res := measure(t, bin, sandwich{
			args: append([]string{"--json"}, args...), refs: goods, tries: 1, wantCode: 1,
		})
		checkFiles(t, rep, goods, refs)
		checkErrors(t, rep, bad)
		if len(rep.Errors) == len(bad) && rep.Errors[0].Error != "no such file or directory" {
			t.Errorf("reason for a missing path %q, want \"no such file or directory\"\n%s", rep.Errors[0].Error, res)
		}
	})

	t.Run("table", func(t *testing.T) {
		res := runWith(t, runOpts{timeout: 15 * time.Second}, bin, args...)
		if res.code != 1 {
			t.Errorf("exit status %d, want 1\n%s", res.code, res)
		}
		checkStderr(t, res, bad)
		for _, g := range goods {
			if !strings.Contains(res.stdout, g) {
				t.Errorf("stdout does not mention %s, which must still be answered\n%s", g, res)
			}
		}
	})

	t.Run("fifo_alone", func(t *testing.T) {
		// Must return at once: opening a FIFO for reading would block.
		res := runWith(t, runOpts{timeout: 10 * time.Second}, bin, "--json", fifo)
		if res.code != 1 {
			t.Errorf("exit status %d, want 1\n%s", res.code, res)
		}
		rep := mustReport(t, res)
		checkFiles(t, rep, nil, nil)
		checkErrors(t, rep, []string{fifo})
	})
}

// A path under a directory the caller may not search fails with "permission
// denied" while the rest is answered. The caller is uid/gid 65534 holding
// only the capabilities BPF needs (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN) as
// ambient capabilities, so it cannot override directory permissions.
func TestUnsearchableDirAsNobody(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t) // the syscall engines answer nobody only on files it owns
	bin = binForAll(t, bin)
	dir := tmpfsDir(t)
	good := filepath.Join(dir, "good")
	writeAt(t, good, 0, 96*1024)
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(locked, "secret")
	writeAt(t, secret, 0, 8*1024)
	caps := []uintptr{unix.CAP_BPF, unix.CAP_PERFMON, unix.CAP_SYS_ADMIN}
	opts := runOpts{cred: nobody(), caps: caps}

	r1 := takeRefs(t, []string{good})
	res := runWith(t, opts, bin, "--json", good, secret)
	r2 := takeRefs(t, []string{good})
	if ok, diff := sameRefs([]string{good}, r1, r2); !ok {
		t.Fatalf("tmpfs page cache changed during the run: %s", diff)
	}
	if res.code != 1 && regexp.MustCompile(`(?i)root|CAP_BPF`).MatchString(res.stderr) {
		t.Fatalf("filecache refused to run as uid 65534 holding CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN "+
			"(its own message says root or CAP_BPF suffices), so the unsearchable-directory case cannot be checked\n%s", res)
	}
	if res.code != 1 {
		t.Fatalf("exit status %d, want 1\n%s", res.code, res)
	}
	rep := mustReport(t, res)
	checkFiles(t, rep, []string{good}, r1)
	checkErrors(t, rep, []string{secret})
	if len(rep.Errors) == 1 && !strings.Contains(strings.ToLower(rep.Errors[0].Error), "permission denied") {
		t.Errorf("reason %q for %s, want it to say permission denied\n%s", rep.Errors[0].Error, secret, res)
	}
	checkStderr(t, res, []string{secret})
}

// Usage errors exit 2 and print no figure; no engine is loaded for them.
func TestUsageErrors(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	p := filepath.Join(tmpfsDir(t), "some-file")
	writeAt(t, p, 0, 8192)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"no_paths", nil},
		{"no_paths_json", []string{"--json"}},
		{"unknown_flag", []string{"--no-such-flag", p}},
		{"unknown_short_flag", []string{"-Z", p}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, bin, c.args...)
			if res.code != 2 {
				t.Errorf("exit status %d, want 2 (usage error)\n%s", res.code, res)
			}
			if strings.TrimSpace(res.stderr) == "" {
				t.Errorf("no message on stderr\n%s", res)
			}
			if strings.Contains(res.stdout, p) || strings.Contains(res.stdout, `"cached_pages"`) {
				t.Errorf("printed a figure for a usage error\n%s", res)
			}
		})
	}
}

// --btf with a file that is not BTF: the forced bpf engine fails clearly and
// prints no figure; the automatic choice says why and falls back.
func TestBadBTF(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	dir := tmpfsDir(t)
	target := filepath.Join(dir, "target")
	writeAt(t, target, 0, 64*1024)
	garbage := filepath.Join(dir, "garbage.btf")
	if err := os.WriteFile(garbage, pattern[:8192], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, btf := range []string{"/dev/null", garbage} {
		for _, asJSON := range []bool{false, true} {
			name := filepath.Base(btf)
			args := []string{"--engine=bpf", "--btf", btf, target}
			if asJSON {
				name += "_json"
				args = append([]string{"--json"}, args...)
			}
			t.Run(name, func(t *testing.T) {
				res := run(t, bin, args...)
				if res.code == 0 {
					t.Errorf("exit status 0, want non-zero: the engine cannot load with this BTF\n%s", res)
				}
				if !regexp.MustCompile(`(?i)btf`).MatchString(res.stderr) {
					t.Errorf("stderr does not say the BTF file is the problem\n%s", res)
				}
				noFigures(t, res, target, asJSON)
				t.Logf("stderr: %s", clip(res.stderr))
			})
		}
	}
	t.Run("auto", func(t *testing.T) {
		res := runWith(t, runOpts{ownEngine: true}, bin, "--json", "--btf", garbage, target)
		rep := mustParse(t, res)
		if res.code != 0 || len(rep.Files) != 1 || rep.Files[0].Engine == "bpf" || fallbackNotes(rep.Notes, regexp.MustCompile(regexp.QuoteMeta("--btf "+garbage))) != "" {
			t.Errorf("want the bad BTF noted once and the file measured by a fallback engine\n%s", res)
		}
	})
}

func mustParse(t *testing.T, res result) report {
	t.Helper()
	rep, err := parseReport(res.stdout)
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	return rep
}
