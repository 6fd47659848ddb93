package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// The man page and the bash, zsh and fish completions are written from the
// kong model of the grammar, so a flag, a command or an enum value cannot
// be added without them following. Copies are checked in under cmd/filecache/docs/
// (TestDocs fails when they differ; make docs rewrites them) and shipped in
// the release tarballs.

// docFiles names each generated file (under cmd/filecache/docs/) and its generator.
var docFiles = []struct {
	Path  string
	Write func(io.Writer) error
}{
	{"filecache.1", manPage},
	{"completions/filecache.bash", bashCompletion},
	{"completions/_filecache", zshCompletion},
	{"completions/filecache.fish", fishCompletion},
}

// docCmd is one command as the page and the completions show it.
type docCmd struct {
	name, help string
	flags      []*kong.Flag // its own, not the global ones; hidden ones left out
	args       []*kong.Positional
}

// docGrammar is the grammar's model: the global flags and the commands.
type docGrammar struct {
	help    string
	globals []*kong.Flag
	cmds    []docCmd
	deflt   string // the command run when the first operand is none
}

func grammarModel() (docGrammar, error) {
	p, err := newParser(&CLI{}, &Env{})
	if err != nil {
		return docGrammar{}, fmt.Errorf("grammar: %w", err)
	}
	root := p.Model.Node
	g := docGrammar{help: p.Model.Help, globals: visible(root.Flags)}
	for _, c := range root.Children {
		if c.Hidden {
			continue
		}
		g.cmds = append(g.cmds, docCmd{name: c.Name, help: c.Help, flags: visible(c.Flags), args: c.Positional})
		if root.DefaultCmd == c {
			g.deflt = c.Name
		}
	}
	return g, nil
}

func visible(flags []*kong.Flag) []*kong.Flag {
	var out []*kong.Flag
	for _, f := range flags {
		if !f.Hidden {
			out = append(out, f)
		}
	}
	return out
}

func (g docGrammar) names() []string {
	var n []string
	for _, c := range g.cmds {
		n = append(n, c.name)
	}
	return n
}

// valueKind says what a flag's value is, for completion: "" (the flag takes
// none), "enum" (one of f.EnumSlice()), "file" (a path) or "word".
func valueKind(f *kong.Flag) string {
	switch {
	case f.IsBool() || f.IsCounter():
		return ""
	case f.Enum != "":
		return "enum"
	case f.PlaceHolder == "FILE" || f.PlaceHolder == "PATH":
		return "file"
	}
	return "word"
}

// placeholder is the value a flag takes, as the page shows it.
func placeholder(f *kong.Flag) string {
	if f.Enum != "" {
		return strings.Join(f.EnumSlice(), "|")
	}
	if f.PlaceHolder != "" {
		return f.PlaceHolder
	}
	return strings.ToUpper(f.Name)
}

// firstSentence shortens help for the completion menus: up to a full stop
// that a capital follows ("PATH... is" goes on).
func firstSentence(s string) string {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '.' && s[i+1] == ' ' && s[i+2] >= 'A' && s[i+2] <= 'Z' {
			s = s[:i]
			break
		}
	}
	return strings.TrimSuffix(s, ".")
}

// ---------------------------------------------------------------------------
// The man page.

// roffText escapes s for roff: backslashes, and a dot or quote starting a line.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// roffFlag is a flag's term: -v, --verbose or --engine=auto|bpf|...
func roffFlag(f *kong.Flag) string {
	var b strings.Builder
	if f.Short != 0 {
		fmt.Fprintf(&b, `\fB\-%c\fR, `, f.Short)
	}
	fmt.Fprintf(&b, `\fB\-\-%s\fR`, strings.ReplaceAll(f.Name, "-", `\-`))
	if valueKind(f) != "" {
		fmt.Fprintf(&b, `=\fI%s\fR`, roffText(placeholder(f)))
	}
	return b.String()
}

func roffFlags(w io.Writer, flags []*kong.Flag) {
	for _, f := range flags {
		help := f.Help
		if f.Enum != "" && f.HasDefault {
			help += " Default: " + f.Default + "."
		}
		fmt.Fprintf(w, ".TP\n%s\n%s\n", roffFlag(f), roffText(help))
	}
}

// synopsis is a command's usage line, in roff.
func (c docCmd) synopsis() string {
	s := `\fBfilecache ` + c.name + `\fR [\fIOPTIONS\fR]`
	for _, a := range c.args {
		arg := `\fI` + strings.ToUpper(a.Name) + `\fR`
		if a.IsCumulative() {
			arg += `...`
		}
		if !a.Required {
			arg = "[" + arg + "]"
		}
		s += " " + arg
	}
	return s
}

// manPage writes filecache(1) in roff (man macros). It carries no date or
// version, so it changes only when the grammar does.
func manPage(w io.Writer) error {
	g, err := grammarModel()
	if err != nil {
		return err
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, ".\\\" Generated from filecache's kong grammar by `make docs`; do not edit.\n")
	fmt.Fprintf(b, ".TH FILECACHE 1 \"\" \"filecache\" \"User Commands\"\n")
	fmt.Fprintf(b, ".SH NAME\nfilecache \\- how much of each file sits in the Linux page cache\n")
	fmt.Fprintf(b, ".SH SYNOPSIS\n")
	for i, c := range g.cmds {
		if i > 0 {
			fmt.Fprintf(b, ".br\n")
		}
		if c.name == g.deflt {
			fmt.Fprintf(b, "%s\n.br\n", strings.Replace(c.synopsis(), " "+c.name+`\fR`, `\fR`, 1))
		}
		fmt.Fprintf(b, "%s\n", c.synopsis())
	}
	fmt.Fprintf(b, ".SH DESCRIPTION\n%s\n", roffText(strings.Join(strings.Fields(g.help), " ")))
	if g.deflt != "" {
		fmt.Fprintf(b, ".PP\nWith no command, \\fBfilecache\\fR runs \\fB%s\\fR.\n", g.deflt)
	}
	fmt.Fprintf(b, ".SH OPTIONS\nThese options are taken by every command, before or after it.\n")
	roffFlags(b, g.globals)
	fmt.Fprintf(b, ".SH COMMANDS\n")
	for _, c := range g.cmds {
		fmt.Fprintf(b, ".SS %s\n%s\n", c.synopsis(), roffText(c.help))
		for _, a := range c.args {
			fmt.Fprintf(b, ".TP\n\\fI%s\\fR\n%s\n", strings.ToUpper(a.Name), roffText(a.Help))
		}
		roffFlags(b, c.flags)
	}
	fmt.Fprintf(b, ".SH EXIT STATUS\n")
	for _, e := range []struct {
		code int
		what string
	}{
		{ExitOK, "Every path was measured (doctor: some engine works)."},
		{ExitFailed, "Some path has no figures, or no engine could run."},
		{ExitUsage, "The command line is wrong."},
	} {
		fmt.Fprintf(b, ".TP\n%d\n%s\n", e.code, e.what)
	}
	fmt.Fprintf(b, ".SH FILES\n.TP\n/sys/kernel/btf/vmlinux\nThe kernel's BTF, which the bpf engine loads against; \\fB\\-\\-btf\\fR names another (for example one from BTFHub) on kernels without it.\n")
	fmt.Fprintf(b, ".SH SEE ALSO\n\\fBcachestat\\fR(2), \\fBmincore\\fR(2), \\fBvmtouch\\fR(8), \\fBfincore\\fR(1); README.md, shipped with filecache, for the JSON schema and the kernels tried.\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// ---------------------------------------------------------------------------
// Completions. Each script finds the command among the words typed (the
// first operand; a flag that takes a separate value skips its value), then
// offers that command's flags and the global ones, enum values after an
// enum flag, file names after a FILE or PATH flag and for operands.

// cmdFlags is every flag a command takes: the global ones, then its own.
func (g docGrammar) cmdFlags(c docCmd) []*kong.Flag {
	return append(slices.Clone(g.globals), c.flags...)
}

// allFlags is every visible flag of the grammar, each name once.
func (g docGrammar) allFlags() []*kong.Flag {
	seen := map[string]bool{}
	var out []*kong.Flag
	for _, f := range g.globals {
		seen[f.Name] = true
		out = append(out, f)
	}
	for _, c := range g.cmds {
		for _, f := range c.flags {
			if !seen[f.Name] {
				seen[f.Name] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// valueFlags lists the spellings of the flags that take a separate value.
func (g docGrammar) valueFlags() []string {
	var out []string
	for _, f := range g.allFlags() {
		if valueKind(f) == "" {
			continue
		}
		out = append(out, "--"+f.Name)
		if f.Short != 0 {
			out = append(out, "-"+string(f.Short))
		}
	}
	return out
}

func flagWords(flags []*kong.Flag) string {
	var w []string
	for _, f := range flags {
		w = append(w, "--"+f.Name)
		if f.Short != 0 {
			w = append(w, "-"+string(f.Short))
		}
	}
	return strings.Join(w, " ")
}

func (g docGrammar) cmd(name string) docCmd {
	for _, c := range g.cmds {
		if c.name == name {
			return c
		}
	}
	return docCmd{}
}

// bashCompletion writes the bash completion script (plain bash; it needs
// no bash-completion helpers).
func bashCompletion(w io.Writer) error {
	g, err := grammarModel()
	if err != nil {
		return err
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "# bash completion for filecache. Generated from its kong grammar by `make docs`; do not edit.\n")
	fmt.Fprintf(b, "_filecache() {\n")
	fmt.Fprintf(b, "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i skip=\n")
	fmt.Fprintf(b, "\t# --flag=value: bash splits it at the '=' (COMP_WORDBREAKS).\n")
	fmt.Fprintf(b, "\tif [ \"$cur\" = = ]; then\n\t\tcur= prev=${COMP_WORDS[COMP_CWORD-1]}\n")
	fmt.Fprintf(b, "\telif [ \"$prev\" = = ] && [ \"$COMP_CWORD\" -ge 2 ]; then\n\t\tprev=${COMP_WORDS[COMP_CWORD-2]}\n\tfi\n")
	fmt.Fprintf(b, "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n")
	fmt.Fprintf(b, "\t\tif [ -n \"$skip\" ]; then\n\t\t\tskip=\n\t\t\tcontinue\n\t\tfi\n")
	fmt.Fprintf(b, "\t\tcase ${COMP_WORDS[i]} in\n")
	fmt.Fprintf(b, "\t\t--) break ;;\n")
	fmt.Fprintf(b, "\t\t=) skip=1 ;;\n")
	fmt.Fprintf(b, "\t\t%s) [ \"${COMP_WORDS[i+1]:-}\" = = ] || skip=1 ;;\n", strings.Join(g.valueFlags(), "|"))
	fmt.Fprintf(b, "\t\t-*) ;;\n")
	fmt.Fprintf(b, "\t\t%s)\n\t\t\tcmd=${COMP_WORDS[i]}\n\t\t\tbreak\n\t\t\t;;\n", strings.Join(g.names(), "|"))
	fmt.Fprintf(b, "\t\t*)\n\t\t\tcmd=%s\n\t\t\tbreak\n\t\t\t;;\n", g.deflt)
	fmt.Fprintf(b, "\t\tesac\n\tdone\n")
	// Values of the flags before the cursor.
	fmt.Fprintf(b, "\tcase $prev in\n")
	for _, f := range g.allFlags() {
		spell := "--" + f.Name
		if f.Short != 0 {
			spell += "|-" + string(f.Short)
		}
		switch valueKind(f) {
		case "enum":
			fmt.Fprintf(b, "\t%s)\n\t\tmapfile -t COMPREPLY < <(compgen -W '%s' -- \"$cur\")\n\t\treturn\n\t\t;;\n", spell, strings.Join(f.EnumSlice(), " "))
		case "file":
			fmt.Fprintf(b, "\t%s)\n\t\tmapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n\t\treturn\n\t\t;;\n", spell)
		case "word":
			fmt.Fprintf(b, "\t%s)\n\t\tCOMPREPLY=()\n\t\treturn\n\t\t;;\n", spell)
		}
	}
	fmt.Fprintf(b, "\tesac\n")
	fmt.Fprintf(b, "\tlocal flags\n\tcase $cmd in\n")
	fmt.Fprintf(b, "\t'') flags='%s' ;;\n", flagWords(g.cmdFlags(g.cmd(g.deflt))))
	for _, c := range g.cmds {
		fmt.Fprintf(b, "\t%s) flags='%s' ;;\n", c.name, flagWords(g.cmdFlags(c)))
	}
	fmt.Fprintf(b, "\tesac\n")
	fmt.Fprintf(b, "\tcase $cur in\n\t-*)\n\t\tmapfile -t COMPREPLY < <(compgen -W \"$flags\" -- \"$cur\")\n\t\treturn\n\t\t;;\n\tesac\n")
	fmt.Fprintf(b, "\tcase $cmd in\n")
	fmt.Fprintf(b, "\t'') mapfile -t COMPREPLY < <(compgen -W '%s' -- \"$cur\"; compgen -f -- \"$cur\") ;;\n", strings.Join(g.names(), " "))
	var withArgs, without []string
	for _, c := range g.cmds {
		if len(c.args) > 0 {
			withArgs = append(withArgs, c.name)
		} else {
			without = append(without, c.name)
		}
	}
	if len(withArgs) > 0 {
		fmt.Fprintf(b, "\t%s) mapfile -t COMPREPLY < <(compgen -f -- \"$cur\") ;;\n", strings.Join(withArgs, "|"))
	}
	if len(without) > 0 {
		fmt.Fprintf(b, "\t%s) COMPREPLY=() ;;\n", strings.Join(without, "|"))
	}
	fmt.Fprintf(b, "\tesac\n}\n")
	fmt.Fprintf(b, "complete -o filenames -F _filecache filecache\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// zshQuote escapes s for the inside of a single-quoted zsh word.
func zshQuote(s string) string { return strings.ReplaceAll(s, "'", `'\''`) }

// zshDesc escapes an _arguments description ([...]): backslashes and brackets.
func zshDesc(s string) string {
	return zshQuote(strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`).Replace(s))
}

// zshItem escapes a _describe item's description: backslashes and colons.
func zshItem(s string) string {
	return zshQuote(strings.NewReplacer(`\`, `\\`, ":", `\:`).Replace(s))
}

// zshSpec is one _arguments spec per spelling of f.
func zshSpec(f *kong.Flag, all []*kong.Flag) string {
	var excl []string
	for _, o := range all {
		if o != f && len(f.Xor) > 0 && slices.ContainsFunc(o.Xor, func(x string) bool { return slices.Contains(f.Xor, x) }) {
			excl = append(excl, "--"+o.Name)
		}
	}
	spells := []string{"--" + f.Name}
	if f.Short != 0 {
		spells = append(spells, "-"+string(f.Short))
	}
	if !f.IsCumulative() {
		excl = append(excl, spells...)
	}
	prefix := ""
	if f.IsCumulative() {
		prefix = "*"
	}
	if len(excl) > 0 {
		prefix = "(" + strings.Join(excl, " ") + ")" + prefix
	}
	var value string
	switch valueKind(f) {
	case "enum":
		value = fmt.Sprintf(":%s:(%s)", strings.ToLower(f.Name), strings.Join(f.EnumSlice(), " "))
	case "file":
		value = ":" + strings.ToLower(placeholder(f)) + ":_files"
	case "word":
		value = ":" + zshItem(strings.ToLower(placeholder(f))) + ": "
	}
	desc := "[" + zshDesc(firstSentence(f.Help)) + "]"
	var out []string
	for _, s := range spells {
		if valueKind(f) != "" && strings.HasPrefix(s, "--") {
			s += "="
		}
		out = append(out, "'"+prefix+s+desc+value+"'")
	}
	return strings.Join(out, " \\\n\t\t\t")
}

// zshCompletion writes the zsh completion function (#compdef).
func zshCompletion(w io.Writer) error {
	g, err := grammarModel()
	if err != nil {
		return err
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "#compdef filecache\n# zsh completion for filecache. Generated from its kong grammar by `make docs`; do not edit.\n\n")
	fmt.Fprintf(b, "_filecache_commands() {\n\tlocal -a commands=(\n")
	for _, c := range g.cmds {
		fmt.Fprintf(b, "\t\t'%s:%s'\n", c.name, zshItem(firstSentence(c.help)))
	}
	fmt.Fprintf(b, "\t)\n\t_describe -t commands command commands\n}\n\n")
	fmt.Fprintf(b, "_filecache() {\n\tlocal cmd= i skip=\n")
	fmt.Fprintf(b, "\tfor ((i = 2; i < CURRENT; i++)); do\n")
	fmt.Fprintf(b, "\t\tif [[ -n $skip ]]; then\n\t\t\tskip=\n\t\t\tcontinue\n\t\tfi\n")
	fmt.Fprintf(b, "\t\tcase ${words[i]} in\n\t\t--) break ;;\n")
	fmt.Fprintf(b, "\t\t%s) skip=1 ;;\n", strings.Join(g.valueFlags(), "|"))
	fmt.Fprintf(b, "\t\t-*) ;;\n")
	fmt.Fprintf(b, "\t\t%s)\n\t\t\tcmd=${words[i]}\n\t\t\tbreak\n\t\t\t;;\n", strings.Join(g.names(), "|"))
	fmt.Fprintf(b, "\t\t*)\n\t\t\tcmd=%s\n\t\t\tbreak\n\t\t\t;;\n", g.deflt)
	fmt.Fprintf(b, "\t\tesac\n\tdone\n")
	fmt.Fprintf(b, "\t# After the command, complete as if it were the first word.\n")
	fmt.Fprintf(b, "\tif [[ -n $cmd && $i -lt $CURRENT && ${words[i]} == \"$cmd\" ]]; then\n")
	fmt.Fprintf(b, "\t\twords=(\"$cmd\" \"${(@)words[i+1,-1]}\")\n\t\t(( CURRENT -= i - 1 ))\n\tfi\n")
	fmt.Fprintf(b, "\tcase $cmd in\n")
	writeCase := func(label string, c docCmd, first bool) {
		fmt.Fprintf(b, "\t%s)\n\t\t_arguments -s -S \\\n", label)
		for _, f := range g.cmdFlags(c) {
			fmt.Fprintf(b, "\t\t\t%s \\\n", zshSpec(f, g.cmdFlags(c)))
		}
		if first {
			fmt.Fprintf(b, "\t\t\t'1: :{_alternative \"commands\\:command\\:_filecache_commands\" \"files\\:path\\:_files\"}' \\\n")
		}
		if len(c.args) > 0 {
			fmt.Fprintf(b, "\t\t\t'*:%s:_files'\n", strings.ToLower(c.args[0].Name))
		} else {
			fmt.Fprintf(b, "\t\t\t'*: :'\n")
		}
		fmt.Fprintf(b, "\t\t;;\n")
	}
	writeCase("''", g.cmd(g.deflt), true)
	for _, c := range g.cmds {
		writeCase(c.name, c, false)
	}
	fmt.Fprintf(b, "\tesac\n}\n\n")
	fmt.Fprintf(b, "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then\n\t_filecache \"$@\"\nelse\n\tcompdef _filecache filecache\nfi\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// fishQuote quotes s as one single-quoted fish word.
func fishQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// fishCompletion writes the fish completions.
func fishCompletion(w io.Writer) error {
	g, err := grammarModel()
	if err != nil {
		return err
	}
	b := &strings.Builder{}
	names := strings.Join(g.names(), " ")
	fmt.Fprintf(b, "# fish completion for filecache. Generated from its kong grammar by `make docs`; do not edit.\n")
	fmt.Fprintf(b, "set -l filecache_commands %s\n\n", names)
	fmt.Fprintf(b, "# Commands, as the first operand (else it is a path for %s).\n", g.deflt)
	for _, c := range g.cmds {
		fmt.Fprintf(b, "complete -c filecache -n \"not __fish_seen_subcommand_from $filecache_commands\" -a %s -d %s\n", c.name, fishQuote(firstSentence(c.help)))
	}
	flagLine := func(cond string, f *kong.Flag) {
		fmt.Fprintf(b, "complete -c filecache")
		if cond != "" {
			fmt.Fprintf(b, " -n %s", cond)
		}
		if f.Short != 0 {
			fmt.Fprintf(b, " -s %c", f.Short)
		}
		fmt.Fprintf(b, " -l %s", f.Name)
		switch valueKind(f) {
		case "enum":
			fmt.Fprintf(b, " -x -a %s", fishQuote(strings.Join(f.EnumSlice(), " ")))
		case "file":
			fmt.Fprintf(b, " -r -F")
		case "word":
			fmt.Fprintf(b, " -x")
		}
		fmt.Fprintf(b, " -d %s\n", fishQuote(firstSentence(f.Help)))
	}
	fmt.Fprintf(b, "\n# Flags of every command.\n")
	for _, f := range g.globals {
		flagLine("", f)
	}
	// Each command's flags, once each: where the default command has one,
	// it is offered also before any command is typed.
	fmt.Fprintf(b, "\n# Flags of some commands.\n")
	done := map[string]bool{}
	for _, c := range g.cmds {
		for _, f := range c.flags {
			if done[f.Name] {
				continue
			}
			done[f.Name] = true
			var with, without []string
			for _, o := range g.cmds {
				if slices.ContainsFunc(o.flags, func(x *kong.Flag) bool { return x.Name == f.Name }) {
					with = append(with, o.name)
				} else {
					without = append(without, o.name)
				}
			}
			cond := fmt.Sprintf("\"__fish_seen_subcommand_from %s\"", strings.Join(with, " "))
			if slices.Contains(with, g.deflt) {
				cond = fmt.Sprintf("\"not __fish_seen_subcommand_from %s\"", strings.Join(without, " "))
			}
			flagLine(cond, f)
		}
	}
	var without []string
	for _, c := range g.cmds {
		if len(c.args) == 0 {
			without = append(without, c.name)
		}
	}
	if len(without) > 0 {
		fmt.Fprintf(b, "\n# Commands that take no paths.\ncomplete -c filecache -n \"__fish_seen_subcommand_from %s\" -f\n", strings.Join(without, " "))
	}
	_, err = io.WriteString(w, b.String())
	return err
}
