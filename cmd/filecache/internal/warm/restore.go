package warm

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/cachectl"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// Options shape a restore.
type Options struct {
	DryRun  bool  // measure only
	MaxSize int64 // skip files larger than this (0: none)
	Rate    int64 // bytes read a second at most, all files together (0: no limit)
	Jobs    int   // files read at once on a device that allows it (0: 4)
	// Engine lists a file's cached pages (an extent engine, or a chain of
	// them): the figures before and after. Used by one goroutine at a time.
	Engine pagecache.Engine
	// Rotational says whether a device (st_dev) is a spinning disk, whose
	// files are then read one at a time (nil: sysfs).
	Rotational func(dev uint64) bool
	// Progress is told of bytes done (read, or found cached); it is called
	// from several goroutines.
	Progress func(n uint64)
	// Result is told of each file, in the snapshot's order.
	Result func(Result)
}

// Result is what restoring one file of a snapshot did.
type Result struct {
	File *File
	// Pages are the pages of the snapshot's ranges that lie inside the
	// file (in this machine's pages); Before and After those of them
	// cached before and after.
	Pages, Before, After uint64
	// Bytes: of the file's ranges, what was read (or, dry, would be).
	Bytes uint64
	Skip  string // why the file was left alone ("": it was not)
	Err   error
}

// Restore brings back the pages of every file of the snapshot r reads. It
// returns an error only when the snapshot cannot be read or no engine can
// measure; a file's problem is in its Result.
func Restore(r *Reader, o Options) error {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Rotational == nil {
		o.Rotational = Rotational
	}
	if o.Progress == nil {
		o.Progress = func(uint64) {}
	}
	rs := &restore{o: o, pageIn: uint64(r.Header.PageSize), done: make(chan *job, 64), work: make(chan *job, queued+2*o.Jobs),
		devs: &devices{jobs: o.Jobs, rotational: o.Rotational}, open: make(chan struct{}, maxOpen)}
	if o.Rate > 0 {
		rs.lim = &limiter{rate: float64(o.Rate)}
	}
	var workers sync.WaitGroup
	for range o.Jobs {
		workers.Add(1)
		go func() { defer workers.Done(); rs.worker() }()
	}
	collected := make(chan error, 1)
	total := make(chan int, 1)
	go func() { collected <- rs.collect(total) }()

	n, err := rs.feed(r)
	close(rs.work)
	total <- n
	workers.Wait()
	if cerr := <-collected; err == nil {
		err = cerr
	}
	return err
}

// A job is one file on its way: opened and measured by feed, read by a
// worker, measured again and reported by collect, in order.
type job struct {
	seq    int
	res    Result
	fd     int // -1 once closed, or never opened
	dev    uint64
	want   []pagecache.Extent // the snapshot's pages inside the file, local pages
	bytes  uint64             // the file's bytes in want
	toRead [][2]int64         // byte spans of want not cached before
	// Of toRead: spans asked for (WILLNEED) so far, their bytes, and the
	// bytes read.
	ahead       int
	asked, done int64
}

type restore struct {
	o      Options
	pageIn uint64 // the snapshot's page size
	engMu  sync.Mutex
	work   chan *job
	done   chan *job
	lim    *limiter
	devs   *devices
	// open holds a token for each file open (opened by feed, closed by
	// collect), so a slow file cannot leave the files after it piling up.
	open chan struct{}
}

// maxOpen is how many files a restore holds open at most.
const maxOpen = 256

// batch is how many files are measured together (one BPF run); small
// enough that the fds open at once stay few.
const batch = 32

// feed reads the snapshot, opens and checks each file, measures them a
// batch at a time and hands them on; it returns how many files it read.
func (rs *restore) feed(r *Reader) (int, error) {
	var pending []*job
	seq := 0
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := rs.before(pending)
		for _, j := range pending {
			switch {
			case err != nil && j.res.Err == nil:
				j.res.Err = err
				rs.done <- j
			case j.res.Err != nil || rs.o.DryRun || len(j.toRead) == 0:
				rs.o.Progress(j.bytes - j.res.Bytes)
				rs.done <- j
			default:
				rs.o.Progress(j.bytes - j.res.Bytes) // found cached
				if rs.lim == nil {
					// Ask for the file's first spans now: the device
					// reads them while the workers read the files
					// before it. A failure shows again in the worker.
					if unix.Fadvise(j.fd, 0, 0, unix.FADV_RANDOM) == nil {
						j.advise(prefetch)
					}
				}
				rs.work <- j
			}
		}
		pending = pending[:0]
		var fatal *engineError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		return nil
	}
	for {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			return seq, flush()
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return seq, ferr
			}
			return seq, err
		}
		// A token for the file about to be opened; before waiting for
		// one, hand on the files waiting here, which frees some.
		select {
		case rs.open <- struct{}{}:
		default:
			if err := flush(); err != nil {
				return seq, err
			}
			rs.open <- struct{}{}
		}
		j := rs.openFile(f, seq)
		seq++
		if j.fd < 0 {
			<-rs.open
			rs.o.Progress(j.bytes)
			rs.done <- j
			continue
		}
		pending = append(pending, j)
		if len(pending) == batch {
			if err := flush(); err != nil {
				return seq, err
			}
		}
	}
}

// open opens one file of the snapshot read-only and checks it is the file
// the snapshot describes: a regular file of the same size and
// modification time (the inode may differ: a copy on another machine).
func (rs *restore) openFile(f *File, seq int) *job {
	j := &job{seq: seq, fd: -1, res: Result{File: f}}
	j.want = localPages(f.Ranges, rs.pageIn, f.Size)
	j.res.Pages = sum(j.want)
	j.bytes = spanBytes(j.want, f.Size)
	if f.Pages == 0 {
		j.res.Skip = "no cached page in the snapshot"
		return j
	}
	if rs.o.MaxSize > 0 && f.Size > rs.o.MaxSize {
		j.res.Skip = fmt.Sprintf("larger than --max-size (%s)", units.Human(uint64(f.Size)))
		return j
	}
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	fd, err := openRetry(f.Path, flags|unix.O_NOATIME)
	if errors.Is(err, unix.EPERM) { // O_NOATIME needs ownership
		fd, err = openRetry(f.Path, flags)
	}
	if errors.Is(err, unix.ENOENT) {
		j.res.Skip = "gone since the snapshot"
		return j
	}
	if err != nil {
		j.res.Err = fmt.Errorf("open: %w", err)
		return j
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		j.res.Err = fmt.Errorf("fstat: %w", err)
		return j
	}
	mtime := time.Unix(st.Mtim.Unix())
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		j.res.Skip = "no longer a regular file"
	case st.Size != f.Size:
		j.res.Skip = fmt.Sprintf("changed since the snapshot: size %d, was %d", st.Size, f.Size)
	case !mtime.Equal(f.Mtime):
		j.res.Skip = fmt.Sprintf("changed since the snapshot: modified %s, was %s",
			mtime.UTC().Format(time.RFC3339Nano), f.Mtime.UTC().Format(time.RFC3339Nano))
	}
	if j.res.Skip != "" {
		unix.Close(fd)
		return j
	}
	j.fd, j.dev = fd, st.Dev
	return j
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// localPages turns a snapshot's ranges of pages of pageIn bytes into this
// machine's pages inside a file of size bytes (page sizes may differ
// between the two machines).
func localPages(ranges []pagecache.Extent, pageIn uint64, size int64) []pagecache.Extent {
	page := uint64(units.PageSize)
	var out []pagecache.Extent
	for _, r := range ranges {
		lo, hi := r.First*pageIn, min(r.End()*pageIn, uint64(size))
		if lo >= hi {
			break
		}
		first, end := lo/page, (hi+page-1)/page
		if n := len(out); n > 0 && out[n-1].End() > first {
			first = out[n-1].End() // a larger page holds both
		}
		if end > first {
			out = pagecache.AddExtent(out, pagecache.Extent{First: first, Pages: end - first})
		}
	}
	return out
}

// spanBytes is how many bytes of a file of size bytes the pages of runs hold.
func spanBytes(runs []pagecache.Extent, size int64) uint64 {
	page := uint64(units.PageSize)
	var n uint64
	for _, r := range runs {
		n += min(r.End()*page, uint64(size)) - min(r.First*page, uint64(size))
	}
	return n
}

func sum(runs []pagecache.Extent) uint64 {
	var n uint64
	for _, r := range runs {
		n += r.Pages
	}
	return n
}

// engineError: the engine failed on a whole batch; nothing after can be
// measured.
type engineError struct{ err error }

func (e *engineError) Error() string { return e.err.Error() }

// measure lists the cached pages of each job's file, under the engine's lock.
func (rs *restore) measure(js []*job) ([]pagecache.Answer, error) {
	hs := make([]pagecache.Handle, len(js))
	for i, j := range js {
		hs[i] = pagecache.Handle{Fd: j.fd, Mode: unix.S_IFREG}
	}
	rs.engMu.Lock()
	defer rs.engMu.Unlock()
	var out []pagecache.Answer
	for start := 0; start < len(hs); {
		end := min(len(hs), start+max(1, rs.o.Engine.BatchSize()))
		ans, err := rs.o.Engine.Query(hs[start:end])
		if err != nil {
			return nil, &engineError{err}
		}
		if len(ans) != end-start {
			return nil, &engineError{fmt.Errorf("%d answers for %d files", len(ans), end-start)}
		}
		out = append(out, ans...)
		start = end
	}
	return out, nil
}

// before measures the open files of js and works out what to read.
func (rs *restore) before(js []*job) error {
	var open []*job
	for _, j := range js {
		if j.fd >= 0 {
			open = append(open, j)
		}
	}
	if len(open) == 0 {
		return nil
	}
	ans, err := rs.measure(open)
	if err != nil {
		return err
	}
	page := int64(units.PageSize)
	for i, j := range open {
		a := ans[i]
		if a.Err == nil && a.Extents == nil {
			a.Err = fmt.Errorf("the %s engine does not list pages", a.Engine)
		}
		if a.Err != nil {
			j.res.Err = fmt.Errorf("measure before: %w", a.Err)
			continue
		}
		j.res.Before = pagecache.Overlap(j.want, a.Extents)
		for _, r := range subtract(j.want, a.Extents) {
			off, end := int64(r.First)*page, min(int64(r.End())*page, j.res.File.Size)
			j.toRead = append(j.toRead, [2]int64{off, end})
			j.res.Bytes += uint64(end - off)
		}
		j.res.After = j.res.Before
	}
	return nil
}

// subtract is the pages of want (in order) not in have (in order).
func subtract(want, have []pagecache.Extent) []pagecache.Extent {
	var out []pagecache.Extent
	h := 0
	for _, w := range want {
		cur := w.First
		for h < len(have) && have[h].End() <= cur {
			h++
		}
		for k := h; k < len(have) && have[k].First < w.End(); k++ {
			if have[k].First > cur {
				out = pagecache.AddExtent(out, pagecache.Extent{First: cur, Pages: have[k].First - cur})
			}
			cur = max(cur, have[k].End())
		}
		if cur < w.End() {
			out = pagecache.AddExtent(out, pagecache.Extent{First: cur, Pages: w.End() - cur})
		}
	}
	return out
}

// The reads, replaced by tests to see which spans are read.
var (
	readSpan  = cachectl.Read
	touchSpan = cachectl.TouchBuf
)

// A worker asks the kernel for pages (WILLNEED) up to window bytes ahead of
// its reads, and feed asks for the first prefetch bytes of each file it
// queues (up to queued files ahead of the workers): the device gets many
// requests at once, large ones, across files too, however small they are.
const (
	window   = 32 << 20
	prefetch = 8 << 20
	queued   = 16
)

// worker reads the files handed to it.
func (rs *restore) worker() {
	buf := make([]byte, 1<<20)
	for j := range rs.work {
		release := rs.devs.acquire(j.dev)
		if err := rs.read(j, buf); err != nil {
			j.res.Err = err
		}
		release()
		rs.done <- j
	}
}

// read brings a file's missing spans into the cache: with readahead off
// (POSIX_FADV_RANDOM on this open file only), so no page outside them is
// read, each span asked for (WILLNEED) up to a window ahead, then read,
// since the kernel may ignore the hint. Under --rate, a chunk at a time.
func (rs *restore) read(j *job, buf []byte) error {
	if err := unix.Fadvise(j.fd, 0, 0, unix.FADV_RANDOM); err != nil {
		return fmt.Errorf("fadvise RANDOM: %w", err)
	}
	if rs.lim != nil {
		for _, s := range j.toRead {
			for off := s[0]; off < s[1]; {
				end := min(s[1], off+int64(len(buf)))
				rs.lim.wait(end - off)
				if err := touchSpan(j.fd, off, end, buf, rs.o.Progress); err != nil {
					return err
				}
				off = end
			}
		}
		return nil
	}
	for _, s := range j.toRead {
		if err := j.advise(window); err != nil {
			return err
		}
		if err := readSpan(j.fd, s[0], s[1], buf, rs.o.Progress); err != nil {
			return err
		}
		j.done += s[1] - s[0]
	}
	return nil
}

// advise asks the kernel for the job's next spans (WILLNEED), which it
// reads in the background, until limit bytes past those read are asked
// for (at least the next span), or all are.
func (j *job) advise(limit int64) error {
	for j.ahead < len(j.toRead) && (j.asked <= j.done || j.asked-j.done < limit) {
		a := j.toRead[j.ahead]
		if err := unix.Fadvise(j.fd, a[0], a[1]-a[0], unix.FADV_WILLNEED); err != nil {
			return fmt.Errorf("fadvise WILLNEED: %w", err)
		}
		j.asked += a[1] - a[0]
		j.ahead++
	}
	return nil
}

// collect takes finished jobs in any order, measures them again a batch at
// a time in the snapshot's order, and reports each; total says, once feed
// is done, how many jobs there are.
func (rs *restore) collect(total <-chan int) error {
	waiting := map[int]*job{}
	var ready []*job // in order, to measure and report
	next, n := 0, -1
	var fatal error
	report := func() {
		var open []*job
		for _, j := range ready {
			if j.fd >= 0 && j.res.Err == nil && !rs.o.DryRun && fatal == nil {
				open = append(open, j)
			}
		}
		if len(open) > 0 {
			ans, err := rs.measure(open)
			if err != nil {
				fatal = err
			}
			for i, j := range open {
				switch {
				case err != nil:
					j.res.Err = fmt.Errorf("measure after: %w", err)
				case ans[i].Err != nil:
					j.res.Err = fmt.Errorf("measure after: %w", ans[i].Err)
				default:
					j.res.After = pagecache.Overlap(j.want, ans[i].Extents)
				}
			}
		}
		for _, j := range ready {
			if j.fd >= 0 {
				unix.Close(j.fd)
				j.fd = -1
				<-rs.open
			}
			if rs.o.Result != nil {
				rs.o.Result(j.res)
			}
		}
		ready = ready[:0]
	}
	measurable := 0
	for n < 0 || next < n {
		select {
		case j := <-rs.done:
			waiting[j.seq] = j
		case n = <-total:
			total = nil
			continue
		}
		for {
			j, ok := waiting[next]
			if !ok {
				break
			}
			delete(waiting, next)
			next++
			ready = append(ready, j)
			if j.fd >= 0 {
				measurable++
			}
			if measurable >= batch {
				report()
				measurable = 0
			}
		}
	}
	report()
	var ee *engineError
	if errors.As(fatal, &ee) {
		return ee.err
	}
	return fatal
}

// limiter spaces reads so that all workers together read at most rate
// bytes a second.
type limiter struct {
	mu   sync.Mutex
	rate float64
	next time.Time
}

func (l *limiter) wait(n int64) {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	l.mu.Unlock()
	time.Sleep(time.Until(at))
}

// Bytes is how many bytes of f a restore brings back at most: its ranges,
// in pages of pageSize bytes, inside the file.
func Bytes(f *File, pageSize int) uint64 {
	return spanBytes(localPages(f.Ranges, uint64(pageSize), f.Size), f.Size)
}
