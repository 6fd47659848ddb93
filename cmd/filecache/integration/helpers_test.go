package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

const (
	envEnable  = "FILECACHE_INTEGRATION"
	envBin     = "FILECACHE_BIN"
	runTimeout = 30 * time.Second
	retries    = 5 // sandwiches tried on a filesystem the host may reclaim
	mib        = int64(1) << 20
)

var pageSize = int64(unix.Getpagesize())

// filecacheBin skips unless FILECACHE_INTEGRATION is set; then it insists on
// root and an executable FILECACHE_BIN, failing (not skipping) without them.
func filecacheBin(t *testing.T) string {
	t.Helper()
	if os.Getenv(envEnable) == "" {
		skipConfig(t, "%s is not set: root integration tests skipped (run `make integration`)", envEnable)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s is set but the tests run as uid %d: they need root", envEnable, os.Geteuid())
	}
	bin := os.Getenv(envBin)
	if bin == "" {
		t.Fatalf("%s is set but %s is empty: point it at the built filecache binary", envEnable, envBin)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("%s=%s: %v (run `make build`)", envBin, bin, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s=%s is not an executable file (mode %v)", envBin, bin, st.Mode())
	}
	if os.Getenv(envEngine) == "cachestat" && !haveCachestat() {
		skipKernel(t, featCachestat, "this run forces the cachestat engine, and this kernel has no cachestat(2)")
	}
	return bin
}

// ---- running the binary ----

// envMethod, when set, forces the BPF program on every run (--bpf-method),
// and envEngine the engine (--engine), so the suite proves each of them
// against the kernel.
const (
	envMethod = "FILECACHE_BPF_METHOD"
	envEngine = "FILECACHE_ENGINE"
)

// wantEngine is the engine and method every run must report.
func wantEngine(t *testing.T) (string, string) {
	switch e := os.Getenv(envEngine); e {
	case "", "bpf":
		return "bpf", wantMethod(t)
	case "cachestat":
		return e, "cachestat(2)"
	case "mincore":
		return e, "mmap+mincore(2)"
	default:
		t.Fatalf("%s=%s: not an engine", envEngine, e)
	}
	return "", ""
}

// bpfOnly skips a test about the BPF engine when the suite runs another.
func bpfOnly(t *testing.T) {
	if e := os.Getenv(envEngine); e != "" && e != "bpf" {
		skipConfig(t, "about the bpf engine; this run forces %s", e)
	}
}

// wantMethod is the BPF method a run must report: the forced one, else
// bpf_loop from Linux 5.17 on and the bounded loop before. A kernel that has
// bpf_loop but reports otherwise fails, rather than hiding a regression.
func wantMethod(t *testing.T) string {
	if m := os.Getenv(envMethod); m != "" {
		return m
	}
	return kernelMethod(t)
}

// kernelMethod is the BPF method this kernel should get unforced.
func kernelMethod(t *testing.T) string {
	if kernelAtLeast(t, featBPFLoop) {
		return "bpf_loop"
	}
	return "bounded-loop"
}

type runOpts struct {
	timeout time.Duration
	dir     string
	cred    *syscall.Credential
	caps    []uintptr // ambient capabilities (with cred: a capable non-root user)
	// ownEngine: the test picks the engine itself; envEngine is not added.
	ownEngine bool
	// wrap runs the binary under another command (unshare, setpriv, ...).
	wrap []string
	// env is added to the binary's environment.
	env []string
}

type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("command: filecache %s\nexit status: %d\nstdout:\n%s\nstderr:\n%s",
		showArgs(r.args), r.code, clip(r.stdout), clip(r.stderr))
}

func showArgs(args []string) string {
	s := make([]string, len(args))
	for i, a := range args {
		if len(a) > 80 {
			a = a[:40] + fmt.Sprintf("...(%d bytes)...", len(a)) + a[len(a)-20:]
		}
		s[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(s, " ")
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:2000] + fmt.Sprintf("\n...(%d bytes cut)...\n", len(s)-2900) + s[len(s)-900:]
	}
	return s
}

func run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	return runWith(t, runOpts{}, bin, args...)
}

// forced puts the engine and BPF program the suite forces before args.
func forced(o runOpts, args []string) []string {
	if m := os.Getenv(envMethod); m != "" {
		args = append([]string{"--bpf-method=" + m}, args...)
	}
	if e := os.Getenv(envEngine); e != "" && !o.ownEngine {
		args = append([]string{"--engine=" + e}, args...)
	}
	return args
}

// runWith runs bin and returns its output and exit status. A run that does
// not end within the timeout (e.g. blocked opening a FIFO) or dies by a
// signal fails the test.
func runWith(t *testing.T, o runOpts, bin string, args ...string) result {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = runTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	args = forced(o, args)
	argv := append(append(append([]string{}, o.wrap...), bin), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = o.dir
	if len(o.env) > 0 {
		cmd.Env = append(os.Environ(), o.env...)
	}
	cmd.WaitDelay = 2 * time.Second
	if o.cred != nil || len(o.caps) > 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.cred, AmbientCaps: o.caps}
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{args: args, stdout: so.String(), stderr: se.String()}
	if ctx.Err() != nil {
		t.Fatalf("filecache did not finish within %v (blocked?) and was killed\n%s", o.timeout, r)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if r.code < 0 {
			t.Fatalf("filecache died: %v\n%s", err, r)
		}
	default:
		t.Fatalf("cannot run %s: %v", bin, err)
	}
	return r
}

// ---- the JSON report ----

type fileEntry struct {
	Path        string  `json:"path"`
	PathB64     *string `json:"path_b64"`
	Type        string  `json:"type"`
	Device      string  `json:"device"`
	Inode       uint64  `json:"inode"`
	SizeBytes   int64   `json:"size_bytes"`
	TotalPages  int64   `json:"total_pages"`
	CachedPages int64   `json:"cached_pages"`
	CachedBytes int64   `json:"cached_bytes"`
	Percent     float64 `json:"percent"`
	Engine      string  `json:"engine"`
}

type totals struct {
	Files       int     `json:"files"`
	SizeBytes   int64   `json:"size_bytes"`
	TotalPages  int64   `json:"total_pages"`
	CachedPages int64   `json:"cached_pages"`
	CachedBytes int64   `json:"cached_bytes"`
	Percent     float64 `json:"percent"`
}

type errEntry struct {
	Path    string  `json:"path"`
	PathB64 *string `json:"path_b64"`
	Error   string  `json:"error"`
}

type report struct {
	Engine   string      `json:"engine"`
	Method   string      `json:"method"`
	PageSize int64       `json:"page_size"`
	Files    []fileEntry `json:"files"`
	Total    totals      `json:"total"`
	Errors   []errEntry  `json:"errors"`
	Notes    []string    `json:"notes"`
	// Trees are checked by the tree tests, which know what they hold.
	Trees []json.RawMessage `json:"trees"`
}

// present notes that a key is in a JSON object without decoding its value.
type present bool

func (p *present) UnmarshalJSON([]byte) error { *p = true; return nil }

// The keys of the contract, each decoded as present.
type (
	topKeys struct {
		Engine   present     `json:"engine"`
		Method   present     `json:"method"`
		PageSize present     `json:"page_size"`
		Files    *[]fileKeys `json:"files"`
		Total    *totalKeys  `json:"total"`
		Errors   *[]errKeys  `json:"errors"`
		Notes    present     `json:"notes"`
	}
	fileKeys struct {
		Path        present `json:"path"`
		Engine      present `json:"engine"`
		Type        present `json:"type"`
		Device      present `json:"device"`
		Inode       present `json:"inode"`
		SizeBytes   present `json:"size_bytes"`
		TotalPages  present `json:"total_pages"`
		CachedPages present `json:"cached_pages"`
		CachedBytes present `json:"cached_bytes"`
		Percent     present `json:"percent"`
	}
	totalKeys struct {
		Files       present `json:"files"`
		SizeBytes   present `json:"size_bytes"`
		TotalPages  present `json:"total_pages"`
		CachedPages present `json:"cached_pages"`
		CachedBytes present `json:"cached_bytes"`
		Percent     present `json:"percent"`
	}
	errKeys struct {
		Path  present `json:"path"`
		Error present `json:"error"`
	}
)

// parseReport decodes stdout as exactly one UTF-8 JSON document with every
// key of the contract present and files/errors as arrays. (Two passes, no
// map per object: under emulation a report of 1,000 files took the old
// three-pass parse a third of a second.)
func parseReport(stdout string) (report, error) {
	var rep report
	return rep, parseInto(stdout, &rep)
}

// parseInto is parseReport decoding into v (a report or a treeReport).
func parseInto(stdout string, v any) error {
	if !utf8.ValidString(stdout) {
		return errors.New("stdout is not valid UTF-8, so not valid JSON")
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("stdout is not a JSON report: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("stdout holds more than one JSON document")
	}
	var keys topKeys
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
		return err
	}
	if err := missing("top level", keys); err != nil {
		return err
	}
	if keys.Files == nil || keys.Errors == nil || keys.Total == nil {
		return fmt.Errorf("files, errors or total is null or missing")
	}
	for i, f := range *keys.Files {
		if err := missing(fmt.Sprintf("files[%d]", i), f); err != nil {
			return err
		}
	}
	for i, e := range *keys.Errors {
		if err := missing(fmt.Sprintf("errors[%d]", i), e); err != nil {
			return err
		}
	}
	return missing("total", *keys.Total)
}

// missing names the first key of a *Keys struct that was not present.
func missing(where string, keys any) error {
	v := reflect.ValueOf(keys)
	for i := 0; i < v.NumField(); i++ {
		if p, ok := v.Field(i).Interface().(present); ok && !bool(p) {
			return fmt.Errorf("%s has no %q key", where, strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0])
		}
	}
	return nil
}

// mustReport parses a --json run's stdout and checks the header and totals.
func mustReport(t *testing.T, res result) report {
	t.Helper()
	rep, err := parseReport(res.stdout)
	if err != nil {
		t.Fatalf("bad JSON report: %v\n%s", err, res)
	}
	checkReport(t, rep, len(rep.Trees) > 0)
	return rep
}

// checkReport checks a report's header and, without trees, its totals.
func checkReport(t *testing.T, rep report, trees bool) {
	t.Helper()
	// With no path answered the engine may never have been loaded: the
	// contract leaves the header open then (the CLI prints null).
	idle := len(rep.Files) == 0 && rep.Engine == "" && rep.Method == ""
	engine, method := wantEngine(t)
	if !idle && (rep.Engine != engine || rep.Method != method) || rep.PageSize != pageSize {
		t.Errorf("header: engine %q method %q page_size %d, want %q %q %d; notes %q",
			rep.Engine, rep.Method, rep.PageSize, engine, method, pageSize, rep.Notes)
	}
	for _, f := range rep.Files {
		if f.Engine != engine {
			t.Errorf("%s measured by %q, want %q", f.Path, f.Engine, engine)
		}
	}
	if !trees {
		checkTotals(t, rep)
	}
}

func checkTotals(t *testing.T, rep report) {
	t.Helper()
	var want totals
	want.Files = len(rep.Files)
	for _, f := range rep.Files {
		want.SizeBytes += f.SizeBytes
		want.TotalPages += f.TotalPages
		want.CachedPages += f.CachedPages
		want.CachedBytes += f.CachedBytes
	}
	want.Percent = wantPercent(want.CachedPages, want.TotalPages)
	got := rep.Total
	if got.Files != want.Files || got.SizeBytes != want.SizeBytes || got.TotalPages != want.TotalPages ||
		got.CachedPages != want.CachedPages || got.CachedBytes != want.CachedBytes || got.Percent != want.Percent {
		t.Errorf("total does not add up the files:\n got  %+v\n want %+v", got, want)
	}
}

// ---- references (refs_test.go) and the notes of a fallback ----

// fallbackNotes checks the notes of an automatic run whose bpf engine could
// not run: bpf's reason (matching why) and, on a kernel without cachestat(2)
// (before Linux 6.5), cachestat's after it, as the README says ("cachestat(2)
// needs Linux >= 6.5", only when bpf is unusable too). It returns what is
// wrong, or "".
func fallbackNotes(notes []string, why *regexp.Regexp) string {
	want := wantFallbackNotes()
	if len(notes) != want || !why.MatchString(notes[0]) {
		return fmt.Sprintf("notes %q: want %d, the first matching %q", notes, want, why)
	}
	if want == 2 && !strings.Contains(notes[1], "cachestat(2) needs Linux >= 6.5") {
		return fmt.Sprintf("notes %q: want the second to say cachestat(2) needs Linux >= 6.5", notes)
	}
	return ""
}

// wantFallbackNotes is how many notes fallbackNotes wants on this kernel.
func wantFallbackNotes() int {
	if haveCachestat() {
		return 1
	}
	return 2
}

func takeRefs(t *testing.T, paths []string) []ref {
	t.Helper()
	refs := make([]ref, len(paths))
	for i, p := range paths {
		r, err := takeRef(p)
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		refs[i] = r
	}
	return refs
}

func sameRefs(paths []string, a, b []ref) (bool, string) {
	n := 0
	var first string
	for i := range a {
		if a[i].Cache != b[i].Cache || a[i].Mincore != b[i].Mincore || a[i].Size != b[i].Size {
			if n == 0 {
				first = fmt.Sprintf("%q: before cachestat %d mincore %d size %d, after cachestat %d mincore %d size %d",
					paths[i], a[i].Cache, a[i].Mincore, a[i].Size, b[i].Cache, b[i].Mincore, b[i].Size)
			}
			n++
		}
	}
	if n == 0 {
		return true, ""
	}
	return false, fmt.Sprintf("%d of %d files changed, first %s", n, len(a), first)
}

// sandwich describes one measurement: references of refs, a filecache run
// with args, references again.
type sandwich struct {
	args     []string // filecache's arguments
	dir      string   // its working directory
	refs     []string // paths whose references the report's files must equal, in order
	tries    int      // 1 on the tests' own tmpfs: nothing there may change
	wantCode int
	prepare  func()             // sets the state up before each try; may be nil
	accept   func([]ref) string // "" when the references show the state set up
}

// measure runs the sandwich until R1 == R2 (and accept agrees) and returns
// that report and those references; the caller compares them.
func measure(t *testing.T, bin string, s sandwich) (report, []ref, result) {
	t.Helper()
	if s.tries == 0 {
		s.tries = retries
	}
	var why string
	for try := 1; try <= s.tries; try++ {
		if s.prepare != nil {
			s.prepare()
		}
		r1 := takeRefs(t, s.refs)
		res := runWith(t, runOpts{dir: s.dir}, bin, s.args...)
		r2 := takeRefs(t, s.refs)
		if res.code != s.wantCode {
			t.Fatalf("exit status %d, want %d\n%s", res.code, s.wantCode, res)
		}
		rep := mustReport(t, res)
		if s.wantCode == 0 && len(rep.Errors) > 0 {
			t.Fatalf("exit 0 but errors reported: %+v\n%s", rep.Errors, res)
		}
		ok, diff := sameRefs(s.refs, r1, r2)
		if ok && s.accept != nil {
			diff = s.accept(r1)
			ok = diff == ""
		}
		if ok {
			return rep, r1, res
		}
		why = diff
		t.Logf("try %d/%d: page cache not in the state to assert (%s); again", try, s.tries, why)
	}
	t.Fatalf("no stable measurement in %d tries: %s", s.tries, why)
	panic("unreachable")
}

// checkFiles compares the report's files, in order, with shown (the paths
// as given on the command line) and their stable references.
func checkFiles(t *testing.T, rep report, shown []string, refs []ref) {
	t.Helper()
	if len(rep.Files) != len(shown) {
		t.Fatalf("report has %d files, want %d (one per answered path, in order)", len(rep.Files), len(shown))
	}
	bad := 0
	for i, e := range rep.Files {
		if msg := entryProblems(e, shown[i], refs[i]); msg != "" {
			if bad < 10 {
				t.Errorf("files[%d] %q: %s", i, shown[i], msg)
			}
			bad++
		}
	}
	if bad > 10 {
		t.Errorf("... %d of %d files wrong in all", bad, len(shown))
	}
}

func entryProblems(e fileEntry, path string, r ref) string {
	var p []string
	if utf8.ValidString(path) && e.Path != path {
		p = append(p, fmt.Sprintf("path %q, want it as given", e.Path))
	}
	if !utf8.ValidString(path) || e.PathB64 != nil {
		if e.PathB64 == nil {
			p = append(p, "no path_b64 for a path that is not valid UTF-8")
		} else if b, err := base64.StdEncoding.DecodeString(*e.PathB64); err != nil || string(b) != path {
			p = append(p, fmt.Sprintf("path_b64 %q decodes to %q (%v), want %q", *e.PathB64, b, err, path))
		}
	}
	wantType := "file"
	if r.Block {
		wantType = "block"
	}
	if e.Type != wantType {
		p = append(p, fmt.Sprintf("type %q, want %q", e.Type, wantType))
	}
	if e.SizeBytes != r.Size {
		p = append(p, fmt.Sprintf("size_bytes %d, want %d", e.SizeBytes, r.Size))
	}
	if want := (r.Size + pageSize - 1) / pageSize; e.TotalPages != want {
		p = append(p, fmt.Sprintf("total_pages %d, want %d", e.TotalPages, want))
	}
	if uint64(e.CachedPages) != r.Cache || uint64(e.CachedPages) != r.Mincore {
		p = append(p, fmt.Sprintf("cached_pages: filecache %d, cachestat %d, mincore %d",
			e.CachedPages, r.Cache, r.Mincore))
	}
	if e.CachedBytes != e.CachedPages*pageSize {
		p = append(p, fmt.Sprintf("cached_bytes %d, want %d*%d", e.CachedBytes, e.CachedPages, pageSize))
	}
	if want := wantPercent(e.CachedPages, e.TotalPages); e.Percent != want {
		p = append(p, fmt.Sprintf("percent %v, want %v", e.Percent, want))
	}
	if !r.Block {
		if e.Inode != r.Ino {
			p = append(p, fmt.Sprintf("inode %d, stat says %d", e.Inode, r.Ino))
		}
		if want := fmt.Sprintf("%d:%d", unix.Major(r.Dev), unix.Minor(r.Dev)); e.Device != want {
			p = append(p, fmt.Sprintf("device %q, stat says %q", e.Device, want))
		}
	}
	return strings.Join(p, "; ")
}

// checkErrors compares the report's errors, in order, with the failing paths.
func checkErrors(t *testing.T, rep report, bad []string) {
	t.Helper()
	if len(rep.Errors) != len(bad) {
		t.Fatalf("report has %d errors, want %d: %+v", len(rep.Errors), len(bad), rep.Errors)
	}
	for i, e := range rep.Errors {
		want := bad[i]
		if utf8.ValidString(want) && e.Path != want {
			t.Errorf("errors[%d].path %q, want %q", i, e.Path, want)
		}
		if !utf8.ValidString(want) {
			if e.PathB64 == nil {
				t.Errorf("errors[%d] for %q: no path_b64 for a path that is not valid UTF-8", i, want)
			} else if b, err := base64.StdEncoding.DecodeString(*e.PathB64); err != nil || string(b) != want {
				t.Errorf("errors[%d].path_b64 %q decodes to %q (%v), want %q", i, *e.PathB64, b, err, want)
			}
		}
		if strings.TrimSpace(e.Error) == "" {
			t.Errorf("errors[%d] for %q has an empty reason", i, want)
		}
	}
}

// checkStderr wants exactly one line `filecache: PATH: reason` per bad path,
// PATH in its one-line display form (Go-quoted when empty or unprintable).
func checkStderr(t *testing.T, res result, bad []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
	if res.stderr == "" {
		lines = nil
	}
	if len(lines) != len(bad) {
		t.Errorf("stderr has %d lines, want one per failed path (%d)\n%s", len(lines), len(bad), res)
	}
	for _, p := range bad {
		prefix := "filecache: " + displayPath(p) + ": "
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) && len(strings.TrimSpace(l[len(prefix):])) > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("no stderr line %q + reason for path %q\n%s", prefix, showArgs([]string{p}), res)
		}
	}
}

// ---- files, directories, page cache state ----

var pattern = func() []byte {
	b := make([]byte, mib)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b
}()

// writeAt writes n bytes at off into path (created 0644 if missing), no sync.
func writeAt(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for n > 0 {
		c := min(n, int64(len(pattern)))
		if _, err := f.WriteAt(pattern[:c], off); err != nil {
			t.Fatal(err)
		}
		off += c
		n -= c
	}
}

// sized creates path (0644) with length size and no data.
func sized(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// readAt reads n bytes at off through an fd with readahead turned off.
func readAt(t *testing.T, path string, off, n int64) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	preadFd(t, fd, off, n)
}

func preadFd(t *testing.T, fd int, off, n int64) {
	t.Helper()
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, mib)
	for n > 0 {
		c, err := unix.Pread(fd, buf[:min(n, mib)], off)
		if err != nil || c == 0 {
			t.Fatalf("pread at %d: %d, %v", off, c, err)
		}
		off += int64(c)
		n -= int64(c)
	}
}

// evict writes path back and drops it from the page cache until cachestat
// says no page is left.
func evict(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	evictFd(t, fd, path)
}

func evictFd(t *testing.T, fd int, name string) {
	t.Helper()
	if err := unix.Fsync(fd); err != nil {
		t.Fatalf("fsync %s: %v", name, err)
	}
	var cached uint64
	for i := 0; i < 50; i++ {
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatalf("fadvise DONTNEED %s: %v", name, err)
		}
		var err error
		if cached, err = cachedPages(fd); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cached == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: %d pages still cached after fsync and 50 DONTNEEDs", name, cached)
}

// ext4Dir makes a 0755 directory under /var/tmp (ext4) removed at the end.
func ext4Dir(t *testing.T) string {
	t.Helper()
	d := tempDir(t)
	var sf unix.Statfs_t
	if err := unix.Statfs(d, &sf); err != nil {
		t.Fatal(err)
	}
	if sf.Type != unix.EXT4_SUPER_MAGIC {
		t.Fatalf("%s is on filesystem magic %#x, not ext4 (see PLATFORM.md)", d, sf.Type)
	}
	return d
}

// Where tempDir makes its directories: on disk (not /tmp's tmpfs on some
// machines), and named so clearLeftovers finds what a killed run left.
const tempBase, tempPrefix = "/var/tmp", "filecache-it-"

func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp(tempBase, tempPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// tmpfsDir mounts a private tmpfs (mode 0755), unmounted at the end.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	d := tempDir(t)
	if err := unix.Mount("tmpfs", d, "tmpfs", 0, "size=512m,mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", d, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(d, 0); err != nil {
			t.Logf("unmount %s: %v; detaching lazily", d, err)
			unix.Unmount(d, unix.MNT_DETACH)
		}
	})
	return d
}

// ---- running as another user ----

// nobody is uid/gid 65534 with no supplementary groups.
func nobody() *syscall.Credential {
	return &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
}

// binForAll copies the binary where any user may run it.
func binForAll(t *testing.T, bin string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tempDir(t), "filecache")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// noFigures fails if a run that must not answer printed a figure for target:
// plain stdout must not mention it; JSON stdout, if any, must list no file.
func noFigures(t *testing.T, res result, target string, asJSON bool) {
	t.Helper()
	if asJSON && strings.TrimSpace(res.stdout) != "" {
		rep, err := parseReport(res.stdout)
		if err != nil {
			t.Errorf("stdout is neither empty nor a valid report: %v\n%s", err, res)
		} else if len(rep.Files) > 0 {
			t.Errorf("printed figures although it must not: %+v\n%s", rep.Files, res)
		}
		return
	}
	if strings.Contains(res.stdout, target) {
		t.Errorf("stdout mentions %s although no figure may be printed\n%s", target, res)
	}
}
