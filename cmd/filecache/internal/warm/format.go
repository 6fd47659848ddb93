// Package warm saves which pages of which files sit in the page cache (a
// snapshot) and brings exactly those pages back (restore), for warm
// restarts. The snapshot format is NDJSON, gzip'd when asked, documented in
// README.md ("snapshot and restore").
package warm

import (
	"bufio"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/report"
)

// Format and Version name the snapshot format in its header line. A reader
// refuses a version it does not know; fields may be added within one.
const (
	Format  = "filecache-snapshot"
	Version = 1
)

// Sources of a snapshot: the files named, or every cached file of the
// filesystems walked (snapshot --top).
const (
	SourcePaths = "paths"
	SourceTop   = "top"
)

// Header is the first line of a snapshot.
type Header struct {
	Record   string    `json:"record"` // "snapshot"
	Format   string    `json:"format"`
	Version  int       `json:"version"`
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Kernel   string    `json:"kernel"`
	PageSize int       `json:"page_size"`
	Source   string    `json:"source"`
	// Engine and Method: how the pages were found (bpf: the page walk,
	// cachestat(2) halving, or mincore(2)); a file found another way says so.
	Engine string `json:"engine"`
	Method string `json:"method"`
}

// File is one file of a snapshot: what identifies it and its cached pages.
type File struct {
	Path   string
	Root   string // the directory argument or filesystem it was found under ("": named itself)
	Device string // major:minor when the snapshot was taken
	Inode  uint64
	Size   int64
	Mtime  time.Time
	Pages  uint64             // cached pages, the sum of Ranges
	Ranges []pagecache.Extent // page indexes, in order
	Engine string             // when not the header's
}

// End is the last line of a complete snapshot.
type End struct {
	Record string `json:"record"` // "end"
	Files  int    `json:"files"`  // file lines
	Pages  uint64 `json:"pages"`  // their pages
	Ranges uint64 `json:"ranges"` // their ranges
	Errors int    `json:"errors"` // paths without figures (named on stderr, not here)
	// Skipped: files with no cached page (not written), and with --top
	// inodes no path leads to (deleted, no name, another mount namespace,
	// a name now given to another inode).
	Skipped int `json:"skipped"`
}

// Writer writes a snapshot line by line: the header before the first file
// (once the engine that lists pages is known), the end line on Close.
type Writer struct {
	bw     *bufio.Writer
	gz     *gzip.Writer
	header Header
	began  bool
	end    End
	line   []byte
}

// NewWriter writes a snapshot to w, gzip'd if zip; h's Record, Format,
// Version are filled in.
func NewWriter(w io.Writer, zip bool, h Header) *Writer {
	h.Record, h.Format, h.Version = "snapshot", Format, Version
	h.Time = h.Time.UTC()
	sw := &Writer{header: h}
	if zip {
		sw.gz = gzip.NewWriter(w)
		w = sw.gz
	}
	sw.bw = bufio.NewWriterSize(w, 256<<10)
	return sw
}

// SetEngine names how the pages are found; only before the first line.
func (w *Writer) SetEngine(engine, method string) {
	if !w.began {
		w.header.Engine, w.header.Method = engine, method
	}
}

// Engine is the engine the header names.
func (w *Writer) Engine() string { return w.header.Engine }

func (w *Writer) begin() error {
	if w.began {
		return nil
	}
	w.began = true
	b, err := json.Marshal(w.header)
	if err != nil {
		return fmt.Errorf("snapshot header: %w", err)
	}
	return w.write(append(b, '\n'))
}

func (w *Writer) write(b []byte) error {
	if _, err := w.bw.Write(b); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// File writes one file line.
func (w *Writer) File(f File) error {
	if err := w.begin(); err != nil {
		return err
	}
	w.line = appendFile(w.line[:0], f)
	w.end.Files++
	w.end.Pages += f.Pages
	w.end.Ranges += uint64(len(f.Ranges))
	return w.write(w.line)
}

// appendFile is a file line, built by hand: a snapshot of a million files
// is mostly these.
func appendFile(b []byte, f File) []byte {
	b = append(b, `{"record":"file",`...)
	b = appendPath(b, "path", f.Path)
	if f.Root != "" {
		b = appendPath(b, "root", f.Root)
	}
	b = append(b, `"device":`...)
	b = strconv.AppendQuote(b, f.Device)
	b = append(b, `,"inode":`...)
	b = strconv.AppendUint(b, f.Inode, 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, f.Size, 10)
	b = append(b, `,"mtime":"`...)
	b = f.Mtime.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","pages":`...)
	b = strconv.AppendUint(b, f.Pages, 10)
	b = append(b, `,"ranges":[`...)
	for i, r := range f.Ranges {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendUint(b, r.First, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, r.Pages, 10)
		b = append(b, ']')
	}
	b = append(b, ']')
	if f.Engine != "" {
		b = append(b, `,"engine":`...)
		b = strconv.AppendQuote(b, f.Engine)
	}
	return append(b, "}\n"...)
}

// appendPath writes "key":PATH, and "key_b64" with its exact bytes when
// PATH is not UTF-8 (as the other JSON documents do).
func appendPath(b []byte, key, p string) []byte {
	shown, b64 := report.JSONPath(p)
	js, _ := json.Marshal(shown) // a valid UTF-8 string always marshals
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":`...)
	b = append(b, js...)
	b = append(b, ',')
	if b64 != "" {
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `_b64":"`...)
		b = append(b, b64...)
		b = append(b, `",`...)
	}
	return b
}

// Fail counts a path without figures (reported elsewhere, not written).
func (w *Writer) Fail() { w.end.Errors++ }

// Skip counts a file left out.
func (w *Writer) Skip() { w.end.Skipped++ }

// Close writes the end line and flushes; it does not close the writer
// underneath. It returns the end line's counts.
func (w *Writer) Close() (End, error) {
	if err := w.begin(); err != nil {
		return w.end, err
	}
	w.end.Record = "end"
	b, err := json.Marshal(w.end)
	if err != nil {
		return w.end, fmt.Errorf("snapshot end: %w", err)
	}
	if err := w.write(append(b, '\n')); err != nil {
		return w.end, err
	}
	if err := w.bw.Flush(); err != nil {
		return w.end, fmt.Errorf("write snapshot: %w", err)
	}
	if w.gz != nil {
		if err := w.gz.Close(); err != nil {
			return w.end, fmt.Errorf("write snapshot: %w", err)
		}
	}
	return w.end, nil
}

// Reader reads a snapshot, plain or gzip'd, one line at a time.
type Reader struct {
	Header Header
	// End is the end line, once read; nil while reading, and after the
	// last file of a snapshot that was cut short.
	End *End
	dec *json.Decoder
	gz  *gzip.Reader
}

// line is every field a file line may hold, and the record kind.
type line struct {
	Record  string          `json:"record"`
	Path    string          `json:"path"`
	PathB64 string          `json:"path_b64"`
	Root    string          `json:"root"`
	RootB64 string          `json:"root_b64"`
	Device  string          `json:"device"`
	Inode   uint64          `json:"inode"`
	Size    int64           `json:"size"`
	Mtime   string          `json:"mtime"`
	Pages   uint64          `json:"pages"`
	Ranges  json.RawMessage `json:"ranges"` // the end line's is a count
	Engine  string          `json:"engine"`
}

// ErrNotSnapshot: the input does not start with a snapshot header.
var ErrNotSnapshot = errors.New("not a filecache snapshot")

// NewReader reads the header of the snapshot in r (sniffing gzip).
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	sr := &Reader{}
	in := io.Reader(br)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read snapshot: %w", err)
		}
		sr.gz, in = gz, gz
	}
	sr.dec = json.NewDecoder(in)
	var raw json.RawMessage
	if err := sr.dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty", ErrNotSnapshot)
		}
		return nil, fmt.Errorf("%w: %v", ErrNotSnapshot, err)
	}
	if err := json.Unmarshal(raw, &sr.Header); err != nil || sr.Header.Record != "snapshot" || sr.Header.Format != Format {
		return nil, ErrNotSnapshot
	}
	if sr.Header.Version != Version {
		return nil, fmt.Errorf("snapshot format version %d: this filecache reads version %d", sr.Header.Version, Version)
	}
	if sr.Header.PageSize <= 0 || sr.Header.PageSize&(sr.Header.PageSize-1) != 0 {
		return nil, fmt.Errorf("read snapshot: page size %d", sr.Header.PageSize)
	}
	return sr, nil
}

// Next returns the next file, or io.EOF after the last one (End is then
// set if the snapshot was complete).
func (r *Reader) Next() (*File, error) {
	for {
		var raw json.RawMessage
		if err := r.dec.Decode(&raw); errors.Is(err, io.EOF) {
			return nil, io.EOF
		} else if err != nil {
			return nil, fmt.Errorf("read snapshot: %w", err)
		}
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("read snapshot: %w", err)
		}
		switch l.Record {
		case "file":
			return fileOf(l)
		case "end":
			var end End
			if err := json.Unmarshal(raw, &end); err != nil {
				return nil, fmt.Errorf("read snapshot: end line: %w", err)
			}
			r.End = &end
		}
		// Other records, of a later revision of this version: passed over.
	}
}

func fileOf(l line) (*File, error) {
	f := &File{Path: l.Path, Root: l.Root, Device: l.Device, Inode: l.Inode, Size: l.Size, Pages: l.Pages, Engine: l.Engine}
	var err error
	if l.PathB64 != "" {
		if f.Path, err = unb64(l.PathB64); err != nil {
			return nil, fmt.Errorf("read snapshot: %s: path_b64: %w", l.Path, err)
		}
	}
	if l.RootB64 != "" {
		if f.Root, err = unb64(l.RootB64); err != nil {
			return nil, fmt.Errorf("read snapshot: %s: root_b64: %w", l.Path, err)
		}
	}
	if f.Mtime, err = time.Parse(time.RFC3339Nano, l.Mtime); err != nil {
		return nil, fmt.Errorf("read snapshot: %s: mtime: %w", l.Path, err)
	}
	var pairs [][2]uint64
	if err := json.Unmarshal(l.Ranges, &pairs); err != nil {
		return nil, fmt.Errorf("read snapshot: %s: ranges: %w", l.Path, err)
	}
	var sum uint64
	f.Ranges = make([]pagecache.Extent, len(pairs))
	for i, r := range pairs {
		if r[1] == 0 || (i > 0 && r[0] < f.Ranges[i-1].End()) || r[0]+r[1] < r[0] {
			return nil, fmt.Errorf("read snapshot: %s: range %d (%d+%d) is empty, out of order or overlapping", l.Path, i, r[0], r[1])
		}
		f.Ranges[i] = pagecache.Extent{First: r[0], Pages: r[1]}
		sum += r[1]
	}
	if sum != f.Pages {
		return nil, fmt.Errorf("read snapshot: %s: its ranges hold %d pages, its line says %d", l.Path, sum, f.Pages)
	}
	return f, nil
}

func unb64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}

// Close releases the gzip reader, if any; it does not close the input.
func (r *Reader) Close() error {
	if r.gz != nil {
		return r.gz.Close()
	}
	return nil
}
