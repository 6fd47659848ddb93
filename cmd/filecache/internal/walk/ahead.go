package walk

import (
	"encoding/binary"
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// Reading ahead (Options.Workers): when the walk enters a subdirectory,
// it opens the next subdirectories of the same directory (their parent's
// fd is open then) and hands each fd to a worker goroutine, which fstats
// it, reads its listing into a buffer of its own (aheadBuf bytes at most)
// and calls Options.Dir with it. When the walk comes to that subdirectory
// it takes the job instead of opening it, checks it as it checks any
// directory (xdev, loops, Visited), yields the entries the worker read and
// reads on from there with the same fd. So entries come in the order of a
// walk without workers, and what is read ahead is bounded: 2*Workers
// directories, each one fd and one buffer.

// aheadBuf is the most a worker reads of one directory.
const aheadBuf = 64 << 10

// job is one directory read ahead.
type job struct {
	fd   int
	err  error // openat's
	st   unix.Stat_t
	serr error  // fstat's
	buf  []byte // the listing's first bytes (getdents64 records)
	n    int
	eof  bool  // buf holds the whole listing
	rerr error // getdents64's, after buf[:n]
	dir  any   // Options.Dir's value
	// hooked says Options.Dir was called (not when the listing read
	// holds no entry to yield).
	hooked bool
	done   chan struct{}
}

type aheadState struct {
	jobs     chan *job
	wg       sync.WaitGroup
	inflight int // jobs opened and not yet taken or dropped
	max      int
	bufs     [][]byte // free buffers
}

func (w *walker) startWorkers() {
	if w.o.Workers <= 0 {
		return
	}
	a := &w.ahead
	a.max = 2 * w.o.Workers
	a.jobs = make(chan *job, a.max)
	for i := 0; i < w.o.Workers; i++ {
		a.wg.Add(1)
		go func(slot int) {
			defer a.wg.Done()
			for j := range a.jobs {
				w.work(j, slot)
				close(j.done)
			}
		}(i + 1)
	}
}

func (w *walker) stopWorkers() {
	if w.ahead.jobs != nil {
		close(w.ahead.jobs)
		w.ahead.wg.Wait()
		w.ahead.jobs = nil
	}
}

// work reads one directory ahead, on a worker goroutine. The buffer is
// given to the job by readAhead: workers touch no walker state.
func (w *walker) work(j *job, slot int) {
	if j.err != nil {
		return
	}
	if j.serr = fstat(j.fd, &j.st); j.serr != nil {
		return
	}
	if w.o.XDev && j.st.Dev != w.rootDev {
		return // not to be entered: not to be read either
	}
	for j.n < len(j.buf)-(direntName+256+8) {
		n, err := getdents(j.fd, j.buf[j.n:])
		if err != nil {
			j.rerr = err
			break
		}
		if n <= 0 {
			j.eof = true
			break
		}
		j.n += n
	}
	if w.o.Dir != nil && (!j.eof || hasEntries(j.buf[:j.n])) {
		j.dir, j.hooked = w.o.Dir(j.fd, slot), true
	}
}

// hasEntries says whether getdents64 records hold an entry that is not a
// directory (or whose type is unknown): one Options.Dir matters for.
func hasEntries(buf []byte) bool {
	for off := 0; off+direntName < len(buf); {
		reclen := int(binary.NativeEndian.Uint16(buf[off+direntReclen:]))
		if reclen <= direntName {
			return true // malformed: let the walk say so
		}
		if buf[off+direntType] != unix.DT_DIR {
			return true
		}
		off += reclen
	}
	return false
}

// readAhead opens the subdirectories of level i after those already
// being read ahead, while its fd is open and jobs are free.
func (w *walker) readAhead(i int) {
	a := &w.ahead
	if a.jobs == nil {
		return
	}
	l := &w.stack[i]
	for l.fd >= 0 && a.inflight < a.max {
		k := l.next + len(l.ahead)
		if k >= len(l.subdirs) {
			return
		}
		j := &job{done: make(chan struct{}), buf: w.getBuf()}
		j.fd, j.err = openRetry(l.fd, l.subdirs[k], w.dirFlags)
		if errors.Is(j.err, unix.EMFILE) || errors.Is(j.err, unix.ENFILE) {
			// Reading ahead is an extra: out of fds, the walk opens this
			// directory itself when it comes to it, as it would without
			// workers, rather than report it unreadable.
			w.putBuf(j.buf)
			return
		}
		w.dirsOpened++
		a.inflight++
		l.ahead = append(l.ahead, j)
		a.jobs <- j // never blocks: a.max jobs at most, a.max slots
	}
}

// takeAhead takes the job of l's next subdirectory, once it is done; nil
// when it is not being read ahead.
func (w *walker) takeAhead(l *level) *job {
	if len(l.ahead) == 0 {
		return nil
	}
	j := l.ahead[0]
	l.ahead[0] = nil
	l.ahead = l.ahead[1:]
	<-j.done
	w.ahead.inflight--
	return j
}

// skip closes a directory the walk does not enter, and its job's rest.
func (w *walker) skip(fd int, j *job) {
	if j != nil {
		w.discard(j)
		return
	}
	unix.Close(fd)
}

// discard closes a job's fd and gives back its buffer and Dir value.
func (w *walker) discard(j *job) {
	if j.err == nil {
		unix.Close(j.fd)
	}
	if j.hooked && j.dir != nil && w.o.DirDone != nil {
		w.o.DirDone(j.dir)
	}
	w.putBuf(j.buf)
	j.buf, j.dir = nil, nil
}

// dropAhead discards the jobs of l's subdirectories.
func (w *walker) dropAhead(l *level) {
	for len(l.ahead) > 0 {
		w.discard(w.takeAhead(l))
	}
}

func (w *walker) getBuf() []byte {
	a := &w.ahead
	if n := len(a.bufs); n > 0 {
		b := a.bufs[n-1]
		a.bufs = a.bufs[:n-1]
		return b
	}
	return make([]byte, aheadBuf)
}

func (w *walker) putBuf(b []byte) {
	if b != nil {
		w.ahead.bufs = append(w.ahead.bufs, b)
	}
}
