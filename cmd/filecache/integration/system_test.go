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
		t.Skip("/dev/loop-control is absent: no loop driver here, so no block device to test")
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

// Without root (uid/gid 65534, no capabilities) filecache says it needs root
// or CAP_BPF, in one line, and prints no figure.
func TestUnprivilegedRefused(t *testing.T) {
	bin := binForAll(t, filecacheBin(t))
	target := filepath.Join(tmpfsDir(t), "readable")
	writeAt(t, target, 0, 64*1024)
	for _, asJSON := range []bool{false, true} {
		name, args := "table", []string{target}
		if asJSON {
			name, args = "json", []string{"--json", target}
		}
		t.Run(name, func(t *testing.T) {
			res := runWith(t, runOpts{cred: nobody()}, bin, args...)
			if res.code == 0 {
				t.Errorf("exit status 0 as uid 65534, want non-zero\n%s", res)
			}
			msg := strings.TrimSuffix(res.stderr, "\n")
			if msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("stderr must be exactly one line\n%s", res)
			}
			if !regexp.MustCompile(`\broot\b|CAP_BPF`).MatchString(msg) {
				t.Errorf("stderr does not mention root or CAP_BPF\n%s", res)
			}
			noFigures(t, res, target, asJSON)
			t.Logf("exit %d, stderr: %s", res.code, msg)
		})
	}
}

// The binary is static: ldd refuses it, and it has no ELF interpreter or
// shared library dependencies.
func TestStaticBinary(t *testing.T) {
	bin := filecacheBin(t)
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
