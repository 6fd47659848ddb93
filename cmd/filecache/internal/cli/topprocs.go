package cli

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/procs"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// holders lists, by inode, the processes holding each regular file open or
// mapped (top --processes). Rows are the inodes whose pages the walk found:
// a file held through overlayfs has its pages under the real (upper or
// lower) inode, which the bpf engine names (loaded here only if some
// process holds an overlayfs file); a mapping already names that inode.
func (g *Globals) holders() (map[[2]uint64][]procs.Holder, error) {
	files, err := procs.All(procRoot)
	if err != nil {
		return nil, fmt.Errorf("--processes: %w", err)
	}
	// Every overlayfs mount, not only those walked: its files' pages are
	// under filesystems that may be.
	ms, err := top.Mounts(procRoot)
	if err != nil {
		return nil, fmt.Errorf("--processes: %w", err)
	}
	overlay := map[uint64]bool{}
	for _, m := range ms {
		if m.FSType == "overlay" {
			overlay[m.Dev] = true
		}
	}
	idx := map[[2]uint64][]procs.Holder{}
	add := func(key [2]uint64, h procs.Holder) {
		for i, x := range idx[key] {
			if x.PID == h.PID {
				idx[key][i].FDs = append(idx[key][i].FDs, h.FDs...)
				idx[key][i].Mapped = x.Mapped || h.Mapped
				return
			}
		}
		idx[key] = append(idx[key], h)
	}
	var over []procs.File
	for _, f := range files {
		if overlay[f.Dev] {
			over = append(over, f)
			continue
		}
		add([2]uint64{f.Dev, f.Ino}, f.Holder)
	}
	if len(over) == 0 {
		return idx, nil
	}
	eng, err := g.loadBPF(g.bpfMethod())
	if err != nil {
		// Without the real inodes, overlayfs files are named by none.
		fmt.Fprintf(g.env.Stderr, "filecache: --processes: files held through overlayfs are not matched: %v\n", err)
		return idx, nil
	}
	defer eng.Close()
	for start := 0; start < len(over); start += heldBatch {
		batch := over[start:min(start+heldBatch, len(over))]
		var hs []pagecache.Handle
		var which []procs.File
		for _, f := range batch {
			fd, err := unix.Open(f.Via, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // closed or unmapped meanwhile
			}
			hs = append(hs, pagecache.Handle{Fd: fd, Mode: unix.S_IFREG})
			which = append(which, f)
		}
		if len(hs) == 0 {
			continue
		}
		answers, err := eng.Query(hs)
		for _, h := range hs {
			unix.Close(h.Fd)
		}
		if err != nil {
			return idx, fmt.Errorf("--processes: %w", err)
		}
		for i, a := range answers {
			if a.Err == nil && a.Real != nil {
				add([2]uint64{a.Real.Dev, a.Real.Ino}, which[i].Holder)
			}
		}
	}
	return idx, nil
}

// heldBatch is how many files a query takes at once (bpf.Batch at most),
// few enough to stay inside the fd table a process starts with.
const heldBatch = min(32, bpf.Batch)
