package top

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
	"github.com/filecache/filecache/cmd/filecache/internal/procs"
)

// ShmemLabel names the kernel's internal shmem mount: memfd_create(2) files,
// SysV shared memory and shared anonymous mappings. No mount point shows it;
// a memfd of filecache's own is the way in.
const ShmemLabel = "shmem"

// BdevLabel names the kernel's block device filesystem: every block
// device's own page cache (Buffers in /proc/meminfo) hangs off one inode
// each there. A filesystem on a block device is the way in (FC_WALK_BDEV):
// no device is opened.
const BdevLabel = "bdev"

// ErrNoBlockDevice: no block device could be opened to reach the bdev
// filesystem; Buffers are then not walked, which is not a failure.
var ErrNoBlockDevice = errors.New("no filesystem on a block device to reach it through: Buffers not walked")

// Meminfo holds the /proc/meminfo counters a snapshot is held against, in bytes.
type Meminfo struct {
	Cached, Shmem, Buffers uint64
	Read                   bool // /proc/meminfo was read
}

// ParseMeminfo reads Cached, Shmem and Buffers (kB) from /proc/meminfo.
func ParseMeminfo(r io.Reader) (Meminfo, error) {
	var m Meminfo
	sc := bufio.NewScanner(r)
	found := 0
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch name {
		case "Cached":
			dst = &m.Cached
		case "Shmem":
			dst = &m.Shmem
		case "Buffers":
			dst = &m.Buffers
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("meminfo %s: %q", name, rest)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("meminfo %s: %w", name, err)
		}
		*dst = kb * 1024
		found++
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("meminfo: %w", err)
	}
	if found != 3 {
		return m, fmt.Errorf("meminfo: %d of Cached, Shmem, Buffers found", found)
	}
	m.Read = true
	return m, nil
}

// Snapshot is one scan of the machine.
type Snapshot struct {
	Time     time.Time
	Method   string // how the filesystems were walked (bpf.MethodLoop or bpf.MethodBounded)
	PageSize int
	FS       []FSTotal
	Rows     []Row
	Mem      Meminfo
	MemErr   error
	// Restricted: --mount chose the filesystems, so totals are not the machine's.
	Restricted bool
	// Prev holds the previous snapshot's pages by filesystem and inode
	// (--watch): rows then show growth and shrinkage.
	Prev map[[2]uint64]uint64
	// PrevFS holds the previous pages of each filesystem by device.
	PrevFS map[uint64]uint64

	// By cgroup (the cgroup walk): ByCgroup says the rows are shown as
	// (cgroup, file) Pairs; Filter lists the cgroups (--cgroup) whose pages
	// alone count, if any; Cgroups are every counted cgroup's pages;
	// Names names them (the caller sets it).
	CgroupWalk bool
	ByCgroup   bool
	Filter     []string
	Pairs      []Pair
	Cgroups    []CgroupTotal
	Names      CgroupNames
	// NSContainers are the containers of the processes through whose
	// roots rows were reached (IdentifyNamespaces).
	NSContainers map[int]cgroups.Container
	// Holders says the rows' holders were looked for (--processes).
	Holders bool
}

// AttachHolders gives each row the processes idx says hold its inode (by
// the filesystem's device and the inode number).
func (s *Snapshot) AttachHolders(idx map[[2]uint64][]procs.Holder) {
	s.Holders = true
	for i := range s.Rows {
		r := &s.Rows[i]
		r.Holders = idx[[2]uint64{s.FS[r.FS].FS.Dev, r.Ino}]
	}
}

// Accounted sums the pages of every filesystem walked (what Cached in
// /proc/meminfo counts), of those whose pages count as Shmem, and of the
// block devices (Buffers).
func (s Snapshot) Accounted() (pages, shmem, buffers uint64) {
	for _, t := range s.FS {
		switch {
		case t.FS.Label == BdevLabel:
			buffers += t.Pages
		case t.Shmem:
			shmem += t.Pages
			pages += t.Pages
		default:
			pages += t.Pages
		}
	}
	return pages, shmem, buffers
}

// Partial says whether any figure misses part of a filesystem.
func (s Snapshot) Partial() bool {
	for _, t := range s.FS {
		if t.Partial != "" || (t.Err != nil && !Skipped(t.Err)) {
			return true
		}
	}
	return false
}

// Change is a row's pages now minus in the previous snapshot, and whether
// there was one to compare with.
func (s Snapshot) Change(r Row) (int64, bool) {
	if s.Prev == nil {
		return 0, false
	}
	before := s.Prev[[2]uint64{s.FS[r.FS].FS.Dev, r.Ino}]
	return int64(r.Pages) - int64(before), true
}

// Keys records a snapshot's pages for the next one to compare with. Only
// the rows are kept: memory stays bounded by the rows asked for.
func (s Snapshot) Keys() (map[[2]uint64]uint64, map[uint64]uint64) {
	rows := make(map[[2]uint64]uint64, len(s.Rows))
	for _, r := range s.Rows {
		rows[[2]uint64{s.FS[r.FS].FS.Dev, r.Ino}] = r.Pages
	}
	fs := make(map[uint64]uint64, len(s.FS))
	for _, t := range s.FS {
		fs[t.FS.Dev] = t.Pages
	}
	return rows, fs
}

// Discover lists the filesystems to walk: each superblock of ms once, the
// kernel's shmem mount, and the block devices (through the mounts of
// filesystems on one: a major device number other than 0). Filesystems that
// cannot hold page cache or whose mount point a lookup would trigger are
// left out.
func Discover(ms []Mount) []Filesystem {
	var out []Filesystem
	for _, fs := range Group(ms) {
		if skipType[fs.FSType] {
			continue
		}
		out = append(out, fs)
	}
	bdev := Filesystem{Label: BdevLabel, FSType: "bdev"}
	for _, fs := range out {
		if unix.Major(fs.Dev) != 0 {
			bdev.Mounts = append(bdev.Mounts, fs.Mounts...)
		}
	}
	return append(out, Filesystem{Label: ShmemLabel, FSType: "shmem"}, bdev)
}

// Mounts reads this process's mount table, then that of every other mount
// namespace (a container's), through the lowest pid in it: those mount
// points are given as /proc/PID/root/POINT, a path that leads there from
// here. A process that exits meanwhile is passed over.
func Mounts(proc string) ([]Mount, error) {
	own, err := readMountinfo(proc + "/self/mountinfo")
	if err != nil {
		return nil, err
	}
	self, _ := os.Readlink(proc + "/self/ns/mnt")
	entries, err := os.ReadDir(proc)
	if err != nil {
		return own, nil
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	seen := map[string]bool{self: true}
	for _, pid := range pids {
		dir := fmt.Sprintf("%s/%d", proc, pid)
		ns, err := os.Readlink(dir + "/ns/mnt")
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		ms, err := readMountinfo(dir + "/mountinfo")
		if err != nil {
			continue
		}
		for _, m := range ms {
			m.Point = strings.TrimSuffix(dir+"/root"+m.Point, "/")
			m.NSPid, m.NSRoot = pid, dir+"/root"
			own = append(own, m)
		}
	}
	return own, nil
}

func readMountinfo(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := ParseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ms, nil
}

// skipType: autofs mounts on lookup; the others never hold page cache and
// some (proc) have huge inode lists.
var skipType = map[string]bool{"autofs": true, "proc": true, "sysfs": true, "cgroup": true, "cgroup2": true,
	"devpts": true, "mqueue": true, "debugfs": true, "tracefs": true, "securityfs": true, "pstore": true,
	"bpf": true, "configfs": true, "fusectl": true, "binfmt_misc": true, "nsfs": true, "efivarfs": true}

// ErrCovered: every mount of a filesystem is hidden under a later mount, so
// no path leads to it. Its pages are missed, which is not a failure of the run.
var ErrCovered = errors.New("covered by a later mount: not walked")

// Skipped says whether err only means a filesystem could not be reached
// (covered, or no block device), not that something failed.
func Skipped(err error) bool {
	return errors.Is(err, ErrCovered) || errors.Is(err, ErrNoBlockDevice)
}

// OpenAnchor opens an fd on fs for the walk: O_PATH on a mount point that
// still shows fs (not covered by a later mount), or a memfd for the shmem
// mount. Nothing is read and nothing is written.
func OpenAnchor(fs Filesystem) (int, uint32, func(), error) {
	if fs.Label == ShmemLabel {
		fd, err := unix.MemfdCreate("filecache-walk", unix.MFD_CLOEXEC)
		if err != nil {
			return -1, 0, nil, fmt.Errorf("memfd_create: %w", err)
		}
		return fd, 0, func() { unix.Close(fd) }, nil
	}
	var firstErr error
	want, flags := fs.Dev, uint32(0)
	if fs.Label == BdevLabel {
		firstErr = ErrNoBlockDevice
		flags = bpf.WalkBdev
	}
	for _, m := range fs.Mounts {
		if fs.Label == BdevLabel {
			want = m.Dev
		}
		fd, err := unix.Open(m.Point, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("open %s: %w", m.Point, err)
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Dev != want {
			unix.Close(fd)
			if firstErr == nil {
				firstErr = ErrCovered
			}
			continue
		}
		return fd, flags, func() { unix.Close(fd) }, nil
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("no mount point")
	}
	return -1, 0, nil, firstErr
}

// devName is /dev/DEVNAME from a sysfs device directory's uevent, or "".
func devName(sys string) string {
	b, err := os.ReadFile(sys + "/uevent")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "DEVNAME="); ok && v != "" && !strings.Contains(v, "..") {
			return "/dev/" + v
		}
	}
	return ""
}

// BlockDevice names the block device of a kernel-encoded dev_t.
func BlockDevice(kdev uint32) string {
	d := bpf.Dev(kdev)
	maj, min := unix.Major(d), unix.Minor(d)
	if n := devName(fmt.Sprintf("/sys/dev/block/%d:%d", maj, min)); n != "" {
		return n
	}
	return fmt.Sprintf("block device %d:%d", maj, min)
}

// Take scans the machine once; with o.Cgroups, through its walker (w may
// then be nil).
func Take(w Walker, fss []Filesystem, o Options) Snapshot {
	s := Snapshot{Time: time.Now(), PageSize: os.Getpagesize()}
	if o.Cgroups != nil {
		s.Method, s.CgroupWalk, s.ByCgroup = o.Cgroups.Walker.Method(), true, o.Cgroups.Pairs
		if err := o.Cgroups.Walker.Allow(o.Cgroups.Allow); err != nil {
			s.FS = make([]FSTotal, len(fss))
			for i := range fss {
				s.FS[i] = FSTotal{FS: fss[i], Err: fmt.Errorf("cgroup filter: %w", err)}
			}
			return s
		}
	} else {
		s.Method = w.Method()
	}
	s.FS, s.Rows = Scan(w, fss, OpenAnchor, o)
	if o.Cgroups != nil {
		s.cgroupRows(o)
	}
	if f, err := os.Open("/proc/meminfo"); err != nil {
		s.MemErr = err
	} else {
		s.Mem, s.MemErr = ParseMeminfo(f)
		f.Close()
	}
	return s
}
