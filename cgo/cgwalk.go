//go:build cgo

package cgo

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unsafe"

	"github.com/aquasecurity/libbpfgo"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// CgroupWalker runs the cgroup walk (walk_cg with bpf_loop, else
// walk_cg_bounded): the superblock walk in which every cached page is
// counted for the memory cgroup it is charged to, in runs that resume from
// a checked cursor. Not safe for concurrent use.
type CgroupWalker struct {
	Module
	walkParams *libbpfgo.BPFMap
	walk       *libbpfgo.BPFMap
	cursor     *libbpfgo.BPFMap
	state      *libbpfgo.BPFMap
	sums       *libbpfgo.BPFMap
	allowed    []uint64 // the cgroups Allow named
	records    []byte   // walk_records, mapped read-only
	splits     []byte   // cg_splits, mapped read-only
	// Between, if set, is called between two runs of a walk (tests).
	Between func(bpf.Cursor)
}

// LoadCgroupWalker loads the cgroup walk of WalkMethod(opts.Method) alone.
func LoadCgroupWalker(opts Options) (_ *CgroupWalker, err error) {
	method := WalkMethod(opts.Method)
	if method == bpf.MethodLoop && !helperLoopSupported() {
		return nil, &LoadError{Err: bpf.ErrNoLoop}
	}
	w := &CgroupWalker{Module: Module{method: method}}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	use := progCgWalkBounded
	if method == bpf.MethodLoop {
		use = progCgWalk
	}
	if err := w.open(opts, use, map[string]uint32{mapWalkRecords: bpf.WalkCap, mapCgSplits: bpf.WalkCap}); err != nil {
		return nil, err
	}
	for _, m := range []struct {
		name string
		dst  **libbpfgo.BPFMap
	}{{mapWalkParams, &w.walkParams}, {mapWalk, &w.walk}, {mapWalkCursor, &w.cursor}, {mapCgState, &w.state},
		{mapCgSums, &w.sums}} {
		if *m.dst, err = w.bpfMap(m.name); err != nil {
			return nil, err
		}
	}
	for _, m := range []struct {
		name string
		size int
		dst  *[]byte
	}{{mapWalkRecords, bpf.WalkCap * bpf.InodeSize, &w.records}, {mapCgSplits, bpf.WalkCap * bpf.CgSplitSize, &w.splits}} {
		bm, err := w.bpfMap(m.name)
		if err != nil {
			return nil, err
		}
		if *m.dst, err = unix.Mmap(bm.FileDescriptor(), 0, m.size, unix.PROT_READ, unix.MAP_SHARED); err != nil {
			return nil, &LoadError{Err: fmt.Errorf("map %s: %w", m.name, err)}
		}
	}
	return w, nil
}

// Close unmaps the records and unloads everything.
func (w *CgroupWalker) Close() {
	for _, b := range []*[]byte{&w.records, &w.splits} {
		if *b != nil {
			unix.Munmap(*b)
			*b = nil
		}
	}
	w.Module.Close()
}

// Allow makes ids the cgroups whose pages count in walks with
// bpf.WalkFilter, in place of those before; each walk enters them in
// cg_sums, marked allowed.
func (w *CgroupWalker) Allow(ids []uint64) error {
	if len(ids) > bpf.CgSums/2 {
		return fmt.Errorf("%d cgroups to count, at most %d", len(ids), bpf.CgSums/2)
	}
	w.allowed = slices.Clone(ids)
	return nil
}

// clearHash deletes every key of a hash map keyed by a u64.
func clearHash(m *libbpfgo.BPFMap) error {
	var keys []uint64
	it := m.Iterator()
	for it.Next() {
		keys = append(keys, binary.LittleEndian.Uint64(it.Key()))
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range keys {
		if err := m.DeleteKey(unsafe.Pointer(&k)); err != nil {
			return err
		}
	}
	return nil
}

// WalkCgroups walks the superblock of p.FD in as many runs as it takes,
// calls each with every inode returned and its split, and returns the
// walk's sums with each cgroup's pages.
func (w *CgroupWalker) WalkCgroups(p bpf.WalkParams, each func(bpf.Inode, bpf.CgSplit) error) (bpf.Walk, bpf.CgWalk, error) {
	var zero uint32
	key := unsafe.Pointer(&zero)
	var cw bpf.CgWalk
	if err := clearHash(w.sums); err != nil {
		return bpf.Walk{}, cw, fmt.Errorf("clear %s: %w", mapCgSums, err)
	}
	if p.Flags&bpf.WalkFilter != 0 {
		allowed := bpf.CgSum{Allowed: true}.Encode()
		for _, id := range w.allowed {
			if err := w.sums.Update(unsafe.Pointer(&id), unsafe.Pointer(&allowed[0])); err != nil {
				return bpf.Walk{}, cw, fmt.Errorf("write %s: %w", mapCgSums, err)
			}
		}
	}
	for _, reset := range []struct {
		m    *libbpfgo.BPFMap
		b    []byte
		what string
	}{{w.walk, bpf.UnsetWalk(), "walk map"}, {w.cursor, make([]byte, bpf.CursorSize), "walk cursor"},
		{w.state, make([]byte, bpf.CgStateSize), "cgroup walk state"}} {
		if err := reset.m.Update(key, unsafe.Pointer(&reset.b[0])); err != nil {
			return bpf.Walk{}, cw, fmt.Errorf("reset %s: %w", reset.what, err)
		}
	}
	b, err := p.Encode()
	if err != nil {
		return bpf.Walk{}, cw, err
	}
	if err := w.walkParams.Update(key, unsafe.Pointer(&b[0])); err != nil {
		return bpf.Walk{}, cw, fmt.Errorf("write walk params: %w", err)
	}
	step := uint64(bpf.CgLoop)
	if w.method == bpf.MethodBounded {
		step = bpf.CgSteps
	}
	if p.RunSteps > 0 && uint64(p.RunSteps) < step {
		step = uint64(p.RunSteps)
	}
	// Every run but the last takes its steps, and the program stops the
	// walk at p.MaxSteps: more runs than that are a program gone wrong.
	limit := p.MaxSteps/step + 2
	var sum bpf.Walk
	for runs := uint64(1); ; runs++ {
		if runs > limit {
			return sum, cw, fmt.Errorf("cgroup walk: still going after %d runs of %d steps (at most %d steps)", limit, step, p.MaxSteps)
		}
		opts := libbpfgo.RunOpts{}
		if err := w.prog.Run(&opts); err != nil {
			return sum, cw, fmt.Errorf("test run: %w", err)
		}
		if opts.RetVal != 0 {
			return sum, cw, fmt.Errorf("test run: the cgroup walk returned %d (its maps or this task's fd table were unreadable)", opts.RetVal)
		}
		raw, err := w.walk.GetValue(key)
		if err != nil {
			return sum, cw, fmt.Errorf("read walk map: %w", err)
		}
		if sum, err = bpf.DecodeWalk(raw); err != nil {
			return sum, cw, err
		}
		raw, err = w.cursor.GetValue(key)
		if err != nil {
			return sum, cw, fmt.Errorf("read walk cursor: %w", err)
		}
		c, err := bpf.DecodeCursor(raw)
		if err != nil {
			return sum, cw, err
		}
		sum.Runs, sum.Refused = c.Runs, c.Refused
		if sum.Status != bpf.WalkMore {
			break
		}
		if w.Between != nil {
			w.Between(c)
		}
	}
	raw, err := w.state.GetValue(key)
	if err != nil {
		return sum, cw, fmt.Errorf("read cgroup walk state: %w", err)
	}
	if cw.CgState, err = bpf.DecodeCgState(raw); err != nil {
		return sum, cw, err
	}
	cw.Sums = map[uint64]uint64{}
	it := w.sums.Iterator()
	for it.Next() {
		k := it.Key()
		v, err := w.sums.GetValue(unsafe.Pointer(&k[0]))
		if err != nil {
			return sum, cw, fmt.Errorf("read %s: %w", mapCgSums, err)
		}
		cs, err := bpf.DecodeCgSum(v)
		if err != nil {
			return sum, cw, err
		}
		if cs.Pages > 0 {
			cw.Sums[binary.LittleEndian.Uint64(k)] = cs.Pages
		}
	}
	if err := it.Err(); err != nil {
		return sum, cw, fmt.Errorf("read %s: %w", mapCgSums, err)
	}
	if sum.Emitted > uint64(p.Cap) {
		return sum, cw, fmt.Errorf("cgroup walk: %d records returned, %d asked for", sum.Emitted, p.Cap)
	}
	for i := uint64(0); i < sum.Emitted; i++ {
		in, err := bpf.DecodeInode(w.records[i*bpf.InodeSize : (i+1)*bpf.InodeSize])
		if err != nil {
			return sum, cw, err
		}
		split, err := bpf.DecodeCgSplit(w.splits[i*bpf.CgSplitSize : (i+1)*bpf.CgSplitSize])
		if err != nil {
			return sum, cw, err
		}
		if err := each(in, split); err != nil {
			return sum, cw, err
		}
	}
	return sum, cw, nil
}
