//go:build cgo

package cgo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/filecache/filecache/bpf"
	"github.com/filecache/filecache/bpf/btfmin"
	"github.com/filecache/filecache/cgo/internal/relocs"
)

// TestMinimalBTFRelocatesAsKernel holds btfmin.MinimalBTF to two oracles that
// share no code with it: libbpf, which relocates the object, and bpftool's
// own minimiser (gen min_core_btf). The object is loaded with the running
// kernel's full BTF, with ours and with bpftool's as CO-RE target; every
// program must come out of libbpf instruction for instruction the same, so
// every type and member offset the relocations resolved is the same.
//
// Loading needs root: it skips for other users, and fails as root (make
// unit in CI) when anything is missing, bpftool included.
func TestMinimalBTFRelocatesAsKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loads the BPF programs: needs root (make unit runs as root in CI)")
	}
	kernel, err := os.ReadFile(bpf.KernelBTF)
	if err != nil {
		t.Fatalf("kernel BTF: %v", err)
	}
	bpftool, err := exec.LookPath("bpftool")
	if err != nil {
		t.Fatalf("bpftool (scripts/deps.sh installs it): %v", err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	objPath := write("filecache.bpf.o", object)

	ours, err := btfmin.MinimalBTF(kernel, object)
	if err != nil {
		t.Fatalf("MinimalBTF: %v", err)
	}
	theirs := filepath.Join(dir, "bpftool.btf")
	if out, err := exec.Command(bpftool, "gen", "min_core_btf", bpf.KernelBTF, theirs, objPath).CombinedOutput(); err != nil {
		t.Fatalf("bpftool gen min_core_btf: %v\n%s", err, out)
	}
	// A minimal BTF that is wrong on purpose: the comparison must see it.
	wrong, err := shiftMember(ours, "address_space", "nrpages", 64)
	if err != nil {
		t.Fatalf("control BTF: %v", err)
	}

	load := func(what, path string) map[string][]byte {
		t.Helper()
		progs, err := relocs.Programs(object, path)
		if e := (*relocs.Error)(nil); errors.As(err, &e) {
			lines := strings.Split(strings.TrimRight(e.Log, "\n"), "\n")
			t.Fatalf("%s: %v; libbpf said:\n%s", what, err, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		} else if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return progs
	}
	want := load("kernel BTF", bpf.KernelBTF)
	if got := slices.Sorted(maps.Keys(want)); !slices.Equal(got, slices.Sorted(slices.Values(objectPrograms))) {
		t.Fatalf("libbpf loaded programs %q, want %q", got, objectPrograms)
	}
	for _, c := range []struct{ what, path string }{
		{"btfmin.MinimalBTF", write("ours.btf", ours)},
		{"bpftool gen min_core_btf", theirs},
	} {
		if diffs := compareInsns(want, load(c.what, c.path)); len(diffs) > 0 {
			t.Errorf("relocated against the %s BTF, the programs differ from the kernel BTF's:\n%s",
				c.what, strings.Join(diffs, "\n"))
		}
	}
	if diffs := compareInsns(want, load("control", write("wrong.btf", wrong))); len(diffs) == 0 {
		t.Error("a minimal BTF with address_space.nrpages 8 bytes off relocates as the kernel's: the comparison sees nothing")
	} else {
		t.Logf("control (address_space.nrpages 8 bytes off): %d instructions differ, as they must", len(diffs))
	}
}

// compareInsns lists where the programs of got differ from want. An ldimm64
// of a map (BPF_PSEUDO_MAP_FD or _VALUE) holds the map's fd, which differs
// from load to load: its imm is not compared.
func compareInsns(want, got map[string][]byte) []string {
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w, g := want[name], got[name]
		if g == nil {
			diffs = append(diffs, fmt.Sprintf("%s: not loaded", name))
			continue
		}
		if len(w) != len(g) {
			diffs = append(diffs, fmt.Sprintf("%s: %d instructions, want %d", name, len(g)/relocs.InsnSize, len(w)/relocs.InsnSize))
			continue
		}
		for i := 0; i < len(w); i += relocs.InsnSize {
			wi, gi := w[i:i+relocs.InsnSize], g[i:i+relocs.InsnSize]
			if bytes.Equal(wi, gi) {
				continue
			}
			const ldimm64, pseudoMapFD, pseudoMapValue = 0x18, 1, 2
			if src := wi[1] >> 4; wi[0] == ldimm64 && (src == pseudoMapFD || src == pseudoMapValue) &&
				bytes.Equal(wi[:4], gi[:4]) {
				continue
			}
			diffs = append(diffs, fmt.Sprintf("%s insn %d: %s, want %s", name, i/relocs.InsnSize, insn(gi), insn(wi)))
		}
	}
	for name := range got {
		if want[name] == nil {
			diffs = append(diffs, fmt.Sprintf("%s: loaded, not with the kernel BTF", name))
		}
	}
	return diffs
}

func insn(b []byte) string {
	return fmt.Sprintf("code %#02x dst r%d src r%d off %d imm %d",
		b[0], b[1]&0xf, b[1]>>4, int16(binary.LittleEndian.Uint16(b[2:])), int32(binary.LittleEndian.Uint32(b[4:])))
}

// shiftMember returns raw BTF b with member of struct name moved by bits,
// read with a walker of its own (nothing of btfmin's).
func shiftMember(b []byte, name, member string, bits uint32) ([]byte, error) {
	b = bytes.Clone(b)
	le := binary.LittleEndian
	if len(b) < 24 {
		return nil, fmt.Errorf("%d bytes", len(b))
	}
	hdr := le.Uint32(b[4:])
	types := b[hdr+le.Uint32(b[8:]) : hdr+le.Uint32(b[8:])+le.Uint32(b[12:])]
	strs := b[hdr+le.Uint32(b[16:]) : hdr+le.Uint32(b[16:])+le.Uint32(b[20:])]
	str := func(off uint32) string { return string(strs[off : int(off)+bytes.IndexByte(strs[off:], 0)]) }
	// Bytes after the 12-byte header, by kind: fixed, then per vlen entry.
	fixed := map[uint32]int{1: 4, 3: 12, 14: 4, 17: 4}
	perVlen := map[uint32]int{4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
	for p := 0; p < len(types); {
		info := le.Uint32(types[p+4:])
		kind, vlen := info>>24&0x1f, int(info&0xffff)
		if kind == 4 && str(le.Uint32(types[p:])) == name {
			for i := range vlen {
				m := types[p+12+12*i:]
				if str(le.Uint32(m)) == member {
					le.PutUint32(m[8:], le.Uint32(m[8:])+bits)
					return b, nil
				}
			}
		}
		p += 12 + fixed[kind] + perVlen[kind]*vlen
	}
	return nil, fmt.Errorf("no member %s in struct %s", member, name)
}
