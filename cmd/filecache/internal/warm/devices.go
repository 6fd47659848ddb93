package warm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// devices lets several files of a device be read at once only where the
// device gains from it: a spinning disk (rotational in sysfs) reads one
// file at a time, since seeking between files costs more than it gives;
// flash, network and memory filesystems take up to jobs at once.
type devices struct {
	jobs       int
	rotational func(dev uint64) bool
	mu         sync.Mutex
	sems       map[uint64]chan struct{}
}

// acquire waits until a file of dev may be read; release when done.
func (d *devices) acquire(dev uint64) (release func()) {
	d.mu.Lock()
	if d.sems == nil {
		d.sems = map[uint64]chan struct{}{}
	}
	sem, ok := d.sems[dev]
	if !ok {
		n := d.jobs
		if d.rotational(dev) {
			n = 1
		}
		sem = make(chan struct{}, n)
		d.sems[dev] = sem
	}
	d.mu.Unlock()
	sem <- struct{}{}
	return func() { <-sem }
}

// Rotational says whether the block device behind a filesystem's st_dev
// is a spinning disk, from /sys/dev/block/MAJ:MIN/queue/rotational (a
// partition's is its disk's). Filesystems on no block device (tmpfs, NFS,
// FUSE: major 0) and devices sysfs does not describe are not.
func Rotational(dev uint64) bool {
	if unix.Major(dev) == 0 {
		return false
	}
	return rotationalIn("/sys", dev)
}

func rotationalIn(sys string, dev uint64) bool {
	node, err := filepath.EvalSymlinks(fmt.Sprintf("%s/dev/block/%d:%d", sys, unix.Major(dev), unix.Minor(dev)))
	if err != nil {
		return false
	}
	for _, dir := range []string{node, filepath.Dir(node)} { // a partition's queue is its disk's
		if b, err := os.ReadFile(filepath.Join(dir, "queue", "rotational")); err == nil {
			return strings.TrimSpace(string(b)) == "1"
		}
	}
	return false
}
