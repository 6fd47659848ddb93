package integration

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// pathMax is Linux's PATH_MAX: the longest path one system call takes is
// pathMax-1 bytes (the terminating NUL counts).
const pathMax = 4096

// nameFile is a file made by makeAt: where it is and its reference path.
type nameFile struct {
	path string   // the full path, as filecache prints it
	dirs []string // the components below root, for openat chains
	name string
}

// makeAt creates root/dirs.../name with mkdirat and openat relative to the
// parent directory's fd, so no single system call sees the whole path
// (which may be longer than PATH_MAX), writes n bytes at off into a file
// of length size, and returns it.
func makeAt(t *testing.T, root string, dirs []string, name string, size, off, n int64) nameFile {
	t.Helper()
	fd := openChain(t, root, dirs, true)
	defer unix.Close(fd)
	ffd, err := unix.Openat(fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatalf("create %q (%d bytes) in a directory %d deep: %v", name, len(name), len(dirs), err)
	}
	defer unix.Close(ffd)
	if err := unix.Ftruncate(ffd, size); err != nil {
		t.Fatal(err)
	}
	for n > 0 {
		c, err := unix.Pwrite(ffd, pattern[:min(n, int64(len(pattern)))], off)
		if err != nil {
			t.Fatal(err)
		}
		off += int64(c)
		n -= int64(c)
	}
	return nameFile{path: root + "/" + strings.Join(append(append([]string{}, dirs...), name), "/"), dirs: dirs, name: name}
}

// openChain opens root/dirs... one component at a time (creating them with
// mkdirat when mk is set) and returns the last directory's fd.
func openChain(t *testing.T, root string, dirs []string, mk bool) int {
	t.Helper()
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range dirs {
		if mk {
			if err := unix.Mkdirat(fd, d, 0o755); err != nil && err != unix.EEXIST {
				t.Fatalf("mkdirat %q at depth %d: %v", d, i+1, err)
			}
		}
		nfd, err := unix.Openat(fd, d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("openat %q at depth %d: %v", d, i+1, err)
		}
		fd = nfd
	}
	return fd
}

// refAt takes the references of f through an openat chain, since its full
// path may be too long to open: /proc/self/fd/N names the same inode.
func refAt(t *testing.T, root string, f nameFile) ref {
	t.Helper()
	dfd := openChain(t, root, f.dirs, false)
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, f.name, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("openat %q: %v", f.name, err)
	}
	defer unix.Close(fd)
	r, err := takeRef(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		t.Fatalf("reference for %s: %v", showArgs([]string{f.path}), err)
	}
	return r
}

// entryPath is the exact path of a report entry: path_b64's bytes when the
// path is not valid UTF-8.
func entryPath(t *testing.T, path string, b64 *string) string {
	t.Helper()
	if b64 == nil {
		return path
	}
	b, err := base64.StdEncoding.DecodeString(*b64)
	if err != nil {
		t.Fatalf("path_b64 %q: %v", *b64, err)
	}
	return string(b)
}

// component is a 255-byte name (NAME_MAX) starting with prefix.
func component(prefix string) string {
	return prefix + strings.Repeat("n", 255-len(prefix))
}

// Names at the kernel's limits: 255-byte components (one not valid UTF-8,
// one with a space, a newline and a leading dash), paths of about 4,000
// bytes, of exactly PATH_MAX-1 bytes (the longest one system call takes)
// and longer. Named on the command line, a path up to PATH_MAX-1 bytes is
// measured and a longer one is a per-path error naming it; found by a tree
// walk, which never resolves a full path, every file is measured whatever
// its path's length. In --json and --ndjson every path comes back byte for
// byte and every figure equals cachestat and mincore for that file.
func TestLongNames(t *testing.T) {
	bin := filecacheBin(t)
	root := tmpfsDir(t)
	var chain []string
	for i := 0; i < 19; i++ {
		chain = append(chain, component(fmt.Sprintf("d%02d-", i)))
	}
	chain[1] = component("-dash space\nnewline ")
	// 15 components put a file named x at len(root)+15*256+1+len(x) bytes.
	base := len(root) + 15*256 + 1
	if base+1 > 3999 {
		t.Fatalf("temporary directory %s is too long (%d bytes) for this test's layout", root, len(root))
	}
	sizedName := func(total int) string { return component("f" + fmt.Sprint(total))[:total-base] }
	page := pageSize
	var (
		shallow  = makeAt(t, root, chain[:1], component("shallow-"), 40*page, 3*page, 5*page)
		badUTF8  = makeAt(t, root, chain[:2], component("bad\xff\xfe-"), 9*page+7, 0, 9*page+7)
		p3999    = makeAt(t, root, chain[:15], sizedName(3999), 64*page, 10*page, 20*page)
		pMax     = makeAt(t, root, chain[:15], sizedName(pathMax-1), 16*page, 0, 3*page)
		pTooLong = makeAt(t, root, chain[:15], sizedName(pathMax), 8*page, 0, 8*page)
		name255  = makeAt(t, root, chain[:15], component("long-"), 3*page, page, page)
		deepest  = makeAt(t, root, chain, component("deepest\xff"), 100*page, 50*page, 11*page)
		// A directory whose own path is PATH_MAX-1 bytes long, named as a
		// tree: everything in it lies beyond PATH_MAX.
		dirMax = append(append([]string{}, chain[:15]...), "g"+sizedName(pathMax - 1)[1:])
		inMax  = makeAt(t, root, dirMax, "inside", 6*page, page, 2*page)
	)
	all := []nameFile{shallow, badUTF8, p3999, pMax, pTooLong, name255, deepest, inMax}
	for _, c := range []struct {
		f    nameFile
		want int
	}{{p3999, 3999}, {pMax, pathMax - 1}, {pTooLong, pathMax}} {
		if len(c.f.path) != c.want {
			t.Fatalf("layout: a path of %d bytes, want %d", len(c.f.path), c.want)
		}
	}
	if len(deepest.path) <= pathMax+900 || len(name255.path) <= pathMax {
		t.Fatalf("layout: paths of %d and %d bytes, want both beyond PATH_MAX", len(deepest.path), len(name255.path))
	}

	t.Run("named", func(t *testing.T) {
		named := []string{shallow.path, badUTF8.path, p3999.path, pMax.path}
		args := append([]string{"--json"}, named[:2]...)
		args = append(args, pTooLong.path)
		args = append(args, named[2:]...)
		rep, refs, res := measure(t, bin, sandwich{args: args, refs: named, tries: 1, wantCode: 1})
		checkFiles(t, rep, named, refs)
		checkErrors(t, rep, []string{pTooLong.path})
		if len(rep.Errors) == 1 && !strings.Contains(rep.Errors[0].Error, "too long") {
			t.Errorf("reason %q for a path of PATH_MAX bytes, want it to say the name is too long\n%s", rep.Errors[0].Error, res)
		}
		table := run(t, bin, pTooLong.path, pMax.path)
		if table.code != 1 {
			t.Errorf("table: exit %d, want 1\n%s", table.code, table)
		}
		checkStderr(t, table, []string{pTooLong.path})
	})

	refs := map[string]ref{}
	var cached uint64
	for _, f := range all {
		refs[f.path] = refAt(t, root, f)
		cached += refs[f.path].Cache
	}
	checkTree := func(t *testing.T, files []fileEntry, tree treeEntry) {
		t.Helper()
		seen := map[string]bool{}
		for _, e := range files {
			p := entryPath(t, e.Path, e.PathB64)
			r, ok := refs[p]
			switch {
			case !ok:
				t.Errorf("listed %s (%d bytes), not a file of the tree", showArgs([]string{p}), len(p))
			case seen[p]:
				t.Errorf("listed %s twice", showArgs([]string{p}))
			default:
				if msg := entryProblems(e, p, r); msg != "" {
					t.Errorf("%s (%d bytes): %s", showArgs([]string{p}), len(p), msg)
				}
			}
			seen[p] = true
		}
		if len(seen) != len(all) {
			t.Errorf("listed %d distinct files, the tree has %d", len(seen), len(all))
		}
		if tree.Path != root || tree.Files != len(all) || tree.Failed != 0 || tree.CachedPages != int64(cached) {
			t.Errorf("tree %+v, want %s with %d files, %d cached pages, none failed", tree, root, len(all), cached)
		}
	}

	t.Run("named_tree", func(t *testing.T) {
		dir := root + "/" + strings.Join(dirMax, "/")
		if len(dir) != pathMax-1 {
			t.Fatalf("layout: a directory path of %d bytes, want %d", len(dir), pathMax-1)
		}
		res := run(t, bin, "--json", "--files", dir)
		r := parseTrees(t, res)
		if res.code != 0 || len(r.Trees) != 1 || len(r.Files) != 1 || len(r.Errors) != 0 {
			t.Fatalf("want the tree and its one file answered\n%s", clip(res.String()))
		}
		if msg := entryProblems(r.Files[0], inMax.path, refs[inMax.path]); msg != "" {
			t.Errorf("%d-byte path in a tree named at PATH_MAX-1: %s", len(inMax.path), msg)
		}
		if tr := r.Trees[0]; tr.Path != dir || tr.Files != 1 || tr.CachedPages != int64(refs[inMax.path].Cache) {
			t.Errorf("tree %+v, want its one file's %d cached pages", tr, refs[inMax.path].Cache)
		}
	})

	t.Run("walked_json", func(t *testing.T) {
		res := run(t, bin, "--json", "--files", root)
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, clip(res.String()))
		}
		r := parseTrees(t, res)
		if len(r.Trees) != 1 || len(r.Errors) != 0 {
			t.Fatalf("want one tree, no error\n%s", clip(res.String()))
		}
		checkTree(t, r.Files, r.Trees[0])
	})

	t.Run("walked_ndjson", func(t *testing.T) {
		res := run(t, bin, "--ndjson", "--files", root)
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, clip(res.String()))
		}
		var files []fileEntry
		var trees []treeEntry
		sc := bufio.NewScanner(strings.NewReader(res.stdout))
		sc.Buffer(nil, 1<<20)
		var last string
		for sc.Scan() {
			var rec struct{ Record string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("line %q is not JSON: %v", clip(sc.Text()), err)
			}
			last = rec.Record
			switch rec.Record {
			case "file":
				var e fileEntry
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatal(err)
				}
				files = append(files, e)
			case "tree":
				var e treeEntry
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatal(err)
				}
				trees = append(trees, e)
			case "summary":
			default:
				t.Errorf("unexpected record %q", clip(sc.Text()))
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		if last != "summary" || len(trees) != 1 {
			t.Fatalf("want one tree record and the summary last\n%s", clip(res.String()))
		}
		checkTree(t, files, trees[0])
	})
}

// A name that starts with a dash is a path after -- or as ./NAME, and
// measured like any other.
func TestLeadingDash(t *testing.T) {
	bin := filecacheBin(t)
	dir := tmpfsDir(t)
	dash := filepath.Join(dir, "-n")
	writeAt(t, dash, 0, 5*pageSize)
	for _, args := range [][]string{{"--json", "--", "-n"}, {"--json", "./-n"}} {
		rep, refs, _ := measure(t, bin, sandwich{args: args, dir: dir, refs: []string{dash}, tries: 1})
		checkFiles(t, rep, args[len(args)-1:], refs)
	}
}
