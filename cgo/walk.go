//go:build cgo

package cgo

import (
	"fmt"
	"unsafe"

	"github.com/aquasecurity/libbpfgo"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

const walkProgram = "walk_sb"

// Walker runs the superblock walk (walk_sb). Not safe for concurrent use.
type Walker struct {
	Module
	walkParams *libbpfgo.BPFMap
	walk       *libbpfgo.BPFMap
	records    []byte // the records map, mapped read-only
}

// LoadWalker loads the walk program alone.
func LoadWalker(opts Options) (_ *Walker, err error) {
	if !helperLoopSupported() {
		return nil, &LoadError{Err: bpf.ErrNoLoop}
	}
	w := &Walker{Module: Module{method: bpf.MethodLoop}}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if err := w.open(opts, walkProgram, map[string]uint32{"walk_records": bpf.WalkCap}); err != nil {
		return nil, err
	}
	if w.walkParams, err = w.bpfMap("walk_params"); err != nil {
		return nil, err
	}
	if w.walk, err = w.bpfMap("walk"); err != nil {
		return nil, err
	}
	recs, err := w.bpfMap("walk_records")
	if err != nil {
		return nil, err
	}
	// Mapped, so a run's records are read in place rather than copied.
	size := bpf.WalkCap * bpf.InodeSize
	if w.records, err = unix.Mmap(recs.FileDescriptor(), 0, size, unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return nil, &LoadError{Err: fmt.Errorf("map walk_records: %w", err)}
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

// Walk runs the walk once over the superblock of p.FD and calls each with
// every record returned; the records' memory is reused by the next run.
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
	sum, err := bpf.DecodeWalk(raw)
	if err != nil {
		return sum, err
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
