package cli

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the checked-in man page and completions (make docs)")

// docsDir is cmd/filecache/docs from this package's directory.
var docsDir = filepath.Join("..", "..", "docs")

func generate(t *testing.T, write func(w *bytes.Buffer) error) string {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func genDoc(t *testing.T, path string) string {
	t.Helper()
	for _, d := range docFiles {
		if d.Path == path {
			return generate(t, func(b *bytes.Buffer) error { return d.Write(b) })
		}
	}
	t.Fatalf("no generator for %s", path)
	return ""
}

// TestDocs: the checked-in man page and completions are what the grammar
// gives today (run make docs after changing a flag or a command).
func TestDocs(t *testing.T) {
	for _, d := range docFiles {
		got := genDoc(t, d.Path)
		p := filepath.Join(docsDir, d.Path)
		if *update {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (make docs writes it)", err)
		}
		if string(want) != got {
			t.Errorf("cmd/filecache/docs/%s differs from what the grammar gives: run make docs\n%s", d.Path, firstDiff(string(want), got))
		}
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  checked in: " + a + "\n  grammar:    " + b
		}
	}
	return ""
}

// TestDocsCoverGrammar: every visible flag and command is in the page and
// each completion, the hidden --bpf-method in none.
func TestDocsCoverGrammar(t *testing.T) {
	g, err := grammarModel()
	if err != nil {
		t.Fatal(err)
	}
	if len(g.cmds) != 9 || g.deflt != "query" {
		t.Fatalf("grammar: %d commands, default %q", len(g.cmds), g.deflt)
	}
	for _, d := range docFiles {
		text := genDoc(t, d.Path)
		if d.Path == "filecache.1" {
			text = strings.ReplaceAll(text, `\-`, "-")
		}
		for _, f := range g.allFlags() {
			spelt := "--" + f.Name
			if strings.HasSuffix(d.Path, ".fish") {
				spelt = "-l " + f.Name
			}
			if !strings.Contains(text, spelt) {
				t.Errorf("%s lacks --%s", d.Path, f.Name)
			}
			if d.Path != "filecache.1" {
				for _, v := range f.EnumSlice() {
					if !strings.Contains(text, v) {
						t.Errorf("%s lacks %s of --%s", d.Path, v, f.Name)
					}
				}
			}
		}
		for _, c := range g.cmds {
			if !strings.Contains(text, c.name) {
				t.Errorf("%s lacks the command %s", d.Path, c.name)
			}
		}
		if strings.Contains(text, "bpf-method") {
			t.Errorf("%s shows the hidden --bpf-method", d.Path)
		}
	}
}

// TestManPage: groff reads the page without a warning, and it renders the
// sections and a flag's value.
func TestManPage(t *testing.T) {
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("skip[tool:groff]: groff is not installed (scripts/deps.sh installs it)")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-rLL=100n")
	cmd.Stdin = strings.NewReader(genDoc(t, "filecache.1"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, errb.String())
	}
	text := stripOverstrike(out.String())
	for _, want := range []string{"NAME", "SYNOPSIS", "filecache top [OPTIONS]", "--engine=auto|bpf|cachestat|mincore", "-n, --n=N", "EXIT STATUS"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q:\n%s", want, text)
		}
	}
}

// stripOverstrike drops groff's bold and underline (c\bc, _\bc).
func stripOverstrike(s string) string {
	var out []rune
	for _, r := range s {
		if r == '\b' && len(out) > 0 {
			out = out[:len(out)-1]
			continue
		}
		out = append(out, r)
	}
	return strings.NewReplacer("\u2010", "-", "\u2212", "-").Replace(string(out))
}

// bashComplete runs bash with the generated script and returns the
// candidates, sorted, for the words typed (the last one being completed).
func bashComplete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"data.bin", "doc.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var q []string
	for _, w := range words {
		q = append(q, "'"+w+"'")
	}
	prog := script + "\nCOMP_WORDS=(" + strings.Join(q, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) +
		"\n_filecache\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	slices.Sort(got)
	return got
}

func TestBashCompletion(t *testing.T) {
	script := genDoc(t, "completions/filecache.bash")
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"filecache", "--eng"}, "--engine"},
		{[]string{"filecache", "--engine", ""}, "auto bpf cachestat mincore"},
		{[]string{"filecache", "--engine", "=", "c"}, "cachestat"},
		{[]string{"filecache", "top", "--format", ""}, "prometheus table"},
		{[]string{"filecache", "do"}, "doc.txt doctor"},
		{[]string{"filecache", "--btf", "d"}, "data.bin doc.txt"},
		{[]string{"filecache", "--btf", "x", "t"}, "top touch"},
		{[]string{"filecache", "--json", "top", "--f"}, "--format"},
		{[]string{"filecache", "touch", "--max-"}, "--max-depth --max-size"},
		{[]string{"filecache", "data.bin", "--so"}, "--sort"},
		{[]string{"filecache", "--so"}, "--sort"},
		{[]string{"filecache", "lock", "d"}, "data.bin doc.txt"},
		{[]string{"filecache", "doctor", "d"}, ""},
		{[]string{"filecache", "top", "-"}, "--btf --engine --format --help --iterations --json --min --mount --n --ndjson --output --verbose --version --watch -h -n -v"},
		{[]string{"filecache", "serve", "--web."}, "--web.listen-address --web.telemetry-path"},
		{[]string{"filecache", "serve", "--path"}, "--path.rootfs"},
	} {
		if got := strings.Join(bashComplete(t, script, c.words...), " "); got != c.want {
			t.Errorf("%q: got %q, want %q", c.words, got, c.want)
		}
	}
}

// TestZshCompletion: the function parses, and for the words typed it hands
// _arguments the specs of the right command, with the words shifted to
// start at the command (_arguments stands in, printing what it got).
func TestZshCompletion(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("skip[tool:zsh]: zsh is not installed (scripts/deps.sh installs it)")
	}
	script := genDoc(t, "completions/_filecache")
	if out, err := exec.Command("zsh", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	for _, c := range []struct {
		words       []string
		first, want string // the word _arguments sees first; a spec it must get
		not         string // a spec it must not get
	}{
		{[]string{"filecache", ""}, "filecache", "1: :{_alternative", "--format="},
		{[]string{"filecache", "--btf", "top", "--f"}, "filecache", "--files[", "--format="},
		{[]string{"filecache", "--json", "top", "--f"}, "top", "--format=[", "--files["},
		{[]string{"filecache", "touch", "--max-"}, "touch", "--max-size=[", "--format="},
		{[]string{"filecache", "a.db", "--"}, "filecache", "--sort=[", "1: :"},
		{[]string{"filecache", "doctor", ""}, "doctor", "--engine=[", "*:path:_files"},
	} {
		var q []string
		for _, w := range c.words {
			q = append(q, "'"+w+"'")
		}
		prog := "compdef() { :; }\n_arguments() { print -r -- \"$words[1]\"; print -rl -- \"$@\"; }\n" + script +
			"\nwords=(" + strings.Join(q, " ") + ")\nCURRENT=" + strconv.Itoa(len(c.words)) + "\n_filecache\n"
		out, err := exec.Command("zsh", "-f", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: zsh: %v\n%s", c.words, err, out)
		}
		first, specs, _ := strings.Cut(string(out), "\n")
		if first != c.first || !strings.Contains(specs, c.want) || strings.Contains(specs, c.not) {
			t.Errorf("%q: _arguments got words from %q (want %q), specs with %q and without %q:\n%s", c.words, first, c.first, c.want, c.not, specs)
		}
	}
}

// TestFishCompletion asks fish itself (complete -C) what it would offer.
func TestFishCompletion(t *testing.T) {
	if _, err := exec.LookPath("fish"); err != nil {
		t.Skip("skip[tool:fish]: fish is not installed (scripts/deps.sh installs it)")
	}
	script := genDoc(t, "completions/filecache.fish")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.bin"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ line, want string }{
		{"filecache --eng", "--engine"},
		{"filecache --engine=", "--engine=auto --engine=bpf --engine=cachestat --engine=mincore"},
		{"filecache top --format ", "prometheus table"},
		{"filecache top --fo", "--format"},
		{"filecache touch --max-", "--max-depth --max-size"},
		{"filecache --so", "--sort"},
		{"filecache doctor --so", ""},
		{"filecache lock da", "data.bin"},
		{"filecache doctor da", ""},
		{"filecache doc", "doctor"},
	} {
		cmd := exec.Command("fish", "--no-config", "-c", script+"\ncomplete -C '"+c.line+"'")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				got = append(got, w)
			}
		}
		slices.Sort(got)
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("%q: got %q, want %q", c.line, g, c.want)
		}
	}
}
