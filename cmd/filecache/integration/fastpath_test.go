package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// `filecache FILE...` with nothing else is answered by the fast path
// (cgo/fastpath/fastpath.c) before the Go runtime starts, where it can be:
// root with the bpf engine's privileges, regular files on local
// filesystems, cachestat(2). GODEBUG=inittrace=1 makes the Go runtime print
// a line for each package it initialises, so an empty stderr under it says
// Go never started. `filecache -- FILE...` is the same command to the Go
// path (the fast path takes no option, "--" included), and must print the
// same bytes.

// rawRun runs bin with exactly args (no option of the suite's added) and
// extra environment.
func rawRun(t *testing.T, bin string, cred *syscall.Credential, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{args: args, stdout: so.String(), stderr: se.String()}
	if ctx.Err() != nil {
		t.Fatalf("filecache did not finish within %v (blocked?)\n%s", runTimeout, r)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return r
}

// goStarted says whether the Go runtime ran: under GODEBUG=inittrace=1 it
// writes "init ..." lines to stderr.
func goStarted(res result) bool { return strings.Contains(res.stderr, "init ") }

// fastAndGo runs paths through the fast path and through the Go path and
// wants the same stdout and exit status; it reports whether the fast path
// answered, retrying while the references move (ext4: the host reclaims).
func fastAndGo(t *testing.T, bin string, cred *syscall.Credential, paths []string) bool {
	t.Helper()
	for try := 1; ; try++ {
		before := fastRefs(paths)
		fast := rawRun(t, bin, cred, []string{"GODEBUG=inittrace=1"}, paths...)
		slow := rawRun(t, bin, cred, nil, append([]string{"--"}, paths...)...)
		if after := fastRefs(paths); after != before && try < retries {
			continue
		}
		if fast.stdout != slow.stdout || fast.code != slow.code {
			t.Errorf("%q: the fast path's and the Go path's outputs differ\nfast:\n%s\nGo:\n%s", paths, fast, slow)
		}
		if !goStarted(fast) && fast.stderr != "" {
			t.Errorf("fast path answered and printed on stderr:\n%s", fast)
		}
		return !goStarted(fast)
	}
}

// fastRefs sums the references of the regular files among paths (a string,
// to compare), "" parts for the others.
func fastRefs(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			b.WriteByte(';') // a FIFO's reference would block
			continue
		}
		if r, err := takeRef(p); err == nil {
			b.WriteString(strings.Join([]string{p, uintString(r.Cache), uintString(uint64(r.Size))}, ":"))
		}
		b.WriteByte(';')
	}
	return b.String()
}

func uintString(n uint64) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

// Regular files on tmpfs and ext4 in several states, one at a time and
// several at once, print the same table either way; the fast path answers
// them where the kernel has cachestat(2), and nowhere else.
func TestFastPathFiles(t *testing.T) {
	bin := filecacheBin(t)
	tmp, ext := tmpfsDir(t), ext4Dir(t)
	var paths []string
	for i, n := range []int64{0, 1, pageSize, 3*pageSize + 7, 300 * pageSize} {
		p := filepath.Join(tmp, "t"+uintString(uint64(i)))
		put(t, p, n)
		paths = append(paths, p)
	}
	sparse := filepath.Join(tmp, "sparse big")
	sized(t, sparse, 1<<30)
	writeAt(t, sparse, 1<<29, 64*pageSize)
	paths = append(paths, sparse)
	for i := range 4 {
		p := filepath.Join(ext, "e"+uintString(uint64(i)))
		put(t, p, int64(i+1)*40*pageSize)
		dropAndRead(t, p, [2]int64{0, int64(i) * 10 * pageSize})
		paths = append(paths, p)
	}
	link := filepath.Join(tmp, "link")
	if err := os.Symlink(paths[3], link); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, link)
	want := haveCachestat()
	for _, set := range [][]string{paths[:1], paths[3:4], paths[5:6], paths[6:8], paths, append(paths, paths[0])} {
		if fast := fastAndGo(t, bin, nil, set); fast != want {
			t.Errorf("%q: fast path answered: %v, want %v (cachestat(2): %v)", set, fast, want, want)
		}
	}
}

// Whatever the fast path cannot answer exactly goes, untouched, to the Go
// path: a FIFO (never opened for reading, never blocking), a directory, a
// device, a missing file, a name the table quotes, an option, a command
// name, a file on overlayfs, a user without the bpf engine's privileges.
func TestFastPathDeclines(t *testing.T) {
	bin := filecacheBin(t)
	tmp := tmpfsDir(t)
	file := filepath.Join(tmp, "f")
	put(t, file, 2*pageSize)
	fifo := filepath.Join(tmp, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(tmp, "caf\xc3\xa9")
	put(t, odd, pageSize)
	nl := filepath.Join(tmp, "new\nline")
	put(t, nl, pageSize)
	cases := map[string][]string{
		"fifo":      {file, fifo},
		"directory": {tmp},
		"device":    {"/dev/null"},
		"missing":   {file, filepath.Join(tmp, "missing")},
		"non-ascii": {odd},
		"newline":   {nl},
	}
	if lower := overlayFile(t, tmp); lower != "" {
		cases["overlayfs"] = []string{lower}
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			if fastAndGo(t, bin, nil, args) {
				t.Errorf("the fast path answered %q", args)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	for _, args := range [][]string{{"--json", file}, {"-v", file}, {"doctor"}, {"query", file}} {
		res := rawRun(t, bin, nil, []string{"GODEBUG=inittrace=1"}, args...)
		if !goStarted(res) {
			t.Errorf("%q was not left to the Go path\n%s", args, res)
		}
	}
	t.Run("unprivileged", func(t *testing.T) {
		mine := filepath.Join(tmp, "nobody's")
		put(t, mine, 3*pageSize)
		if err := os.Chown(mine, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if fastAndGo(t, binForAll(t, bin), nobody(), []string{mine}) {
			t.Error("the fast path answered a user without the bpf engine's privileges (whose Go path prints why it falls back)")
		}
	})
}

// overlayFile mounts an overlay of one lower file under dir and returns the
// file's path through it, or "" where overlayfs is missing.
func overlayFile(t *testing.T, dir string) string {
	t.Helper()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	put(t, filepath.Join(dir, "lower", "f"), 4*pageSize)
	merged := filepath.Join(dir, "merged")
	opts := "lowerdir=" + dir + "/lower,upperdir=" + dir + "/upper,workdir=" + dir + "/work"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Logf("no overlayfs here (%v): that case is not run", err)
		return ""
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return filepath.Join(merged, "f")
}
