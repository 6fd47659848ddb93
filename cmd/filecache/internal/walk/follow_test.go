package walk

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// inodeKey is a file's identity.
type inodeKey struct{ dev, ino uint64 }

// entered walks root and returns, for each file it yielded from the
// directory it lies in (not through a symlink to the file), the paths it
// was yielded under, by inode; and the errors.
func entered(t *testing.T, root string, o Options) (map[inodeKey][]string, []gotErr) {
	t.Helper()
	byInode := map[inodeKey][]string{}
	var errs []gotErr
	err := Walk(root, o, func(e Entry) error {
		if e.Followed {
			return nil // a symlink to a file: the scanner counts its inode once
		}
		var st unix.Stat_t
		if err := unix.Fstatat(e.Dirfd, e.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatalf("fstatat %s: %v", e.Path, err)
		}
		k := inodeKey{st.Dev, st.Ino}
		byInode[k] = append(byInode[k], e.Path)
		return nil
	}, func(p string, err error) { errs = append(errs, gotErr{p, err}) })
	if err != nil {
		t.Fatal(err)
	}
	return byInode, errs
}

// followTree is a tree where one directory is reached through several
// symlinks, one of them to its subdirectory, and a directory outside the
// tree through two. It returns the files in it, by inode, each reachable
// from the root (at depth 3 at most).
func followTree(t *testing.T) (string, map[inodeKey]string) {
	base := t.TempDir()
	r := base + "/root"
	for _, f := range []string{r + "/real/f1", r + "/real/sub/f2", r + "/b/c/x", base + "/outside/f3"} {
		mkfile(t, f)
	}
	symlink(t, "../real", r+"/b/l1")
	symlink(t, "../../real", r+"/b/c/l2")
	symlink(t, "real/sub", r+"/l3")
	symlink(t, "real", r+"/l4")
	symlink(t, "real/f1", r+"/lf")
	symlink(t, "../outside", r+"/ext1")
	symlink(t, "../../outside", r+"/b/ext2")
	files := map[inodeKey]string{}
	for _, f := range []string{r + "/real/f1", r + "/real/sub/f2", r + "/b/c/x", base + "/outside/f3"} {
		var st unix.Stat_t
		if err := unix.Stat(f, &st); err != nil {
			t.Fatal(err)
		}
		files[inodeKey{st.Dev, st.Ino}] = f
	}
	return r, files
}

// With Follow, every directory is entered once, however many symlinks
// reach it, so every file in it is yielded once; symlinks that are not
// loops are not errors.
func TestFollowEntersEachDirectoryOnce(t *testing.T) {
	r, files := followTree(t)
	got, errs := entered(t, r, Options{Follow: true})
	noErrors(t, errs, nil)
	for k, f := range files {
		if len(got[k]) != 1 {
			t.Errorf("%s yielded %d times: %q", f, len(got[k]), got[k])
		}
	}
	if len(got) != len(files) {
		t.Errorf("%d files yielded, want %d: %v", len(got), len(files), got)
	}
	// A loop is still a loop, reported once per link, not a directory
	// already walked.
	symlink(t, "..", r+"/real/up")
	_, errs = entered(t, r, Options{Follow: true})
	var loops []string
	for _, e := range errs {
		if errors.Is(e.Err, ErrLoop) {
			loops = append(loops, e.Path)
		}
	}
	sort.Strings(loops)
	if len(loops) != 1 || len(errs) != 1 {
		t.Errorf("errors %v, want one ErrLoop (on whichever name of real/up was walked)", errs)
	}
}

// MaxDepth: a directory first entered too deep for its subdirectories is
// entered again where it is reached higher up, so nothing within reach is
// missed (its files may then come twice: the scanner counts inodes once).
func TestFollowMaxDepth(t *testing.T) {
	r, files := followTree(t)
	got, errs := entered(t, r, Options{Follow: true, MaxDepth: 2})
	noErrors(t, errs, nil)
	var names []string
	for k := range got {
		names = append(names, files[k])
	}
	sort.Strings(names)
	// real/f1 at depth 2, real/sub/f2 through l3, outside/f3 through ext1;
	// b/c/x is at depth 3.
	if len(names) != 3 || !strings.HasSuffix(names[0], "/outside/f3") ||
		!strings.HasSuffix(names[1], "/real/f1") || !strings.HasSuffix(names[2], "/real/sub/f2") {
		t.Errorf("depth 2 yielded %q", names)
	}

	// Which of two names a directory lists first depends on the
	// filesystem, but it is the same in two directories: with the roles
	// of p and q swapped, one of the two trees reaches the directory deep
	// first (through the link) and shallow second.
	base := t.TempDir()
	for _, c := range []struct{ link, dir string }{{"p", "q"}, {"q", "p"}} {
		root := base + "/" + c.link + c.dir
		mkfile(t, root+"/"+c.dir+"/sub/f")
		mkfile(t, root+"/"+c.link+"/x")
		symlink(t, "../"+c.dir, root+"/"+c.link+"/l")
		got, errs := entered(t, root, Options{Follow: true, MaxDepth: 3})
		noErrors(t, errs, nil)
		var st unix.Stat_t
		if err := unix.Stat(root+"/"+c.dir+"/sub/f", &st); err != nil {
			t.Fatal(err)
		}
		if len(got[inodeKey{st.Dev, st.Ino}]) == 0 {
			t.Errorf("%s/%s/sub/f, at depth 3, not yielded: %v", root, c.dir, got)
		}
	}
}

// XDev: a symlink to a directory on another filesystem is not entered;
// the rest of the tree is walked as without XDev, each directory once.
func TestFollowXDev(t *testing.T) {
	r, files := followTree(t)
	symlink(t, "/proc/self", r+"/proc")
	got, errs := entered(t, r, Options{Follow: true, XDev: true})
	noErrors(t, errs, nil)
	for k, ps := range got {
		if _, ok := files[k]; !ok {
			t.Errorf("yielded %q, not a file of the tree (across filesystems?)", ps)
		}
	}
	for k, f := range files {
		if len(got[k]) != 1 {
			t.Errorf("%s yielded %d times: %q", f, len(got[k]), got[k])
		}
	}
}
