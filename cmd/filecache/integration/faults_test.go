package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/mountinfo"
)

// Faults the bpf engine meets on real machines, each forced here: filecache
// must say in one line why the bpf engine is not used and answer through a
// fallback engine, or, with --engine=bpf, print no figure.

const envSeccompExec = "FILECACHE_TEST_SECCOMP_EXEC"

// TestMain doubles as a launcher: with envSeccompExec set it installs a
// seccomp filter that fails bpf(2) with EPERM, then execs its arguments;
// with envFUSEServe it serves TestFUSE's filesystem. Otherwise it runs the
// suite alone on this machine (see lockSuite).
func TestMain(m *testing.M) {
	if os.Getenv(envSeccompExec) != "" {
		denyBPFAndExec(os.Args[1:])
	}
	if cfg := os.Getenv(envFUSEServe); cfg != "" {
		serveFUSE(cfg) // TestFUSE's server; it exits
	}
	if os.Getenv(envEnable) != "" {
		lockSuite()
		clearLeftovers()
	}
	os.Exit(m.Run())
}

// lockSuite waits until no other run of this suite is going on here: two
// suites at once (make -j, two checkouts) would see each other's BPF
// programs, mounts and page-cache churn. The lock is an flock on a file in
// the temporary directory, released by the kernel when the process ends.
func lockSuite() {
	p := filepath.Join(os.TempDir(), "filecache-integration.lock")
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: lock %s: %v\n", p, err)
		os.Exit(2)
	}
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "integration: another run of the suite holds %s; waiting for it\n", p)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		fmt.Fprintf(os.Stderr, "integration: lock %s: %v\n", p, err)
		os.Exit(2)
	}
}

// clearLeftovers unmounts and removes what a run of this suite that was
// killed (a timeout, a machine shut down mid-run) left in tempDir's place:
// its tmpfs, overlay and loop mounts would otherwise be walked by the next
// run's tree and top tests. Holding the suite's lock, every such directory
// is a leftover.
func clearLeftovers() {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		os.Exit(2)
	}
	ms, err := mountinfo.Parse(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		os.Exit(2)
	}
	for i := len(ms) - 1; i >= 0; i-- { // children were mounted after their parents
		if strings.HasPrefix(ms[i].Point, tempBase+"/"+tempPrefix) {
			fmt.Fprintf(os.Stderr, "integration: unmounting %s, left by a run that did not end\n", ms[i].Point)
			if err := unix.Unmount(ms[i].Point, unix.MNT_DETACH); err != nil {
				fmt.Fprintf(os.Stderr, "integration: unmount %s: %v\n", ms[i].Point, err)
			}
		}
	}
	old, _ := filepath.Glob(filepath.Join(tempBase, tempPrefix+"*"))
	for _, d := range old {
		os.RemoveAll(d)
	}
}

func denyBPFAndExec(argv []string) {
	runtime.LockOSThread() // the filter and the exec must be on one thread
	const (
		ldW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	filter := []unix.SockFilter{
		{Code: ldW, K: 4}, // seccomp_data.arch
		{Code: jeq, K: auditArch, Jt: 0, Jf: 3},
		{Code: ldW, K: 0}, // seccomp_data.nr
		{Code: jeq, K: unix.SYS_BPF, Jt: 0, Jf: 1},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		panic(err)
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); e != 0 {
		panic(e)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envSeccompExec+"=") {
			env = append(env, kv)
		}
	}
	panic(syscall.Exec(argv[0], argv, env))
}

// faultCase runs filecache under a fault, automatic and forced.
func faultCase(t *testing.T, o runOpts, bin string, extra []string, why *regexp.Regexp) {
	t.Helper()
	target := filepath.Join(tmpfsDir(t), "target")
	writeAt(t, target, 0, 40*1024)
	refs := takeRefs(t, []string{target})
	o.ownEngine = true

	res := runWith(t, o, bin, append(extra, "--json", target)...)
	rep := mustParse(t, res)
	if res.code != 0 || len(rep.Files) != 1 || rep.Files[0].Engine == "bpf" || rep.Files[0].CachedPages != int64(refs[0].Cache) {
		t.Errorf("auto: want the file answered exactly (%d pages) by a fallback engine\n%s", refs[0].Cache, res)
	}
	if msg := fallbackNotes(rep.Notes, why); msg != "" || strings.Count(res.stderr, "\n") != wantFallbackNotes() {
		t.Errorf("auto: want one note matching %q (and cachestat's before Linux 6.5), on stderr too: %s\n%s", why, msg, res)
	}

	res = runWith(t, o, bin, append(extra, "--engine=bpf", target)...)
	msg := strings.TrimSuffix(res.stderr, "\n")
	if res.code == 0 || strings.Contains(msg, "\n") || !why.MatchString(msg) {
		t.Errorf("--engine=bpf: want a non-zero exit and one line matching %q\n%s", why, res)
	}
	noFigures(t, res, target, false)
}

// No kernel BTF: /sys/kernel/btf hidden under an empty tmpfs in a private
// mount namespace.
func TestNoKernelBTF(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	wrap := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs none /sys/kernel/btf && exec "$@"`, "sh"}
	faultCase(t, runOpts{wrap: wrap}, bin, nil, regexp.MustCompile(`no BTF at /sys/kernel/btf/vmlinux.*--btf FILE`))
}

// Root without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, as in a container.
func TestNoBPFCapabilities(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	wrap := []string{"setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin", "--inh-caps=-all", "--"}
	faultCase(t, runOpts{wrap: wrap}, bin, nil, regexp.MustCompile(`needs root, or CAP_BPF and CAP_PERFMON`))
}

// A seccomp filter (as container runtimes install) fails bpf(2) with EPERM
// although the process holds every capability.
func TestSeccompDeniesBPF(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envSeccompExec, "1")
	faultCase(t, runOpts{wrap: []string{self}}, bin, nil, regexp.MustCompile(`refused to load the BPF program.*seccomp`))
}

// A --btf whose address_space lacks nrpages: libbpf cannot relocate that
// read and the verifier rejects the program. -v shows the verifier's words.
func TestVerifierRejects(t *testing.T) {
	bin := filecacheBin(t)
	bpfOnly(t)
	btf, err := os.ReadFile("/sys/kernel/btf/vmlinux")
	if err != nil {
		t.Fatalf("this test renames a field in the kernel's own BTF: %v", err)
	}
	name := []byte("\x00nrpages\x00")
	if n := strings.Count(string(btf), string(name)); n != 1 {
		t.Fatalf("kernel BTF holds %q %d times, want once", name, n)
	}
	bad := filepath.Join(tempDir(t), "renamed.btf")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(btf), string(name), "\x00nrpageX\x00", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	faultCase(t, runOpts{}, bin, []string{"--btf=" + bad}, regexp.MustCompile(`verifier rejected`))
}

type doctorReport struct {
	Kernel string
	Checks []struct {
		Engine, Method, Error string
		OK                    bool
	}
	Auto struct {
		Engine, Method string
		OK             bool
	}
	Top   struct{ Method, Program string }
	Trees struct{ Method, Program string }
}

// doctor's verdicts match what the kernel has: every engine the kernel
// supports works, and auto picks the best. doctor tries every engine and
// method whatever the suite forces: the unforced run checks it.
func TestDoctor(t *testing.T) {
	bin := filecacheBin(t)
	once(t)
	res := runWith(t, runOpts{ownEngine: true}, bin, "doctor", "--json")
	var d doctorReport
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil || res.code != 0 {
		t.Fatalf("doctor --json: %v\n%s", err, res)
	}
	method := kernelMethod(t) // doctor ignores FILECACHE_BPF_METHOD: it tries them all,
	pages := method           // but the page walk's check follows a forced test-run method
	if m := os.Getenv(envMethod); m == "bpf_loop" || m == "bounded-loop" {
		pages = m
	}
	want := map[string]bool{"bpf_loop": method == "bpf_loop", "bounded-loop": true, "attached": true,
		"cachestat(2)": haveCachestat(), "mmap+mincore(2)": true, "walk_sb (bpf_loop)": method == "bpf_loop",
		"walk_sb_bounded (bounded-loop)": true, "walk_pages (" + pages + ")": true,
		"walk_dir (dentry walk)": true} // bounded loops: every kernel of the matrix
	for _, c := range d.Checks {
		if c.OK != want[c.Method] {
			t.Errorf("doctor says %s %s works=%v (%s), want %v", c.Engine, c.Method, c.OK, c.Error, want[c.Method])
		}
	}
	if len(d.Checks) != len(want) || !d.Auto.OK || d.Auto.Engine != "bpf" || d.Auto.Method != method {
		t.Errorf("doctor: %+v, want %d checks and auto = bpf %s", d, len(want), method)
	}
	// top's walk: bpf_loop's from 5.17, the bounded one before (the same
	// split as the query methods').
	if d.Top.Method != method {
		t.Errorf("doctor says top walks with %q (%s), want %s", d.Top.Method, d.Top.Program, method)
	}
	if d.Trees.Method != "dentry walk" || d.Trees.Program != "walk_dir" {
		t.Errorf("doctor says trees are walked with %+v, want the dentry walk (walk_dir)", d.Trees)
	}

	res = runWith(t, runOpts{cred: nobody(), ownEngine: true}, binForAll(t, bin), "doctor", "--json")
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil || res.code != 0 {
		t.Fatalf("doctor --json as nobody: %v\n%s", err, res)
	}
	for _, c := range d.Checks {
		if (c.Engine == "bpf" || c.Engine == "top" || c.Engine == "by-cgroup" || c.Engine == "tree") && (c.OK || !strings.Contains(c.Error, "needs root")) {
			t.Errorf("as nobody, doctor says %s %s works=%v (%s)", c.Engine, c.Method, c.OK, c.Error)
		}
	}
	if fallback := map[bool]string{true: "cachestat", false: "mincore"}[haveCachestat()]; !d.Auto.OK || d.Auto.Engine != fallback {
		t.Errorf("as nobody, doctor's auto = %+v, want %s", d.Auto, fallback)
	}
}
