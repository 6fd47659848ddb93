package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// overlayFixture is an overlay mounted on a tmpfs the test owns (so no
// page moves under it): a lower-only file, a file copied up by a write
// through the overlay, a whited-out one and a file made in the overlay
// (upper only). Files have holes, so a figure of "every page" cannot pass.
type overlayFixture struct {
	lower, upper, merged string
}

func mountOverlay(t *testing.T) overlayFixture {
	t.Helper()
	base := tmpfsDir(t)
	o := overlayFixture{lower: filepath.Join(base, "lower"), upper: filepath.Join(base, "upper"), merged: filepath.Join(base, "merged")}
	for _, d := range []string{o.lower, o.upper, filepath.Join(base, "work"), o.merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sized(t, filepath.Join(o.lower, "lo"), 4*mib)
	writeAt(t, filepath.Join(o.lower, "lo"), mib, mib+5)
	sized(t, filepath.Join(o.lower, "cu"), 3*mib)
	writeAt(t, filepath.Join(o.lower, "cu"), 0, mib)
	writeAt(t, filepath.Join(o.lower, "wh"), 0, 4096)
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", o.lower, o.upper, filepath.Join(base, "work"))
	if err := unix.Mount("overlay", o.merged, "overlay", 0, opts); err != nil {
		skipFeature(t, "overlay", "cannot mount overlayfs here: %v", err)
	}
	t.Cleanup(func() { unmountRetry(t, o.merged) })
	// Copy up cu: a write through the overlay copies it whole to upper first.
	writeAt(t, filepath.Join(o.merged, "cu"), 2*mib, 8192)
	if err := os.Remove(filepath.Join(o.merged, "wh")); err != nil {
		t.Fatal(err)
	}
	writeAt(t, filepath.Join(o.merged, "new"), 0, 3*4096+1)
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(o.upper, "wh"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("the removed file left no whiteout in upper: %v %+v", err, st)
	}
	if _, err := os.Stat(filepath.Join(o.upper, "cu")); err != nil {
		t.Fatalf("cu was not copied up: %v", err)
	}
	return o
}

// overlayBTF says whether this kernel describes overlayfs in BTF: built in
// (vmlinux's BTF has its types) or a module with BTF of its own.
func overlayBTF(t *testing.T) bool {
	if _, err := os.Stat("/sys/kernel/btf/overlay"); err == nil {
		return true
	}
	b, err := os.ReadFile("/sys/kernel/btf/vmlinux")
	return err == nil && bytes.Contains(b, []byte("\x00ovl_inode\x00"))
}

type ovlEntry struct {
	Path        string  `json:"path"`
	Engine      string  `json:"engine"`
	Device      string  `json:"device"`
	Inode       uint64  `json:"inode"`
	SizeBytes   int64   `json:"size_bytes"`
	CachedPages uint64  `json:"cached_pages"`
	Layer       string  `json:"layer"`
	RealPath    *string `json:"real_path"`
	RealDevice  string  `json:"real_device"`
	RealInode   uint64  `json:"real_inode"`
}

// Overlay files are measured where their pages are: the lower file until
// copied up, the upper one after; a whited-out name is not there. Each
// figure equals cachestat on the real file, taken right before and after.
func TestOverlay(t *testing.T) {
	bin := filecacheBin(t)
	o := mountOverlay(t)
	names := []string{"lo", "cu", "new"}
	real := []string{filepath.Join(o.lower, "lo"), filepath.Join(o.upper, "cu"), filepath.Join(o.upper, "new")}
	layers := []string{"lower", "upper", "upper"}
	var args []string
	for _, n := range names {
		args = append(args, filepath.Join(o.merged, n))
	}
	whiteout := filepath.Join(o.merged, "wh")

	engine := os.Getenv(envEngine)
	if engine == "" && !overlayBTF(t) {
		// The bpf engine says why it cannot, and auto goes on with the
		// next engine that can.
		res := runWith(t, runOpts{ownEngine: true}, bin, "--engine=bpf", args[0])
		if res.code != 1 || !strings.Contains(res.stderr, "no BTF of overlayfs") {
			t.Errorf("--engine=bpf without overlayfs BTF: want its one-line reason\n%s", res)
		}
		noFigures(t, res, args[0], false)
		skipKernel(t, featModuleBTF, "this kernel has no BTF of overlayfs; the bpf engine's refusal was checked")
	}
	if engine == "cachestat" {
		// cachestat(2) on an overlay file would say a plausible 0.
		res := run(t, bin, args[0])
		if res.code != 1 || !strings.Contains(res.stderr, "overlayfs") {
			t.Errorf("--engine=cachestat on overlayfs: want a refusal naming overlayfs\n%s", res)
		}
		noFigures(t, res, args[0], false)
		return
	}

	before := takeRefs(t, real)
	res := run(t, bin, append([]string{"--json"}, append(args, whiteout)...)...)
	after := takeRefs(t, real)
	if ok, diff := sameRefs(real, before, after); !ok {
		t.Fatalf("the real files changed during the run (a tmpfs of the test's own): %s", diff)
	}
	if res.code != 1 {
		t.Fatalf("exit status %d, want 1 (the whited-out name)\n%s", res.code, res)
	}
	rep := mustReport(t, res)
	checkErrors(t, rep, []string{whiteout})
	var doc struct{ Files []ovlEntry }
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || len(doc.Files) != len(names) {
		t.Fatalf("files: %v, %d of %d\n%s", err, len(doc.Files), len(names), res)
	}
	for i, e := range doc.Files {
		r := before[i]
		t.Logf("%s: %d pages of %d bytes, %s layer (cachestat of %s: %d)", names[i], e.CachedPages, e.SizeBytes, e.Layer, real[i], r.Cache)
		var st unix.Stat_t
		if err := unix.Stat(args[i], &st); err != nil {
			t.Fatal(err)
		}
		if e.CachedPages != r.Cache || e.SizeBytes != r.Size {
			t.Errorf("%s: %d pages of %d bytes; cachestat on %s: %d of %d", names[i], e.CachedPages, e.SizeBytes, real[i], r.Cache, r.Size)
		}
		// The file is the overlay's as stat shows it; the real one is named apart.
		if e.Inode != st.Ino || e.Device != fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)) {
			t.Errorf("%s: device %s inode %d, stat of the overlay path says %d:%d %d", names[i], e.Device, e.Inode, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
		}
		if engine == "mincore" {
			if e.Layer != "" || e.RealPath != nil {
				t.Errorf("%s: mincore cannot know the layer, yet the report says %q %v", names[i], e.Layer, e.RealPath)
			}
			continue
		}
		if e.Layer != layers[i] || e.RealPath == nil || *e.RealPath != real[i] || e.RealInode != r.Ino ||
			e.RealDevice != fmt.Sprintf("%d:%d", unix.Major(r.Dev), unix.Minor(r.Dev)) {
			t.Errorf("%s: layer %q real_path %v real %s %d; want %q %s %d:%d %d", names[i], e.Layer, e.RealPath, e.RealDevice, e.RealInode,
				layers[i], real[i], unix.Major(r.Dev), unix.Minor(r.Dev), r.Ino)
		}
	}

	// The table's layer column.
	if engine == "" || engine == "bpf" {
		tab := run(t, bin, "--output", "layer,path", args[0], args[1])
		for i := range 2 {
			if !regexp.MustCompile(`(?m)^\s*` + layers[i] + `\s+` + regexp.QuoteMeta(args[i]) + `$`).MatchString(tab.stdout) {
				t.Errorf("table: no %s row for %s\n%s", layers[i], args[i], tab)
			}
		}
	}
}

// --by-cgroup walks the real file's page cache: every page of an overlay
// file is found (cachestat of the real file) and charged to the test
// process's own cgroup, which wrote them.
func TestOverlayByCgroup(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	if !overlayBTF(t) {
		skipKernel(t, featModuleBTF, "this kernel has no BTF of overlayfs (TestOverlay checks the refusal)")
	}
	own := ownMemcg(t)
	o := mountOverlay(t)
	paths := []string{filepath.Join(o.merged, "lo"), filepath.Join(o.merged, "cu")}
	real := []string{filepath.Join(o.lower, "lo"), filepath.Join(o.upper, "cu")}
	rep, res := byCgroup(t, bin, paths...)
	for i := range paths {
		cs := cachestatPages(t, real[i])
		if rep.Files[i].CachedPages != cs {
			t.Errorf("%s: %d pages, cachestat of %s says %d", paths[i], rep.Files[i].CachedPages, real[i], cs)
		}
		checkSplit(t, paths[i], rep.Files[i], want{own: cs}, uint64(pageSize), res)
	}
}
