//go:build cgo

package cgo

import (
	"fmt"
	"unsafe"

	"github.com/aquasecurity/libbpfgo"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// Walker runs the superblock walk: walk_sb in one test run with bpf_loop,
// or walk_sb_bounded in runs of at most bpf.RunSteps steps, each resuming
// from a cursor it checks first. Not safe for concurrent use.
type Walker struct {
	Module
	walkParams *libbpfgo.BPFMap
	walk       *libbpfgo.BPFMap
	cursor     *libbpfgo.BPFMap
	records    []byte // the records map, mapped read-only
	// Between, if set, is called between two runs of a bounded walk with
	// the cursor the first left: tests change the inode list there.
	Between func(bpf.Cursor)
}

// WalkMethod is the walk LoadWalker picks for method ("" for the
// automatic choice): bpf_loop's where the kernel has the helper, else the
// bounded one. The attached query method has no walk of its own: top
// walks as the automatic choice says.
func WalkMethod(method string) string {
	if method == bpf.MethodLoop || method == bpf.MethodBounded {
		return method
	}
	if helperLoopSupported() {
		return bpf.MethodLoop
	}
	return bpf.MethodBounded
}

// LoadWalker loads the walk program of WalkMethod(opts.Method) alone.
func LoadWalker(opts Options) (_ *Walker, err error) {
	method := WalkMethod(opts.Method)
	if method == bpf.MethodLoop && !helperLoopSupported() {
		return nil, &LoadError{Err: bpf.ErrNoLoop}
	}
	w := &Walker{Module: Module{method: method}}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if err := w.open(opts, bpf.WalkPrograms[method], bpf.WalkCap); err != nil {
		return nil, err
	}
	if w.walkParams, err = w.bpfMap(mapWalkParams); err != nil {
		return nil, err
	}
	if w.walk, err = w.bpfMap(mapWalk); err != nil {
		return nil, err
	}
	if w.cursor, err = w.bpfMap(mapWalkCursor); err != nil {
		return nil, err
	}
	recs, err := w.bpfMap(mapWalkRecords)
	if err != nil {
		return nil, err
	}
	// Mapped, so a run's records are read in place rather than copied.
	size := bpf.WalkCap * bpf.InodeSize
	if w.records, err = unix.Mmap(recs.FileDescriptor(), 0, size, unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return nil, &LoadError{Err: fmt.Errorf("map %s: %w", mapWalkRecords, err)}
	}
	return w, nil
}

// Close unmaps the records and unloads everything.
func (w *Walker) Close() {
	if w.records != nil {
		unix.Munmap(w.records)
		w.records = nil
	}
	w.Module.Close()
}

// Walk walks the superblock of p.FD, in one run or (bounded) as many as
// it takes, and calls each with every record returned; the records' memory
// is reused by the next walk.
func (w *Walker) Walk(p bpf.WalkParams, each func(bpf.Inode) error) (bpf.Walk, error) {
	var zero uint32
	key := unsafe.Pointer(&zero)
	unset := bpf.UnsetWalk()
	if err := w.walk.Update(key, unsafe.Pointer(&unset[0])); err != nil {
		return bpf.Walk{}, fmt.Errorf("reset walk map: %w", err)
	}
	b, err := p.Encode()
	if err != nil {
		return bpf.Walk{}, err
	}
	if err := w.walkParams.Update(key, unsafe.Pointer(&b[0])); err != nil {
		return bpf.Walk{}, fmt.Errorf("write walk params: %w", err)
	}
	bounded := w.method == bpf.MethodBounded
	if bounded {
		// A cursor of zeros: the first run starts at the list head.
		fresh := make([]byte, bpf.CursorSize)
		if err := w.cursor.Update(key, unsafe.Pointer(&fresh[0])); err != nil {
			return bpf.Walk{}, fmt.Errorf("reset walk cursor: %w", err)
		}
	}
	// Every run but the last takes its steps, and the program stops the
	// walk at p.MaxSteps: more runs than that are a program gone wrong.
	step := uint64(bpf.RunSteps)
	if p.RunSteps > 0 && p.RunSteps < bpf.RunSteps {
		step = uint64(p.RunSteps)
	}
	limit := p.MaxSteps/step + 2
	var sum bpf.Walk
	for runs := uint64(1); ; runs++ {
		if runs > limit {
			return sum, fmt.Errorf("walk: still going after %d runs of %d steps (at most %d steps)", limit, step, p.MaxSteps)
		}
		if sum, err = w.runWalk(key); err != nil {
			return sum, err
		}
		if !bounded {
			sum.Runs = 1
			break
		}
		c, err := w.readCursor(key)
		if err != nil {
			return sum, err
		}
		sum.Runs, sum.Refused = c.Runs, c.Refused
		if sum.Status != bpf.WalkMore {
			break
		}
		if w.Between != nil {
			w.Between(c)
		}
	}
	if sum.Emitted > uint64(p.Cap) {
		return sum, fmt.Errorf("walk: %d records returned, %d asked for", sum.Emitted, p.Cap)
	}
	for i := uint64(0); i < sum.Emitted; i++ {
		in, err := bpf.DecodeInode(w.records[i*bpf.InodeSize : (i+1)*bpf.InodeSize])
		if err != nil {
			return sum, err
		}
		if err := each(in); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// runWalk runs the walk program once and reads the sums.
func (w *Walker) runWalk(key unsafe.Pointer) (bpf.Walk, error) {
	opts := libbpfgo.RunOpts{}
	if err := w.prog.Run(&opts); err != nil {
		return bpf.Walk{}, fmt.Errorf("test run: %w", err)
	}
	if opts.RetVal != 0 {
		return bpf.Walk{}, fmt.Errorf("test run: the walk returned %d (its maps or this task's fd table were unreadable)", opts.RetVal)
	}
	raw, err := w.walk.GetValue(key)
	if err != nil {
		return bpf.Walk{}, fmt.Errorf("read walk map: %w", err)
	}
	return bpf.DecodeWalk(raw)
}

func (w *Walker) readCursor(key unsafe.Pointer) (bpf.Cursor, error) {
	raw, err := w.cursor.GetValue(key)
	if err != nil {
		return bpf.Cursor{}, fmt.Errorf("read walk cursor: %w", err)
	}
	return bpf.DecodeCursor(raw)
}
