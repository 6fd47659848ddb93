package integration

import (
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A loop device over a 64 MiB file, partly read through the device: the
// answer is the device's own page cache and size.
func TestBlockDevice(t *testing.T) {
	bin := filecacheBin(t)
	if _, err := os.Stat("/dev/loop-control"); errors.Is(err, fs.ErrNotExist) {
		skipFeature(t, "loop", "/dev/loop-control is absent: no loop driver here, so no block device to test")
	}
	const size = 64 << 20
	backing := filepath.Join(ext4Dir(t), "backing.img")
	sized(t, backing, size)
	writeAt(t, backing, 0, 4*mib)
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup --find --show %s: %v: %s", backing, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	// The kernel drops a block device's page cache when its last opener
	// closes it, so hold it open (O_RDONLY) until the measurement is done.
	hold, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(hold) })
	rep, refs, _ := measure(t, bin, sandwich{
		args: []string{"--json", dev},
		refs: []string{dev},
		prepare: func() {
			if err := unix.Fadvise(hold, 0, 0, unix.FADV_DONTNEED); err != nil {
				t.Fatal(err)
			}
			preadFd(t, hold, 0, mib)
			preadFd(t, hold, 32*mib, 2*mib)
		},
		accept: wantCached(uint64(3*mib/pageSize), size/uint64(pageSize)/2),
	})
	checkFiles(t, rep, []string{dev}, refs)
	if f := rep.Files[0]; f.SizeBytes != size || f.Type != "block" {
		t.Errorf("%s: type %q, size_bytes %d; want \"block\", %d", dev, f.Type, f.SizeBytes, size)
	}
	t.Logf("%s: filecache %d pages, cachestat %d, mincore %d", dev, rep.Files[0].CachedPages, refs[0].Cache, refs[0].Mincore)
}

// Without root (uid/gid 65534, no capabilities) the bpf engine cannot run.
// Forced, it says so in one line and prints no figure. Automatic, it says
// why once, answers exactly (cachestat) what nobody owns or may write, and
// refuses the rest, where mincore would say every page is resident. It
// chooses its engines itself, and no BPF method can load for nobody: the
// unforced run checks it.
func TestUnprivileged(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	bin = binForAll(t, bin)
	dir := tmpfsDir(t)
	rootOwned := filepath.Join(dir, "root-owned")
	writeAt(t, rootOwned, 0, 64*1024)
	owned := filepath.Join(dir, "nobody-owned")
	writeAt(t, owned, 0, 48*1024)
	writable := filepath.Join(dir, "world-writable")
	writeAt(t, writable, 0, 32*1024)
	for p, own := range map[string]int{owned: 65534, rootOwned: 0, writable: 0} {
		if err := os.Chown(p, own, own); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(rootOwned, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(writable, 0o666); err != nil {
		t.Fatal(err)
	}
	asNobody := runOpts{cred: nobody(), ownEngine: true}

	t.Run("forced-bpf", func(t *testing.T) {
		for _, asJSON := range []bool{false, true} {
			args := []string{"--engine=bpf", rootOwned}
			if asJSON {
				args = append([]string{"--json"}, args...)
			}
			res := runWith(t, asNobody, bin, args...)
			msg := strings.TrimSuffix(res.stderr, "\n")
			if res.code == 0 || msg == "" || strings.Contains(msg, "\n") || !regexp.MustCompile(`\broot\b|CAP_BPF`).MatchString(msg) {
				t.Errorf("want a non-zero exit and one stderr line naming root or CAP_BPF\n%s", res)
			}
			noFigures(t, res, rootOwned, asJSON)
		}
	})

	t.Run("auto", func(t *testing.T) {
		refs := takeRefs(t, []string{owned, writable})
		res := runWith(t, asNobody, bin, "--json", owned, rootOwned, writable)
		if res.code != 1 {
			t.Errorf("exit %d, want 1 (one path refused)\n%s", res.code, res)
		}
		rep, err := parseReport(res.stdout)
		if err != nil {
			t.Fatalf("%v\n%s", err, res)
		}
		if msg := fallbackNotes(rep.Notes, regexp.MustCompile(`\broot\b|CAP_BPF`)); msg != "" {
			t.Errorf("%s: want one saying why bpf was not used (and cachestat's before Linux 6.5)", msg)
		}
		if len(rep.Files) != 2 || len(rep.Errors) != 1 || rep.Errors[0].Path != rootOwned || !strings.Contains(rep.Errors[0].Error, "resident") {
			t.Fatalf("want figures for the owned and the writable file, a refusal for the root-owned one\n%s", res)
		}
		want := "cachestat"
		if !haveCachestat() {
			want = "mincore" // nobody owns or may write these: mincore is truthful
		}
		for i, f := range rep.Files {
			if f.Engine != want || f.CachedPages != int64(refs[i].Cache) {
				t.Errorf("%s: %s said %d pages, cachestat as root %d", f.Path, f.Engine, f.CachedPages, refs[i].Cache)
			}
		}
		lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
		n := wantFallbackNotes()
		if len(lines) != n+1 || !strings.Contains(lines[0], "not using the bpf engine") || !strings.HasPrefix(lines[n], "filecache: "+rootOwned+": ") {
			t.Errorf("stderr: want the notes (%d) and one line for the refused path\n%s", n, res)
		}
	})
}

// The binary is static: ldd refuses it, and it has no ELF interpreter or
// shared library dependencies.
func TestStaticBinary(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err == nil && !regexp.MustCompile(`not a dynamic executable|statically linked`).Match(out) {
		t.Errorf("ldd %s lists libraries:\n%s", bin, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter (PT_INTERP): dynamically linked", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
}

// The human table: exit 0, every path mentioned, a total line for several.
func TestHumanTable(t *testing.T) {
	bin := filecacheBin(t)
	dir := tmpfsDir(t)
	var paths []string
	for i, n := range []int64{0, 5000, 3 * mib} {
		p := filepath.Join(dir, "file-"+string(rune('a'+i)))
		writeAt(t, p, 0, n)
		paths = append(paths, p)
	}
	res := run(t, bin, paths...)
	if res.code != 0 {
		t.Errorf("exit status %d, want 0\n%s", res.code, res)
	}
	for _, p := range paths {
		if !strings.Contains(res.stdout, p) {
			t.Errorf("stdout does not mention %s\n%s", p, res)
		}
	}
	if !regexp.MustCompile(`(?im)^.*total.*$`).MatchString(res.stdout) {
		t.Errorf("no total line for %d paths\n%s", len(paths), res)
	}

	one := run(t, bin, paths[2])
	if one.code != 0 || !strings.Contains(one.stdout, paths[2]) {
		t.Errorf("single path: want exit 0 and the path on stdout\n%s", one)
	}
}
