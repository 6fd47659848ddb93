package btfmin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

const kernelBTFPath = "/sys/kernel/btf/vmlinux"

// envObject names the compiled filecache.bpf.o; make unit sets it. Without
// it the tests of the real object skip (a fresh clone has no object yet);
// with it, a missing object fails.
const envObject = "FILECACHE_BPF_OBJECT"

func bpfObject(tb testing.TB) []byte {
	tb.Helper()
	p := os.Getenv(envObject)
	if p == "" {
		tb.Skipf("%s is not set: the compiled object's tests skipped (make unit sets it)", envObject)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatalf("%s: %v", envObject, err)
	}
	return b
}

func readKernelBTF(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(kernelBTFPath)
	if errors.Is(err, os.ErrNotExist) {
		tb.Skipf("%s: %v", kernelBTFPath, err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The fields filecache.bpf.c reads, as the object declares them.
var objectFields = map[string][]string{
	"task_struct":             {"files"},
	"files_struct":            {"fdt"},
	"fdtable":                 {"max_fds", "fd"},
	"file":                    {"f_path", "f_inode", "f_mapping"},
	"path":                    {"mnt", "dentry"},
	"inode":                   {"i_mode", "i_sb", "i_mapping", "i_ino", "i_nlink", "i_rdev", "i_size", "i_generation", "i_sb_list", "i_dentry", "i_data"},
	"address_space":           {"host", "nrpages", "i_pages"},
	"super_block":             {"s_dev", "s_magic", "s_root", "s_inodes", "s_bdev"},
	"dentry":                  {"d_flags", "d_hash", "d_parent", "d_name", "d_u", "d_inode", "d_sb", "d_sib", "d_children"},
	"list_head":               {"next", "prev"},
	"bpf_raw_tracepoint_args": {"args"},
	// The page walk; of a folio's memory cgroup, what Linux 6.18 has.
	"xarray":              {"xa_head"},
	"xa_node":             {"shift", "offset", "parent", "slots"},
	"kernfs_node":         {"id"},
	"cgroup":              {"kn"},
	"cgroup_subsys_state": {"cgroup"},
	"mem_cgroup":          {"css"},
	"obj_cgroup":          {"memcg"},
	"mem_cgroup_per_node": {},
	"page":                {"memcg_data"},
	"folio":               {"memcg_data"},
	// overlayfs, built into this machine's kernel (6.18 layout).
	"ovl_inode": {"flags", "vfs_inode", "__upperdentry", "oe"},
	"ovl_entry": {"__numlower", "__lowerstack"},
	"ovl_path":  {"dentry"},
}

// TestMinimalBTFKernel reads the output with a parser of its own; the
// oracles that share nothing with this package, libbpf and bpftool's gen
// min_core_btf, are in cgo/core_test.go (as root).
func TestMinimalBTFKernel(t *testing.T) {
	kernel, obj := readKernelBTF(t), bpfObject(t)
	out, err := MinimalBTF(kernel, obj)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := refParse(kernel)
	if err != nil {
		t.Fatalf("reference parser, kernel: %v", err)
	}
	min := mustRef(t, out)
	t.Logf("%d bytes of kernel BTF -> %d bytes, %d types", len(kernel), len(out), len(min.types)-1)

	for _, s := range slices.Sorted(maps.Keys(objectFields)) {
		kid, ok := ref.byName(kindStruct, s)
		if !ok {
			t.Errorf("kernel has no struct %s", s)
			continue
		}
		oid, ok := min.byName(kindStruct, s)
		if !ok {
			t.Errorf("output has no struct %s", s)
			continue
		}
		kt, ot := ref.types[kid], min.types[oid]
		if ot.sizeType != kt.sizeType {
			t.Errorf("%s: size %d, kernel %d", s, ot.sizeType, kt.sizeType)
		}
		var names []string
		for _, m := range ot.members {
			names = append(names, m.name)
		}
		if want := slices.Sorted(slices.Values(objectFields[s])); !slices.Equal(slices.Sorted(slices.Values(names)), want) {
			t.Errorf("%s: members %v, want only %v", s, names, want)
		}
		for _, f := range objectFields[s] {
			km, ok := ref.find(kid, f)
			if !ok {
				t.Errorf("kernel %s has no %s", s, f)
				continue
			}
			om, ok := min.find(oid, f)
			if !ok {
				t.Errorf("output %s has no %s", s, f)
				continue
			}
			if om.bitOff != km.bitOff {
				t.Errorf("%s.%s at bit %d, kernel %d", s, f, om.bitOff, km.bitOff)
			}
			kl, _ := ref.layout(km.typ)
			if ol, _ := min.layout(om.typ); ol != kl {
				t.Errorf("%s.%s is %s, kernel %s", s, f, ol, kl)
			}
		}
	}
	// Facts of this machine's kernel, read with bpftool btf dump.
	if rel, _ := os.ReadFile("/proc/sys/kernel/osrelease"); bytes.HasPrefix(rel, []byte("6.18.")) {
		for _, c := range []struct {
			s, f string
			off  uint32
		}{
			{"address_space", "nrpages", 88},
			{"address_space", "host", 0},
			{"inode", "i_size", 80},
			{"task_struct", "files", 1824},
		} {
			oid, _ := min.byName(kindStruct, c.s)
			if m, ok := min.find(oid, c.f); !ok || m.bitOff != 8*c.off {
				t.Errorf("Linux 6.18: %s.%s at bit %d (found %v), want byte %d", c.s, c.f, m.bitOff, ok, c.off)
			}
		}
	}

	// None of those sits in an anonymous member on Linux 6.18; these do
	// (struct inode's unions), and i_rcu is a struct by value.
	b := newBuilder()
	tUint := b.intType("unsigned int", 4, false)
	tPtr := b.add("", kindPtr, 0, false, 0)
	tHead := b.composite(kindStruct, "callback_head", 16, false, mem{"next", tPtr, 0, 0}, mem{"func", tPtr, 64, 0})
	b.composite(kindStruct, "inode", 8, false, mem{"i_nlink", tUint, 0, 0}, mem{"i_rcu", tHead, 0, 0},
		mem{"i_cdev", tPtr, 0, 0}, mem{"i_link", tPtr, 0, 0}, mem{"i_size", tUint, 0, 0})
	anon, err := minimalBTF(kernel, nil, b.bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	amin := mustRef(t, anon)
	kInode, _ := ref.byName(kindStruct, "inode")
	oInode, ok := amin.byName(kindStruct, "inode")
	if !ok {
		t.Fatal("no struct inode")
	}
	for _, f := range []string{"i_nlink", "i_rcu", "i_cdev", "i_link", "i_size"} {
		km, ok1 := ref.find(kInode, f)
		om, ok2 := amin.find(oInode, f)
		if !ok1 || !ok2 || km.bitOff != om.bitOff {
			t.Errorf("inode.%s at bit %d (%v), kernel %d (%v)", f, om.bitOff, ok2, km.bitOff, ok1)
		}
		if f == "i_rcu" {
			kh, oh := ref.resolve(km.typ), amin.resolve(om.typ)
			for _, g := range []string{"next", "func"} {
				km, ok1 := ref.find(kh, g)
				om, ok2 := amin.find(oh, g)
				if !ok1 || !ok2 || km.bitOff != om.bitOff {
					t.Errorf("inode.i_rcu.%s at bit %d (%v), kernel %d (%v)", g, om.bitOff, ok2, km.bitOff, ok1)
				}
			}
		}
	}
	if got := len(amin.types[oInode].members); got != 5 {
		t.Errorf("inode has %d members, want the 5 asked for", got)
	}

	// Minimizing the minimal BTF changes nothing: it holds all that is asked.
	again, err := MinimalBTF(out, obj)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Error("minimizing the output again changed it")
	}
}

// A small kernel with what /sys/kernel/btf/vmlinux has too little of:
// anonymous members, modifiers, by-value structs, arrays, enums, bitfields,
// flexible and zero-length arrays, flavored and repeated names.
func syntheticKernel() []byte {
	b := newBuilder()
	tInt := b.intType("int", 4, true)                     // 1
	tUlong := b.intType("long unsigned int", 8, false)    // 2
	tU64 := b.add("u64", kindTypedef, 0, false, tUlong)   // 3
	tConstU64 := b.add("", kindConst, 0, false, tU64)     // 4
	tInner := b.composite(kindStruct, "inner", 16, false, // 5
		mem{"a", tInt, 0, 0}, mem{"b", tU64, 64, 0})
	tAnonU := b.composite(kindUnion, "", 8, false, // 6
		mem{"x", tInt, 0, 0}, mem{"y", tConstU64, 0, 0})
	tPtr := b.add("", kindPtr, 0, false, tInner) // 7
	tAnonS := b.composite(kindStruct, "", 16, false,
		mem{"p", tPtr, 0, 0}, mem{"q", tInt, 64, 0}) // 8
	tArr := b.add("", kindArray, 0, false, 0, tInner, tInt, 4) // 9
	tEnum := b.enum("color", "RED", 0, "GREEN", 1, "BLUE", 7)  // 10
	tVolAnon := b.add("", kindVolatile, 0, false, tAnonS)      // 11
	b.composite(kindStruct, "outer", 200, true,                // 12
		mem{"hdr", tInt, 0, 0}, mem{"", tAnonU, 64, 0},
		mem{"", tVolAnon, 128, 0}, mem{"in", tInner, 256, 0},
		mem{"arr", tArr, 384, 0}, mem{"col", tEnum, 896, 0},
		mem{"flags", tInt, 928, 3}, mem{"", tInt, 931, 5})
	tZero := b.add("", kindArray, 0, false, 0, tInt, tInt, 0) // 13
	tFlexBox := b.composite(kindStruct, "", 0, false,         // 14
		mem{"data", tZero, 0, 0})
	b.composite(kindStruct, "msg", 8, false, // 15
		mem{"len", tInt, 0, 0}, mem{"", tFlexBox, 32, 0}, mem{"tail", tInt, 32, 0})
	b.composite(kindStruct, "grp", 8, false, // 16
		mem{"mark", tZero, 0, 0}, mem{"v", tInt, 0, 0}, mem{"w", tInt, 32, 0})
	b.composite(kindStruct, "twin", 8, false, mem{"t", tInt, 0, 0})      // 17
	b.composite(kindStruct, "twin", 16, false, mem{"t", tInt, 64, 0})    // 18
	b.composite(kindUnion, "twin", 4, false, mem{"t", tInt, 0, 0})       // 19: a union, never a candidate
	b.composite(kindStruct, "old___v2", 8, false, mem{"o", tInt, 32, 0}) // 20
	b.composite(kindStruct, "kernel_only", 8, false, mem{"k", tInt, 0, 0})
	return b.bytes()
}

// syntheticObject declares the object's side of syntheticKernel.
func syntheticObject(fields ...string) []byte {
	b := newBuilder()
	tInt := b.intType("int", 4, true)                                          // 1
	tULL := b.intType("unsigned long long", 8, false)                          // 2
	tInner := b.composite(kindStruct, "inner", 8, false, mem{"b", tULL, 0, 0}) // 3
	tArr := b.add("", kindArray, 0, false, 0, tInner, tInt, 4)                 // 4
	tEnum := b.enum("color", "RED", 0)                                         // 5
	tZero := b.add("", kindArray, 0, false, 0, tInt, tInt, 0)                  // 6
	types := map[string]uint32{"hdr": tInt, "y": tULL, "q": tInt, "p": tInt,
		"in": tInner, "arr": tArr, "col": tEnum, "flags": tInt, "missing": tInt}
	var ms []mem
	for i, f := range fields {
		ms = append(ms, mem{f, types[f], uint32(64 * i), 0})
	}
	b.composite(kindStruct, "outer", 8, false, ms...)
	b.composite(kindStruct, "msg", 8, false, mem{"data", tZero, 0, 0}, mem{"tail", tInt, 0, 0})
	b.composite(kindStruct, "grp", 8, false, mem{"mark", tZero, 0, 0})
	b.composite(kindStruct, "twin", 8, false, mem{"t", tInt, 0, 0})
	b.composite(kindStruct, "old___v1", 8, false, mem{"o", tInt, 0, 0})
	b.composite(kindStruct, "local_only", 8, false, mem{"l", tInt, 0, 0})
	b.composite(kindStruct, "", 8, false, mem{"hdr", tInt, 0, 0})
	return b.bytes()
}

func TestMinimalBTFSynthetic(t *testing.T) {
	out, err := minimalBTF(syntheticKernel(), nil,
		syntheticObject("hdr", "y", "q", "p", "in", "arr", "col", "missing"), nil)
	if err != nil {
		t.Fatal(err)
	}
	min := mustRef(t, out)
	outer, ok := min.byName(kindStruct, "outer")
	if !ok {
		t.Fatal("no struct outer")
	}
	if got := min.describe(outer); got != "struct outer/200 {hdr@0 int, y@64 long unsigned int/8, p@128 ptr, q@192 int, in@256 struct inner/16 {b@64 long unsigned int/8}, arr@384 [4]struct inner/16 {b@64 long unsigned int/8}, col@896 enum color/4 {RED=0 GREEN=1 BLUE=7}}" {
		t.Errorf("outer is\n%s", got)
	}
	for _, c := range []struct{ name, want string }{
		// The flexible array stays last, as in its anonymous struct.
		{"msg", "struct msg/8 {tail@32 int, data@32 [0]int}"},
		// A zero-length array that was not last is not made last.
		{"grp", "struct grp/8 {mark@0 [0]int, @0 __ARRAY_SIZE_TYPE__/4}"},
		// The flavored name finds the kernel's, which is what is emitted.
		{"old___v2", "struct old___v2/8 {o@32 int}"},
	} {
		id, ok := min.byName(kindStruct, c.name)
		if !ok {
			t.Errorf("no struct %s", c.name)
		} else if got := min.describe(id); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
	// Every kernel struct of the name is a candidate to libbpf: both twins.
	var twins []string
	for id, ty := range min.types {
		if ty.name == "twin" {
			twins = append(twins, min.describe(uint32(id)))
		}
	}
	if want := []string{"struct twin/8 {t@0 int}", "struct twin/16 {t@64 int}"}; !slices.Equal(twins, want) {
		t.Errorf("twins %q, want %q", twins, want)
	}
	for _, name := range []string{"local_only", "kernel_only"} {
		if _, ok := min.byName(kindStruct, name); ok {
			t.Errorf("struct %s emitted", name)
		}
	}
	// Only the types the members need: nothing else of the kernel.
	if len(min.types)-1 > 20 {
		t.Errorf("%d types", len(min.types)-1)
	}
}

func TestMinimalBTFRefuses(t *testing.T) {
	kernel, object := syntheticKernel(), syntheticObject("hdr")
	valid, err := minimalBTF(kernel, nil, object, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustRef(t, valid)
	hdr := func(b []byte, off int, v uint32) []byte {
		b = bytes.Clone(b)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	typeLen := binary.LittleEndian.Uint32(kernel[12:])
	strLen := binary.LittleEndian.Uint32(kernel[20:])

	badKind := newBuilder()
	badKind.add("x", 25, 0, false, 0)
	badName := newBuilder()
	badName.add("", kindInt, 0, false, 4, 32)
	binary.LittleEndian.PutUint32(badName.types, 1000)
	badMember := newBuilder()
	badMember.composite(kindStruct, "outer", 8, false, mem{"hdr", 99, 0, 0})
	loop := newBuilder()
	loop.add("a", kindTypedef, 0, false, 2)
	loop.add("b", kindTypedef, 0, false, 1)
	loop.composite(kindStruct, "outer", 8, false, mem{"hdr", 1, 0, 0})
	selfArray := newBuilder()
	selfArray.add("", kindArray, 0, false, 0, 1, 1, 2)
	selfArray.composite(kindStruct, "outer", 8, false, mem{"hdr", 1, 0, 0})
	fnMember := newBuilder()
	fnMember.add("", kindFuncProto, 0, false, 0)
	fnMember.composite(kindStruct, "outer", 8, false, mem{"hdr", 1, 0, 0})
	oldBitfield := newBuilder()
	oldBitfield.add("int", kindInt, 0, false, 4, 3) // 3 bits of 32
	oldBitfield.composite(kindStruct, "outer", 8, false, mem{"hdr", 1, 0, 0})
	deepAnon := newBuilder()
	for i := range 100 {
		deepAnon.composite(kindStruct, "", 8, false, mem{"", uint32(i + 2), 0, 0})
	}
	deepAnon.composite(kindStruct, "outer", 8, false, mem{"", 1, 0, 0})

	for _, c := range []struct {
		name           string
		kernel, object []byte
		want           string
	}{
		{"empty", nil, object, "shorter than a header"},
		{"truncated header", kernel[:23], object, "shorter than a header"},
		{"bad magic", hdr(kernel, 0, 0x1234eb9e), object, "bad magic"},
		{"big-endian", hdr(kernel, 0, 0x01009feb), object, "big-endian"},
		{"version", hdr(kernel, 0, 0x0002eb9f), object, "version 2"},
		{"header length short", hdr(kernel, 4, 12), object, "header length"},
		{"header length long", hdr(kernel, 4, uint32(len(kernel)+1)), object, "header length"},
		{"type_len past end", hdr(kernel, 12, uint32(len(kernel))), object, "past the end"},
		{"str_len past end", hdr(kernel, 20, strLen+1), object, "past the end"},
		{"str_off huge", hdr(kernel, 16, 0xffffffff), object, "past the end"},
		{"types into strings", hdr(kernel, 12, typeLen+4), object, "layout"},
		{"type_off unaligned", hdr(hdr(kernel, 8, 2), 12, typeLen-2), object, "layout"},
		{"type truncated", hdr(kernel, 12, typeLen-4), object, "truncated"},
		{"strings unterminated", hdr(kernel, 20, strLen-1), object, "string section"},
		{"unknown kind", badKind.bytes(), object, "unknown kind 25"},
		{"name offset out of range", badName.bytes(), object, "name offset 1000"},
		{"member type id out of range", badMember.bytes(), object, "type id 99 out of range"},
		{"typedef loop", loop.bytes(), object, "too deep"},
		{"array of itself", selfArray.bytes(), object, "too deep"},
		{"function member", fnMember.bytes(), object, "not supported"},
		{"kind_flag bitfield", kernel, syntheticObject("flags"), "outer.flags is a bitfield"},
		{"int bitfield", oldBitfield.bytes(), object, "bitfield"},
		{"anonymous members too deep", deepAnon.bytes(), object, "too deep"},
		{"object BTF bad", kernel, object[:30], "object BTF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := minimalBTF(c.kernel, nil, c.object, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %d bytes, error %v; want an error with %q", len(out), err, c.want)
			}
		})
	}

	if _, err := MinimalBTF(kernel, []byte("not an ELF object")); err == nil {
		t.Error("not an ELF: no error")
	}
	t.Run("truncated object", func(t *testing.T) {
		obj := bpfObject(t)
		if _, err := MinimalBTF(kernel, obj[:len(obj)/2]); err == nil {
			t.Error("no error")
		}
	})
}

// CO-RE relocations the minimal BTF would answer wrongly are refused.
func TestMinimalBTFRelocations(t *testing.T) {
	kernel, object := syntheticKernel(), syntheticObject("hdr")
	ext := func(typeID, kind uint32) []byte {
		var b []byte
		for _, v := range []uint32{0x0001eb9f, 32, 0, 0, 0, 0, 0, 28,
			16, 0, 1, 0, typeID, 0, kind} {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		return b
	}
	var noRelocs []byte // a header without the CO-RE part
	for _, v := range []uint32{0x0001eb9f, 24, 0, 0, 0, 0} {
		noRelocs = binary.LittleEndian.AppendUint32(noRelocs, v)
	}
	l, err := parseBTF("object BTF", object, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	outer := uint32(0)
	for id := uint32(1); id < l.n; id++ {
		if ty, _ := l.typ(id); ty.kind() == kindStruct && string(cstr(l.strs, ty.name)) == "outer" {
			outer = id
		}
	}
	for _, c := range []struct {
		name   string
		ext    []byte
		wantOK bool
	}{
		{"field byte offset", ext(outer, 0), true},
		{"field exists", ext(outer, 2), true},
		{"local type id", ext(1, 6), true},
		{"no relocations", noRelocs, true},
		{"type exists", ext(outer, 8), false},
		{"enum value of a named enum", ext(5, 11), true},
		{"enum value exists", ext(5, 10), true},
		{"enum value of an int", ext(1, 11), false},
		{"type matches", ext(outer, 12), false},
		{"field of an int", ext(1, 0), false},
		{"field of type 0", ext(0, 0), false},
		{"truncated", ext(outer, 0)[:56], false},
		{"bad magic", ext(outer, 0)[4:], false},
	} {
		_, err := minimalBTF(kernel, nil, object, c.ext)
		if (err == nil) != c.wantOK {
			t.Errorf("%s: error %v", c.name, err)
		}
	}
}

// The object's own relocations are all field ones on named structs.
func TestObjectRelocations(t *testing.T) {
	btf, ext, err := objectBTF(bpfObject(t))
	if err != nil {
		t.Fatal(err)
	}
	if ext == nil {
		t.Fatal("no .BTF.ext")
	}
	l, err := parseBTF("object BTF", btf, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkRelocs(&l, ext); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkMinimalBTF(b *testing.B) {
	kernel, obj := readKernelBTF(b), bpfObject(b)
	b.SetBytes(int64(len(kernel)))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		var err error
		if out, err = MinimalBTF(kernel, obj); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(out)), "out-bytes")
}

// FuzzMinimalBTF never panics, and what it returns is well-formed BTF. The
// object bytes are also tried as the object's raw .BTF, to reach that
// parser past debug/elf.
func FuzzMinimalBTF(f *testing.F) {
	if obj := os.Getenv(envObject); obj != "" {
		object := bpfObject(f)
		if kernel, err := os.ReadFile(kernelBTFPath); err == nil {
			f.Add(kernel, object)
			if min, err := MinimalBTF(kernel, object); err == nil {
				f.Add(min, object)
			}
		}
		local, _, err := objectBTF(object)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(syntheticKernel(), object)
		f.Add(syntheticKernel(), local)
	}
	f.Add(syntheticKernel(), syntheticObject("hdr", "y", "q", "in", "arr", "col"))
	f.Fuzz(func(t *testing.T, kernel, object []byte) {
		check := func(out []byte, err error) {
			if err != nil {
				return
			}
			if _, err := parseBTF("output", out, nil, nil); err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
			if _, err := refParse(out); err != nil {
				t.Fatalf("output does not parse (reference): %v", err)
			}
		}
		check(MinimalBTF(kernel, object))
		check(minimalBTF(kernel, nil, object, nil))
	})
}

// An enum whose values the object reads is emitted whole, as the kernel's.
func TestMinimalBTFEnum(t *testing.T) {
	object := syntheticObject("hdr")
	l, err := parseBTF("object BTF", object, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var color uint32
	for id := uint32(1); id < l.n; id++ {
		if ty, _ := l.typ(id); ty.kind() == kindEnum && string(cstr(l.strs, ty.name)) == "color" {
			color = id
		}
	}
	var ext []byte
	for _, v := range []uint32{0x0001eb9f, 32, 0, 0, 0, 0, 0, 28, 16, 0, 1, 0, color, 0, 11} {
		ext = binary.LittleEndian.AppendUint32(ext, v)
	}
	out, err := minimalBTF(syntheticKernel(), nil, object, ext)
	if err != nil {
		t.Fatal(err)
	}
	min := mustRef(t, out)
	id, ok := min.byName(kindEnum, "color")
	if !ok {
		t.Fatal("no enum color")
	}
	if got, want := min.describe(id), "enum color/4 {RED=0 GREEN=1 BLUE=7}"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Without the relocation, an enum the object declares is not asked for.
	plain, err := minimalBTF(syntheticKernel(), nil, object, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mustRef(t, plain).byName(kindEnum, "color"); ok {
		t.Error("enum color emitted with no relocation reading it")
	}
}

// A module's split BTF: its ids and strings continue the kernel's, its
// types refer to the kernel's, and a type the kernel has is taken from the
// kernel, as libbpf does.
func TestMinimalBTFModule(t *testing.T) {
	kernel := newBuilder()
	kInt := kernel.intType("int", 4, true)                                                // 1
	kInode := kernel.composite(kindStruct, "inode", 16, false, mem{"i_ino", kInt, 64, 0}) // 2
	kernel.composite(kindStruct, "shared", 8, false, mem{"s", kInt, 0, 0})                // 3
	kb := kernel.bytes()

	// The module's strings start with a name, not the empty one; "int" is
	// the kernel's string.
	mod := &builder{n: kernel.n, strBase: uint32(len(kernel.strs))}
	mPtr := mod.add("", kindPtr, 0, false, kInode)    // 4
	mod.composite(kindStruct, "ovl_inode", 48, false, // 5
		mem{"flags", kInt, 0, 0}, mem{"vfs_inode", kInode, 64, 0}, mem{"upper", mPtr, 256, 0})
	mod.composite(kindStruct, "shared", 16, false, mem{"s", kInt, 96, 0}) // 6
	mod.enum("ovl_flag", "UPPERDATA", 3, "OTHER", 4)                      // 7
	mb := mod.bytes()

	obj := newBuilder()
	oInt := obj.intType("int", 4, true)
	oInode := obj.composite(kindStruct, "inode", 8, false, mem{"i_ino", oInt, 0, 0})
	oPtr := obj.add("", kindPtr, 0, false, oInode)
	obj.composite(kindStruct, "ovl_inode", 8, false, mem{"vfs_inode", oInode, 0, 0}, mem{"upper", oPtr, 0, 0})
	obj.composite(kindStruct, "shared", 8, false, mem{"s", oInt, 0, 0})
	oEnum := obj.enum("ovl_flag", "UPPERDATA", 0)
	ob := obj.bytes()
	var ext []byte
	for _, v := range []uint32{0x0001eb9f, 32, 0, 0, 0, 0, 0, 28, 16, 0, 1, 0, oEnum, 0, 11} {
		ext = binary.LittleEndian.AppendUint32(ext, v)
	}

	out, err := minimalBTF(kb, mb, ob, ext)
	if err != nil {
		t.Fatal(err)
	}
	min := mustRef(t, out)
	for kind, want := range map[int]map[string]string{
		kindStruct: {
			"ovl_inode": "struct ovl_inode/48 {vfs_inode@64 struct inode/16 {i_ino@64 int}, upper@256 ptr}",
			"shared":    "struct shared/8 {s@0 int}",
		},
		kindEnum: {"ovl_flag": "enum ovl_flag/4 {UPPERDATA=3 OTHER=4}"},
	} {
		for name, w := range want {
			id, ok := min.byName(kind, name)
			if !ok {
				t.Errorf("no %s", name)
				continue
			}
			if got := min.describe(id); got != w {
				t.Errorf("got  %s\nwant %s", got, w)
			}
		}
	}
	n := 0
	for _, ty := range min.types {
		if ty.name == "shared" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d structs shared, want the kernel's only", n)
	}
	// Without the module, its types are not there (libbpf then fails
	// those relocations, as with the full BTF).
	alone, err := minimalBTF(kb, nil, ob, ext)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mustRef(t, alone).byName(kindStruct, "ovl_inode"); ok {
		t.Error("struct ovl_inode without the module")
	}
	// A module whose ids do not continue this kernel's is refused or
	// yields nothing, never a type pieced from the wrong base.
	if _, err := minimalBTF(newBuilder().bytes(), mb, ob, ext); err == nil {
		t.Error("a module on top of another kernel accepted")
	}
}

// builder writes BTF for tests; with n and strBase set, split BTF
// continuing a base of n types and strBase bytes of strings.
type builder struct {
	types, strs []byte
	n           uint32
	strBase     uint32
}

type mem struct {
	name           string
	typ, off, bits uint32
}

func newBuilder() *builder { return &builder{strs: []byte{0}} }

func (b *builder) str(s string) uint32 {
	if s == "" {
		return 0
	}
	if s == "int" && b.strBase != 0 {
		return 1 // the base's "int", as a deduplicated module refers to it
	}
	off := b.strBase + uint32(len(b.strs))
	b.strs = append(append(b.strs, s...), 0)
	return off
}

func (b *builder) add(name string, kind, vlen uint32, kflag bool, sizeType uint32, extra ...uint32) uint32 {
	info := kind<<24 | vlen
	if kflag {
		info |= 1 << 31
	}
	for _, v := range append([]uint32{b.str(name), info, sizeType}, extra...) {
		b.types = binary.LittleEndian.AppendUint32(b.types, v)
	}
	b.n++
	return b.n
}

func (b *builder) intType(name string, size uint32, signed bool) uint32 {
	enc := size * 8
	if signed {
		enc |= 1 << 24
	}
	return b.add(name, kindInt, 0, false, size, enc)
}

func (b *builder) composite(kind uint32, name string, size uint32, kflag bool, ms ...mem) uint32 {
	var extra []uint32
	for _, m := range ms {
		off := m.off
		if kflag {
			off |= m.bits << 24
		}
		extra = append(extra, b.str(m.name), m.typ, off)
	}
	return b.add(name, kind, uint32(len(ms)), kflag, size, extra...)
}

// enum takes name, value pairs.
func (b *builder) enum(name string, vals ...any) uint32 {
	var extra []uint32
	for i := 0; i < len(vals); i += 2 {
		extra = append(extra, b.str(vals[i].(string)), uint32(vals[i+1].(int)))
	}
	return b.add(name, kindEnum, uint32(len(extra)/2), false, 4, extra...)
}

func (b *builder) bytes() []byte {
	var h []byte
	for _, v := range []uint32{0x0001eb9f, 24, 0, uint32(len(b.types)), uint32(len(b.types)), uint32(len(b.strs))} {
		h = binary.LittleEndian.AppendUint32(h, v)
	}
	return append(append(h, b.types...), b.strs...)
}

// The reference parser: slow and plain, every type decoded into a struct,
// sharing nothing with btf.go but the kind numbers.

type refType struct {
	kind, vlen int
	kflag      bool
	name       string
	sizeType   uint32
	intEnc     uint32
	elem, idx  uint32 // array
	nelems     uint32
	members    []refMember // struct, union; params of a func proto
	enums      []refEnum
	refs       []uint32 // every type id it refers to
}

type refMember struct {
	name   string
	typ    uint32
	bitOff uint32
	bits   uint32 // bitfield size, 0 if none
}

type refEnum struct {
	name string
	val  int64
}

type refBTF struct{ types []refType } // types[0] is void

type btfHeader struct {
	Magic                            uint16
	Version, Flags                   uint8
	HdrLen                           uint32
	TypeOff, TypeLen, StrOff, StrLen uint32
}

func refParse(data []byte) (*refBTF, error) {
	var h btfHeader
	if err := binary.Read(bytes.NewReader(data), binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if h.Magic != 0xeb9f || h.Version != 1 || h.HdrLen < 24 || int64(h.HdrLen) > int64(len(data)) {
		return nil, fmt.Errorf("bad header %+v", h)
	}
	body := data[h.HdrLen:]
	if int64(h.TypeOff)+int64(h.TypeLen) > int64(len(body)) || int64(h.StrOff)+int64(h.StrLen) > int64(len(body)) {
		return nil, fmt.Errorf("sections out of range %+v", h)
	}
	strs := body[h.StrOff : h.StrOff+h.StrLen]
	if len(strs) == 0 || strs[0] != 0 {
		return nil, errors.New("string section does not start with NUL")
	}
	str := func(off uint32) (string, error) {
		if int64(off) >= int64(len(strs)) {
			return "", fmt.Errorf("string offset %d out of range", off)
		}
		end := bytes.IndexByte(strs[off:], 0)
		if end < 0 {
			return "", fmt.Errorf("string at %d not terminated", off)
		}
		return string(strs[off : int(off)+end]), nil
	}
	r := bytes.NewReader(body[h.TypeOff : h.TypeOff+h.TypeLen])
	words := func(n int) ([]uint32, error) {
		w := make([]uint32, n)
		return w, binary.Read(r, binary.LittleEndian, w)
	}
	btf := &refBTF{types: []refType{{}}}
	for r.Len() > 0 {
		id := len(btf.types)
		head, err := words(3)
		if err != nil {
			return nil, fmt.Errorf("type %d: %w", id, err)
		}
		t := refType{kind: int(head[1] >> 24 & 0x1f), vlen: int(head[1] & 0xffff), kflag: head[1]>>31 == 1, sizeType: head[2]}
		if t.name, err = str(head[0]); err != nil {
			return nil, fmt.Errorf("type %d: %w", id, err)
		}
		var w []uint32
		switch t.kind {
		case kindInt:
			w, err = words(1)
			if err == nil {
				t.intEnc = w[0]
			}
		case kindPtr, kindTypedef, kindVolatile, kindConst, kindRestrict, kindTypeTag, kindFunc:
			t.refs = append(t.refs, t.sizeType)
		case kindFwd, kindFloat:
		case kindArray:
			w, err = words(3)
			if err == nil {
				t.elem, t.idx, t.nelems = w[0], w[1], w[2]
				t.refs = append(t.refs, w[0], w[1])
			}
		case kindStruct, kindUnion, kindFuncProto, kindDatasec:
			per := 3
			if t.kind == kindFuncProto {
				per = 2
				t.refs = append(t.refs, t.sizeType)
			}
			w, err = words(per * t.vlen)
			for i := 0; err == nil && i < t.vlen; i++ {
				m := refMember{typ: w[per*i+1]}
				if t.kind == kindDatasec {
					m.typ = w[per*i]
				} else {
					m.name, err = str(w[per*i])
				}
				if per == 3 {
					m.bitOff = w[per*i+2]
					if t.kflag {
						m.bits, m.bitOff = m.bitOff>>24, m.bitOff&0xffffff
					}
				}
				t.members = append(t.members, m)
				t.refs = append(t.refs, m.typ)
			}
		case kindEnum, kindEnum64:
			per := 2
			if t.kind == kindEnum64 {
				per = 3
			}
			w, err = words(per * t.vlen)
			for i := 0; err == nil && i < t.vlen; i++ {
				e := refEnum{val: int64(int32(w[per*i+1]))}
				if per == 3 {
					e.val = int64(uint64(w[per*i+2])<<32 | uint64(w[per*i+1]))
				}
				e.name, err = str(w[per*i])
				t.enums = append(t.enums, e)
			}
		case kindVar, kindDeclTag:
			_, err = words(1)
			t.refs = append(t.refs, t.sizeType)
		default:
			err = fmt.Errorf("unknown kind %d", t.kind)
		}
		if err != nil {
			return nil, fmt.Errorf("type %d: %w", id, err)
		}
		btf.types = append(btf.types, t)
	}
	for id, t := range btf.types {
		for _, ref := range t.refs {
			if int(ref) >= len(btf.types) {
				return nil, fmt.Errorf("type %d refers to type %d of %d", id, ref, len(btf.types)-1)
			}
		}
		if t.kind == kindArray && t.elem == 0 {
			return nil, fmt.Errorf("type %d: array of void", id)
		}
		for _, m := range t.members {
			if t.kind != kindFuncProto && m.typ == 0 {
				return nil, fmt.Errorf("type %d: member %q of type void", id, m.name)
			}
		}
	}
	return btf, nil
}

func mustRef(t *testing.T, b []byte) *refBTF {
	t.Helper()
	if _, err := parseBTF("output", b, nil, nil); err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	r, err := refParse(b)
	if err != nil {
		t.Fatalf("output does not parse (reference): %v", err)
	}
	return r
}

// byName is the one type of kind and name.
func (r *refBTF) byName(kind int, name string) (uint32, bool) {
	found := uint32(0)
	for id, t := range r.types {
		if t.kind == kind && t.name == name {
			if found != 0 {
				return 0, false
			}
			found = uint32(id)
		}
	}
	return found, found != 0
}

func (r *refBTF) resolve(id uint32) uint32 {
	for {
		switch r.types[id].kind {
		case kindTypedef, kindVolatile, kindConst, kindRestrict, kindTypeTag:
			id = r.types[id].sizeType
		default:
			return id
		}
	}
}

// find is member name of struct id at its absolute bit offset, looking
// into anonymous members.
func (r *refBTF) find(id uint32, name string) (refMember, bool) {
	for _, m := range r.types[id].members {
		if m.name == name {
			return m, true
		}
		if sub := r.resolve(m.typ); m.name == "" && (r.types[sub].kind == kindStruct || r.types[sub].kind == kindUnion) {
			if f, ok := r.find(sub, name); ok {
				f.bitOff += m.bitOff
				return f, true
			}
		}
	}
	return refMember{}, false
}

// layout is what CO-RE compares of a member's type.
func (r *refBTF) layout(id uint32) (string, bool) {
	t := r.types[r.resolve(id)]
	switch t.kind {
	case kindPtr:
		return "ptr", true
	case kindInt:
		return fmt.Sprintf("int%d/%x", t.sizeType, t.intEnc), true
	case kindArray:
		e, ok := r.layout(t.elem)
		return fmt.Sprintf("[%d]%s", t.nelems, e), ok
	case kindStruct, kindUnion:
		return fmt.Sprintf("composite %s/%d", t.name, t.sizeType), true
	case kindEnum, kindEnum64:
		return fmt.Sprintf("enum %s %v", t.name, t.enums), true
	}
	return fmt.Sprintf("kind %d", t.kind), false
}

// describe prints a type of the output, by-value members and all.
func (r *refBTF) describe(id uint32) string {
	t := r.types[id]
	switch t.kind {
	case kindPtr:
		return "ptr"
	case kindInt:
		if t.sizeType == 4 && t.name == "int" {
			return "int"
		}
		return fmt.Sprintf("%s/%d", t.name, t.sizeType)
	case kindArray:
		return fmt.Sprintf("[%d]%s", t.nelems, r.describe(t.elem))
	case kindEnum:
		var vals []string
		for _, e := range t.enums {
			vals = append(vals, fmt.Sprintf("%s=%d", e.name, e.val))
		}
		return fmt.Sprintf("enum %s/%d {%s}", t.name, t.sizeType, strings.Join(vals, " "))
	case kindStruct, kindUnion:
		var ms []string
		for _, m := range t.members {
			ms = append(ms, fmt.Sprintf("%s@%d %s", m.name, m.bitOff, r.describe(m.typ)))
		}
		kind := map[int]string{kindStruct: "struct", kindUnion: "union"}[t.kind]
		return fmt.Sprintf("%s %s/%d {%s}", kind, t.name, t.sizeType, strings.Join(ms, ", "))
	}
	return fmt.Sprintf("kind %d", t.kind)
}
