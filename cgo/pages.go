//go:build cgo

package cgo

import (
	"fmt"
	"unsafe"

	"github.com/aquasecurity/libbpfgo"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// maxPageRuns bounds the runs of one batch: a bpf_loop run walks up to 2^23
// slots, a bounded one bpf.PageSteps; 2^22 bounded runs cover 2^33 slots.
const maxPageRuns = 1 << 22

// Pages runs the page walk (walk_pages): each file's cached pages by the
// memory cgroup they are charged to. Not safe for concurrent use.
type Pages struct {
	Module
	params  *libbpfgo.BPFMap
	state   *libbpfgo.BPFMap
	records []byte // the records map, mapped read-only
}

// LoadPages loads the page walk: the bpf_loop program where the kernel has
// bpf_loop, else the bounded one; opts.Method may force either.
func LoadPages(opts Options) (_ *Pages, err error) {
	method := opts.Method
	switch method {
	case bpf.MethodLoop, bpf.MethodBounded:
	case "", bpf.MethodAttached:
		// The walk needs a test run; the attached method has none to offer.
		method = bpf.MethodBounded
		if helperLoopSupported() {
			method = bpf.MethodLoop
		}
	default:
		return nil, fmt.Errorf("unknown BPF method %q", method)
	}
	use := pagesBoundedProgram
	if method == bpf.MethodLoop {
		use = pagesLoopProgram
	}
	p := &Pages{Module: Module{method: method}}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := p.open(opts, use, map[string]uint32{pagesRecordsMap: bpf.PageCap}); err != nil {
		return nil, err
	}
	if p.params, err = p.bpfMap(pagesParamsMap); err != nil {
		return nil, err
	}
	if p.state, err = p.bpfMap(pagesStateMap); err != nil {
		return nil, err
	}
	recs, err := p.bpfMap(pagesRecordsMap)
	if err != nil {
		return nil, err
	}
	if p.records, err = unix.Mmap(recs.FileDescriptor(), 0, bpf.PageCap*bpf.PageRecSize, unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return nil, &LoadError{Err: fmt.Errorf("map %s: %w", pagesRecordsMap, err)}
	}
	return p, nil
}

// Close unmaps the records and unloads everything.
func (p *Pages) Close() {
	if p.records != nil {
		unix.Munmap(p.records)
		p.records = nil
	}
	p.Module.Close()
}

// Walk walks the page caches of the files behind fds (open in this process,
// at most bpf.Batch), running the program until every file is done, and
// returns each file's figures and the records of its pages by memory
// cgroup, in the order written (one cgroup may have several per file).
func (p *Pages) Walk(fds []int32) ([]bpf.PageFile, []bpf.PageRec, error) {
	return p.walk(fds, 0)
}

// WalkRanges walks the page caches of the files behind fds as Walk does,
// and returns the runs of consecutive cached pages of each file (a
// snapshot's ranges), in page order; a run may be split in two where a
// test run ended.
func (p *Pages) WalkRanges(fds []int32) ([]bpf.PageFile, []bpf.PageRec, error) {
	return p.walk(fds, bpf.PageRanges)
}

func (p *Pages) walk(fds []int32, flags uint32) ([]bpf.PageFile, []bpf.PageRec, error) {
	var zero uint32
	key := unsafe.Pointer(&zero)
	b, err := bpf.PageParams{FDs: fds, Cap: bpf.PageCap, MaxSteps: bpf.MaxWalkSteps, Flags: flags}.Encode()
	if err != nil {
		return nil, nil, err
	}
	if err := p.params.Update(key, unsafe.Pointer(&b[0])); err != nil {
		return nil, nil, fmt.Errorf("write page walk params: %w", err)
	}
	st := bpf.NewPageState()
	if err := p.state.Update(key, unsafe.Pointer(&st[0])); err != nil {
		return nil, nil, fmt.Errorf("reset page walk state: %w", err)
	}
	var recs []bpf.PageRec
	for run := 0; ; run++ {
		if run == maxPageRuns {
			return nil, nil, fmt.Errorf("page walk: not done after %d runs", run)
		}
		opts := libbpfgo.RunOpts{}
		if err := p.prog.Run(&opts); err != nil {
			return nil, nil, fmt.Errorf("test run: %w", err)
		}
		if opts.RetVal != 0 {
			return nil, nil, fmt.Errorf("test run: the page walk returned %d (its maps were unreadable)", opts.RetVal)
		}
		raw, err := p.state.GetValue(key)
		if err != nil {
			return nil, nil, fmt.Errorf("read page walk state: %w", err)
		}
		s, err := bpf.DecodePageState(raw)
		if err != nil {
			return nil, nil, err
		}
		if s.Nrec > bpf.PageCap {
			return nil, nil, fmt.Errorf("page walk: %d records, at most %d", s.Nrec, bpf.PageCap)
		}
		for i := uint32(0); i < s.Nrec; i++ {
			r, err := bpf.DecodePageRec(p.records[i*bpf.PageRecSize : (i+1)*bpf.PageRecSize])
			if err != nil {
				return nil, nil, err
			}
			if int(r.Slot) >= len(fds) {
				return nil, nil, fmt.Errorf("page walk: a record for slot %d of %d", r.Slot, len(fds))
			}
			recs = append(recs, r)
		}
		switch s.Status {
		case bpf.PageDone:
			return s.Files[:len(fds)], recs, nil
		case bpf.PageMore:
		default:
			return nil, nil, fmt.Errorf("page walk: status %d after a run", s.Status)
		}
	}
}
