package cli

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/kong"

	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// normalize rewrites a command line the way getopt(3) users expect it to
// be read, into the one shape kong reads without surprises:
//
//	COMMAND --long=value --flag ... -- OPERAND...
//
// Options may come before or after operands (filecache a --json b), "--"
// ends the options wherever it appears, a short option's value may be
// attached (-n5) or the next argument (-n 5, -n -1), and a leading operand
// that names a command selects it. Every value and operand that is not
// valid UTF-8 (kong would replace its bad bytes) is hidden behind a
// placeholder no real argument can hold (it has a NUL); restore brings the
// exact bytes back into every string field after parsing.
func normalize(app *kong.Application, args []string) ([]string, restorer) {
	r := restorer{}
	hide := func(s string) string {
		if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
			return s
		}
		key := fmt.Sprintf("\x00arg%d\x00", len(r))
		r[key] = s
		return key
	}
	commands := map[string]*kong.Node{}
	for _, n := range app.Children {
		commands[n.Name] = n
		for _, a := range n.Aliases {
			commands[a] = n
		}
	}
	// The flags of the command, once it is known; until then those of the
	// default command (a command's flags include the global ones).
	node := app.DefaultCmd
	if node == nil {
		node = app.Node
	}
	flags := func() (long map[string]*kong.Flag, short map[rune]*kong.Flag) {
		long, short = map[string]*kong.Flag{}, map[rune]*kong.Flag{}
		for _, group := range node.AllFlags(false) {
			for _, f := range group {
				long[f.Name] = f
				for _, a := range f.Aliases {
					long[a] = f
				}
				if f.Short != 0 {
					short[f.Short] = f
				}
			}
		}
		return long, short
	}
	takesValue := func(f *kong.Flag) bool { return !f.IsBool() && !f.IsCounter() }

	var opts, operands []string
	command := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		long, short := flags()
		switch {
		case a == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			f := long[name]
			switch {
			case f == nil: // kong says it is unknown
				opts = append(opts, hide(a))
			case hasValue:
				opts = append(opts, "--"+f.Name+"="+hide(value))
			case takesValue(f) && i+1 < len(args):
				i++
				opts = append(opts, "--"+f.Name+"="+hide(args[i]))
			default:
				opts = append(opts, "--"+f.Name)
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// A cluster of short options: -v0, -n5, -vn 5.
			rest := a[1:]
			for rest != "" {
				c, size := utf8.DecodeRuneInString(rest)
				rest = rest[size:]
				f := short[c]
				switch {
				case f == nil:
					opts = append(opts, hide("-"+string(c)))
				case !takesValue(f):
					opts = append(opts, "--"+f.Name)
				case rest != "":
					opts = append(opts, "--"+f.Name+"="+hide(rest))
					rest = ""
				case i+1 < len(args):
					i++
					opts = append(opts, "--"+f.Name+"="+hide(args[i]))
				default:
					opts = append(opts, "--"+f.Name) // kong says it needs a value
				}
			}
		case command == "" && len(operands) == 0 && commands[a] != nil:
			command, node = commands[a].Name, commands[a]
		default:
			operands = append(operands, a)
		}
	}
	if command == "" && len(operands) > 0 {
		command = defaultCommand(app)
	}
	var out []string
	if command != "" {
		out = append(out, command)
	}
	out = append(out, opts...)
	if len(operands) > 0 {
		out = append(out, "--")
		for _, o := range operands {
			out = append(out, hide(o))
		}
	}
	return out, r
}

// defaultCommand is the command that runs when none is named.
func defaultCommand(app *kong.Application) string {
	if app.DefaultCmd != nil {
		return app.DefaultCmd.Name
	}
	return ""
}

// restorer maps placeholders back to the arguments they hide.
type restorer map[string]string

// fields puts the hidden arguments back into every string and []string
// field reachable from v (a pointer to the grammar), whatever its name.
func (r restorer) fields(v any) {
	if len(r) == 0 {
		return
	}
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				if f := v.Field(i); f.CanSet() {
					walk(f)
				}
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		case reflect.String:
			if s, ok := r[v.String()]; ok {
				v.SetString(s)
			}
		}
	}
	walk(reflect.ValueOf(v))
}

// text puts the hidden arguments back into a message, as they would be
// shown on a terminal line.
func (r restorer) text(msg string) string {
	for key, s := range r {
		msg = strings.ReplaceAll(msg, strconv.Quote(key), strconv.Quote(s))
		msg = strings.ReplaceAll(msg, key, units.Display(s))
	}
	return msg
}
