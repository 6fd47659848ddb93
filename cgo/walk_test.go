//go:build cgo

package cgo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// The bounded walk against the kernel: root, a BPF-capable kernel, tmpfs.

// boundedWalker loads walk_sb_bounded, or skips where this process may not
// load BPF programs at all.
func boundedWalker(t *testing.T) *Walker {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skip[root]: loads a BPF program and mounts tmpfs")
	}
	w, err := LoadWalker(Options{Method: bpf.MethodBounded})
	if errors.Is(err, unix.EPERM) {
		t.Skipf("skip[feature:bpf]: root may not load BPF programs here: %v", err)
	}
	if err != nil {
		t.Fatalf("load the bounded walk: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

// tmpfs mounts a tmpfs of its own on a temporary directory.
func tmpfs(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	if err := unix.Mount("tmpfs", d, "tmpfs", 0, "size=1g"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", d, err)
	}
	t.Cleanup(func() { unix.Unmount(d, unix.MNT_DETACH) })
	return d
}

// files writes n files of 1..n pages into dir (tmpfs keeps every page
// written) and returns their page counts by inode number.
func files(t *testing.T, dir, prefix string, n int) map[uint64]uint64 {
	t.Helper()
	pages := map[uint64]uint64{}
	page := os.Getpagesize()
	for i := 1; i <= n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("%s%d", prefix, i))
		if err := os.WriteFile(p, make([]byte, i*page), 0o644); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		pages[st.Ino] = uint64(i)
	}
	return pages
}

// resident is mincore's count of p's pages.
func resident(t *testing.T, p string) uint64 {
	t.Helper()
	b, err := os.ReadFile(p) // tmpfs: reading brings in nothing new
	if err != nil || len(b) == 0 {
		return 0
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, len(b), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(b)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore %s: %v", p, e)
	}
	n := uint64(0)
	for _, v := range vec {
		n += uint64(v & 1)
	}
	return n
}

func anchor(t testing.TB, dir string) int32 {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return int32(fd)
}

// TestBoundedWalkResumes: one inode a run, the bounded walk lists a quiet
// tmpfs exactly as mincore sees it, each file once, in one run an inode.
func TestBoundedWalkResumes(t *testing.T) {
	w := boundedWalker(t)
	dir := tmpfs(t)
	want := files(t, dir, "f", 40)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		ino := info.Sys().(*syscall.Stat_t).Ino
		if r := resident(t, filepath.Join(dir, e.Name())); r != want[ino] {
			t.Fatalf("%s: mincore says %d pages, %d were written", e.Name(), r, want[ino])
		}
	}
	for _, steps := range []uint32{1, 3, 0} {
		got := map[uint64]uint64{}
		sum, err := w.Walk(bpf.WalkParams{MaxSteps: 1 << 16, Cap: bpf.WalkCap, MinPages: 1, FD: anchor(t, dir), RunSteps: steps},
			func(in bpf.Inode) error {
				if _, dup := got[in.Ino]; dup {
					t.Errorf("run steps %d: inode %d returned twice", steps, in.Ino)
				}
				got[in.Ino] = in.NrPages
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		// The files and the root directory.
		runs := uint32(1)
		if steps > 0 {
			runs = (41 + steps - 1) / steps
			if 41%steps == 0 {
				runs++ // the last run only finds the list head
			}
		}
		if sum.Status != bpf.WalkDone || sum.Inodes != 41 || sum.Cached != 40 || sum.Pages != 40*41/2 || sum.Runs != runs {
			t.Errorf("run steps %d: %+v; want complete, 41 inodes, 40 cached, %d pages, %d runs", steps, sum, 40*41/2, runs)
		}
		if len(got) != len(want) {
			t.Errorf("run steps %d: %d rows, want %d", steps, len(got), len(want))
		}
		for ino, n := range want {
			if got[ino] != n {
				t.Errorf("run steps %d: inode %d: %d pages, want %d", steps, ino, got[ino], n)
			}
		}
	}
}

// membarrierGlobal is MEMBARRIER_CMD_GLOBAL, which waits for an RCU grace
// period (synchronize_rcu): an inode evicted before it is freed after one.
const membarrierGlobal = 1

// TestBoundedWalkCursorReuse: between two runs the inode the cursor stands
// on (the third of the list) is deleted, and new inodes are made on the same
// CPU after each of a few grace periods, so that one takes its memory (the
// slab allocator hands out last freed first): on another tmpfs, or on the
// walked one, where a new inode goes to the head of the list. The next run
// must refuse the cursor and end the walk lost; every row the walk returned
// must be a file the walked tmpfs had, with its pages, and no inode twice.
// A cursor check that trusted the reused memory would walk the other
// tmpfs's list (its files as rows of this one, and a walk that never gets
// back to its own list head) or this list again from near its head (the two
// inodes before the cursor twice).
func TestBoundedWalkCursorReuse(t *testing.T) {
	w := boundedWalker(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	cpu := 0
	for !old.IsSet(cpu) {
		cpu++
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)

	for _, foreign := range []bool{true, false} {
		reused := 0
		outcomes := map[string]int{}
		for attempt := 0; attempt < 20 && reused < 3; attempt++ {
			walked := tmpfs(t)
			other := walked
			if foreign {
				other = tmpfs(t)
			}
			want := files(t, walked, "f", 8)
			byIno := map[uint64]string{}
			for ino, n := range want {
				byIno[ino] = filepath.Join(walked, fmt.Sprintf("f%d", n))
			}
			acted := false
			var gone uint64 // the deleted cursor's address
			w.Between = func(c bpf.Cursor) {
				if acted {
					return
				}
				acted = true
				gone = c.Node.Addr
				p, ok := byIno[c.Node.Ino]
				if !ok {
					t.Errorf("the cursor stands on inode %d, none of the files", c.Node.Ino)
					return
				}
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 6; i++ {
					if _, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierGlobal, 0, 0); e != 0 {
						t.Fatalf("membarrier: %v", e)
					}
					if err := os.WriteFile(filepath.Join(other, fmt.Sprintf("new%d.%d", attempt, i)), []byte("x"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			var rows []bpf.Inode
			sum, err := w.Walk(bpf.WalkParams{MaxSteps: 4096, Cap: bpf.WalkCap, MinPages: 1, FD: anchor(t, walked), RunSteps: 3},
				func(in bpf.Inode) error { rows = append(rows, in); return nil })
			w.Between = nil
			if err != nil {
				t.Fatal(err)
			}
			// Rows may be of the files written first, or of those the walked
			// tmpfs holds now (new ones on it are rows as good as any).
			for _, e := range must(os.ReadDir(walked)) {
				st := must(e.Info()).Sys().(*syscall.Stat_t)
				want[st.Ino] = uint64(st.Blocks) * 512 / uint64(os.Getpagesize())
			}
			seen := map[uint64]bool{}
			for _, in := range rows {
				if seen[in.Ino] {
					t.Errorf("attempt %d: inode %d returned twice", attempt, in.Ino)
				}
				seen[in.Ino] = true
				if n, ok := want[in.Ino]; !ok || in.NrPages != n {
					t.Errorf("attempt %d: a row of inode %d with %d pages (%q): not a file of the walked tmpfs (%d pages)",
						attempt, in.Ino, in.NrPages, in.Names, n)
				}
			}
			if !acted {
				t.Fatalf("attempt %d: the walk took one run (%+v)", attempt, sum)
			}
			if sum.Status != bpf.WalkLost || sum.Runs != 2 {
				t.Errorf("attempt %d: the walk ended %v after %d runs, cursor %v; want lost at the second run", attempt, sum.Status, sum.Runs, sum.Refused)
			}
			outcomes[sum.Refused.String()]++
			// Whether a new inode did take the memory: the addresses of
			// the other list's inodes, as the cursor of a walk of it in
			// runs of one step finds them.
			w.Between = func(c bpf.Cursor) {
				if c.Node.Addr == gone {
					reused++
					outcomes["memory reused"]++
				}
			}
			_, err = w.Walk(bpf.WalkParams{MaxSteps: 4096, Cap: bpf.WalkCap, FD: anchor(t, other), RunSteps: 1}, func(bpf.Inode) error { return nil })
			w.Between = nil
			if err != nil {
				t.Fatal(err)
			}
			if t.Failed() {
				break
			}
		}
		t.Logf("another tmpfs %v: outcomes: %v", foreign, outcomes)
		if reused == 0 && !t.Failed() {
			t.Errorf("another tmpfs %v: no new inode took the deleted cursor's memory in 20 attempts (%v): nothing was proved", foreign, outcomes)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// BenchmarkWalk: each walk of a tmpfs of 100,000 one-page files (in 100
// directories), for the top 20: ns an inode, the walk alone (loaded once).
func BenchmarkWalk(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skip[root]: loads a BPF program and mounts tmpfs")
	}
	dir := tmpfs(b)
	for i := 0; i < 100; i++ {
		sub := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 1000; j++ {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprint(j)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	fd := anchor(b, dir)
	for _, m := range []string{bpf.MethodLoop, bpf.MethodBounded} {
		b.Run(m, func(b *testing.B) {
			w, err := LoadWalker(Options{Method: m})
			if errors.Is(err, bpf.ErrNoLoop) {
				b.Skipf("skip[kernel<5.17]: %v", err)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			var sum bpf.Walk
			for b.Loop() {
				if sum, err = w.Walk(bpf.WalkParams{MaxSteps: bpf.MaxWalkSteps, Want: 20, Cap: bpf.WalkCap, MinPages: 1, FD: fd},
					func(bpf.Inode) error { return nil }); err != nil || sum.Status != bpf.WalkDone {
					b.Fatalf("walk: %v, %+v", err, sum)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(sum.Inodes), "ns/inode")
			b.ReportMetric(float64(sum.Runs), "runs")
		})
	}
}
