package btfmin

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
)

// MinimalBTF cuts a kernel's BTF down to what the CO-RE field relocations of
// object can ask of it, so that libbpf parses a kilobyte instead of megabytes
// (~19 ms of a ~22 ms run for /sys/kernel/btf/vmlinux). kernelBTF is raw BTF
// (/sys/kernel/btf/vmlinux or a BTFHub file), object the BPF ELF object.
//
// For every named struct or union of the object that the kernel also has
// (same essential name and kind; every such kernel type, as libbpf considers
// them all), the result holds a type of the kernel's name and size with only
// the members the object declares, found by name through anonymous members
// as libbpf does and flattened to their absolute bit offsets. Member types
// keep what libbpf's field matching looks at: integers, floats and enums
// (with their values) are copied, pointers become one pointer to void,
// arrays keep their length and a by-value struct or union keeps its name and
// size, and the members the object declares inside it.
//
// It refuses, so the caller can fall back to the full BTF, what it cannot
// answer exactly: bitfields, and CO-RE relocations other than field ones on
// a named struct or union (type and enum relocations would find too little).
// Only little-endian BTF is read.
func MinimalBTF(kernelBTF []byte, object []byte) ([]byte, error) {
	return MinimalBTFModule(kernelBTF, nil, object)
}

// MinimalBTFModule is MinimalBTF over the kernel's BTF and the split BTF of
// one of its modules (/sys/kernel/btf/MODULE, whose type ids and strings
// continue the kernel's; nil for none), so that relocations against the
// module's types (overlayfs built as a module) find them too. As libbpf
// does, an object type the kernel has is not looked for in the module.
func MinimalBTFModule(kernelBTF, module []byte, object []byte) ([]byte, error) {
	local, ext, err := objectBTF(object)
	if err != nil {
		return nil, err
	}
	return minimalBTF(kernelBTF, module, local, ext)
}

// objectBTF returns the .BTF and .BTF.ext sections of a BPF ELF object.
func objectBTF(object []byte) (btf, ext []byte, err error) {
	f, err := elf.NewFile(bytes.NewReader(object))
	if err != nil {
		return nil, nil, fmt.Errorf("BPF object: %w", err)
	}
	defer f.Close()
	if f.ByteOrder != binary.LittleEndian {
		return nil, nil, errors.New("BPF object: not little-endian")
	}
	s := f.Section(".BTF")
	if s == nil {
		return nil, nil, errors.New("BPF object: no .BTF section")
	}
	if btf, err = s.Data(); err != nil {
		return nil, nil, fmt.Errorf("BPF object: read .BTF: %w", err)
	}
	if s := f.Section(".BTF.ext"); s != nil {
		if ext, err = s.Data(); err != nil {
			return nil, nil, fmt.Errorf("BPF object: read .BTF.ext: %w", err)
		}
	}
	return btf, ext, nil
}

// BTF kinds (include/uapi/linux/btf.h).
const (
	kindInt       = 1
	kindPtr       = 2
	kindArray     = 3
	kindStruct    = 4
	kindUnion     = 5
	kindEnum      = 6
	kindFwd       = 7
	kindTypedef   = 8
	kindVolatile  = 9
	kindConst     = 10
	kindRestrict  = 11
	kindFunc      = 12
	kindFuncProto = 13
	kindVar       = 14
	kindDatasec   = 15
	kindFloat     = 16
	kindDeclTag   = 17
	kindTypeTag   = 18
	kindEnum64    = 19

	btfMagic   = 0xeb9f
	btfHdrLen  = 24
	btfTypeLen = 12
	// maxDepth bounds every walk along type references: modifier chains,
	// nested arrays and anonymous members (libbpf allows 32 and 64).
	maxDepth = 64
)

var le = binary.LittleEndian

// kindFixed and kindPerVlen give the bytes after a type's 12-byte header:
// kindFixed + vlen*kindPerVlen. kindKnown marks the kinds defined so far.
var (
	kindFixed   = [32]uint8{kindInt: 4, kindArray: 12, kindVar: 4, kindDeclTag: 4}
	kindPerVlen = [32]uint8{kindStruct: 12, kindUnion: 12, kindEnum: 8,
		kindFuncProto: 8, kindDatasec: 12, kindEnum64: 12}
	kindKnown = [32]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true,
		7: true, 8: true, 9: true, 10: true, 11: true, 12: true, 13: true,
		14: true, 15: true, 16: true, 17: true, 18: true, 19: true}
)

// btfData is parsed BTF: the type and string sections and where each type
// starts. Every type's record lies wholly inside types and its name inside
// strs; the ids it refers to are checked where they are followed. Split BTF
// (a module's) has a base: ids below first and string offsets below strOff
// are the base's.
type btfData struct {
	what   string // "kernel BTF" or "object BTF", for errors
	types  []byte
	strs   []byte
	n      uint32   // types, void and the base's included: ids are below n
	chk    []uint32 // chk[i]: start of type id first+i<<chkShift in types
	base   *btfData
	first  uint32 // the first id of types (1 without a base)
	strOff uint32 // the offset of strs (0 without a base)
}

// One type in 1<<chkShift has its start recorded; a lookup walks at most
// that many from there. Recording all would cost a 0.5 MB array for the
// kernel, whose first use costs more in page faults than all the walks.
const chkShift = 4

// candidate is a kernel struct or union (kid) to emit for the object's
// struct or union lid.
type candidate struct{ kid, lid uint32 }

// matcher finds kernel structs and unions named like the object's during
// the one pass over the kernel's types.
type matcher struct {
	first  [256]bool // first bytes of the wanted names
	wanted []wantedType
	found  []candidate
}

type wantedType struct {
	ess          []byte // essential name: without a ___flavor suffix
	prefix, mask uint32 // its first bytes (up to 4), to skip most names fast
	kind         uint32
	lid          uint32
}

// parseBTF checks the header and walks the type section once, recording
// where each type starts. With m set, it also collects the structs, unions
// and enums m looks for. With base set, b is split BTF on top of it.
func parseBTF(what string, b []byte, base *btfData, m *matcher) (btfData, error) {
	d := btfData{what: what, base: base, first: 1}
	if base != nil {
		d.first, d.strOff = base.n, base.strOff+uint32(len(base.strs))
	}
	if len(b) < btfHdrLen {
		return d, fmt.Errorf("%s: %d bytes, shorter than a header", what, len(b))
	}
	switch le.Uint16(b) {
	case btfMagic:
	case 0x9feb:
		return d, fmt.Errorf("%s: big-endian, not supported", what)
	default:
		return d, fmt.Errorf("%s: bad magic %#04x", what, le.Uint16(b))
	}
	if b[2] != 1 {
		return d, fmt.Errorf("%s: version %d, want 1", what, b[2])
	}
	hdrLen := uint64(le.Uint32(b[4:]))
	typeOff, typeLen := uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[12:]))
	strOff, strLen := uint64(le.Uint32(b[16:])), uint64(le.Uint32(b[20:]))
	if hdrLen < btfHdrLen || hdrLen > uint64(len(b)) {
		return d, fmt.Errorf("%s: header length %d out of range", what, hdrLen)
	}
	rest := b[hdrLen:]
	if typeOff+typeLen > uint64(len(rest)) || strOff+strLen > uint64(len(rest)) {
		return d, fmt.Errorf("%s: sections past the end (types %d+%d, strings %d+%d, %d bytes)",
			what, typeOff, typeLen, strOff, strLen, len(rest))
	}
	if typeOff%4 != 0 || typeOff+typeLen > strOff {
		return d, fmt.Errorf("%s: bad section layout (types %d+%d, strings %d+%d)",
			what, typeOff, typeLen, strOff, strLen)
	}
	d.types = rest[typeOff : typeOff+typeLen]
	d.strs = rest[strOff : strOff+strLen]
	// Strings are NUL-terminated from any offset: the section must end so
	// (and start with the empty name, unless it continues a base's).
	if len(d.strs) == 0 && base == nil || len(d.strs) > 0 && (base == nil && d.strs[0] != 0 || d.strs[len(d.strs)-1] != 0) {
		return d, fmt.Errorf("%s: bad string section", what)
	}

	types, nstr := d.types, d.strOff+uint32(len(d.strs))
	// Kernel types take 25 bytes on average, at least 12: rarely grown.
	chk := make([]uint32, 0, len(types)/(16<<chkShift)+1)
	id := d.first
	for p := 0; p < len(types); id++ {
		if len(types)-p < btfTypeLen {
			return d, fmt.Errorf("%s: type %d truncated", what, id)
		}
		t := types[p : p+btfTypeLen]
		nameOff, info := le.Uint32(t), le.Uint32(t[4:])
		kind := info >> 24 & 0x1f
		if !kindKnown[kind] {
			return d, fmt.Errorf("%s: type %d has unknown kind %d", what, id, kind)
		}
		if nameOff >= nstr {
			return d, fmt.Errorf("%s: type %d name offset %d out of range", what, id, nameOff)
		}
		size := btfTypeLen + int(kindFixed[kind]) + int(kindPerVlen[kind])*int(info&0xffff)
		if len(types)-p < size {
			return d, fmt.Errorf("%s: type %d truncated", what, id)
		}
		if m != nil && (kind == kindStruct || kind == kindUnion || kind == kindEnum || kind == kindEnum64) && nameOff != 0 {
			if name, err := d.str(nameOff); err == nil && len(name) > 0 && m.first[name[0]] {
				m.match(name, kind, id)
			}
		}
		if (id-d.first)&(1<<chkShift-1) == 0 {
			chk = append(chk, uint32(p))
		}
		p += size
	}
	d.n, d.chk = id, chk
	return d, nil
}

// match records kernel type kid (named name) for every wanted type of its
// kind (any enum for an enum, as libbpf) and essential name.
func (m *matcher) match(name []byte, kind, kid uint32) {
	var prefix uint32
	if len(name) >= 4 {
		prefix = le.Uint32(name)
	} else {
		for i, c := range name {
			prefix |= uint32(c) << (8 * i)
		}
	}
	for _, w := range m.wanted {
		if prefix&w.mask != w.prefix || kindClass(w.kind) != kindClass(kind) || len(name) < len(w.ess) || !bytes.Equal(name[:len(w.ess)], w.ess) {
			continue
		}
		if len(name) > len(w.ess) {
			if name[len(w.ess)] != '_' || essentialLen(name) != len(w.ess) {
				continue
			}
		}
		m.found = append(m.found, candidate{kid, w.lid})
	}
}

// essentialLen is how much of a name CO-RE compares: all but a trailing
// ___flavor (libbpf's bpf_core_essential_name_len).
func essentialLen(name []byte) int {
	for i := len(name) - 5; i >= 0; i-- {
		if name[i] != '_' && name[i+1] == '_' && name[i+2] == '_' && name[i+3] == '_' && name[i+4] != '_' {
			return i + 1
		}
	}
	return len(name)
}

// cstr is the string at off, which the caller checked is in range.
func cstr(strs []byte, off uint32) []byte {
	s := strs[off:]
	return s[:bytes.IndexByte(s, 0)]
}

// typ is the header of one type.
type typ struct {
	name, info, sizeType uint32
	data                 []byte // what follows the header
}

func (t typ) kind() uint32     { return t.info >> 24 & 0x1f }
func (t typ) vlen() int        { return int(t.info & 0xffff) }
func (t typ) kindFlag() bool   { return t.info>>31 != 0 }
func (t typ) composite() bool  { return t.kind() == kindStruct || t.kind() == kindUnion }
func (t typ) u32(i int) uint32 { return le.Uint32(t.data[4*i:]) }

// kindClass is what CO-RE compares of a kind: either enum matches either.
func kindClass(kind uint32) uint32 {
	if kind == kindEnum64 {
		return kindEnum
	}
	return kind
}

func (d *btfData) typ(id uint32) (typ, error) {
	if d.base != nil && id < d.first {
		return d.base.typ(id)
	}
	if id == 0 || id >= d.n {
		return typ{}, fmt.Errorf("%s: type id %d out of range", d.what, id)
	}
	// parseBTF checked every record lies within types.
	off := d.chk[(id-d.first)>>chkShift]
	for i := (id - d.first) & (1<<chkShift - 1); ; i-- {
		info := le.Uint32(d.types[off+4:])
		size := btfTypeLen + uint32(kindFixed[info>>24&0x1f]) + uint32(kindPerVlen[info>>24&0x1f])*(info&0xffff)
		if i == 0 {
			b := d.types[off : off+size]
			return typ{le.Uint32(b), info, le.Uint32(b[8:]), b[btfTypeLen:]}, nil
		}
		off += size
	}
}

func (d *btfData) str(off uint32) ([]byte, error) {
	if d.base != nil && off < d.strOff {
		return d.base.str(off)
	}
	if off-d.strOff >= uint32(len(d.strs)) {
		return nil, fmt.Errorf("%s: string offset %d out of range", d.what, off)
	}
	return cstr(d.strs, off-d.strOff), nil
}

// skipMods follows typedefs and qualifiers to the type that has a layout,
// as libbpf's skip_mods_and_typedefs does.
func (d *btfData) skipMods(id uint32) (uint32, typ, error) {
	for range maxDepth {
		t, err := d.typ(id)
		if err != nil {
			return 0, t, err
		}
		switch t.kind() {
		case kindTypedef, kindVolatile, kindConst, kindRestrict, kindTypeTag:
			id = t.sizeType
		default:
			return id, t, nil
		}
	}
	return 0, typ{}, fmt.Errorf("%s: type %d: modifiers nested too deep", d.what, id)
}

// minimizer builds the output BTF.
type minimizer struct {
	k, l  btfData
	types []outType
	extra []uint32 // the kind data of all types, each type's contiguous
	strs  []byte
	names map[uint32]uint32 // kernel string offset -> output offset
	memo  []memo
	// flavors lists, for each named kernel type the object asks about, the
	// object types that match it (struct dentry and struct dentry___old):
	// one output type holds what all of them ask, as the kernel type would.
	flavors map[uint32][]uint32
	void    uint32 // the one PTR to void, once made
	index   uint32 // the one INT index type of arrays, once made
	work    int    // member visits left: bounds crafted input
}

type outType struct {
	name, info, sizeType uint32
	start, n             int // extra[start:start+n]
}

// memo maps a kernel type, converted for an object type (0: none), to its
// output type.
type memo struct{ kid, lid, out uint32 }

// want is a named member of an object struct or union.
type want struct{ name, typ uint32 }

// member is a kernel member found for a wanted one.
type member struct {
	typ     uint32
	bitOff  uint64
	name    uint32 // in the kernel's strings
	flex    bool   // a zero-length array last in its (possibly anonymous) struct
	zeroLen bool   // a zero-length array
	ltyp    uint32 // the object member's type
	outType uint32
}

const arrayIndexName = "__ARRAY_SIZE_TYPE__"

// allFlavors is the memo key of a kernel type made for all its flavors.
const allFlavors = ^uint32(0)

func minimalBTF(kernelBTF, module, localBTF, ext []byte) ([]byte, error) {
	l, err := parseBTF("object BTF", localBTF, nil, nil)
	if err != nil {
		return nil, err
	}
	enums, err := checkRelocs(&l, ext)
	if err != nil {
		return nil, err
	}
	var m matcher
	for id := uint32(1); id < l.n; id++ {
		t, _ := l.typ(id)
		if !t.composite() && !enums[id] || t.name == 0 {
			continue
		}
		name := cstr(l.strs, t.name)
		ess := name[:essentialLen(name)]
		if len(ess) == 0 {
			continue
		}
		m.first[ess[0]] = true
		w := wantedType{ess: ess, kind: t.kind(), lid: id}
		for i, c := range ess[:min(len(ess), 4)] {
			w.prefix |= uint32(c) << (8 * i)
			w.mask |= 0xff << (8 * i)
		}
		m.wanted = append(m.wanted, w)
	}
	k, err := parseBTF("kernel BTF", kernelBTF, nil, &m)
	if err != nil {
		return nil, err
	}
	if module != nil {
		inKernel := map[uint32]bool{}
		for _, c := range m.found {
			inKernel[c.lid] = true
		}
		n := len(m.found)
		base := k
		if k, err = parseBTF("module BTF", module, &base, &m); err != nil {
			return nil, err
		}
		kept := m.found[:n]
		for _, c := range m.found[n:] {
			if !inKernel[c.lid] {
				kept = append(kept, c)
			}
		}
		m.found = kept
	}
	mz := &minimizer{k: k, l: l, strs: []byte{0}, names: map[uint32]uint32{}, work: 1 << 20, flavors: map[uint32][]uint32{}}
	for _, c := range m.found {
		mz.flavors[c.kid] = append(mz.flavors[c.kid], c.lid)
	}
	for _, c := range m.found {
		kt, err := k.typ(c.kid)
		if err != nil {
			return nil, err
		}
		if kindClass(kt.kind()) == kindEnum {
			// Copied whole, values and all.
			if _, err := mz.memberType(c.kid, 0, 0); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := mz.composite(c.kid, c.lid, 0); err != nil {
			return nil, err
		}
	}
	return mz.encode(), nil
}

// checkRelocs refuses objects with CO-RE relocations the minimal BTF cannot
// answer as the full one would: only field relocations rooted at a named
// struct or union, enum value relocations on a named enum (returned, to be
// copied whole) and local type ids are kept exact.
func checkRelocs(l *btfData, ext []byte) (map[uint32]bool, error) {
	enums := map[uint32]bool{}
	if ext == nil {
		return enums, nil
	}
	if len(ext) < 8 || le.Uint16(ext) != btfMagic || ext[2] != 1 {
		return nil, errors.New("object .BTF.ext: bad header")
	}
	hdrLen := uint64(le.Uint32(ext[4:]))
	if hdrLen < 24 || hdrLen > uint64(len(ext)) {
		return nil, fmt.Errorf("object .BTF.ext: header length %d out of range", hdrLen)
	}
	if hdrLen < 32 {
		return enums, nil // no CO-RE relocations
	}
	off, n := uint64(le.Uint32(ext[24:])), uint64(le.Uint32(ext[28:]))
	if hdrLen+off+n > uint64(len(ext)) {
		return nil, errors.New("object .BTF.ext: CO-RE relocations past the end")
	}
	b := ext[hdrLen+off : hdrLen+off+n]
	if len(b) == 0 {
		return enums, nil
	}
	if len(b) < 4 {
		return nil, errors.New("object .BTF.ext: CO-RE relocations truncated")
	}
	recSize := uint64(le.Uint32(b))
	if recSize < 16 {
		return nil, fmt.Errorf("object .BTF.ext: CO-RE record size %d", recSize)
	}
	for b = b[4:]; len(b) > 0; {
		if len(b) < 8 {
			return nil, errors.New("object .BTF.ext: CO-RE relocations truncated")
		}
		num := uint64(le.Uint32(b[4:]))
		b = b[8:]
		if num*recSize > uint64(len(b)) {
			return nil, errors.New("object .BTF.ext: CO-RE relocations truncated")
		}
		for i := uint64(0); i < num; i++ {
			r := b[i*recSize:]
			id, kind := le.Uint32(r[4:]), le.Uint32(r[12:])
			switch {
			case kind == 6: // BPF_CORE_TYPE_ID_LOCAL: the object's own id
			case kind <= 5: // BPF_CORE_FIELD_*
				t, err := l.typ(id)
				if err != nil {
					return nil, err
				}
				if !t.composite() || t.name == 0 {
					return nil, fmt.Errorf("object: CO-RE field relocation on type %d, not a named struct or union", id)
				}
			case kind == 10 || kind == 11: // BPF_CORE_ENUMVAL_EXISTS, BPF_CORE_ENUMVAL_VALUE
				t, err := l.typ(id)
				if err != nil {
					return nil, err
				}
				if kindClass(t.kind()) != kindEnum || t.name == 0 {
					return nil, fmt.Errorf("object: CO-RE enum value relocation on type %d, not a named enum", id)
				}
				enums[id] = true
			default:
				return nil, fmt.Errorf("object: CO-RE relocation kind %d is not a field or enum value relocation", kind)
			}
		}
		b = b[num*recSize:]
	}
	return enums, nil
}

func (mz *minimizer) name(kernelOff uint32) uint32 {
	if kernelOff == 0 {
		return 0
	}
	if off, ok := mz.names[kernelOff]; ok {
		return off
	}
	off := uint32(len(mz.strs))
	name, _ := mz.k.str(kernelOff) // checked where the offset was read
	mz.strs = append(append(mz.strs, name...), 0)
	mz.names[kernelOff] = off
	return off
}

// add appends a type whose kind data is extra and returns its id.
func (mz *minimizer) add(name, info, sizeType uint32, extra ...uint32) uint32 {
	mz.types = append(mz.types, outType{name, info, sizeType, len(mz.extra), len(extra)})
	mz.extra = append(mz.extra, extra...)
	return uint32(len(mz.types))
}

func (mz *minimizer) lookup(kid, lid uint32) (uint32, bool) {
	for _, e := range mz.memo {
		if e.kid == kid && e.lid == lid {
			return e.out, true
		}
	}
	return 0, false
}

// composite converts kernel struct or union kid with the members object
// type lid declares (none for lid 0).
func (mz *minimizer) composite(kid, lid uint32, depth int) (uint32, error) {
	// A named kernel type the object asks about directly is made once, for
	// all its flavors; any other once for each object type.
	key, lids := lid, []uint32{lid}
	if fl, ok := mz.flavors[kid]; ok {
		key, lids = allFlavors, fl
	}
	if out, ok := mz.lookup(kid, key); ok {
		return out, nil
	}
	kt, err := mz.k.typ(kid)
	if err != nil {
		return 0, err
	}
	kname, err := mz.k.str(kt.name)
	if err != nil {
		return 0, err
	}
	// The id is taken now, members filled in last: a type may refer to itself.
	mz.types = append(mz.types, outType{mz.name(kt.name), kt.kind() << 24, kt.sizeType, 0, 0})
	out := uint32(len(mz.types))
	mz.memo = append(mz.memo, memo{kid, key, out})
	var wants []want
	for _, l := range lids {
		if l == 0 {
			continue
		}
		if wants, err = mz.localMembers(l, wants, 0); err != nil {
			return 0, err
		}
	}
	var ms []member
	for _, w := range wants {
		lname, _ := mz.l.str(w.name) // checked by localMembers
		m, ok, err := mz.findMember(kid, kname, lname, 0, 0)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue // libbpf fails this relocation as with the full BTF
		}
		m.ltyp = w.typ
		ms = append(ms, m)
	}
	// In the kernel's order, which a reader of the output expects.
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].bitOff < ms[j-1].bitOff; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	// libbpf lets an index run past a zero-length array only if it is the
	// last member (is_flex_arr): keep that true and false as in the kernel.
	flex := -1
	for i, m := range ms {
		if m.flex {
			if flex >= 0 {
				return 0, fmt.Errorf("kernel BTF: %s: two flexible arrays cannot be flattened into one struct", kname)
			}
			flex = i
		}
	}
	if flex >= 0 {
		f := ms[flex]
		copy(ms[flex:], ms[flex+1:])
		ms[len(ms)-1] = f
	}
	pad := len(ms) > 0 && ms[len(ms)-1].zeroLen && !ms[len(ms)-1].flex
	for i := range ms {
		if ms[i].outType, err = mz.memberType(ms[i].typ, ms[i].ltyp, depth+1); err != nil {
			mname, _ := mz.k.str(ms[i].name)
			return 0, fmt.Errorf("%s.%s: %w", kname, mname, err)
		}
	}
	start := len(mz.extra)
	for _, m := range ms {
		mz.extra = append(mz.extra, mz.name(m.name), m.outType, uint32(m.bitOff))
	}
	if pad {
		// An unnamed integer after it: libbpf looks into unnamed members
		// only for structs and unions, so it matches nothing.
		mz.extra = append(mz.extra, 0, mz.indexType(), uint32(ms[len(ms)-1].bitOff))
	}
	t := &mz.types[out-1]
	t.start, t.n = start, len(mz.extra)-start
	t.info |= uint32(t.n / 3)
	return out, nil
}

// localMembers lists the named members of object struct or union lid,
// those of its anonymous members included, each name once.
func (mz *minimizer) localMembers(lid uint32, dst []want, depth int) ([]want, error) {
	if depth > maxDepth {
		return nil, errors.New("object BTF: anonymous members nested too deep")
	}
	lt, err := mz.l.typ(lid)
	if err != nil {
		return nil, err
	}
	for i := range lt.vlen() {
		if mz.work--; mz.work < 0 {
			return nil, errors.New("object BTF: too many members")
		}
		name, typ := lt.u32(3*i), lt.u32(3*i+1)
		s, err := mz.l.str(name)
		if err != nil {
			return nil, err
		}
		if len(s) == 0 {
			id, t, err := mz.l.skipMods(typ)
			if err != nil {
				return nil, err
			}
			if t.composite() {
				if dst, err = mz.localMembers(id, dst, depth+1); err != nil {
					return nil, err
				}
			}
			continue
		}
		dup := false
		for _, w := range dst {
			if bytes.Equal(cstr(mz.l.strs, w.name), s) {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, want{name, typ})
		}
	}
	return dst, nil
}

// findMember looks for member name in kernel struct or union kid as libbpf's
// bpf_core_match_member does: in order, descending into unnamed struct and
// union members; the first of that name is the one. base is kid's bit offset
// in the type being flattened.
func (mz *minimizer) findMember(kid uint32, kname, name []byte, base uint64, depth int) (member, bool, error) {
	if depth > maxDepth {
		return member{}, false, fmt.Errorf("kernel BTF: %s: anonymous members nested too deep", kname)
	}
	kt, err := mz.k.typ(kid)
	if err != nil {
		return member{}, false, err
	}
	n := kt.vlen()
	for i := range n {
		if mz.work--; mz.work < 0 {
			return member{}, false, errors.New("kernel BTF: too many members")
		}
		mname, mtyp, off := kt.u32(3*i), kt.u32(3*i+1), kt.u32(3*i+2)
		bitfield := uint32(0)
		if kt.kindFlag() {
			bitfield, off = off>>24, off&0xffffff
		}
		s, err := mz.k.str(mname)
		if err != nil {
			return member{}, false, err
		}
		if len(s) == 0 {
			id, t, err := mz.k.skipMods(mtyp)
			if err != nil {
				return member{}, false, err
			}
			if !t.composite() {
				continue
			}
			m, ok, err := mz.findMember(id, kname, name, base+uint64(off), depth+1)
			if ok || err != nil {
				return m, ok, err
			}
			continue
		}
		if !bytes.Equal(s, name) {
			continue
		}
		m := member{typ: mtyp, bitOff: base + uint64(off), name: mname}
		_, t, err := mz.k.skipMods(mtyp)
		if err != nil {
			return member{}, false, err
		}
		// Old-style bitfields are integers narrower than their size.
		if bitfield != 0 || off%8 != 0 ||
			t.kind() == kindInt && (t.u32(0)&0xff != 8*t.sizeType || t.u32(0)>>16&0xff != 0) {
			return member{}, false, fmt.Errorf("kernel BTF: %s.%s is a bitfield, not supported", kname, name)
		}
		if m.bitOff > 0xffffffff {
			return member{}, false, fmt.Errorf("kernel BTF: %s.%s: bit offset %d out of range", kname, name, m.bitOff)
		}
		if t.kind() == kindArray && t.u32(2) == 0 {
			m.zeroLen, m.flex = true, i == n-1
		}
		return m, true, nil
	}
	return member{}, false, nil
}

// memberType converts the type of a kernel member (kid) for the object's
// member type lid (0 if none).
func (mz *minimizer) memberType(kid, lid uint32, depth int) (uint32, error) {
	if depth > maxDepth {
		return 0, errors.New("types nested too deep")
	}
	kid, kt, err := mz.k.skipMods(kid)
	if err != nil {
		return 0, err
	}
	var lt typ
	if lid != 0 {
		if lid, lt, err = mz.l.skipMods(lid); err != nil {
			return 0, err
		}
	}
	switch kt.kind() {
	case kindPtr:
		// CO-RE checks only that both sides are pointers.
		if mz.void == 0 {
			mz.void = mz.add(0, kindPtr<<24, 0)
		}
		return mz.void, nil
	case kindStruct, kindUnion:
		if !lt.composite() {
			lid = 0
		}
		return mz.composite(kid, lid, depth)
	case kindArray:
		elem := uint32(0)
		if lid != 0 && lt.kind() == kindArray {
			elem = lt.u32(0)
		}
		e, err := mz.memberType(kt.u32(0), elem, depth+1)
		if err != nil {
			return 0, err
		}
		return mz.add(0, kindArray<<24, 0, e, mz.indexType(), kt.u32(2)), nil
	case kindInt, kindFloat, kindEnum, kindEnum64:
		if out, ok := mz.lookup(kid, 0); ok {
			return out, nil
		}
		// Copied whole, an enum with its values: whatever libbpf compares of
		// the member's type is there, for a few bytes more.
		extra := make([]uint32, len(kt.data)/4)
		for i := range extra {
			extra[i] = kt.u32(i)
		}
		step := 0 // words per enum value, its name first
		switch kt.kind() {
		case kindEnum:
			step = 2
		case kindEnum64:
			step = 3
		}
		if step != 0 {
			for i := 0; i < len(extra); i += step {
				if _, err := mz.k.str(extra[i]); err != nil {
					return 0, err
				}
				extra[i] = mz.name(extra[i])
			}
		}
		out := mz.add(mz.name(kt.name), kt.info, kt.sizeType, extra...)
		mz.memo = append(mz.memo, memo{kid, 0, out})
		return out, nil
	default:
		return 0, fmt.Errorf("kernel BTF: member type %d has kind %d, not supported", kid, kt.kind())
	}
}

// indexType is the integer type all arrays are indexed by, as clang emits.
func (mz *minimizer) indexType() uint32 {
	if mz.index == 0 {
		off := uint32(len(mz.strs))
		mz.strs = append(append(mz.strs, arrayIndexName...), 0)
		mz.index = mz.add(off, kindInt<<24, 4, 32)
	}
	return mz.index
}

func (mz *minimizer) encode() []byte {
	typeLen := 0
	for _, t := range mz.types {
		typeLen += btfTypeLen + 4*t.n
	}
	b := make([]byte, btfHdrLen, btfHdrLen+typeLen+len(mz.strs))
	le.PutUint16(b, btfMagic)
	b[2] = 1
	le.PutUint32(b[4:], btfHdrLen)
	le.PutUint32(b[8:], 0)
	le.PutUint32(b[12:], uint32(typeLen))
	le.PutUint32(b[16:], uint32(typeLen))
	le.PutUint32(b[20:], uint32(len(mz.strs)))
	for _, t := range mz.types {
		b = le.AppendUint32(b, t.name)
		b = le.AppendUint32(b, t.info)
		b = le.AppendUint32(b, t.sizeType)
		for _, v := range mz.extra[t.start : t.start+t.n] {
			b = le.AppendUint32(b, v)
		}
	}
	return append(b, mz.strs...)
}
