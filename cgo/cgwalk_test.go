//go:build cgo

package cgo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// The cgroup walk against the kernel: root, a BPF-capable kernel, tmpfs.

// cgroupWalker loads the cgroup walk of method, or skips where this process
// may not load BPF programs or the kernel lacks bpf_loop for that method.
func cgroupWalker(t *testing.T, method string) *CgroupWalker {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skip[root]: loads a BPF program and mounts tmpfs")
	}
	if method == bpf.MethodLoop && !helperLoopSupported() {
		t.Skip("skip[kernel<5.17]: no bpf_loop")
	}
	w, err := LoadCgroupWalker(Options{Method: method})
	if errors.Is(err, unix.EPERM) {
		t.Skipf("skip[feature:bpf]: root may not load BPF programs here: %v", err)
	}
	if err != nil {
		var le *LoadError
		if errors.As(err, &le) {
			for _, l := range le.Log {
				t.Log(l)
			}
		}
		t.Fatalf("load the cgroup walk (%s): %v", method, err)
	}
	t.Cleanup(w.Close)
	return w
}

// ownMemcgID is this process's memory cgroup id: the inode number of its
// directory under the mount of cgroup v1's memory hierarchy, or of cgroup2
// where that holds the memory controller.
func ownMemcgID(t *testing.T) uint64 {
	t.Helper()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mount := func(v1 bool) string {
		for _, l := range strings.Split(string(mi), "\n") {
			pre, post, ok := strings.Cut(l, " - ")
			f, g := strings.Fields(pre), strings.Fields(post)
			if !ok || len(f) < 5 || len(g) < 3 || f[3] != "/" {
				continue
			}
			if v1 && g[0] == "cgroup" && strings.Contains(","+g[2]+",", ",memory,") {
				return f[4]
			}
			if !v1 && g[0] == "cgroup2" {
				if c, err := os.ReadFile(f[4] + "/cgroup.controllers"); err == nil && strings.Contains(" "+string(c), " memory") {
					return f[4]
				}
			}
		}
		return ""
	}
	var dir string
	for _, l := range strings.Split(string(self), "\n") {
		parts := strings.SplitN(l, ":", 3)
		switch {
		case len(parts) != 3:
		case strings.Contains(","+parts[1]+",", ",memory,"):
			if m := mount(true); m != "" {
				dir = m + parts[2]
			}
		case parts[0] == "0" && dir == "":
			if m := mount(false); m != "" {
				dir = m + parts[2]
			}
		}
	}
	if dir == "" {
		t.Skip("skip[config:memcg]: no mounted hierarchy holds the memory controller")
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestCgroupWalk: on a tmpfs of files this process wrote (every page
// charged to its memory cgroup), the cgroup walk returns each file with all
// its pages in one pair, sums them to the cgroup, and counts nothing when
// that cgroup is filtered out; in runs of a few steps it resumes inside
// files' trees and gives the same answer.
func TestCgroupWalk(t *testing.T) {
	for _, method := range []string{bpf.MethodLoop, bpf.MethodBounded} {
		t.Run(method, func(t *testing.T) {
			w := cgroupWalker(t, method)
			own := ownMemcgID(t)
			dir := tmpfs(t)
			want := files(t, dir, "f", 30)
			// A file of more than one tree level: 300 pages.
			big := filepath.Join(dir, "big")
			if err := os.WriteFile(big, make([]byte, 300*os.Getpagesize()), 0o644); err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Stat(big, &st); err != nil {
				t.Fatal(err)
			}
			want[st.Ino] = 300
			var total uint64
			for _, n := range want {
				total += n
			}
			for _, runSteps := range []uint32{0, 1, 7, 64} {
				p := bpf.WalkParams{MaxSteps: bpf.MaxCgSteps, Cap: bpf.WalkCap, FD: anchor(t, dir), Flags: bpf.WalkPairs, RunSteps: runSteps}
				got := map[uint64]uint64{}
				sum, cw, err := w.WalkCgroups(p, func(in bpf.Inode, s bpf.CgSplit) error {
					if len(s.Pairs) != 1 || s.Pairs[0].ID != own || s.Pairs[0].Pages != in.NrPages || s.Walked != in.NrPages || s.Other != 0 {
						t.Errorf("run steps %d: inode %d (%d pages): split %+v, want all in cgroup %d", runSteps, in.Ino, in.NrPages, s, own)
					}
					got[in.Ino] = in.NrPages
					return nil
				})
				if err != nil {
					t.Fatalf("run steps %d: %v", runSteps, err)
				}
				if sum.Status != bpf.WalkDone || sum.Pages != total || cw.Walked != total || cw.Sums[own] != total || len(cw.Sums) != 1 {
					t.Errorf("run steps %d: status %v, pages %d, walked %d, sums %v; want done, %d pages all of cgroup %d",
						runSteps, sum.Status, sum.Pages, cw.Walked, cw.Sums, total, own)
				}
				for ino, n := range want {
					if got[ino] != n {
						t.Errorf("run steps %d: inode %d: %d pages, want %d", runSteps, ino, got[ino], n)
					}
				}
				t.Logf("run steps %d: %d runs, %d inodes, %d pages", runSteps, sum.Runs, sum.Inodes, sum.Pages)
			}

			// Filtered: only cgroups cg_sums marks allowed count, yet the sums hold every cgroup.
			for _, allow := range [][]uint64{{own}, {own + 1}} {
				if err := w.Allow(allow); err != nil {
					t.Fatal(err)
				}
				p := bpf.WalkParams{MaxSteps: bpf.MaxCgSteps, Cap: bpf.WalkCap, FD: anchor(t, dir), Flags: bpf.WalkFilter}
				n := 0
				sum, cw, err := w.WalkCgroups(p, func(in bpf.Inode, s bpf.CgSplit) error { n++; return nil })
				if err != nil {
					t.Fatal(err)
				}
				wantPages, wantN := total, len(want)
				if allow[0] != own {
					wantPages, wantN = 0, 0
				}
				if sum.Pages != wantPages || n != wantN || cw.Sums[own] != total {
					t.Errorf("allow %v: %d pages in %d inodes counted, sums %v; want %d in %d, %d of cgroup %d", allow, sum.Pages, n, cw.Sums, wantPages, wantN, total, own)
				}
			}
		})
	}
}
