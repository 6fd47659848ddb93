package overlay

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMounts(t *testing.T) {
	mi := strings.Join([]string{
		`23 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw`,
		// Linux 6.18 (several lower layers).
		`51 27 0:45 / /tmp/ovt/merged rw,relatime - overlay overlay rw,lowerdir=/tmp/ovt/lower1:/tmp/ovt/lower2,upperdir=/tmp/ovt/upper,workdir=/tmp/ovt/work,uuid=on`,
		// Escaped space and comma, a data-only layer after "::", a sub-tree mount.
		`52 27 0:46 /sub /mnt/a\040b rw shared:9 - overlay overlay rw,lowerdir=/l\054x::/data,upperdir=/u\040v,workdir=/w`,
		// Read-only overlay: no upper.
		`53 27 0:47 / /ro rw - overlay none ro,lowerdir=/a:/b`,
	}, "\n") + "\n"
	ms, err := ParseMounts(strings.NewReader(mi))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Dev: unix.Mkdev(0, 45), Root: "/", Point: "/tmp/ovt/merged", Upper: "/tmp/ovt/upper", Lowers: []string{"/tmp/ovt/lower1", "/tmp/ovt/lower2"}},
		{Dev: unix.Mkdev(0, 46), Root: "/sub", Point: "/mnt/a b", Upper: "/u v", Lowers: []string{"/l,x", "/data"}},
		{Dev: unix.Mkdev(0, 47), Root: "/", Point: "/ro", Lowers: []string{"/a", "/b"}},
	}
	if len(ms) != len(want) {
		t.Fatalf("%d mounts: %+v", len(ms), ms)
	}
	for i := range want {
		if ms[i].Dev != want[i].Dev || ms[i].Root != want[i].Root || ms[i].Point != want[i].Point || ms[i].Upper != want[i].Upper || !slices.Equal(ms[i].Lowers, want[i].Lowers) {
			t.Errorf("mount %d: %+v, want %+v", i, ms[i], want[i])
		}
	}
}

func ino(t *testing.T, p string) (uint64, uint64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev, st.Ino
}

// RealPath names a candidate only when stat says it is the inode the
// kernel named; directories stand in for the layers.
func TestRealPath(t *testing.T) {
	d := t.TempDir()
	for _, p := range []string{"l1/x", "l2/x", "l2/y", "u/x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(d, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mi := "51 27 0:99 / " + d + "/merged rw - overlay overlay rw,lowerdir=" + d + "/l1:" + d + "/l2,upperdir=" + d + "/u,workdir=/w\n" +
		"52 27 0:99 / " + d + "/merged/deeper rw - overlay overlay rw,lowerdir=" + d + "/l2,upperdir=/nowhere,workdir=/w\n"
	r := &Resolver{Mountinfo: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(mi)), nil }}
	ovl := unix.Mkdev(0, 99)
	merged := d + "/merged/x"

	dev, i := ino(t, d+"/l2/x")
	if got := r.RealPath(ovl, merged, "lower", dev, i); got != d+"/l2/x" {
		t.Errorf("lower x: %q, want the second layer's (the first holds another inode)", got)
	}
	dev, i = ino(t, d+"/u/x")
	if got := r.RealPath(ovl, merged, "upper", dev, i); got != d+"/u/x" {
		t.Errorf("upper x: %q", got)
	}
	if got := r.RealPath(ovl, merged, "upper", dev, i+1000); got != "" {
		t.Errorf("an inode no layer has there: %q, want none", got)
	}
	if got := r.RealPath(unix.Mkdev(0, 98), merged, "upper", dev, i); got != "" {
		t.Errorf("another overlay's device: %q, want none", got)
	}
	// The longest mount point wins: deeper/y is in that mount's layer l2.
	dev, i = ino(t, d+"/l2/y")
	if got := r.RealPath(ovl, d+"/merged/deeper/y", "lower", dev, i); got != d+"/l2/y" {
		t.Errorf("nested mount: %q", got)
	}
	// A sibling whose name starts like the mount point is not inside it.
	if got := r.RealPath(ovl, d+"/mergedx/x", "lower", dev, i); got != "" {
		t.Errorf("outside the mount: %q", got)
	}
}
