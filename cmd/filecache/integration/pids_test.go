package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// filecache --pid and top --processes, against processes the test starts:
// a shell holding files open (one deleted since) and a `filecache lock`
// holding one mapped.

// holder starts `sh -c 'exec 7<F7 8<F8 ...; echo ready; read x'`: each file
// open on its fd until the test ends. It returns the shell's pid.
func holder(t *testing.T, fds map[int]string) int {
	t.Helper()
	script := ""
	var args []string
	for fd, p := range fds {
		args = append(args, p)
		script += fmt.Sprintf(` %d<"$%d"`, fd, len(args))
	}
	cmd := exec.Command("sh", append([]string{"-c", "exec" + script + "; echo ready; read x", "sh"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe() // the shell waits on it until the test ends
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("holder: %q %v", line, err)
	}
	return cmd.Process.Pid
}

type pidHolder struct {
	PID    int    `json:"pid"`
	Comm   string `json:"comm"`
	FDs    []int  `json:"fds"`
	Mapped bool   `json:"mapped"`
}

type pidDoc struct {
	Files []struct {
		Path        string      `json:"path"`
		Inode       uint64      `json:"inode"`
		CachedPages uint64      `json:"cached_pages"`
		TotalPages  uint64      `json:"total_pages"`
		Processes   []pidHolder `json:"processes"`
	} `json:"files"`
	Processes []struct {
		PID         int    `json:"pid"`
		Comm        string `json:"comm"`
		Files       int    `json:"files"`
		CachedPages uint64 `json:"cached_pages"`
		TotalPages  uint64 `json:"total_pages"`
	} `json:"processes"`
	Errors []errEntry `json:"errors"`
}

// TestPidFiles: --pid measures every regular file each process holds, once
// however many fds or mappings hold it, named as the process names it (a
// deleted file as such), with cachestat's figure taken through the
// process's own fd; each process's line sums its files.
func TestPidFiles(t *testing.T) {
	bin := filecacheBin(t)
	dir := tmpfsDir(t)
	a, gone, locked := filepath.Join(dir, "a"), filepath.Join(dir, "gone"), filepath.Join(dir, "locked")
	writeAt(t, a, 0, 3*mib)
	writeAt(t, gone, 0, mib+5)
	sized(t, locked, 2*mib)
	writeAt(t, locked, 0, mib) // half of it has pages; lock reads in the rest
	sh := holder(t, map[int]string{7: a, 8: gone, 9: a})
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	lockCmd, _, lockErr := startLock(t, bin, locked)
	defer stop(t, lockCmd, lockErr)
	lock := lockCmd.Process.Pid

	res := run(t, bin, "--json", "--pid", strconv.Itoa(sh), "--pid", strconv.Itoa(lock))
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res)
	}
	var d pidDoc
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
		t.Fatal(err)
	}
	refs := map[string]ref{}
	for p, via := range map[string]string{a: a, gone + " (deleted)": fmt.Sprintf("/proc/%d/fd/8", sh), locked: locked} {
		r, err := takeRef(via)
		if err != nil {
			t.Fatal(err)
		}
		refs[p] = r
	}
	sums := map[int]uint64{}
	files := map[int]int{}
	seen := map[string]bool{}
	for _, f := range d.Files {
		if seen[f.Path] {
			t.Errorf("%s listed twice", f.Path)
		}
		seen[f.Path] = true
		for _, h := range f.Processes {
			sums[h.PID] += f.CachedPages
			files[h.PID]++
		}
		r, known := refs[f.Path]
		if !known {
			continue
		}
		if f.CachedPages != r.Cache || f.Inode != r.Ino {
			t.Errorf("%s: inode %d, %d cached pages; cachestat through the process's own fd: inode %d, %d", f.Path, f.Inode, f.CachedPages, r.Ino, r.Cache)
		}
		var want pidHolder
		switch f.Path {
		case a:
			want = pidHolder{PID: sh, Comm: "sh", FDs: []int{7, 9}}
		case gone + " (deleted)":
			want = pidHolder{PID: sh, Comm: "sh", FDs: []int{8}}
		case locked:
			want = pidHolder{PID: lock, Mapped: true}
		}
		h := f.Processes
		if len(h) != 1 || h[0].PID != want.PID || h[0].Mapped != want.Mapped || want.FDs != nil && !slices.Equal(h[0].FDs, want.FDs) || want.Comm != "" && h[0].Comm != want.Comm {
			t.Errorf("%s: held by %+v, want %+v", f.Path, h, want)
		}
	}
	for p := range refs {
		if !seen[p] {
			t.Errorf("%s not listed\n%s", p, res)
		}
	}
	// The binary that maps the locked file is one of the lock's files.
	if !seen[bin] {
		t.Errorf("%s (mapped by the lock) not listed", bin)
	}
	if len(d.Processes) != 2 {
		t.Fatalf("processes %+v, want the shell's and the lock's", d.Processes)
	}
	for _, p := range d.Processes {
		if p.CachedPages != sums[p.PID] || p.Files != files[p.PID] {
			t.Errorf("pid %d: %d files, %d pages; its files sum to %d files, %d pages", p.PID, p.Files, p.CachedPages, files[p.PID], sums[p.PID])
		}
	}
	tab := run(t, bin, "--pid", strconv.Itoa(sh))
	if tab.code != 0 || !regexp.MustCompile(fmt.Sprintf(`(?m)\spid %d \(sh\): \d+ files$`, sh)).MatchString(tab.stdout) || !strings.Contains(tab.stdout, gone+" (deleted)") {
		t.Errorf("table: want the shell's line and the deleted file\n%s", tab)
	}
}

// TestPidChurn: processes that exit while filecache reads them are passed
// over without a word: shells that hold a file open for a few milliseconds
// each, named by --pid, give each either its files or, if gone before the
// run began, "no such process"; never another error.
func TestPidChurn(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	dir := tmpfsDir(t)
	f := filepath.Join(dir, "f")
	writeAt(t, f, 0, mib)
	noSuch := regexp.MustCompile(`^filecache: pid \d+: no such process$`)
	for round := 0; round < 10; round++ {
		var args []string
		var cmds []*exec.Cmd
		for i := 0; i < 8; i++ {
			cmd := exec.Command("sh", "-c", fmt.Sprintf(`exec 7<"$1"; i=0; while [ $i -lt %d ]; do i=$((i+1)); done`, 200*i), "sh", f)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
			args = append(args, "--pid", strconv.Itoa(cmd.Process.Pid))
		}
		// Reaped while filecache runs: /proc/PID goes for good.
		done := make(chan struct{})
		go func() {
			for _, c := range cmds {
				c.Wait()
			}
			close(done)
		}()
		res := run(t, bin, append([]string{"--json"}, args...)...)
		<-done
		bad := 0
		for _, l := range strings.Split(strings.TrimSpace(res.stderr), "\n") {
			if l == "" {
				continue
			}
			if !noSuch.MatchString(l) {
				t.Errorf("round %d: %q\n%s", round, l, res)
			}
			bad++
		}
		if (bad == 0) != (res.code == 0) || res.code > 1 {
			t.Errorf("round %d: exit %d with %d processes missing\n%s", round, res.code, bad, res)
		}
		var d pidDoc
		if err := json.Unmarshal([]byte(res.stdout), &d); err != nil || len(d.Errors) != 0 {
			t.Fatalf("round %d: %v, errors %+v\n%s", round, err, d.Errors, res)
		}
	}
}

// TestTopProcesses: top --processes names, for the files it lists, the
// processes holding them open or mapped; a file opened through overlayfs
// is held where its pages are (the lower file), where the kernel describes
// overlayfs; processes coming and going meanwhile change nothing else.
func TestTopProcesses(t *testing.T) {
	bin := filecacheBin(t)
	topKernel(t, bin)
	dir := tmpfsDir(t)
	f := filepath.Join(dir, "f")
	writeAt(t, f, 0, 4*mib)
	sh := holder(t, map[int]string{7: f})
	lockCmd, _, lockErr := startLock(t, bin, f)
	defer stop(t, lockCmd, lockErr)
	lock := lockCmd.Process.Pid
	args := []string{"--processes", "--mount", dir, "-n", "0"}
	var lower string
	var ovlSh int
	if overlayBTF(t) {
		o := mountOverlay(t)
		lower = filepath.Join(o.lower, "lo")
		ovlSh = holder(t, map[int]string{5: filepath.Join(o.merged, "lo")})
		args = append(args, "--mount", o.lower)
	}
	// Short-lived processes all along: each walk of /proc meets some going.
	churn := exec.Command("sh", "-c", `while :; do sh -c 'exec 3</etc/hostname 2>/dev/null || :' ; done`)
	churn.Stdout, churn.Stderr = io.Discard, io.Discard
	if err := churn.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { churn.Process.Kill(); churn.Wait() }()

	for i := 0; i < 3; i++ {
		res := run(t, bin, append([]string{"--json", "top"}, topArgs(t, args)...)...)
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("exit %d, stderr %q\n%s", res.code, res.stderr, res)
		}
		var d struct {
			Rows []struct {
				Inode     uint64       `json:"inode"`
				Path      string       `json:"path"`
				Processes *[]pidHolder `json:"processes"`
			} `json:"rows"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
			t.Fatal(err)
		}
		want := map[string][]pidHolder{f: {{PID: sh, FDs: []int{7}}, {PID: lock, Mapped: true}}}
		if lower != "" {
			want[lower] = []pidHolder{{PID: ovlSh, FDs: []int{5}}}
		}
		for _, r := range d.Rows {
			if r.Processes == nil {
				t.Fatalf("row %s: no processes key", r.Path)
			}
			w, ok := want[r.Path]
			if !ok {
				continue
			}
			delete(want, r.Path)
			for _, h := range w {
				j := slices.IndexFunc(*r.Processes, func(x pidHolder) bool { return x.PID == h.PID })
				if j < 0 || (*r.Processes)[j].Mapped != h.Mapped || h.FDs != nil && !slices.Equal((*r.Processes)[j].FDs, h.FDs) {
					t.Errorf("%s: processes %+v, want %+v among them", r.Path, *r.Processes, h)
				}
			}
		}
		if len(want) != 0 {
			t.Errorf("no rows for %v\n%s", want, res)
		}
	}
	tab := run(t, bin, append([]string{"top"}, topArgs(t, []string{"--processes", "--mount", dir, "-n", "1"})...)...)
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^\s+held by .*%d \(sh, fd 7\)`, sh)).MatchString(tab.stdout) {
		t.Errorf("table: no line of holders under the row\n%s", tab)
	}
}
