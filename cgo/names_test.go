//go:build cgo

package cgo

import (
	"bytes"
	"debug/elf"
	"slices"
	"strings"
	"testing"
)

// TestObjectNames holds names.go to the embedded object, read as libbpf
// reads it: a program is a global function in an executable section other
// than .text (which holds subprograms), a map is a symbol in .maps. Without
// this a renamed program or map fails only when loaded, as root.
func TestObjectNames(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(object))
	if err != nil {
		t.Fatalf("embedded object: %v", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("embedded object: symbols: %v", err)
	}
	var progs, maps []string
	section := map[string]string{} // program -> its section
	for _, s := range syms {
		if s.Section < elf.SHN_LORESERVE && int(s.Section) < len(f.Sections) {
			sec := f.Sections[s.Section]
			switch {
			case elf.ST_TYPE(s.Info) == elf.STT_FUNC && elf.ST_BIND(s.Info) == elf.STB_GLOBAL &&
				sec.Flags&elf.SHF_EXECINSTR != 0 && sec.Name != ".text":
				progs = append(progs, s.Name)
				section[s.Name] = sec.Name
			case sec.Name == ".maps":
				maps = append(maps, s.Name)
			}
		}
	}
	slices.Sort(progs)
	slices.Sort(maps)
	if want := slices.Sorted(slices.Values(objectPrograms)); !slices.Equal(progs, want) {
		t.Errorf("the object's programs are %q; cgo/names.go says %q", progs, want)
	}
	if want := slices.Sorted(slices.Values(objectMaps)); !slices.Equal(maps, want) {
		t.Errorf("the object's maps are %q; cgo/names.go says %q", maps, want)
	}
	for method, p := range programs {
		if !slices.Contains(objectPrograms, p) {
			t.Errorf("method %s runs %q, not one of the object's programs %q", method, p, objectPrograms)
		}
	}
	// Every program is test-run or attached as a raw tracepoint program;
	// the section name is what gives libbpf its program type.
	for p, sec := range section {
		if sec != "raw_tp" && !strings.HasPrefix(sec, "raw_tp/") {
			t.Errorf("program %s is in section %q, not a raw_tp one", p, sec)
		}
	}
}
