package cli

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// mustParse parses args into the grammar, failing the test on an error.
func mustParse(t *testing.T, args ...string) (*CLI, string) {
	t.Helper()
	c, ctx, err := parse(args, &Env{})
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return c, strings.Fields(ctx.Command())[0]
}

// The conventions of getopt tools, for every command: options before or
// after operands, "--" ends the options wherever it is, short options take
// their value attached or as the next argument, and a command is named by
// the first operand only.
func TestArgumentConventions(t *testing.T) {
	for _, cmd := range []string{"", "query", "touch", "evict", "lock"} {
		pre := []string{}
		if cmd != "" {
			pre = []string{cmd}
		}
		sel := func(c *CLI) *Selection {
			switch cmd {
			case "touch":
				return &c.Touch.Selection
			case "evict":
				return &c.Evict.Selection
			case "lock":
				return &c.Lock.Selection
			}
			return &c.Query.Selection
		}
		for _, c := range []struct {
			args  []string
			paths []string
		}{
			{[]string{"--json", "a", "b"}, []string{"a", "b"}},
			{[]string{"a", "--json", "b"}, []string{"a", "b"}},
			{[]string{"a", "b", "--json"}, []string{"a", "b"}},
			{[]string{"--json", "--", "-a", "--json"}, []string{"-a", "--json"}},
			{[]string{"a", "--json", "--", "--xdev", "-"}, []string{"a", "--xdev", "-"}},
			{[]string{"a", "--max-depth", "3", "b", "--max-depth=4"}, []string{"a", "b"}},
			{[]string{"--", "doctor", "top"}, []string{"doctor", "top"}},
			{[]string{"a", "-0", "--from", "-", "b"}, []string{"a", "b"}},
		} {
			args := append(append([]string{}, pre...), c.args...)
			p, got := mustParse(t, args...)
			want := cmd
			if want == "" {
				want = "query"
			}
			if got != want || !slices.Equal(sel(p).Paths, c.paths) || !p.JSON && slices.Contains(c.args, "--json") {
				t.Errorf("%q: command %q paths %q json %v; want %q %q", args, got, sel(p).Paths, p.JSON, want, c.paths)
			}
		}
	}
	// Values that look like options are values.
	if c, _ := mustParse(t, "a", "--from", "--", "b"); c.Query.From != "--" || !slices.Equal(c.Query.Paths, []string{"a", "b"}) {
		t.Errorf("--from --: from %q paths %q", c.Query.From, c.Query.Paths)
	}
	// Short options: clustered, attached, or with the next argument.
	for _, args := range [][]string{{"top", "-n", "5"}, {"top", "-n5"}, {"top", "--n=5"}, {"-v", "top", "-n", "5"}, {"top", "-vn", "5"}, {"top", "-vn5"}} {
		c, cmd := mustParse(t, args...)
		if cmd != "top" || c.Top.N != 5 {
			t.Errorf("%q: command %q -n %d", args, cmd, c.Top.N)
		}
	}
	if c, _ := mustParse(t, "top", "-n", "-1"); c.Top.N != -1 {
		t.Errorf("-n -1: %d", c.Top.N)
	}
	if c, _ := mustParse(t, "-v0", "x"); !c.Verbose || !c.Query.Null {
		t.Errorf("-v0: verbose %v null %v", c.Verbose, c.Query.Null)
	}
	// A command word is a command only as the first operand.
	if c, cmd := mustParse(t, "a", "doctor"); cmd != "query" || !slices.Equal(c.Query.Paths, []string{"a", "doctor"}) {
		t.Errorf("a doctor: %q %q", cmd, c.Query.Paths)
	}
	if _, cmd := mustParse(t, "--json", "doctor"); cmd != "doctor" {
		t.Errorf("--json doctor: %q", cmd)
	}
	for _, args := range [][]string{{"--bogus", "a"}, {"a", "-x"}, {"top", "-n"}, {"doctor", "a"}} {
		if _, _, err := parse(args, &Env{}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// Every string option and every operand reaches the command byte for byte
// (kong alone would replace invalid UTF-8), found from the grammar rather
// than from a list of flags kept by hand.
func TestArgumentsByteForByte(t *testing.T) {
	app, err := kong.New(&CLI{}, kong.Vars{"methods": joinMethods()})
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, node := range app.Model.Children {
		for _, group := range node.AllFlags(false) {
			for _, f := range group {
				kind := f.Target.Kind()
				if f.Enum != "" || (kind != reflect.String && !(kind == reflect.Slice && f.Target.Type().Elem().Kind() == reflect.String)) {
					continue
				}
				value := "\xff" + f.Name + "\xfe*"
				if f.Name == "range" || f.Name == "max-size" || f.Name == "min" {
					continue // parsed as numbers by the command, which refuses such bytes
				}
				args := []string{node.Name, "--" + f.Name, value}
				if len(node.Positional) > 0 { // commands taking operands
					args = append(args, "--", "p\xff")
				}
				c, _, err := parse(args, &Env{})
				if err != nil {
					t.Errorf("%q: %v", args, err)
					continue
				}
				tried++
				if !holds(reflect.ValueOf(c), value) {
					t.Errorf("%q: no field holds %q after parsing", args, value)
				}
				if len(args) > 3 && !holds(reflect.ValueOf(c), "p\xff") {
					t.Errorf("%q: the operand lost its bytes", args)
				}
			}
		}
	}
	if tried < 8 {
		t.Errorf("only %d string options tried: the grammar walk found too few", tried)
	}
	// An enum refuses such a value, naming the bytes given.
	if _, _, err := parse([]string{"--engine", "b\xffd", "x"}, &Env{}); err == nil || !strings.Contains(err.Error(), `"b\xffd"`) {
		t.Errorf("--engine b\\xffd: %v", err)
	}
}

// holds says whether some string reachable from v equals s.
func holds(v reflect.Value, s string) bool {
	switch v.Kind() {
	case reflect.Pointer:
		return !v.IsNil() && holds(v.Elem(), s)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && holds(v.Field(i), s) {
				return true
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if holds(v.Index(i), s) {
				return true
			}
		}
	case reflect.String:
		return v.String() == s
	}
	return false
}
