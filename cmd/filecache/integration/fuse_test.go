package integration

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fuseFS is a tiny read-only FUSE filesystem speaking the kernel's protocol
// directly (no library, no fusermount, so it runs wherever the kernel has
// FUSE): one directory holding files of the given sizes, whose bytes are a
// pattern. The test mounts it and a child process (this test binary again,
// see TestMain) serves it: a process must not serve a FUSE filesystem it
// also maps and locks pages of, or its own page faults and mmap_lock wait
// on requests only it can answer. The server logs, before it answers them,
// the requests of processes other than the test and itself, so a test can
// tell what filecache asked of the filesystem.
type fuseFS struct {
	dir string
	log string // the server's request log: "OPCODE FLAGS COMM" lines
}

type fuseFile struct {
	Name string
	Size int64
}

// fuseOp is a request of another process: its opcode, its command name
// and, for an open, its flags.
type fuseOp struct {
	op    uint32
	comm  string
	flags uint32
}

// FUSE opcodes and flags (include/uapi/linux/fuse.h).
const (
	fuseLookup      = 1
	fuseForget      = 2
	fuseGetattr     = 3
	fuseOpen        = 14
	fuseRead        = 15
	fuseStatfs      = 17
	fuseRelease     = 18
	fuseFlush       = 25
	fuseInit        = 26
	fuseOpendir     = 27
	fuseReaddir     = 28
	fuseReleasedir  = 29
	fuseInterrupt   = 36
	fuseBatchForget = 42
	fopenKeepCache  = 1 << 1 // keep the page cache across opens
	fuseInHeader    = 40
	fuseOutHeader   = 16
)

// envFUSEServe makes TestMain serve a fuseFS (a JSON fuseServer) on fd 3.
const envFUSEServe = "FILECACHE_TEST_FUSE_SERVE"

// fuseServer is what the serving child knows.
type fuseServer struct {
	Files []fuseFile // node ids 2, 3, ...; the root is 1
	Log   string
	Test  int // the test's pid, whose requests are not logged
	fd    int
	log   *os.File
}

// mountFUSE mounts a fuseFS on a new directory and starts its server,
// both undone at the end; it skips where the kernel has no FUSE.
func mountFUSE(t *testing.T, files []fuseFile) *fuseFS {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		skipFeature(t, "fuse", "FUSE is not available: %v", err)
	}
	if fsTypes, err := os.ReadFile("/proc/filesystems"); err != nil || !bytes.Contains(fsTypes, []byte("\tfuse\n")) {
		skipFeature(t, "fuse", "FUSE is not available: the kernel lists no fuse filesystem type (module not loaded?)")
	}
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		skipFeature(t, "fuse", "FUSE is not available: open /dev/fuse: %v", err)
	}
	defer dev.Close() // the server holds it from here
	work := tempDir(t)
	f := &fuseFS{dir: filepath.Join(work, "mnt"), log: filepath.Join(work, "requests")}
	if err := os.Mkdir(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0", dev.Fd())
	if err := unix.Mount("filecache-test", f.dir, "fuse", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		t.Fatalf("mount fuse on %s: %v", f.dir, err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(fuseServer{Files: files, Log: f.log, Test: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	server := exec.Command(self)
	server.Env = append(os.Environ(), envFUSEServe+"="+string(cfg))
	server.ExtraFiles = []*os.File{dev} // fd 3
	server.Stdout, server.Stderr = os.Stderr, os.Stderr
	if err := server.Start(); err != nil {
		unix.Unmount(f.dir, unix.MNT_DETACH)
		t.Fatalf("start the FUSE server: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(f.dir, 0); err != nil {
			t.Logf("unmount %s: %v; detaching lazily", f.dir, err)
			unix.Unmount(f.dir, unix.MNT_DETACH)
		}
		// The kernel ends the connection: the server's read fails with
		// ENODEV and it exits.
		if err := server.Wait(); err != nil {
			t.Errorf("FUSE server: %v", err)
		}
	})
	return f
}

// by returns the requests that processes running the program bin made
// since the last reset. Each is logged before it is answered, so every
// request of a run that has ended is there.
func (f *fuseFS) by(t *testing.T, bin string) []fuseOp {
	t.Helper()
	comm := filepath.Base(bin)
	comm = comm[:min(len(comm), 15)] // TASK_COMM_LEN less the NUL
	b, err := os.ReadFile(f.log)
	if err != nil {
		t.Fatal(err)
	}
	var ops []fuseOp
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var o fuseOp
		if _, err := fmt.Sscanf(l, "%d %d %s", &o.op, &o.flags, &o.comm); err == nil && o.comm == comm {
			ops = append(ops, o)
		}
	}
	return ops
}

func (f *fuseFS) reset(t *testing.T) {
	t.Helper()
	if err := os.Truncate(f.log, 0); err != nil { // the server appends
		t.Fatal(err)
	}
}

// serveFUSE is the child's work: answer requests on fd 3 until the
// filesystem is unmounted.
func serveFUSE(cfg string) {
	s := &fuseServer{fd: 3}
	if err := json.Unmarshal([]byte(cfg), s); err != nil {
		fmt.Fprintf(os.Stderr, "fuse server: %v\n", err)
		os.Exit(2)
	}
	var err error
	if s.log, err = os.OpenFile(s.Log, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		fmt.Fprintf(os.Stderr, "fuse server: %v\n", err)
		os.Exit(2)
	}
	buf := make([]byte, 1<<20+4096) // the kernel wants room for max_write
	for {
		n, err := unix.Read(s.fd, buf)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN || err == unix.ENOENT: // ENOENT: a request interrupted
			continue
		case err == unix.ENODEV: // unmounted
			os.Exit(0)
		case err != nil:
			fmt.Fprintf(os.Stderr, "fuse server: read /dev/fuse: %v\n", err)
			os.Exit(1)
		case n < fuseInHeader:
			continue
		}
		s.handle(buf[:n])
	}
}

var le = binary.LittleEndian

func (f *fuseServer) handle(req []byte) {
	op, unique, node, pid := le.Uint32(req[4:]), le.Uint64(req[8:]), le.Uint64(req[16:]), le.Uint32(req[32:])
	in := req[fuseInHeader:]
	if comm, ok := f.otherProcess(pid); ok && op != fuseForget && op != fuseBatchForget && op != fuseInterrupt {
		flags := uint32(0)
		if op == fuseOpen {
			flags = le.Uint32(in)
		}
		fmt.Fprintf(f.log, "%d %d %s\n", op, flags, comm)
	}
	switch op {
	case fuseForget, fuseBatchForget, fuseInterrupt: // no reply
	case fuseInit:
		out := make([]byte, 64)                  // fuse_init_out
		le.PutUint32(out[0:], 7)                 // major
		le.PutUint32(out[4:], 31)                // minor
		le.PutUint32(out[8:], le.Uint32(in[8:])) // max_readahead
		le.PutUint16(out[16:], 16)               // max_background
		le.PutUint16(out[18:], 12)               // congestion_threshold
		le.PutUint32(out[20:], 1<<20)            // max_write
		le.PutUint32(out[24:], 1)                // time_gran
		f.reply(unique, 0, out)
	case fuseLookup:
		name := string(bytes.TrimRight(in, "\x00"))
		for i, file := range f.Files {
			if node == 1 && file.Name == name {
				out := make([]byte, 40+88) // fuse_entry_out
				le.PutUint64(out[0:], uint64(i+2))
				// entry_valid 0: every lookup comes here, so each run of
				// filecache shows in the log.
				le.PutUint64(out[24:], 3600) // attr_valid
				f.attr(out[40:], uint64(i+2))
				f.reply(unique, 0, out)
				return
			}
		}
		f.reply(unique, unix.ENOENT, nil)
	case fuseGetattr:
		out := make([]byte, 16+88) // fuse_attr_out
		le.PutUint64(out[0:], 3600)
		f.attr(out[16:], node)
		f.reply(unique, 0, out)
	case fuseOpen:
		if flags := le.Uint32(in); flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0 {
			f.reply(unique, unix.EROFS, nil)
			return
		}
		out := make([]byte, 16) // fuse_open_out
		le.PutUint64(out[0:], node)
		le.PutUint32(out[8:], fopenKeepCache)
		f.reply(unique, 0, out)
	case fuseOpendir:
		f.reply(unique, 0, make([]byte, 16))
	case fuseRead:
		off, size := int64(le.Uint64(in[8:])), int64(le.Uint32(in[16:]))
		fsize := f.Files[node-2].Size
		if off >= fsize {
			f.reply(unique, 0, nil)
			return
		}
		out := make([]byte, min(size, fsize-off))
		for i := range out {
			out[i] = byte((off + int64(i)) * 7)
		}
		f.reply(unique, 0, out)
	case fuseReaddir:
		off, size := int(le.Uint64(in[8:])), int(le.Uint32(in[16:]))
		var out []byte
		for i := off; i < len(f.Files); i++ {
			name := f.Files[i].Name
			rec := make([]byte, (24+len(name)+7)&^7) // fuse_dirent, 8-byte aligned
			le.PutUint64(rec[0:], uint64(i+2))
			le.PutUint64(rec[8:], uint64(i+1)) // the offset of the next entry
			le.PutUint32(rec[16:], uint32(len(name)))
			le.PutUint32(rec[20:], unix.DT_REG)
			copy(rec[24:], name)
			if len(out)+len(rec) > size {
				break
			}
			out = append(out, rec...)
		}
		f.reply(unique, 0, out)
	case fuseStatfs:
		out := make([]byte, 80)      // fuse_statfs_out
		le.PutUint32(out[40:], 4096) // bsize
		le.PutUint32(out[44:], 255)  // namelen
		le.PutUint32(out[48:], 4096) // frsize
		f.reply(unique, 0, out)
	case fuseRelease, fuseReleasedir, fuseFlush:
		f.reply(unique, 0, nil)
	default:
		f.reply(unique, unix.ENOSYS, nil) // the kernel remembers and asks no more
	}
}

// attr fills a fuse_attr for node.
func (f *fuseServer) attr(b []byte, node uint64) {
	le.PutUint64(b[0:], node)
	mode, nlink, size := uint32(unix.S_IFDIR|0o755), uint32(2), int64(0)
	if node >= 2 {
		mode, nlink, size = unix.S_IFREG|0o444, 1, f.Files[node-2].Size
	}
	le.PutUint64(b[8:], uint64(size))
	le.PutUint64(b[16:], uint64(size+511)/512)
	le.PutUint32(b[60:], mode)
	le.PutUint32(b[64:], nlink)
	le.PutUint32(b[80:], 4096) // blksize
}

func (f *fuseServer) reply(unique uint64, errno unix.Errno, data []byte) {
	out := make([]byte, fuseOutHeader+len(data))
	le.PutUint32(out[0:], uint32(len(out)))
	le.PutUint32(out[4:], uint32(-int32(errno)))
	le.PutUint64(out[8:], unique)
	copy(out[fuseOutHeader:], data)
	unix.Write(f.fd, out) // fails only for a request the kernel gave up
}

// otherProcess says whether thread pid belongs to another process than
// the test and this server, and returns its command name (no spaces).
func (f *fuseServer) otherProcess(pid uint32) (string, bool) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "Tgid:"); ok {
			if tgid, _ := strconv.Atoi(strings.TrimSpace(v)); tgid == os.Getpid() || tgid == f.Test {
				return "", false
			}
		}
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.ReplaceAll(strings.TrimSpace(string(comm)), " ", "_"), true
}

// pinPages leaves in the page cache exactly the pages of path holding the
// byte ranges given ({offset, length}), locked there until the test ends:
// it maps the file without read-around, locks those pages (mlock reads them
// in) and drops every other page. Locked pages are out of reach of the
// host's reclaim, and the rest is not cached: from then on only a read of
// the file can change what the page cache holds of it. The function it
// returns drops again whatever else came in, and checks the count.
func pinPages(t *testing.T, path string, ranges ...[2]int64) (settle func(*testing.T)) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap %s: %v", path, err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	if err := unix.Madvise(mem, unix.MADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	want := uint64(0)
	for _, r := range ranges {
		if err := unix.Mlock(mem[r[0] : r[0]+r[1]]); err != nil {
			t.Fatalf("mlock %s bytes %d+%d: %v", path, r[0], r[1], err)
		}
		want += uint64((r[0]+r[1]+pageSize-1)/pageSize - r[0]/pageSize)
	}
	settle = func(t *testing.T) {
		t.Helper()
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		if got, err := cachedPages(fd); err != nil || got != want {
			t.Fatalf("%s: %d pages cached, %d pinned (%v)", path, got, want, err)
		}
	}
	settle(t)
	return settle
}

// A file on FUSE gets the figures cachestat and mincore give, named or
// walked, and filecache never reads it nor opens it for writing: the bpf
// engine does not open it at all (O_PATH sends no FUSE open). The cached
// pages are pinned and the others dropped before each run, so the page
// cache cannot change during a run unless filecache reads the files: a
// change is a failure.
func TestFUSE(t *testing.T) {
	bin := filecacheBin(t)
	fsys := mountFUSE(t, []fuseFile{{"data", 4 * mib}, {"small", 10000}})
	data, small := fsys.dir+"/data", fsys.dir+"/small"
	paths := []string{data, small}
	settleSmall := pinPages(t, small, [2]int64{0, 10000})
	settleData := pinPages(t, data, [2]int64{0, 256 * 1024}, [2]int64{2 * mib, 128 * 1024})
	settle := func(t *testing.T) {
		t.Helper()
		settleSmall(t)
		settleData(t)
		fsys.reset(t)
	}
	checkOps := func(t *testing.T) {
		t.Helper()
		ops := fsys.by(t, bin)
		engine, _ := wantEngine(t)
		for _, o := range ops {
			switch {
			case o.op == fuseRead:
				t.Errorf("filecache read file data through FUSE")
			case o.op == fuseOpen && engine == "bpf":
				t.Errorf("the bpf engine opened a file (flags %#o): O_PATH sends no FUSE open", o.flags)
			case o.op == fuseOpen && (o.flags&unix.O_ACCMODE != unix.O_RDONLY || o.flags&unix.O_TRUNC != 0):
				t.Errorf("filecache opened a file with flags %#o, not read-only", o.flags)
			}
		}
		if len(ops) == 0 {
			t.Errorf("the FUSE server saw no request of filecache: cannot tell what it did")
		}
	}
	unchanged := func(t *testing.T, before, after []ref) {
		t.Helper()
		if ok, diff := sameRefs(paths, before, after); !ok {
			t.Errorf("the page cache of the pinned files changed during the run (%s): only a read of them does that", diff)
		}
	}

	t.Run("named", func(t *testing.T) {
		settle(t)
		before := takeRefs(t, paths)
		res := run(t, bin, "--json", data, small)
		unchanged(t, before, takeRefs(t, paths))
		if res.code != 0 {
			t.Fatalf("exit status %d\n%s", res.code, res)
		}
		checkFiles(t, mustReport(t, res), paths, before)
		checkOps(t)
	})

	t.Run("walked", func(t *testing.T) {
		settle(t)
		before := takeRefs(t, paths)
		res := run(t, bin, "--json", "--files", fsys.dir)
		unchanged(t, before, takeRefs(t, paths))
		r := parseTrees(t, res)
		if res.code != 0 || len(r.Trees) != 1 || r.Trees[0].Files != len(paths) || len(r.Files) != len(paths) {
			t.Fatalf("want the %d files answered\n%s", len(paths), res)
		}
		for _, e := range r.Files {
			i := slices.Index(paths, e.Path)
			if i < 0 {
				t.Errorf("listed %s, not a file of the filesystem", e.Path)
			} else if msg := entryProblems(e, e.Path, before[i]); msg != "" {
				t.Errorf("%s: %s", e.Path, msg)
			}
		}
		checkOps(t)
	})
}
