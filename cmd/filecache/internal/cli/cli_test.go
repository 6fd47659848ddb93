package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/alecthomas/kong"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
)

// fakeEngine answers every file with a third of its pages cached.
type fakeEngine struct{}

func (fakeEngine) Name() string   { return "fake" }
func (fakeEngine) Method() string { return "test" }
func (fakeEngine) BatchSize() int { return 512 }
func (fakeEngine) Close()         {}
func (fakeEngine) Query(hs []pagecache.Handle) ([]pagecache.Answer, error) {
	out := make([]pagecache.Answer, len(hs))
	for i, h := range hs {
		var st unix.Stat_t
		unix.Fstat(h.Fd, &st)
		out[i] = pagecache.Answer{Size: st.Size, Pages: uint64(st.Size/4096) / 3}
	}
	return out, nil
}

type loadErr struct{ log []string }

func (e loadErr) Error() string     { return "load BPF program query_loop: " + unix.EACCES.Error() }
func (e loadErr) Unwrap() error     { return unix.EACCES }
func (e loadErr) LoadLog() []string { return e.log }

type run struct {
	status         int
	stdout, stderr string
	loads          int
}

func runCLI(t *testing.T, env Env, args ...string) run {
	t.Helper()
	var out, errb bytes.Buffer
	r := run{}
	env.Stdout, env.Stderr, env.Build = &out, &errb, testBuild
	if env.Load == nil {
		env.Load = func(LoadOptions) (pagecache.Engine, error) { r.loads++; return fakeEngine{}, nil }
	}
	if env.Caps == nil {
		env.Caps = func() (pagecache.Caps, error) { return 1 << pagecache.CapSysAdmin, nil }
	}
	if env.Stat == nil {
		env.Stat = func(string) error { return nil }
	}
	r.status = Main(args, env)
	r.stdout, r.stderr = out.String(), errb.String()
	return r
}

func tempFile(t *testing.T, name string, size int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--bogus", "x"}, {"--json"}} {
		r := runCLI(t, Env{}, args...)
		if r.status != ExitUsage || r.stdout != "" || !strings.HasPrefix(r.stderr, "filecache: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want 2 and one line on stderr", args, r.status, r.stdout, r.stderr)
		}
	}
	if r := runCLI(t, Env{}, "--version"); r.status != 0 || r.stdout != "filecache v-test (commit c0ffee, go1.99, libbpf 9.9, linux/test64)\n" {
		t.Errorf("--version: %d %q", r.status, r.stdout)
	}
	if r := runCLI(t, Env{}, "--help"); r.status != 0 || !strings.Contains(r.stdout, "--json") || !strings.Contains(r.stdout, "--btf=FILE") {
		t.Errorf("--help: %d %q", r.status, r.stdout)
	}
}

func TestJSONRunWithErrors(t *testing.T) {
	a := tempFile(t, "a", 3*4096*10)
	dash := tempFile(t, "-dash", 4096)
	r := runCLI(t, Env{}, "--json", "--", a, "/nonexistent/x", "", dash)
	if r.status != ExitFailed {
		t.Errorf("status %d, want 1 (some paths failed)", r.status)
	}
	var doc struct {
		Engine string
		Files  []struct {
			Path   string
			Cached uint64 `json:"cached_pages"`
		}
		Errors []struct{ Path, Error string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if doc.Engine != "fake" || len(doc.Files) != 2 || doc.Files[0].Path != a || doc.Files[0].Cached != 10 || doc.Files[1].Path != dash {
		t.Errorf("files = %+v", doc)
	}
	if len(doc.Errors) != 2 || doc.Errors[0].Path != "/nonexistent/x" || doc.Errors[1].Error != "empty path" {
		t.Errorf("errors = %+v", doc.Errors)
	}
	want := "filecache: /nonexistent/x: no such file or directory\nfilecache: \"\": empty path\n"
	if r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestTableAllAnswered(t *testing.T) {
	a, b := tempFile(t, "a", 8192), tempFile(t, "b", 0)
	r := runCLI(t, Env{}, a, b)
	if r.status != ExitOK || r.stderr != "" {
		t.Fatalf("status %d stderr %q", r.status, r.stderr)
	}
	if !strings.Contains(r.stdout, a) || !strings.Contains(r.stdout, b) || !strings.Contains(r.stdout, "total (2 files)") {
		t.Errorf("table:\n%s", r.stdout)
	}
}

func TestEngineLoadedOnlyWhenNeeded(t *testing.T) {
	r := runCLI(t, Env{}, "/nonexistent")
	if r.loads != 0 || r.status != ExitFailed {
		t.Errorf("loads %d status %d; a run with nothing to measure must not load BPF", r.loads, r.status)
	}
	r = runCLI(t, Env{}, "--json", "/nonexistent")
	if !strings.Contains(r.stdout, `"engine": null`) {
		t.Errorf("JSON without an engine: %s", r.stdout)
	}
}

func TestEngineRefusals(t *testing.T) {
	f := tempFile(t, "f", 4096)
	noLoad := func(LoadOptions) (pagecache.Engine, error) { t.Error("Load called"); return nil, errors.New("x") }
	cases := []struct {
		name string
		env  Env
		args []string
		want string
	}{
		{"unprivileged", Env{Load: noLoad, Caps: func() (pagecache.Caps, error) { return 0, nil }}, []string{f}, "needs root, or CAP_BPF and CAP_PERFMON"},
		{"bpf without perfmon", Env{Load: noLoad, Caps: func() (pagecache.Caps, error) { return 1 << pagecache.CapBPF, nil }}, []string{f}, "needs root"},
		{"no BTF", Env{Load: noLoad, Stat: func(string) error { return os.ErrNotExist }}, []string{f}, "no BTF at /sys/kernel/btf/vmlinux"},
		{"verifier", Env{Load: func(LoadOptions) (pagecache.Engine, error) {
			return nil, loadErr{log: []string{"-- BEGIN PROG LOAD LOG --", "R1 invalid mem access 'scalar'", "-- END PROG LOAD LOG --"}}
		}}, []string{f}, "verifier rejected the BPF program"},
	}
	for _, c := range cases {
		r := runCLI(t, c.env, append([]string{"--engine=bpf"}, c.args...)...)
		if r.status != ExitFailed || r.stdout != "" || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: status %d stdout %q stderr %q; want 1, no figures, one line with %q", c.name, r.status, r.stdout, r.stderr, c.want)
		}
	}
	// -v adds the verifier's last lines.
	r := runCLI(t, Env{Load: cases[3].env.Load}, "--engine=bpf", "-v", f)
	if !strings.Contains(r.stderr, "R1 invalid mem access") {
		t.Errorf("-v did not print the verifier log:\n%s", r.stderr)
	}
}

// TestInvalidUTF8Paths: the parser must not rewrite path bytes.
func TestInvalidUTF8Paths(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad\xffname")
	if err := os.WriteFile(bad, make([]byte, 4096*6), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, Env{}, "--json", bad, bad+"\xfe-missing")
	var doc struct {
		Files  []struct{ Path, PathB64 string }
		Errors []struct {
			PathB64 string `json:"path_b64"`
			Error   string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Files) != 1 || len(doc.Errors) != 1 || doc.Errors[0].Error != "no such file or directory" || doc.Errors[0].PathB64 == "" {
		t.Fatalf("invalid UTF-8 paths were not used as given: %+v\n%s", doc, r.stderr)
	}
	var seen string
	runCLI(t, Env{Stat: func(p string) error { seen = p; return nil }}, "--btf=/x\xff", bad)
	if seen != "/x\xff" {
		t.Errorf("--btf value rewritten: %q", seen)
	}
}

// TestAutoFallback: without BPF, auto says why once and measures with the
// syscall engines, naming the engine per file.
func TestAutoFallback(t *testing.T) {
	f := tempFile(t, "f", 3*4096)
	noLoad := func(LoadOptions) (pagecache.Engine, error) { t.Error("Load called"); return nil, errors.New("x") }
	r := runCLI(t, Env{Load: noLoad, Caps: func() (pagecache.Caps, error) { return 0, nil }}, "--json", f)
	if r.status != ExitOK {
		t.Fatalf("status %d stderr %q", r.status, r.stderr)
	}
	if r.stderr != "filecache: not using the bpf engine: "+pagecache.ErrNoPrivilege.Error()+"\n" {
		t.Errorf("stderr %q, want one note saying why bpf is not used", r.stderr)
	}
	var doc struct {
		Engine string
		Notes  []string
		Files  []struct {
			Engine string
			Cached uint64 `json:"cached_pages"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Engine != "cachestat" && doc.Engine != "mincore" || len(doc.Files) != 1 || doc.Files[0].Engine != doc.Engine || len(doc.Notes) != 1 {
		t.Errorf("fallback report: %+v", doc)
	}
	if doc.Files[0].Cached != 3 {
		t.Errorf("a just-written 3-page file: %d pages cached", doc.Files[0].Cached)
	}
}

func TestForcedEngines(t *testing.T) {
	f := tempFile(t, "f", 2*4096)
	for _, e := range []string{"cachestat", "mincore"} {
		r := runCLI(t, Env{}, "--json", "--engine="+e, f)
		if r.status != ExitOK || !strings.Contains(r.stdout, `"engine": "`+e+`"`) || r.loads != 0 {
			t.Errorf("--engine=%s: status %d loads %d stdout %s stderr %s", e, r.status, r.loads, r.stdout, r.stderr)
		}
	}
	r := runCLI(t, Env{}, "--json", "--engine=cachestat", f)
	if !strings.Contains(r.stdout, `"dirty_pages"`) {
		t.Errorf("cachestat answers lack its extra counts: %s", r.stdout)
	}
	if r := runCLI(t, Env{}, "--engine=nope", f); r.status != ExitUsage {
		t.Errorf("--engine=nope: status %d", r.status)
	}
}

func TestDoctor(t *testing.T) {
	r := runCLI(t, Env{}, "doctor", "--json")
	var d Doctor
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("doctor --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	// The fake BPF engine answers from fstat, not the page cache: doctor
	// must see that its answer is wrong and say so.
	if len(d.Checks) != 9 || d.Checks[0].OK || !strings.Contains(d.Checks[0].Error, "wrong answer") {
		t.Errorf("checks: %+v", d.Checks)
	}
	if c := d.Checks[4]; c.Engine != "mincore" || !c.OK {
		t.Errorf("mincore check: %+v", c)
	}
	// No walker in this environment: the top checks (one a walk) say so.
	for _, c := range d.Checks[5:7] {
		if c.Engine != "top" || c.OK || c.Error == "" {
			t.Errorf("top check: %+v", c)
		}
	}
	// Nor a page walk: the by-cgroup check says so.
	if c := d.Checks[7]; c.Engine != "by-cgroup" || c.OK || c.Error == "" {
		t.Errorf("by-cgroup check: %+v", c)
	}
	// Nor a dentry walk: trees are walked with an open per file, and the
	// tree check and the trees line say why.
	if c := d.Checks[8]; c.Engine != "tree" || c.OK || c.Error == "" || d.Trees.Method != "open per file" {
		t.Errorf("tree check: %+v, trees %+v", c, d.Trees)
	}
	if d.Auto == nil || d.Kernel == "" || d.PageSize == 0 {
		t.Errorf("doctor: %+v", d)
	}
	r = runCLI(t, Env{Caps: func() (pagecache.Caps, error) { return 0, nil }}, "doctor")
	if !strings.Contains(r.stdout, "needs root") || !strings.Contains(r.stdout, "filecache uses: ") {
		t.Errorf("unprivileged doctor:\n%s", r.stdout)
	}
}

// FuzzArgs: whatever the arguments, what reaches kong is valid UTF-8, and
// the operands come back byte for byte, in order.
func FuzzArgs(f *testing.F) {
	f.Add("a\xffb", "--btf=/x\xfe", "--json")
	f.Add("", "-", "--")
	f.Add("--include", "\xff*", "x")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		args := []string{"--", a, b, c}
		c0, _, err := parse(args, &Env{})
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if got := c0.Query.Paths; !slices.Equal(got, args[1:]) {
			t.Fatalf("operands %q came back as %q", args[1:], got)
		}
		app, err := kong.New(&CLI{}, kong.Vars{"methods": joinMethods()})
		if err != nil {
			t.Fatal(err)
		}
		argv, restore := normalize(app.Model, []string{a, b, c})
		for _, s := range argv {
			if !utf8.ValidString(s) {
				t.Fatalf("%q reaches the parser as invalid UTF-8: %q", []string{a, b, c}, s)
			}
		}
		for k, v := range restore {
			if !strings.Contains(k, "\x00") || strings.Count(strings.Join(argv, " "), k) != 1 {
				t.Fatalf("placeholder %q for %q is not unique or could be a real argument", k, v)
			}
		}
	})
}

// TestFromList: --from reads paths from a file or standard input, one a
// line or NUL-separated with -0, after the command line's.
func TestFromList(t *testing.T) {
	a, b := tempFile(t, "a", 4096), tempFile(t, "with\nnewline", 8192)
	list := filepath.Join(t.TempDir(), "list")
	os.WriteFile(list, []byte(a+"\n\n/nonexistent\n"), 0o644)
	r := runCLI(t, Env{}, "--json", "--from", list, b)
	var doc struct {
		Files  []struct{ Path string }
		Errors []struct{ Path string }
	}
	json.Unmarshal([]byte(r.stdout), &doc)
	if r.status != ExitFailed || len(doc.Files) != 2 || doc.Files[0].Path != b || doc.Files[1].Path != a ||
		len(doc.Errors) != 1 || doc.Errors[0].Path != "/nonexistent" {
		t.Errorf("--from file: status %d %+v\n%s", r.status, doc, r.stderr)
	}
	r = runCLI(t, Env{Stdin: strings.NewReader(a + "\x00" + b + "\x00")}, "--json", "-0", "--from", "-")
	doc.Files, doc.Errors = nil, nil
	json.Unmarshal([]byte(r.stdout), &doc)
	if r.status != ExitOK || len(doc.Files) != 2 || doc.Files[1].Path != b {
		t.Errorf("--from - -0: status %d %+v\n%s", r.status, doc, r.stderr)
	}
	if r := runCLI(t, Env{}, "--from", "/nonexistent-list"); r.status != ExitFailed || !strings.Contains(r.stderr, "--from") {
		t.Errorf("missing list: %d %q", r.status, r.stderr)
	}
}

func TestTableOptions(t *testing.T) {
	f := tempFile(t, "f", 3*4096+5)
	r := runCLI(t, Env{}, "--bytes", "--no-headings", f)
	fields := strings.Fields(r.stdout)
	if r.status != ExitOK || strings.Contains(r.stdout, "PATH") || len(fields) != 5 || fields[0] != "4096" || fields[2] != "12293" {
		t.Errorf("--bytes --no-headings: %q", r.stdout)
	}
}

// TestNDJSON: one object a line, every file of a tree included, a summary
// last; --json and --ndjson exclude each other.
func TestNDJSON(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"x", "y"} {
		os.WriteFile(filepath.Join(dir, n), make([]byte, 4096*3), 0o644)
	}
	single := tempFile(t, "single", 4096)
	r := runCLI(t, Env{}, "--ndjson", single, dir, "/nonexistent")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	var records []string
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		records = append(records, m["record"].(string))
		if m["record"] == "summary" && m["total"].(map[string]any)["files"] != 3.0 {
			t.Errorf("summary %v, want 3 files", m)
		}
	}
	if strings.Join(records, ",") != "file,file,file,tree,error,summary" || r.status != ExitFailed {
		t.Errorf("records %v status %d\n%s", records, r.status, r.stdout)
	}
	if r := runCLI(t, Env{}, "--json", "--ndjson", single); r.status != ExitUsage {
		t.Errorf("--json --ndjson: status %d", r.status)
	}
}

// TestSortAndTop: --sort orders the listing; --top keeps a tree's N files
// with the most cached pages (the fake engine caches a third of each file).
func TestSortAndTop(t *testing.T) {
	dir := t.TempDir()
	for i, n := range []string{"small", "big", "mid", "tiny"} {
		os.WriteFile(filepath.Join(dir, n), make([]byte, []int{6, 60, 30, 3}[i]*4096), 0o644)
	}
	paths := func(out string) []string {
		var doc struct{ Files []struct{ Path string } }
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, f := range doc.Files {
			ps = append(ps, filepath.Base(f.Path))
		}
		return ps
	}
	r := runCLI(t, Env{}, "--json", "--top", "2", dir)
	if got := strings.Join(paths(r.stdout), ","); got != "big,mid" || !strings.Contains(r.stdout, `"files": 4`) {
		t.Errorf("--top 2: %s\n%s", got, r.stdout)
	}
	r = runCLI(t, Env{}, "--json", "--files", "--sort", "size", dir)
	if got := strings.Join(paths(r.stdout), ","); got != "big,mid,small,tiny" {
		t.Errorf("--sort size: %s", got)
	}
	r = runCLI(t, Env{}, "--json", "--files", "--sort", "path", dir)
	if got := strings.Join(paths(r.stdout), ","); got != "big,mid,small,tiny" {
		t.Errorf("--sort path: %s", got)
	}
	if r := runCLI(t, Env{}, "--sort", "nope", dir); r.status != ExitUsage {
		t.Errorf("--sort nope: %d", r.status)
	}
	// --ndjson streams: a sort it cannot do is refused, not ignored.
	if r := runCLI(t, Env{}, "--ndjson", "--sort", "size", dir); r.status != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, "--ndjson") {
		t.Errorf("--ndjson --sort size: %d %q %q", r.status, r.stdout, r.stderr)
	}
}

// TestDetail: --detail adds cachestat's counts to another engine's figures.
func TestDetail(t *testing.T) {
	f := tempFile(t, "f", 4*4096)
	r := runCLI(t, Env{}, "--json", "--detail", f)
	// What this kernel should give: the counts where cachestat(2) exists
	// (Linux >= 6.5), else a note that says it is missing, and no counts.
	if haveCachestat() {
		if !strings.Contains(r.stdout, `"dirty_pages"`) || strings.Contains(r.stdout, "needs cachestat") {
			t.Errorf("--detail JSON with cachestat(2): want the counts and no note\n%s", r.stdout)
		}
	} else if strings.Contains(r.stdout, `"dirty_pages"`) || !strings.Contains(r.stdout, "needs cachestat") {
		t.Errorf("--detail JSON without cachestat(2): want the note and no counts\n%s", r.stdout)
	}
	r = runCLI(t, Env{}, "--detail", f)
	if !strings.Contains(r.stdout, "DIRTY") || !strings.Contains(r.stdout, "RECENT") {
		t.Errorf("--detail table:\n%s", r.stdout)
	}
}

func TestOutputColumns(t *testing.T) {
	f := tempFile(t, "f", 3*4096)
	r := runCLI(t, Env{}, "--output", "engine,inode,pages,path", f)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.status != ExitOK || len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "ENGINE INODE PAGES PATH" ||
		!strings.HasPrefix(strings.TrimSpace(lines[1]), "fake ") || !strings.HasSuffix(lines[1], "1/3  "+f) {
		t.Errorf("--output:\n%s%s", r.stdout, r.stderr)
	}
	if r := runCLI(t, Env{}, "--output", "cached,bogus", f); r.status != ExitUsage || !strings.Contains(r.stderr, `unknown column "bogus"`) {
		t.Errorf("--output bogus: %d %q", r.status, r.stderr)
	}
}

// TestProgress: on a terminal a table run draws progress on stderr and
// erases it; JSON runs and non-terminals never do.
func TestProgress(t *testing.T) {
	report.ProgressEvery = 0
	defer func() { report.ProgressEvery = 200 * time.Millisecond }()
	f := tempFile(t, "f", 3*4096)
	r := runCLI(t, Env{Terminal: true}, f, f)
	if !strings.Contains(r.stderr, "filecache: 2 files measured") || !strings.HasSuffix(r.stderr, "\r\033[K") {
		t.Errorf("terminal: stderr %q", r.stderr)
	}
	for _, args := range [][]string{{"--json", f}, {"--ndjson", f}} {
		if r := runCLI(t, Env{Terminal: true}, args...); r.stderr != "" {
			t.Errorf("%v: progress in a JSON run: %q", args, r.stderr)
		}
	}
	if r := runCLI(t, Env{}, f); r.stderr != "" {
		t.Errorf("not a terminal: %q", r.stderr)
	}
}

func TestParseRange(t *testing.T) {
	for in, want := range map[string]pagecache.Range{"0:4096": {Len: 4096}, "1M:2M": {Off: 1 << 20, Len: 2 << 20}, "8k:": {Off: 8192}, "1G:1": {Off: 1 << 30, Len: 1}} {
		if got, err := ParseRange(in); err != nil || got != want {
			t.Errorf("ParseRange(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "10", "x:1", "1:0", "-1:5", "1:2Q", "9999999999999T:1"} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("ParseRange(%q) accepted", bad)
		}
	}
	f := tempFile(t, "f", 4096)
	if r := runCLI(t, Env{}, "--engine=bpf", "--range=0:1", f); r.status != ExitUsage {
		t.Errorf("--range with --engine=bpf: %d %q", r.status, r.stderr)
	}
}
