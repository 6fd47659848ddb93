package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// TreeWalk is how filecache walks a tree here: from the dentry cache
// (walk_dir), or with an open per file, and why.
type TreeWalk struct {
	Method  string `json:"method"` // "dentry walk" or "open per file"
	Program string `json:"program,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// tryDirs checks the dentry walk: in a test directory it makes, the walk
// must return the test file (testPages pages long, testCached written)
// with its inode number and testCached pages. The directory is removed.
func (g *Globals) tryDirs() (ch Check, tw TreeWalk) {
	env := g.env
	ch = Check{Engine: "tree", Method: "walk_dir (dentry walk)"}
	start := time.Now()
	defer func() { ch.Seconds = time.Since(start).Seconds() }()
	fail := func(err error) (Check, TreeWalk) {
		ch.fail(err)
		return ch, TreeWalk{Method: "open per file", Reason: "no dentry walk: " + ch.Error}
	}
	if env.LoadDirs == nil {
		return fail(errors.New("no BPF loader in this build"))
	}
	var w interface {
		ReadDir(fd, slot int, each func(bpf.Child)) (bpf.Dir, error)
		Close()
	}
	if err := g.checkedLoad(func() (err error) {
		w, err = env.LoadDirs(LoadOptions{BTF: g.BTF})
		return err
	}); err != nil {
		return fail(err)
	}
	defer w.Close()
	dir, err := os.MkdirTemp("", "filecache-doctor-")
	if err != nil {
		return fail(fmt.Errorf("test directory: %w", err))
	}
	defer os.RemoveAll(dir)
	page := unix.Getpagesize()
	name := filepath.Join(dir, "test")
	if err := os.WriteFile(name, make([]byte, testCached*page), 0o600); err != nil {
		return fail(fmt.Errorf("test file: %w", err))
	}
	if err := os.Truncate(name, int64(testPages*page)); err != nil {
		return fail(fmt.Errorf("test file: %w", err))
	}
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		return fail(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("test directory: %w", err))
	}
	defer unix.Close(fd)
	var got *bpf.Child
	info, err := w.ReadDir(fd, 0, func(c bpf.Child) {
		if c.Ino == st.Ino {
			c := c
			got = &c
		}
	})
	switch {
	case err != nil:
		return fail(err)
	case info.Status != bpf.DirDone && info.Status != bpf.DirMore && info.Status != bpf.DirLost:
		return fail(fmt.Errorf("dentry walk: %v", info.Status))
	case got == nil:
		return fail(fmt.Errorf("the walk of a test directory (%s) missed the test file", info.Status))
	case got.NrPages != testCached || got.Size != uint64(testPages*page):
		return fail(fmt.Errorf("wrong answer on a test file: %d pages of %d bytes, want %d of %d",
			got.NrPages, got.Size, testCached, testPages*page))
	}
	ch.OK = true
	ch.Detail = fmt.Sprintf("found the test file in a test directory's dentries, %d/%d pages, right", testCached, testPages)
	return ch, TreeWalk{Method: "dentry walk", Program: "walk_dir",
		Reason: fmt.Sprintf("a directory's regular files from its cached dentries, %d children a test run, in bounded loops on every kernel (no bpf_loop needed); names it does not vouch for are opened", bpf.DirSteps)}
}
