package pagecache

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/bpf"
)

// The fallback engines measure through system calls on a readable fd. They
// need no privileges, but each has limits the BPF engine has not.

// ErrUnavailable marks a batch error meaning the engine cannot run on this
// kernel at all (as opposed to failing on some file).
var ErrUnavailable = errors.New("unavailable")

// ErrMincoreUntrusted refuses mincore's figure where it is known to lie.
var ErrMincoreUntrusted = errors.New("mincore(2) would report every page as resident, since this process neither owns nor can write the file (Linux >= 5.2): no figure")

// reopen opens the file behind a Handle's fd for reading through
// /proc/self/fd, which names the very inode the scanner stat'ed; a path
// could have been replaced since.
func reopen(h Handle) (int, error) {
	for {
		fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", h.Fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ENOENT:
			return -1, fmt.Errorf("open for reading: %w (is /proc mounted?)", err)
		case err != nil:
			return -1, fmt.Errorf("open for reading: %w", err)
		}
		return fd, nil
	}
}

// sizeOf is the byte size of an open file or block device (whose st_size is 0).
func sizeOf(fd int) (int64, error) {
	n, err := unix.Seek(fd, 0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("size: %w", err)
	}
	return n, nil
}

// onOverlay says whether fd lies on overlayfs, where the file's own mapping
// is empty and cachestat(2) reports a wrong zero.
func onOverlay(fd int) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(fd, &st) == nil && uint64(st.Type) == overlayfsMagic
}

// CachestatEngine is the engine that asks cachestat(2) (Linux >= 6.5): exact, with
// dirty, writeback and eviction counts, for files the caller owns or can
// write; of a Range of each file when one is set.
type CachestatEngine struct{ Range *Range }

func (CachestatEngine) Name() string   { return "cachestat" }
func (CachestatEngine) Method() string { return "cachestat(2)" }
func (CachestatEngine) BatchSize() int { return 512 }
func (CachestatEngine) Close()         {}

func (c CachestatEngine) Query(files []Handle) ([]Answer, error) {
	out := eachReadable(files, func(fd int, _ *unix.Stat_t) Answer { return cachestatOne(fd, c.Range) })
	for _, a := range out {
		if errors.Is(a.Err, unix.ENOSYS) {
			return nil, fmt.Errorf("cachestat(2) needs Linux >= 6.5: %w", ErrUnavailable)
		}
	}
	return out, nil
}

// eachReadable answers each file through a readable fd of its own, after
// checking it is the kind of file the scanner expects.
func eachReadable(files []Handle, one func(fd int, st *unix.Stat_t) Answer) []Answer {
	out := make([]Answer, len(files))
	for i, h := range files {
		fd, err := reopen(h)
		if err != nil {
			out[i].Err = err
			continue
		}
		var st unix.Stat_t
		switch err := unix.Fstat(fd, &st); {
		case err != nil:
			out[i].Err = fmt.Errorf("fstat: %w", err)
		case st.Mode&unix.S_IFMT != h.Mode&unix.S_IFMT:
			out[i].Err = fmt.Errorf("the file changed kind (mode %o, expected %o)", st.Mode, h.Mode)
		default:
			out[i] = one(fd, &st)
			out[i].Dev, out[i].Ino, out[i].Nlink = st.Dev, st.Ino, uint32(st.Nlink)
		}
		unix.Close(fd)
	}
	return out
}

func cachestatOne(fd int, rng *Range) Answer {
	if onOverlay(fd) {
		return Answer{Err: ErrOverlay}
	}
	size, err := sizeOf(fd)
	if err != nil {
		return Answer{Err: err}
	}
	a := Answer{Size: size}
	if rng != nil {
		a.Ranged = true
		if a.Off, a.Len, a.Span = rng.clip(size); a.Len == 0 {
			a.Detail = &Cachestat{} // no page measured, none dirty
			return a
		}
	}
	cs, err := CachestatRange(fd, a.Off, a.Len)
	if errors.Is(err, unix.EPERM) {
		return Answer{Err: fmt.Errorf("%w (the kernel answers only the file's owner or a writer)", unix.EPERM)}
	}
	if err != nil {
		return Answer{Err: err}
	}
	a.Pages, a.Detail = cs.Cache, &cs
	return a
}

// MincoreEngine is the engine that maps each file and calls mincore(2): it works on
// every kernel, costs O(file size), and counts only pages inside the file.
type MincoreEngine struct {
	Range *Range // part of each file, when set
	// Trusted says whether mincore tells the truth about fd; nil means
	// the kernel's own rule (owner, CAP_FOWNER or write permission).
	Trusted func(fd int, st *unix.Stat_t) bool
}

func (MincoreEngine) Name() string   { return "mincore" }
func (MincoreEngine) Method() string { return "mmap+mincore(2)" }
func (MincoreEngine) BatchSize() int { return 512 }
func (MincoreEngine) Close()         {}

func (m MincoreEngine) Query(files []Handle) ([]Answer, error) {
	trusted := m.Trusted
	if trusted == nil {
		trusted = mincoreTrusted
	}
	return eachReadable(files, func(fd int, st *unix.Stat_t) Answer { return mincoreOne(fd, st, trusted, m.Range) }), nil
}

func mincoreOne(fd int, st *unix.Stat_t, trusted func(int, *unix.Stat_t) bool, rng *Range) Answer {
	if !trusted(fd, st) {
		return Answer{Err: ErrMincoreUntrusted}
	}
	size, err := sizeOf(fd)
	if err != nil {
		return Answer{Err: err}
	}
	a, n := Answer{Size: size}, size
	if rng != nil {
		a.Ranged = true
		a.Off, a.Len, a.Span = rng.clip(size)
		n = a.Len
	}
	pages, err := MincoreRange(fd, size, a.Off, n)
	if err != nil {
		return Answer{Err: err}
	}
	a.Pages = pages
	return a
}

// mincoreTrusted mirrors the kernel's can_do_mincore(): the caller owns the
// inode, may act as its owner, or may write the file.
func mincoreTrusted(fd int, st *unix.Stat_t) bool {
	if uint32(unix.Geteuid()) == st.Uid { // fsuid follows euid; filecache never sets it
		return true
	}
	if caps, err := OwnCaps(); err == nil && caps.Has(capFowner) {
		return true
	}
	return unix.Faccessat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.W_OK, unix.AT_EACCESS) == nil
}

const capFowner = 3

// Stage is one engine of a Chain, loaded when first needed.
type Stage struct {
	Name string
	Load func() (Engine, error)
}

// Chain answers each file with the first of its engines that can: an engine
// that cannot load or run is skipped for the whole run (and noted), one that
// refuses a file hands that file to the next.
type Chain struct {
	Stages []Stage
	// Note is told once why an engine is not used.
	Note func(engine string, err error)

	engines []Engine
	failed  []error
}

func (c *Chain) Name() string {
	if e := c.primary(); e != nil {
		return e.Name()
	}
	return "none"
}

func (c *Chain) Method() string {
	if e := c.primary(); e != nil {
		return e.Method()
	}
	return ""
}

func (c *Chain) primary() Engine {
	for _, e := range c.engines {
		if e != nil {
			return e
		}
	}
	return nil
}

// BatchSize is the BPF batch; the syscall engines take any size.
func (c *Chain) BatchSize() int { return bpf.Batch }

func (c *Chain) Close() {
	for _, e := range c.engines {
		if e != nil {
			e.Close()
		}
	}
}

// engine loads stage i on first use; nil once it has failed.
func (c *Chain) engine(i int) Engine {
	if c.engines == nil {
		c.engines = make([]Engine, len(c.Stages))
		c.failed = make([]error, len(c.Stages))
	}
	if c.engines[i] == nil && c.failed[i] == nil {
		e, err := c.Stages[i].Load()
		if err != nil {
			c.fail(i, err)
			return nil
		}
		c.engines[i] = e
	}
	return c.engines[i]
}

func (c *Chain) fail(i int, err error) {
	c.failed[i] = err
	if c.engines[i] != nil {
		c.engines[i].Close()
		c.engines[i] = nil
	}
	if c.Note != nil {
		c.Note(c.Stages[i].Name, err)
	}
}

// NoEngineError says no engine of a chain could run, and why each could not.
type NoEngineError struct{ Reasons []string }

func (e *NoEngineError) Error() string {
	if len(e.Reasons) == 1 {
		return e.Reasons[0]
	}
	return "no engine can run here: " + strings.Join(e.Reasons, "; ")
}

func (c *Chain) Query(files []Handle) ([]Answer, error) {
	out := make([]Answer, len(files))
	why := make([][]string, len(files))
	pending := make([]int, len(files))
	for i := range pending {
		pending[i] = i
	}
	ran := false
	for i := range c.Stages {
		if len(pending) == 0 {
			break
		}
		eng := c.engine(i)
		if eng == nil {
			continue
		}
		hs := make([]Handle, len(pending))
		for j, k := range pending {
			hs[j] = files[k]
		}
		answers, err := eng.Query(hs)
		if err != nil {
			c.fail(i, err)
			continue
		}
		ran = true
		var still []int
		for j, a := range answers {
			k := pending[j]
			if a.Err == nil {
				a.Engine = eng.Name()
				out[k] = a
				continue
			}
			why[k] = append(why[k], eng.Name()+": "+a.Err.Error())
			out[k].Err = a.Err
			still = append(still, k)
		}
		pending = still
	}
	if !ran {
		var reasons []string
		for i, err := range c.failed {
			if err != nil {
				reasons = append(reasons, c.Stages[i].Name+": "+err.Error())
			}
		}
		if len(c.Stages) == 1 && c.failed[0] != nil {
			return nil, c.failed[0]
		}
		return nil, &NoEngineError{Reasons: reasons}
	}
	for _, k := range pending {
		if len(why[k]) > 1 {
			out[k].Err = chainError{msg: strings.Join(why[k], "; "), err: out[k].Err}
		}
	}
	return out, nil
}

// chainError reads as every engine's reason, and unwraps to the last one.
type chainError struct {
	msg string
	err error
}

func (e chainError) Error() string { return e.msg }
func (e chainError) Unwrap() error { return e.err }

// Detailed adds cachestat(2)'s dirty, writeback and eviction counts to
// another engine's answers (--detail), over the very bytes each answer
// measured: the whole file, or with a Range the part of it measured (none
// when the range lies past the end). Where cachestat cannot answer, the
// figures stand without them and Note is told once why.
type Detailed struct {
	Engine
	Note   func(err error)
	failed bool
}

func (d *Detailed) Query(files []Handle) ([]Answer, error) {
	out, err := d.Engine.Query(files)
	if err != nil || d.failed {
		return out, err
	}
	for i, a := range out {
		if a.Err != nil || a.Detail != nil {
			continue
		}
		if a.Ranged && a.Len == 0 {
			out[i].Detail = &Cachestat{}
			continue
		}
		fd, err := reopen(files[i])
		if err == nil {
			var cs Cachestat
			cs, err = CachestatRange(fd, a.Off, a.Len) // Len 0 unranged: the whole mapping
			unix.Close(fd)
			if err == nil {
				out[i].Detail = &cs
				continue
			}
		}
		if errors.Is(err, unix.ENOSYS) {
			d.failed = true
			if d.Note != nil {
				d.Note(fmt.Errorf("--detail needs cachestat(2), Linux >= 6.5"))
			}
			break
		}
	}
	return out, nil
}

// MapWidth is how many cells a --map line has.
const MapWidth = 60

// Mapped adds to another engine's answers a map of which parts of each file
// are cached (--map, like vmtouch -v): at most MapWidth cells, each an equal
// share of the pages the answer measured (the whole file's, or with a Range
// the range's): 'O' all cached, 'o' some, ' ' none. Each cell is one
// cachestat(2) over its pages, or mincore(2) where cachestat is missing (and
// then only for files mincore tells the truth about).
type Mapped struct{ Engine }

func (m Mapped) Query(files []Handle) ([]Answer, error) {
	out, err := m.Engine.Query(files)
	if err != nil {
		return out, err
	}
	page := int64(unix.Getpagesize())
	for i, a := range out {
		if a.Err != nil {
			continue
		}
		first, n := int64(0), (a.Size+page-1)/page
		if a.Ranged {
			first, n = a.Off/page, int64(a.Span)
		}
		fd, err := reopen(files[i])
		if err != nil {
			continue
		}
		out[i].Map = drawMap(fd, a.Size, first, n)
		unix.Close(fd)
	}
	return out, nil
}

// drawMap returns the map of pages [first, first+pages) of the file behind
// fd, of size bytes, or "" if neither cachestat nor a trustworthy mincore
// can tell.
func drawMap(fd int, size, first, pages int64) string {
	page := int64(unix.Getpagesize())
	if pages <= 0 {
		return ""
	}
	var st unix.Stat_t
	trusted := unix.Fstat(fd, &st) == nil && mincoreTrusted(fd, &st)
	cells := min(MapWidth, pages)
	out := make([]byte, 0, cells)
	for c := int64(0); c < cells; c++ {
		lo, hi := pages*c/cells, pages*(c+1)/cells
		off, n := (first+lo)*page, (hi-lo)*page
		cached := int64(-1)
		if cs, err := CachestatRange(fd, off, n); err == nil {
			cached = int64(cs.Cache)
		} else if trusted {
			if r, err := MincoreRange(fd, size, off, n); err == nil {
				cached = int64(r)
			}
		}
		switch {
		case cached < 0:
			return ""
		case cached == 0:
			out = append(out, ' ')
		case cached >= hi-lo:
			out = append(out, 'O')
		default:
			out = append(out, 'o')
		}
	}
	return string(out)
}
