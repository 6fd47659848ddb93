package walk

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary re-executes itself for the cases that need a low fd limit
// or another uid. envNofile set: lower RLIMIT_NOFILE (soft and hard) to its
// value before the tests run (Go raises the soft limit at startup, so a
// limit set by the parent would not stick). envChild names the test that
// must do the real work in the child.
const (
	envNofile = "WALK_TEST_NOFILE"
	envChild  = "WALK_TEST_CHILD"
	envRoot   = "WALK_TEST_ROOT"
	envFiles  = "WALK_TEST_FILES"
)

func TestMain(m *testing.M) {
	if v := os.Getenv(envNofile); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err == nil {
			err = unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: n})
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "setting RLIMIT_NOFILE to %s: %v\n", v, err)
			os.Exit(3)
		}
	}
	os.Exit(m.Run())
}

// inChild tells whether this process is the child running test name.
func inChild(name string) bool { return os.Getenv(envChild) == name }

// runChild runs test name in a copy of this test binary with extra
// environment and optional credentials, and fails t with the child's output
// if the child's test failed (or did not run).
func runChild(t *testing.T, name string, cred *syscall.Credential, env ...string) {
	t.Helper()
	bin := os.Args[0]
	if cred != nil {
		// The build directory is private to root: copy the binary where
		// the other uid can run it.
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		bin = filepath.Join(dir, "walk.test")
		data, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), append(env, envChild+"="+name)...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) && cred != nil {
		t.Skipf("cannot run a process as uid %d: %v", cred.Uid, err)
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+name)) {
		t.Fatalf("child %s: %v\n%s", name, err, out)
	}
	t.Logf("child %s passed:\n%s", name, out)
}

type got struct {
	Path, Name string
	Type       uint8
	Depth      int
	Followed   bool
}

type gotErr struct {
	Path string
	Err  error
}

// collect walks root and returns what fn and onErr saw. It checks for every
// entry that Dirfd and Name name the file Path names.
func collect(t *testing.T, root string, o Options) ([]got, []gotErr, error) {
	t.Helper()
	var es []got
	var errs []gotErr
	err := Walk(root, o, func(e Entry) error {
		es = append(es, got{e.Path, e.Name, e.Type, e.Depth, e.Followed})
		if !strings.HasSuffix(e.Path, e.Name) || strings.Contains(e.Name, "/") {
			t.Errorf("Path %q does not end in Name %q", e.Path, e.Name)
		}
		var a, b unix.Stat_t
		flag := unix.AT_SYMLINK_NOFOLLOW
		if e.Followed {
			flag = 0
		}
		if err := unix.Fstatat(e.Dirfd, e.Name, &a, flag); errors.Is(err, unix.EACCES) {
			// a directory readable but not searchable
		} else if err != nil {
			t.Errorf("fstatat(Dirfd, %q): %v", e.Name, err)
		} else if len(e.Path) < unix.PathMax {
			if err := unix.Fstatat(unix.AT_FDCWD, e.Path, &b, flag); err != nil {
				t.Errorf("stat(%q): %v", e.Path, err)
			} else if a.Ino != b.Ino || a.Dev != b.Dev {
				t.Errorf("Dirfd+Name and Path %q name different files", e.Path)
			}
			if modeToType(a.Mode) != e.Type {
				t.Errorf("%q: Type %d, fstat says %d", e.Path, e.Type, modeToType(a.Mode))
			}
		}
		return nil
	}, func(p string, err error) {
		errs = append(errs, gotErr{p, err})
	})
	return es, errs, err
}

func paths(es []got) []string {
	var ps []string
	for _, e := range es {
		ps = append(ps, e.Path)
	}
	sort.Strings(ps)
	return ps
}

func noErrors(t *testing.T, errs []gotErr, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	for _, e := range errs {
		t.Errorf("onErr(%q, %v)", e.Path, e.Err)
	}
}

func samePaths(t *testing.T, es []got, want ...string) {
	t.Helper()
	sort.Strings(want)
	if g := paths(es); !slices.Equal(g, want) {
		t.Errorf("yielded paths\n got %q\nwant %q", g, want)
	}
}

func mkfile(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// openFds counts this process's open fds.
func openFds(t testing.TB) int {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(des) - 1 // ReadDir's own fd
}

func TestNested(t *testing.T) {
	r := t.TempDir()
	mkfile(t, r+"/top")
	mkfile(t, r+"/a/one")
	mkfile(t, r+"/a/b/two")
	mkfile(t, r+"/a/b/c/three")
	mkfile(t, r+"/a/b/c/four")
	mkfile(t, r+"/x/y/z/five")
	os.MkdirAll(r+"/empty/deeper", 0o755)
	if err := unix.Mkfifo(r+"/a/fifo", 0o644); err != nil {
		t.Fatal(err)
	}
	symlink(t, "one", r+"/a/link")
	for _, unknown := range []bool{false, true} {
		t.Run(fmt.Sprintf("DT_UNKNOWN=%v", unknown), func(t *testing.T) {
			testForceUnknown = unknown
			defer func() { testForceUnknown = false }()
			before := openFds(t)
			es, errs, err := collect(t, r, Options{})
			noErrors(t, errs, err)
			samePaths(t, es, r+"/top", r+"/a/one", r+"/a/b/two", r+"/a/b/c/three", r+"/a/b/c/four",
				r+"/x/y/z/five", r+"/a/fifo", r+"/a/link")
			for _, e := range es {
				want := map[string]uint8{"fifo": unix.DT_FIFO, "link": unix.DT_LNK}[e.Name]
				if want == 0 {
					want = unix.DT_REG
				}
				if e.Type != want || e.Followed {
					t.Errorf("%s: Type %d Followed %v, want %d false", e.Path, e.Type, e.Followed, want)
				}
				if d := strings.Count(strings.TrimPrefix(e.Path, r), "/"); e.Depth != d {
					t.Errorf("%s: Depth %d, want %d", e.Path, e.Depth, d)
				}
			}
			if after := openFds(t); after != before {
				t.Errorf("%d fds open before the walk, %d after", before, after)
			}
		})
	}
}

// A directory's own files come before the files of its subdirectories, and
// the order is the same from one walk to the next.
func TestOrder(t *testing.T) {
	r := t.TempDir()
	for i := range 20 {
		mkfile(t, fmt.Sprintf("%s/d%d/f", r, i))
		mkfile(t, fmt.Sprintf("%s/f%d", r, i))
	}
	es, errs, err := collect(t, r, Options{})
	noErrors(t, errs, err)
	if len(es) != 40 {
		t.Fatalf("%d entries, want 40", len(es))
	}
	for i, e := range es {
		if (i < 20) != (e.Depth == 1) {
			t.Errorf("entry %d is %s: the root's files do not all come first", i, e.Path)
		}
	}
	es2, _, _ := collect(t, r, Options{})
	if !slices.Equal(es, es2) {
		t.Errorf("two walks gave different orders")
	}
}

func TestEmptyDir(t *testing.T) {
	r := t.TempDir()
	es, errs, err := collect(t, r, Options{})
	noErrors(t, errs, err)
	if len(es) != 0 {
		t.Errorf("entries in an empty directory: %v", es)
	}
}

func TestRoot(t *testing.T) {
	r := t.TempDir()
	mkfile(t, r+"/d/f")
	t.Run("file", func(t *testing.T) {
		var called bool
		err := Walk(r+"/d/f", Options{}, func(Entry) error { called = true; return nil }, nil)
		if err != unix.ENOTDIR || called {
			t.Errorf("Walk(file) = %v (fn called: %v), want ENOTDIR", err, called)
		}
	})
	t.Run("missing", func(t *testing.T) {
		err := Walk(r+"/nope", Options{}, func(Entry) error { return nil }, nil)
		if err != unix.ENOENT {
			t.Errorf("Walk(missing) = %v, want ENOENT", err)
		}
		if err := Walk("", Options{}, func(Entry) error { return nil }, nil); err != unix.ENOENT {
			t.Errorf(`Walk("") = %v, want ENOENT`, err)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		l := t.TempDir() + "/ld"
		symlink(t, r+"/d", l)
		es, errs, err := collect(t, l, Options{})
		noErrors(t, errs, err)
		samePaths(t, es, l+"/f")
	})
	t.Run("trailing slash", func(t *testing.T) {
		es, errs, err := collect(t, r+"/d/", Options{})
		noErrors(t, errs, err)
		samePaths(t, es, r+"/d/f")
	})
	t.Run("relative", func(t *testing.T) {
		t.Chdir(r)
		es, errs, err := collect(t, ".", Options{})
		noErrors(t, errs, err)
		samePaths(t, es, "./d/f")
		es, errs, err = collect(t, "d", Options{})
		noErrors(t, errs, err)
		samePaths(t, es, "d/f")
	})
}

// mkdeep makes depth nested directories of long names below r (the path
// passes PATH_MAX) without resolving long paths. Each level holds two
// files, the way down, and leaf subdirectories holding one file each, at
// least one of them listed after the way down, so that each level is still
// needed when the walk comes back to it. It returns the number of files.
func mkdeep(t *testing.T, r string, depth int) int {
	fd, err := unix.Open(r, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(dir int, name string) {
		f, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(f)
	}
	mkdir := func(dir int, name string) int {
		if err := unix.Mkdirat(dir, name, 0o755); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	// listedAfter tells whether some leaf comes after the way down in
	// the directory's own order.
	listedAfter := func(dir int, down string) bool {
		buf := make([]byte, 8192)
		seen := false
		unix.Seek(dir, 0, 0)
		for {
			n, err := unix.Getdents(dir, buf)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return false
			}
			for off := 0; off < n; {
				reclen := int(buf[off+16]) | int(buf[off+17])<<8
				name := string(bytes.TrimRight(buf[off+19:off+reclen], "\x00"))
				off += reclen
				if name == down {
					seen = true
				} else if seen && strings.HasPrefix(name, "leaf") {
					return true
				}
			}
		}
	}
	down := strings.Repeat("d", 40)
	files := 0
	for range depth {
		next := mkdir(fd, down)
		for i := 0; i == 0 || !listedAfter(fd, down); i++ {
			if i == 20 {
				t.Fatal("no leaf name is listed after the way down")
			}
			leaf := mkdir(fd, fmt.Sprint("leaf", i))
			mk(leaf, "f")
			unix.Close(leaf)
			files++
		}
		unix.Close(fd)
		fd = next
		mk(fd, "f1")
		mk(fd, "f2")
		files += 2
	}
	unix.Close(fd)
	return files
}

// dirFds counts the directories this process holds open.
func dirFds(t testing.TB) int {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range des {
		fd, _ := strconv.Atoi(de.Name())
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			n++ // ReadDir's own fd is closed by now
		}
	}
	return n
}

// A tree 200 directories deep, with two files and a subdirectory per
// level besides the way down, is walked under a limit of 64 fds. The parent
// makes and removes the tree (os.RemoveAll holds an fd per level).
func TestDeepLowNofile(t *testing.T) {
	const depth = 200
	if !inChild(t.Name()) {
		r := t.TempDir()
		n := mkdeep(t, r, depth)
		runChild(t, t.Name(), nil, envNofile+"=64", envRoot+"="+r, envFiles+"="+strconv.Itoa(n))
		return
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur != 64 || lim.Max != 64 {
		t.Fatalf("RLIMIT_NOFILE is %+v (%v), want 64", lim, err)
	}
	r := os.Getenv(envRoot)
	files, _ := strconv.Atoi(os.Getenv(envFiles))
	for _, budget := range []int{0, 3, 1000} {
		t.Run(fmt.Sprint("MaxOpenDirs=", budget), func(t *testing.T) {
			before := dirFds(t)
			most, count := 0, 0
			var errs []gotErr
			err := Walk(r, Options{MaxOpenDirs: budget}, func(e Entry) error {
				count++
				if budget < 1000 {
					most = max(most, dirFds(t))
				}
				if e.Depth == depth && len(e.Path) < unix.PathMax {
					t.Errorf("path of depth %d is only %d bytes long", depth, len(e.Path))
				}
				return nil
			}, func(p string, err error) { errs = append(errs, gotErr{p, err}) })
			if budget == 1000 {
				// Without a usable budget the fds run out: proof
				// that this test can fail.
				if len(errs) == 0 || !errors.Is(errs[0].Err, unix.EMFILE) {
					t.Errorf("with no fd budget, errors %v, want EMFILE", errs)
				}
				return
			}
			noErrors(t, errs, err)
			if count != files {
				t.Errorf("%d files yielded, want %d", count, files)
			}
			limit := cmp.Or(budget, DefaultMaxOpenDirs)
			if most > before+limit {
				t.Errorf("%d directory fds open during the walk, %d before: more than %d", most, before, limit)
			}
			t.Logf("directory fds: %d before, at most %d during the walk", before, most)
		})
	}
}

// mkbranchy makes a tree with fanout subdirectories per directory down to
// depth, and two files in each directory. It returns the file paths.
func mkbranchy(t *testing.T, dir string, fanout, depth int) []string {
	var files []string
	for _, f := range []string{"f1", "f2"} {
		mkfile(t, dir+"/"+f)
		files = append(files, dir+"/"+f)
	}
	if depth == 0 {
		return files
	}
	for i := range fanout {
		files = append(files, mkbranchy(t, fmt.Sprintf("%s/s%d", dir, i), fanout, depth-1)...)
	}
	return files
}

// With a small fd budget, levels are closed and re-opened, and every file
// still comes, once.
func TestFdBudget(t *testing.T) {
	r := t.TempDir()
	want := mkbranchy(t, r+"/t", 3, 5)
	for _, budget := range []int{1, 3, 4, 6, 100} {
		t.Run(fmt.Sprint("MaxOpenDirs=", budget), func(t *testing.T) {
			var w *walker
			testDone = func(x *walker) { w = x }
			defer func() { testDone = nil }()
			before, beforeAll := dirFds(t), openFds(t)
			most := 0
			var es []got
			var errs []gotErr
			err := Walk(r, Options{MaxOpenDirs: budget}, func(e Entry) error {
				es = append(es, got{Path: e.Path})
				most = max(most, dirFds(t))
				return nil
			}, func(p string, err error) { errs = append(errs, gotErr{p, err}) })
			noErrors(t, errs, err)
			samePaths(t, es, want...)
			if len(es) != len(want) {
				t.Errorf("%d entries for %d files", len(es), len(want))
			}
			limit := max(budget, 3)
			if most > before+limit {
				t.Errorf("up to %d fds open during the walk, %d before: budget %d exceeded", most, before, limit)
			}
			if budget <= 4 && w.reopenedDotdot == 0 {
				t.Errorf("no level was re-opened through ..")
			}
			if budget >= 100 && w.reopenedDotdot+w.reopenedByName != 0 {
				t.Errorf("levels were re-opened although the budget was large")
			}
			if openFds(t) != beforeAll {
				t.Errorf("fds leaked")
			}
		})
	}
}

// A directory is closed as soon as its last subdirectory is open: a chain
// holds only the root and the directory being read.
func TestChainFds(t *testing.T) {
	r := t.TempDir()
	p := r + strings.Repeat("/c", 30)
	mkfile(t, p+"/f")
	before := dirFds(t)
	n := 0
	err := Walk(r, Options{MaxOpenDirs: 100}, func(e Entry) error {
		n++
		if d := dirFds(t) - before; d != 2 {
			t.Errorf("%d directories open at the bottom of a chain, want 2", d)
		}
		return nil
	}, nil)
	if err != nil || n != 1 {
		t.Errorf("Walk = %v, %d entries, want 1", err, n)
	}
}

// Levels reached through symlinks cannot be re-opened as "..": they are
// re-opened from the root, and when that fails too (renamed), ErrMoved.
func TestReopenFromRoot(t *testing.T) {
	base := t.TempDir()
	r := base + "/root"
	var want []string
	for _, e := range []string{"e1", "e2"} {
		for _, f := range mkbranchy(t, base+"/ext/"+e, 1, 5) {
			want = append(want, r+"/a/l"+e[1:]+strings.TrimPrefix(f, base+"/ext/"+e))
		}
		os.MkdirAll(r+"/a", 0o755)
		symlink(t, "../../ext/"+e, r+"/a/l"+e[1:])
	}
	var w *walker
	testDone = func(x *walker) { w = x }
	defer func() { testDone = nil }()
	es, errs, err := collect(t, r, Options{Follow: true, MaxOpenDirs: 3})
	noErrors(t, errs, err)
	samePaths(t, es, want...)
	if w.reopenedByName == 0 {
		t.Errorf("no level was re-opened from the root")
	}

	// Rename root/a while deep below root/a/l1: root/a cannot be found
	// again, and root/a/l2 is skipped with ErrMoved on root/a.
	renamed := false
	errs = nil
	var n int
	err = Walk(r, Options{Follow: true, MaxOpenDirs: 3}, func(e Entry) error {
		n++
		if e.Depth == 5 && !renamed {
			renamed = true
			if err := os.Rename(r+"/a", r+"/moved"); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}, func(p string, err error) { errs = append(errs, gotErr{p, err}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].Path != r+"/a" || !errors.Is(errs[0].Err, ErrMoved) {
		t.Errorf("errors %v, want ErrMoved on %s", errs, r+"/a")
	}
	if n != len(want)/2 {
		t.Errorf("%d entries, want the %d of l1", n, len(want)/2)
	}
}

func TestSymlinksNotFollowed(t *testing.T) {
	r := t.TempDir()
	mkfile(t, r+"/d/f")
	symlink(t, "d/f", r+"/tofile")
	symlink(t, "d", r+"/todir")
	symlink(t, "nowhere", r+"/dangling")
	symlink(t, ".", r+"/d/self")
	es, errs, err := collect(t, r, Options{})
	noErrors(t, errs, err)
	samePaths(t, es, r+"/d/f", r+"/tofile", r+"/todir", r+"/dangling", r+"/d/self")
	for _, e := range es {
		if e.Name != "f" && (e.Type != unix.DT_LNK || e.Followed) {
			t.Errorf("%s: Type %d Followed %v, want DT_LNK, not followed", e.Path, e.Type, e.Followed)
		}
	}
}

func TestFollow(t *testing.T) {
	r := t.TempDir()
	mkfile(t, r+"/d/f")
	symlink(t, "d/f", r+"/tofile")
	symlink(t, "d", r+"/todir")
	symlink(t, "nowhere", r+"/dangling")
	symlink(t, "selfloop", r+"/selfloop")
	es, errs, err := collect(t, r, Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	// d is entered once, under whichever of its names comes first.
	if ps := paths(es); len(ps) != 2 || ps[1] != r+"/tofile" || ps[0] != r+"/d/f" && ps[0] != r+"/todir/f" {
		t.Errorf("yielded %q, want tofile and f once, as d/f or todir/f", ps)
	}
	for _, e := range es {
		if e.Type != unix.DT_REG || e.Followed != (e.Name == "tofile") {
			t.Errorf("%s: Type %d Followed %v", e.Path, e.Type, e.Followed)
		}
	}
	wantErr := map[string]error{r + "/dangling": unix.ENOENT, r + "/selfloop": unix.ELOOP}
	for _, e := range errs {
		if w, ok := wantErr[e.Path]; !ok || !errors.Is(e.Err, w) || !strings.Contains(e.Err.Error(), "broken symlink") {
			t.Errorf("onErr(%q, %v)", e.Path, e.Err)
		}
		delete(wantErr, e.Path)
	}
	for p, e := range wantErr {
		t.Errorf("no error for %s, want %v", p, e)
	}
}

// walkWithin fails t if the walk does not end within a few seconds.
func walkWithin(t *testing.T, root string, o Options) ([]got, []gotErr) {
	t.Helper()
	type result struct {
		es   []got
		errs []gotErr
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		n := 0
		r.err = Walk(root, o, func(e Entry) error {
			if n++; n > 10000 {
				return errors.New("more than 10000 entries: looping")
			}
			r.es = append(r.es, got{Path: e.Path, Type: e.Type})
			return nil
		}, func(p string, err error) { r.errs = append(r.errs, gotErr{p, err}) })
		done <- r
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.es, r.errs
	case <-time.After(20 * time.Second):
		t.Fatal("the walk did not end")
	}
	return nil, nil
}

func TestFollowLoops(t *testing.T) {
	r := t.TempDir()
	mkfile(t, r+"/top")
	mkfile(t, r+"/sub/f")
	symlink(t, "..", r+"/sub/a")
	symlink(t, "a", r+"/sub/b")
	symlink(t, ".", r+"/sub/c")
	es, errs := walkWithin(t, r, Options{Follow: true})
	samePaths(t, es, r+"/top", r+"/sub/f")
	var loops []string
	for _, e := range errs {
		if !errors.Is(e.Err, ErrLoop) {
			t.Errorf("onErr(%q, %v), want ErrLoop", e.Path, e.Err)
		}
		loops = append(loops, e.Path)
	}
	sort.Strings(loops)
	if want := []string{r + "/sub/a", r + "/sub/b", r + "/sub/c"}; !slices.Equal(loops, want) {
		t.Errorf("loops reported on %q, want each of %q once", loops, want)
	}
	// Without Follow the links are entries, not loops.
	es, errs = walkWithin(t, r, Options{})
	noErrors(t, errs, nil)
	samePaths(t, es, r+"/top", r+"/sub/f", r+"/sub/a", r+"/sub/b", r+"/sub/c")
}

// A directory this process cannot read is reported, and the rest of the
// tree is walked. Root bypasses permission checks, so as root the test
// runs again as uid 65534.
func TestUnreadable(t *testing.T) {
	if !inChild(t.Name()) && os.Geteuid() == 0 {
		base := t.TempDir()
		for d := base; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // let uid 65534 reach the tree
		}
		r := base + "/tree"
		os.Mkdir(r, 0o755)
		mkUnreadable(t, r)
		runChild(t, t.Name(), &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}, envRoot+"="+r)
		return
	}
	r := os.Getenv(envRoot)
	if r == "" {
		r = t.TempDir()
		mkUnreadable(t, r)
	}
	if _, err := os.ReadDir(r + "/locked"); err == nil {
		t.Skip("this process reads a mode 000 directory without being root (CAP_DAC_OVERRIDE?)")
	}
	if err := Walk(r+"/locked", Options{}, func(Entry) error { return nil }, nil); err != unix.EACCES {
		t.Errorf("Walk(unreadable root) = %v, want EACCES", err)
	}
	es, errs, err := collect(t, r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	samePaths(t, es, r+"/ok/f", r+"/readonly/f")
	want := []string{r + "/locked", r + "/searchonly", r + "/readonly/sub"}
	var gotp []string
	for _, e := range errs {
		if !errors.Is(e.Err, unix.EACCES) {
			t.Errorf("onErr(%q, %v), want EACCES", e.Path, e.Err)
		}
		gotp = append(gotp, e.Path)
	}
	sort.Strings(want)
	sort.Strings(gotp)
	if !slices.Equal(gotp, want) {
		t.Errorf("errors on %q, want %q", gotp, want)
	}
}

func mkUnreadable(t *testing.T, r string) {
	mkfile(t, r+"/ok/f")
	mkfile(t, r+"/locked/f")
	mkfile(t, r+"/searchonly/f")
	mkfile(t, r+"/readonly/f")
	mkfile(t, r+"/readonly/sub/f")
	os.Chmod(r+"/locked", 0)
	os.Chmod(r+"/searchonly", 0o111)
	os.Chmod(r+"/readonly", 0o555&^0o111)
	t.Cleanup(func() {
		for _, d := range []string{"locked", "searchonly", "readonly"} {
			os.Chmod(r+"/"+d, 0o755)
		}
	})
}

func TestDeleteDuringWalk(t *testing.T) {
	t.Run("each file deleted as it comes", func(t *testing.T) {
		r := t.TempDir()
		var want []string
		for i := range 300 {
			p := fmt.Sprintf("%s/d/file%03d", r, i)
			mkfile(t, p)
			want = append(want, p)
		}
		var es []got
		err := Walk(r, Options{}, func(e Entry) error {
			es = append(es, got{Path: e.Path})
			return unix.Unlinkat(e.Dirfd, e.Name, 0)
		}, func(p string, err error) { t.Errorf("onErr(%q, %v)", p, err) })
		if err != nil {
			t.Fatal(err)
		}
		samePaths(t, es, want...)
	})
	// The entries already read are deleted before the fstatat the walker
	// needs for DT_UNKNOWN: each is reported, and the walk goes on.
	t.Run("vanished before fstatat", func(t *testing.T) {
		testForceUnknown = true
		defer func() { testForceUnknown = false }()
		r := t.TempDir()
		for i := range 50 {
			mkfile(t, fmt.Sprintf("%s/d/file%03d", r, i))
		}
		mkfile(t, r+"/e/last")
		deleted := false
		var es []got
		var errs []gotErr
		err := Walk(r, Options{}, func(e Entry) error {
			es = append(es, got{Path: e.Path})
			if strings.HasPrefix(e.Path, r+"/d/") && !deleted {
				deleted = true
				emptyDir(r + "/d")
			}
			return nil
		}, func(p string, err error) { errs = append(errs, gotErr{p, err}) })
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range errs {
			if !errors.Is(e.Err, unix.ENOENT) || !strings.HasPrefix(e.Path, r+"/d/file") {
				t.Errorf("onErr(%q, %v)", e.Path, e.Err)
			}
		}
		var inD int
		for _, e := range es {
			if strings.HasPrefix(e.Path, r+"/d/") {
				inD++
			}
		}
		// The first getdents64 may list fewer than 50 names (ext4): what
		// it listed after the deletion must all be errors, none a file.
		if inD != 1 || inD+len(errs) > 50 {
			t.Errorf("%d yielded and %d errors in d, want 1 yielded and the rest of what was listed reported", inD, len(errs))
		}
		if !slices.Contains(paths(es), r+"/e/last") {
			t.Errorf("the walk did not go on after the vanished entries")
		}
	})
	// With Follow, symlinks need an fstatat of their target: one deleted
	// before it is an entry that vanished, not a broken symlink.
	t.Run("symlink vanished before fstatat", func(t *testing.T) {
		r := t.TempDir()
		mkfile(t, r+"/target")
		os.Mkdir(r+"/d", 0o755)
		for i := range 50 {
			symlink(t, "../target", fmt.Sprintf("%s/d/link%03d", r, i))
		}
		deleted := false
		var n int
		var errs []gotErr
		err := Walk(r+"/d", Options{Follow: true}, func(e Entry) error {
			n++
			if !e.Followed || e.Type != unix.DT_REG {
				t.Errorf("%s: Followed %v, Type %d", e.Path, e.Followed, e.Type)
			}
			if !deleted {
				deleted = true
				emptyDir(r + "/d")
			}
			return nil
		}, func(p string, err error) { errs = append(errs, gotErr{p, err}) })
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range errs {
			if !errors.Is(e.Err, unix.ENOENT) || strings.Contains(e.Err.Error(), "broken") {
				t.Errorf("onErr(%q, %v), want a plain ENOENT", e.Path, e.Err)
			}
		}
		// How many names the first getdents64 returned is the
		// filesystem's business (ext4 may return few, seen in CI): every
		// name listed after the deletion must be an error, none a file.
		if n != 1 || n+len(errs) > 50 {
			t.Errorf("%d yielded and %d errors, want 1 yielded and the rest of what was listed reported", n, len(errs))
		}
	})
}

func TestRenameDuringWalk(t *testing.T) {
	// While the files of r/a/b/c/d are read: rename d itself, its
	// ancestor a, and move its subdirectory e (not reached yet: a
	// directory's subdirectories come after its files) out of the tree.
	// The walk goes on through its fds, under the old names, reports e
	// and ends.
	for _, budget := range []int{0, 3} {
		t.Run(fmt.Sprint("MaxOpenDirs=", budget), func(t *testing.T) {
			base := t.TempDir()
			r := base + "/r"
			var want []string
			for _, d := range []string{"a/b/c", "a/b/c/d", "a/b/c/d/e", "a/x", "z"} {
				for i := range 3 {
					p := fmt.Sprintf("%s/%s/f%d", r, d, i)
					mkfile(t, p)
					if d != "a/b/c/d/e" {
						want = append(want, p)
					}
				}
			}
			done := false
			var es []got
			var errs []gotErr
			err := Walk(r, Options{MaxOpenDirs: budget}, func(e Entry) error {
				es = append(es, got{Path: e.Path})
				if len(es) > 1000 {
					return errors.New("looping")
				}
				if strings.HasPrefix(e.Path, r+"/a/b/c/d/f") && !done {
					done = true
					for _, mv := range [][2]string{{r + "/a/b/c/d", r + "/a/b/c/D"}, {r + "/a", r + "/A"}, {r + "/A/b/c/D/e", base + "/e"}} {
						if err := os.Rename(mv[0], mv[1]); err != nil {
							t.Fatal(err)
						}
					}
				}
				return nil
			}, func(p string, err error) { errs = append(errs, gotErr{p, err}) })
			if err != nil {
				t.Fatal(err)
			}
			if !done {
				t.Fatal("the renames did not happen")
			}
			if len(errs) != 1 || errs[0].Path != r+"/a/b/c/d/e" || !errors.Is(errs[0].Err, unix.ENOENT) {
				t.Errorf("errors %v, want ENOENT on %s/a/b/c/d/e", errs, r)
			}
			samePaths(t, es, want...)
		})
	}
}

func TestNames(t *testing.T) {
	r := t.TempDir()
	names := []string{" space ", "new\nline", "-dash", "--", "bad\xff\xfeutf8", "tab\tcr\r", "\\", "*", "[x]",
		strings.Repeat("n", 255), "ünï"}
	var want []string
	for _, n := range names {
		mkfile(t, r+"/"+n+"/"+n)
		want = append(want, r+"/"+n+"/"+n)
	}
	es, errs, err := collect(t, r, Options{})
	noErrors(t, errs, err)
	samePaths(t, es, want...)
	for _, e := range es {
		if !slices.Contains(names, e.Name) {
			t.Errorf("name %q not one of those made", e.Name)
		}
		if _, err := os.Lstat(e.Path); err != nil {
			t.Errorf("path %q does not round-trip: %v", e.Path, err)
		}
	}
}

func TestMaxDepth(t *testing.T) {
	r := t.TempDir()
	mkfile(t, r+"/1")
	mkfile(t, r+"/a/2")
	mkfile(t, r+"/a/b/3")
	mkfile(t, r+"/a/b/c/4")
	all := []string{r + "/1", r + "/a/2", r + "/a/b/3", r + "/a/b/c/4"}
	for depth, want := range map[int][]string{-1: all, 0: all, 1: all[:1], 2: all[:2], 3: all[:3], 4: all, 9: all} {
		es, errs, err := collect(t, r, Options{MaxDepth: depth})
		noErrors(t, errs, err)
		t.Run(fmt.Sprint(depth), func(t *testing.T) { samePaths(t, es, want...) })
	}
	// A directory at the limit is not even opened.
	var w *walker
	testDone = func(x *walker) { w = x }
	defer func() { testDone = nil }()
	collect(t, r, Options{MaxDepth: 2})
	if w.dirsOpened != 1 {
		t.Errorf("%d directories opened with MaxDepth 2, want 1 (a)", w.dirsOpened)
	}
}

func TestIncludeExclude(t *testing.T) {
	r := t.TempDir()
	for _, p := range []string{"a.db", "b.log", "skip.db", "d/c.db", "d/e.txt", "skipdir/f.db", "d/skipdir/g.db", "x.db/h.db", "x.db/i.txt"} {
		mkfile(t, r+"/"+p)
	}
	cases := []struct {
		o    Options
		want []string
	}{
		{Options{Include: []string{"*.db"}}, []string{"a.db", "skip.db", "d/c.db", "skipdir/f.db", "d/skipdir/g.db", "x.db/h.db"}},
		{Options{Exclude: []string{"skip*"}}, []string{"a.db", "b.log", "d/c.db", "d/e.txt", "x.db/h.db", "x.db/i.txt"}},
		{Options{Include: []string{"*.db", "*.txt"}, Exclude: []string{"skip*", "c.*"}}, []string{"a.db", "d/e.txt", "x.db/h.db", "x.db/i.txt"}},
		{Options{Include: []string{"[ab].*"}}, []string{"a.db", "b.log"}},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			es, errs, err := collect(t, r, c.o)
			noErrors(t, errs, err)
			var want []string
			for _, w := range c.want {
				want = append(want, r+"/"+w)
			}
			samePaths(t, es, want...)
		})
	}
	for _, bad := range [][]string{{"["}, {"ok", "a[b"}, {`x\`}, {"d/*"}} {
		if err := CheckPatterns(bad); err == nil {
			t.Errorf("CheckPatterns(%q) = nil", bad)
		}
		if err := Walk(r, Options{Exclude: bad}, func(Entry) error { return nil }, nil); err == nil {
			t.Errorf("Walk with Exclude %q = nil", bad)
		}
	}
	if err := CheckPatterns([]string{"*.db", "[a-z]?", "", `\*`}); err != nil {
		t.Errorf("CheckPatterns of good patterns: %v", err)
	}
}

func TestFnError(t *testing.T) {
	r := t.TempDir()
	mkbranchy(t, r, 2, 3)
	before := openFds(t)
	stop := errors.New("stop")
	n := 0
	err := Walk(r, Options{}, func(Entry) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	}, nil)
	if err != stop || n != 5 {
		t.Errorf("Walk = %v after %d calls, want stop after 5", err, n)
	}
	if after := openFds(t); after != before {
		t.Errorf("%d fds open before, %d after", before, after)
	}
}

// XDev and bind-mount loops need mounts, hence root.
func TestMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	r := t.TempDir()
	mkfile(t, r+"/f")
	os.Mkdir(r+"/mnt", 0o755)
	if err := unix.Mount("tmpfs", r+"/mnt", "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(r+"/mnt", unix.MNT_DETACH) })
	mkfile(t, r+"/mnt/onmnt")
	mkfile(t, r+"/mnt/sub/deeper")
	t.Run("XDev", func(t *testing.T) {
		es, errs, err := collect(t, r, Options{XDev: true})
		noErrors(t, errs, err)
		samePaths(t, es, r+"/f")
	})
	t.Run("no XDev", func(t *testing.T) {
		es, errs, err := collect(t, r, Options{})
		noErrors(t, errs, err)
		samePaths(t, es, r+"/f", r+"/mnt/onmnt", r+"/mnt/sub/deeper")
	})
	t.Run("root on the other filesystem", func(t *testing.T) {
		es, errs, err := collect(t, r+"/mnt", Options{XDev: true})
		noErrors(t, errs, err)
		samePaths(t, es, r+"/mnt/onmnt", r+"/mnt/sub/deeper")
	})
	t.Run("bind mount loop", func(t *testing.T) {
		os.Mkdir(r+"/mnt/sub/bind", 0o755)
		if err := unix.Mount(r, r+"/mnt/sub/bind", "", unix.MS_BIND, ""); err != nil {
			t.Skipf("cannot bind mount: %v", err)
		}
		defer unix.Unmount(r+"/mnt/sub/bind", unix.MNT_DETACH)
		es, errs := walkWithin(t, r, Options{})
		// r/mnt/sub/bind is r itself (the bind mount does not carry the
		// tmpfs, so no further loop below it).
		samePaths(t, es, r+"/f", r+"/mnt/onmnt", r+"/mnt/sub/deeper")
		if len(errs) != 1 || errs[0].Path != r+"/mnt/sub/bind" || !errors.Is(errs[0].Err, ErrLoop) {
			t.Errorf("errors %v, want ErrLoop on the bind mount", errs)
		}
	})
}

// benchTree makes 100 directories of 1000 empty files.
func benchTree(b *testing.B) string {
	b.Helper()
	r := b.TempDir()
	for d := range 100 {
		dir := fmt.Sprintf("%s/d%03d", r, d)
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 1000 {
			fd, err := unix.Open(fmt.Sprintf("%s/f%04d", dir, f), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	}
	return r
}

// BenchmarkWalk walks 100,000 empty files in 100 directories. "walk" is the
// walker alone; "walk+open" adds what the scanner does per file (openat
// O_PATH|O_NOFOLLOW, fstat, close); "vmtouch" runs `vmtouch -q` on the same
// tree for reference.
func BenchmarkWalk(b *testing.B) {
	r := benchTree(b)
	run := func(b *testing.B, perFile func(Entry) error) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if err := Walk(r, Options{}, func(e Entry) error {
				n++
				return perFile(e)
			}, func(p string, err error) { b.Fatal(p, err) }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/entry")
		b.ReportMetric(float64(n)/float64(b.N), "entries/op")
	}
	b.Run("walk", func(b *testing.B) { run(b, func(Entry) error { return nil }) })
	b.Run("walk+open", func(b *testing.B) {
		run(b, func(e Entry) error {
			fd, err := unix.Openat(e.Dirfd, e.Name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			var st unix.Stat_t
			err = unix.Fstat(fd, &st)
			unix.Close(fd)
			return err
		})
	})
	b.Run("vmtouch", func(b *testing.B) {
		if _, err := exec.LookPath("vmtouch"); err != nil {
			b.Skip("no vmtouch")
		}
		for b.Loop() {
			cmd := exec.Command("vmtouch", "-q", r)
			cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100000, "ns/entry")
	})
}

// emptyDir removes what dir holds, behind a walk that is listing it.
func emptyDir(dir string) {
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		os.Remove(dir + "/" + de.Name())
	}
}
