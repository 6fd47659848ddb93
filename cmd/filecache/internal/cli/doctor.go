package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// Check is one engine (and BPF method) tried on a test file.
type Check struct {
	Engine  string   `json:"engine"`
	Method  string   `json:"method"`
	OK      bool     `json:"ok"`
	Detail  string   `json:"detail,omitempty"`
	Error   string   `json:"error,omitempty"`
	Seconds float64  `json:"seconds"`
	log     []string // libbpf's, for -v
}

// Doctor is what filecache doctor found.
type Doctor struct {
	Build    Build  `json:"build"`
	Kernel   string `json:"kernel"`
	Arch     string `json:"arch"`
	PageSize int    `json:"page_size"`
	BTF      struct {
		Path    string `json:"path"`
		Present bool   `json:"present"`
		Bytes   int64  `json:"bytes,omitempty"`
		Error   string `json:"error,omitempty"`
	} `json:"btf"`
	UID             int      `json:"uid"`
	Capabilities    []string `json:"capabilities"`
	BPFPrivileged   bool     `json:"bpf_privileged"`
	Lockdown        string   `json:"lockdown"`
	UnprivilegedBPF string   `json:"unprivileged_bpf_disabled"`
	Checks          []Check  `json:"checks"`
	Auto            *Check   `json:"auto"`
	Top             TopWalk  `json:"top"`
	Trees           TreeWalk `json:"trees"`
}

// TopWalk is the filesystem walk filecache top uses here, and why.
type TopWalk struct {
	Method  string `json:"method"`
	Program string `json:"program"`
	Reason  string `json:"reason"`
}

// The test file: testPages pages long, the first testCached written, so an
// engine that answers right says exactly testCached.
const (
	testPages  = 5
	testCached = 3
)

// DoctorCmd checks the machine.
type DoctorCmd struct{}

// Run tries every engine and BPF method on a test file and says which work.
func (DoctorCmd) Run(g *Globals) error {
	env := g.env
	d := Doctor{Build: env.Build, PageSize: unix.Getpagesize(), UID: os.Geteuid(), Capabilities: []string{}}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		d.Kernel, d.Arch = unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:])
	}
	d.BTF.Path = g.BTF
	if d.BTF.Path == "" {
		d.BTF.Path = bpf.KernelBTF
	}
	if st, err := os.Stat(d.BTF.Path); err != nil {
		d.BTF.Error = err.Error()
	} else {
		d.BTF.Present, d.BTF.Bytes = true, st.Size()
	}
	caps, err := env.Caps()
	if err == nil {
		for _, cp := range []struct {
			n    int
			name string
		}{{pagecache.CapSysAdmin, "CAP_SYS_ADMIN"}, {pagecache.CapPerfmon, "CAP_PERFMON"}, {pagecache.CapBPF, "CAP_BPF"}} {
			if caps.Has(cp.n) {
				d.Capabilities = append(d.Capabilities, cp.name)
			}
		}
		d.BPFPrivileged = caps.CanLoadBPF()
	}
	d.Lockdown = readTrim("/sys/kernel/security/lockdown", "not available")
	d.UnprivilegedBPF = readTrim("/proc/sys/kernel/unprivileged_bpf_disabled", "not available")

	fd, err := testFile()
	if err != nil {
		return g.failed(fmt.Errorf("doctor: %w", err))
	}
	defer unix.Close(fd)
	h := pagecache.Handle{Fd: fd, Mode: unix.S_IFREG | 0o600}

	for _, m := range bpf.Methods {
		d.Checks = append(d.Checks, try("bpf", m, h, func() (pagecache.Engine, error) { return g.loadBPF(m) }))
	}
	d.Checks = append(d.Checks,
		try("cachestat", "cachestat(2)", h, func() (pagecache.Engine, error) { return pagecache.CachestatEngine{}, nil }),
		try("mincore", "mmap+mincore(2)", h, func() (pagecache.Engine, error) { return pagecache.MincoreEngine{}, nil }))
	for _, m := range []string{bpf.MethodLoop, bpf.MethodBounded} {
		d.Checks = append(d.Checks, g.tryTop(fd, m))
	}
	d.Checks = append(d.Checks, g.tryPages(h))
	dirs, trees := g.tryDirs()
	d.Checks = append(d.Checks, dirs)
	d.Trees = trees
	d.Top = g.topWalk()
	auto := &pagecache.Chain{Stages: (&Globals{Engine: "auto", BTF: g.BTF, Method: "auto", env: env}).stages(nil)}
	a := try("auto", "", h, func() (pagecache.Engine, error) { return auto, nil })
	a.Engine, a.Method = auto.Name(), auto.Method()
	d.Auto = &a

	if g.JSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return g.failed(fmt.Errorf("write JSON: %w", err))
		}
	} else if err := d.table(env.Stdout, g.Verbose); err != nil {
		return g.failed(err)
	}
	if !a.OK {
		return exitStatus(ExitFailed)
	}
	return nil
}

// testFile is an anonymous memory file of testPages pages whose first
// testCached pages are written, hence in the page cache: a known state that
// touches no disk.
func testFile() (int, error) {
	fd, err := unix.MemfdCreate("filecache-doctor", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	page := unix.Getpagesize()
	if err := unix.Ftruncate(fd, int64(testPages*page)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("ftruncate test file: %w", err)
	}
	if _, err := unix.Pwrite(fd, make([]byte, testCached*page), 0); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("write test file: %w", err)
	}
	return fd, nil
}

// fail records why a check failed, with libbpf's log for -v.
func (ch *Check) fail(err error) {
	ch.Error = err.Error()
	var ll LoadLog
	if errors.As(err, &ll) {
		ch.log = ll.LoadLog()
	}
}

// try loads an engine and measures the test file with it.
// The result is named so the deferred timing reaches every return.
func try(engine, method string, h pagecache.Handle, load func() (pagecache.Engine, error)) (ch Check) {
	ch = Check{Engine: engine, Method: method}
	start := time.Now()
	defer func() { ch.Seconds = time.Since(start).Seconds() }()
	fail := func(err error) Check {
		ch.fail(err)
		return ch
	}
	eng, err := load()
	if err != nil {
		return fail(err)
	}
	defer eng.Close()
	ans, err := eng.Query([]pagecache.Handle{h})
	if err != nil {
		return fail(err)
	}
	if ans[0].Err != nil {
		return fail(ans[0].Err)
	}
	page := int64(unix.Getpagesize())
	if ans[0].Pages != testCached || ans[0].Size != testPages*page {
		return fail(fmt.Errorf("wrong answer on a test file: %d pages of %d bytes, want %d of %d",
			ans[0].Pages, ans[0].Size, testCached, testPages*page))
	}
	ch.OK = true
	ch.Detail = fmt.Sprintf("%d/%d pages of a test file, right", testCached, testPages)
	return ch
}

// topWalk says which walk filecache top gets on this kernel unforced (as
// "filecache uses" is the automatic choice), and why.
func (g *Globals) topWalk() TopWalk {
	if g.env.WalkMethod == nil {
		return TopWalk{Reason: "no BPF loader in this build"}
	}
	t := TopWalk{Method: g.env.WalkMethod("")}
	t.Program = bpf.WalkPrograms[t.Method]
	t.Reason = "libbpf's probe finds the bpf_loop helper (Linux >= 5.17): one test run walks a whole filesystem"
	if t.Method == bpf.MethodBounded {
		t.Reason = fmt.Sprintf("libbpf's probe finds no bpf_loop helper (Linux < 5.17): test runs of at most %d inodes walk a filesystem, each resuming after an inode it first checks is still on the list", bpf.RunSteps)
	}
	return t
}

// tryTop checks one of filecache top's walks: loaded, it must find the test
// file (a memfd, on the kernel's shmem mount) with its testCached pages.
// The bounded walk takes one inode a run, so the test file is found after
// resuming.
func (g *Globals) tryTop(fd int, method string) (ch Check) {
	env := g.env
	ch = Check{Engine: "top", Method: fmt.Sprintf("%s (%s)", bpf.WalkPrograms[method], method)}
	start := time.Now()
	defer func() { ch.Seconds = time.Since(start).Seconds() }()
	var st unix.Stat_t
	var w top.Walker
	var closeW func()
	err := unix.Fstat(fd, &st)
	if err == nil && env.LoadWalker == nil {
		err = errors.New("no BPF loader in this build")
	}
	if err == nil {
		err = g.checkedLoad(func() (err error) {
			w, closeW, err = env.LoadWalker(LoadOptions{BTF: g.BTF, Method: method})
			return err
		})
	}
	if err != nil {
		ch.fail(err)
		return ch
	}
	defer closeW()
	shm := top.Filesystem{Label: top.ShmemLabel}
	anchor := func(top.Filesystem) (int, uint32, func(), error) { return fd, 0, func() {}, nil }
	totals, rows := top.Scan(w, []top.Filesystem{shm}, anchor, top.Options{MinPages: testCached, RunSteps: 1})
	if totals[0].Err != nil {
		ch.Error = totals[0].Err.Error()
		return ch
	}
	for _, r := range rows {
		if r.Ino == st.Ino {
			if r.Pages != testCached {
				ch.Error = fmt.Sprintf("wrong answer on a test file: %d pages, want %d", r.Pages, testCached)
				return ch
			}
			ch.OK = true
			ch.Detail = fmt.Sprintf("found the test file among %d inodes, %d/%d pages, right", totals[0].Inodes, testCached, testPages)
			if method == bpf.MethodBounded {
				ch.Detail += fmt.Sprintf(" (%d runs)", totals[0].Runs)
			}
			return ch
		}
	}
	ch.Error = fmt.Sprintf("the walk of %d inodes missed the test file", totals[0].Inodes)
	return ch
}

func (d Doctor) table(w io.Writer, verbose bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "filecache\t%s (commit %s), %s, libbpf %s, %s\n", d.Build.Version, d.Build.Commit, d.Build.Go, d.Build.Libbpf, d.Build.Arch)
	fmt.Fprintf(tw, "kernel\t%s (%s), page size %d\n", d.Kernel, d.Arch, d.PageSize)
	if d.BTF.Present {
		fmt.Fprintf(tw, "btf\t%s (%d bytes)\n", d.BTF.Path, d.BTF.Bytes)
	} else {
		fmt.Fprintf(tw, "btf\tmissing: %s\n", d.BTF.Error)
	}
	caps := strings.Join(d.Capabilities, " ")
	if caps == "" {
		caps = "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN"
	}
	fmt.Fprintf(tw, "privileges\tuid %d, %s (bpf engine %s)\n", d.UID, caps, map[bool]string{true: "allowed", false: "not allowed"}[d.BPFPrivileged])
	fmt.Fprintf(tw, "lockdown\t%s\n", d.Lockdown)
	fmt.Fprintf(tw, "unprivileged_bpf_disabled\t%s\n", d.UnprivilegedBPF)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "ENGINE\tMETHOD\tWORKS\tWHY")
	for _, ch := range d.Checks {
		why := ch.Detail
		works := "yes"
		if !ch.OK {
			works, why = "no", ch.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.Engine, ch.Method, works, why)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write doctor report: %w", err)
	}
	if d.Auto.OK {
		fmt.Fprintf(w, "\nfilecache uses: %s (%s)\n", d.Auto.Engine, d.Auto.Method)
	} else {
		fmt.Fprintf(w, "\nfilecache cannot measure here: %s\n", d.Auto.Error)
	}
	if d.Top.Method != "" {
		fmt.Fprintf(w, "filecache top walks with: %s (%s)\n", d.Top.Method, d.Top.Program)
	}
	if verbose && d.Top.Reason != "" {
		fmt.Fprintf(w, "  because %s\n", d.Top.Reason)
	}
	if d.Trees.Program != "" {
		fmt.Fprintf(w, "filecache walks trees with: %s (%s)\n", d.Trees.Method, d.Trees.Program)
	} else if d.Trees.Method != "" {
		fmt.Fprintf(w, "filecache walks trees with: %s (%s)\n", d.Trees.Method, d.Trees.Reason)
	}
	if verbose && d.Trees.Program != "" {
		fmt.Fprintf(w, "  because %s\n", d.Trees.Reason)
	}
	if verbose {
		for _, ch := range d.Checks {
			if tail := pagecache.LogTail(ch.log, 20); len(tail) > 0 {
				fmt.Fprintf(w, "\n%s %s, libbpf and verifier log:\n  %s\n", ch.Engine, ch.Method, strings.Join(tail, "\n  "))
			}
		}
	}
	return nil
}

func readTrim(path, missing string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return missing
	}
	return strings.TrimSpace(string(b))
}
