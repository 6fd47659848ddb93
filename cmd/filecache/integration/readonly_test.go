package integration

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Files on read-only mounts get the figures cachestat and mincore give,
// named or walked: a read-only bind mount and a read-only tmpfs (files
// that stay cached), and read-only ext4 and squashfs images on a loop
// device (files whose cache the test sets up, then measures until stable).
// Opening any of them for writing would fail (EROFS), so a file answered
// is a file filecache did not open for writing.
func TestReadOnlyMounts(t *testing.T) {
	bin := filecacheBin(t)
	page := pageSize
	// fill puts the test's files into dir.
	fill := func(t *testing.T, dir string) {
		t.Helper()
		sized(t, filepath.Join(dir, "data"), 4*mib)
		writeAt(t, filepath.Join(dir, "data"), mib, mib)
		writeAt(t, filepath.Join(dir, "small"), 0, 3*page+5)
	}
	// check measures the files of a read-only dir named and walked;
	// prepare (may be nil) sets their cache up before each try.
	check := func(t *testing.T, dir string, prepare func()) {
		t.Helper()
		if err := unix.Access(filepath.Join(dir, "data"), unix.W_OK); !errors.Is(err, unix.EROFS) {
			t.Fatalf("%s: access W_OK says %v, want EROFS: the mount is not read-only", dir, err)
		}
		paths := []string{filepath.Join(dir, "data"), filepath.Join(dir, "small")}
		s := sandwich{args: append([]string{"--json"}, paths...), refs: paths, tries: 1}
		if prepare != nil {
			s.tries, s.prepare = 0, prepare
			s.accept = wantCached(uint64(256*1024/page), uint64(3*mib/page))
		}
		rep, refs, _ := measure(t, bin, s)
		checkFiles(t, rep, paths, refs)
		for try := 1; ; try++ {
			if prepare != nil {
				prepare()
			}
			files, _, _, cached, byPath := treeRef(t, dir, nil)
			res := run(t, bin, "--json", "--files", dir)
			again, _, _, cachedAgain, _ := treeRef(t, dir, nil)
			r := parseTrees(t, res)
			if res.code != 0 || len(r.Trees) != 1 || r.Trees[0].Files != files || len(r.Files) != files {
				t.Fatalf("walked: want the %d files answered\n%s", files, res)
			}
			if again != files || cachedAgain != cached {
				if try < retries {
					continue
				}
				t.Fatalf("walked: the page cache kept changing during the runs")
			}
			for _, e := range r.Files {
				if msg := entryProblems(e, e.Path, byPath[e.Path]); msg != "" {
					t.Errorf("walked %s: %s", e.Path, msg)
				}
			}
			return
		}
	}

	t.Run("bind", func(t *testing.T) {
		src := tmpfsDir(t)
		fill(t, src)
		dst := tempDir(t)
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("bind mount: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
		if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount the bind mount read-only: %v", err)
		}
		check(t, dst, nil)
	})

	t.Run("tmpfs", func(t *testing.T) {
		dir := tmpfsDir(t)
		fill(t, dir)
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount tmpfs read-only: %v", err)
		}
		check(t, dir, nil)
	})

	for _, fsType := range []string{"ext4", "squashfs"} {
		t.Run(fsType, func(t *testing.T) {
			dir := roImage(t, fsType, fill)
			data := filepath.Join(dir, "data")
			check(t, dir, func() {
				dropAndRead(t, data, [2]int64{mib, 256 * 1024}, [2]int64{3 * mib, 64 * 1024})
			})
		})
	}
}

// roImage makes a filesystem image of fsType holding what fill puts in a
// directory, attaches it to a read-only loop device and mounts it
// read-only; all undone at the end. It skips where the tool that makes the
// image, the loop driver or the filesystem is missing (the vmtest guests).
func roImage(t *testing.T, fsType string, fill func(*testing.T, string)) string {
	t.Helper()
	tool := map[string]string{"ext4": "mkfs.ext4", "squashfs": "mksquashfs"}[fsType]
	if _, err := exec.LookPath(tool); err != nil {
		skipFeature(t, tool, "%s is not on PATH (scripts/deps.sh installs it), so no %s image", tool, fsType)
	}
	if _, err := os.Stat("/dev/loop-control"); errors.Is(err, fs.ErrNotExist) {
		skipFeature(t, "loop", "/dev/loop-control is absent: no loop driver here")
	}
	if known, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(known), "\t"+fsType+"\n") {
		skipFeature(t, fsType, "the kernel lists no %s filesystem type", fsType)
	}
	work := tempDir(t)
	src := filepath.Join(work, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	fill(t, src)
	img := filepath.Join(work, "image")
	var cmd *exec.Cmd
	if fsType == "ext4" {
		cmd = exec.Command(tool, "-q", "-F", "-d", src, img, "16M")
	} else {
		cmd = exec.Command(tool, src, img, "-noappend", "-quiet", "-no-progress")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup --find --show --read-only %s: %v: %s", img, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	mnt := filepath.Join(work, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dev, mnt, fsType, unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount %s (%s) read-only on %s: %v", dev, fsType, mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

// dropAndRead drops path's clean pages from the cache (no fsync: squashfs
// refuses it) and reads the ranges given ({offset, length}) with readahead
// off, so that a known part of the file is cached.
func dropAndRead(t *testing.T, path string, ranges ...[2]int64) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		preadFd(t, fd, r[0], r[1])
	}
}
