package procs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMaps(t *testing.T) {
	in := []byte(`55d0c0a00000-55d0c0a28000 r--p 00000000 fe:01 1311016                    /usr/bin/bash
55d0c0a28000-55d0c0b1d000 r-xp 00028000 fe:01 1311016                    /usr/bin/bash
55d0c1d4b000-55d0c1ebc000 rw-p 00000000 00:00 0                          [heap]
7f1e3c000000-7f1e3c021000 rw-p 00000000 00:00 0 
7f1e40000000-7f1e40400000 rw-s 00000000 00:1a 4242                       /dev/shm/a file with spaces (deleted)
7f1e41000000-7f1e41001000 r--s 00000000 103:05 77                        /data/x
7ffd5a3f4000-7ffd5a415000 rw-p 00000000 00:00 0                          [stack]
7ffd5a5d4000-7ffd5a5d6000 r-xp 00000000 00:00 0                          [vdso]
`)
	got := ParseMaps(in)
	want := []Mapping{
		{Range: "55d0c0a00000-55d0c0a28000", Dev: unix.Mkdev(0xfe, 1), Ino: 1311016, Path: "/usr/bin/bash"},
		{Range: "7f1e40000000-7f1e40400000", Dev: unix.Mkdev(0, 0x1a), Ino: 4242, Path: "/dev/shm/a file with spaces", Deleted: true},
		{Range: "7f1e41000000-7f1e41001000", Dev: unix.Mkdev(0x103, 5), Ino: 77, Path: "/data/x"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParseMaps:\n got %+v\nwant %+v", got, want)
	}
}

// A child process holding a file open (deleted since), another mapped, and
// one both: Of lists each once, with its fds and whether it is mapped, and
// a path that opens the file itself.
func TestOf(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"open", "mapped", "both"} {
		if err := os.WriteFile(filepath.Join(dir, n), make([]byte, 8192), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The shell holds "open" on fd 7 and "both" on fd 8; the mapping is the
	// test's own (a child cannot mmap from a shell), so Of is asked of this
	// process too.
	cmd := exec.Command("sh", "-c", `exec 7<"$1" 8<"$2"; rm "$1"; echo ready; read x`, "sh", filepath.Join(dir, "open"), filepath.Join(dir, "both"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.StdinPipe(); err != nil { // held open: the shell waits on it
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("child: %q %v", buf, err)
	}
	files, err := Of("/proc", cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	o, b := byPath[filepath.Join(dir, "open")], byPath[filepath.Join(dir, "both")]
	if !o.Deleted || !slices.Equal(o.Holder.FDs, []int{7}) || o.Holder.Mapped || o.Holder.PID != cmd.Process.Pid || o.Holder.Comm != "sh" {
		t.Errorf("the deleted open file: %+v", o)
	}
	if b.Deleted || !slices.Equal(b.Holder.FDs, []int{8}) {
		t.Errorf("the open file: %+v", b)
	}
	// Via opens the file itself, deleted or not.
	var st unix.Stat_t
	if err := unix.Stat(o.Via, &st); err != nil || st.Ino != o.Ino || st.Nlink != 0 {
		t.Errorf("via %s: %+v %v", o.Via, st, err)
	}

	f, err := os.Open(filepath.Join(dir, "mapped"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, 8192, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	g, err := os.Open(filepath.Join(dir, "both"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	m2, err := unix.Mmap(int(g.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m2)
	own, err := Of("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range own {
		switch x.Path {
		case filepath.Join(dir, "mapped"):
			n++
			// Held by the open fd (f) and the mapping.
			if !x.Holder.Mapped || !slices.Equal(x.Holder.FDs, []int{int(f.Fd())}) {
				t.Errorf("the mapped file: %+v", x)
			}
		case filepath.Join(dir, "both"):
			n++
			if !x.Holder.Mapped || !slices.Contains(x.Holder.FDs, int(g.Fd())) {
				t.Errorf("the file open and mapped: %+v", x)
			}
		}
	}
	if n != 2 {
		t.Errorf("own files %+v: want mapped and both once each", own)
	}

	cmd.Process.Kill()
	cmd.Wait()
	if _, err := Of("/proc", cmd.Process.Pid); !errors.Is(err, ErrGone) {
		t.Errorf("a process gone: %v, want ErrGone", err)
	}
}
