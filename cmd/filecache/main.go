//go:build cgo

// Command filecache reports how much of each file sits in the page cache.
// This file only wires the BPF loader into the command line; see package cli.
package main

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cgo"
	// `filecache FILE...` answered before the Go runtime starts, where it
	// can be (cgo/fastpath/fastpath.c).
	_ "github.com/filecache/filecache/cgo/fastpath"
	"github.com/filecache/filecache/cmd/filecache/internal/cli"
	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// version and commit are set at build time (-X main.version=... -X
// main.commit=...; see the Makefile).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Env{
		Stdin:    os.Stdin,
		Terminal: isTerminal(os.Stderr),
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Build: cli.Build{
			Version: version,
			Commit:  commit,
			Go:      runtime.Version(),
			Libbpf:  cgo.LibbpfVersion(),
			Arch:    runtime.GOOS + "/" + runtime.GOARCH,
		},
		Load: loadBPF,
		LoadWalker: func(opts cli.LoadOptions) (top.Walker, func(), error) {
			w, err := cgo.LoadWalker(cgo.Options{BTFPath: opts.BTF, Method: opts.Method})
			if err != nil {
				return nil, nil, err
			}
			return w, w.Close, nil
		},
		LoadCgroupWalker: func(opts cli.LoadOptions) (top.CgroupWalker, func(), error) {
			w, err := cgo.LoadCgroupWalker(cgo.Options{BTFPath: opts.BTF, Method: opts.Method})
			if err != nil {
				return nil, nil, err
			}
			return w, w.Close, nil
		},
		WalkMethod: cgo.WalkMethod,
		LoadDirs: func(opts cli.LoadOptions) (pagecache.DirWalker, error) {
			w, err := cgo.LoadDirWalker(cgo.Options{BTFPath: opts.BTF})
			if err != nil {
				return nil, err
			}
			return w, nil
		},
		LoadPages: func(opts cli.LoadOptions) (pagecache.Engine, error) {
			p, err := cgo.LoadPages(cgo.Options{BTFPath: opts.BTF, Method: opts.Method})
			if err != nil {
				return nil, err
			}
			return pagecache.PageWalk{Walker: p}, nil
		},
		LoadRanges: func(opts cli.LoadOptions) (pagecache.Engine, error) {
			p, err := cgo.LoadPages(cgo.Options{BTFPath: opts.BTF, Method: opts.Method})
			if err != nil {
				return nil, err
			}
			return pagecache.ExtentWalk{Walker: p}, nil
		},
	}))
}

func loadBPF(opts cli.LoadOptions) (pagecache.Engine, error) {
	m, err := cgo.Load(cgo.Options{BTFPath: opts.BTF, Method: opts.Method})
	if err != nil {
		return nil, err
	}
	return pagecache.BPF{Runner: m}, nil
}

// isTerminal says whether f is a terminal (a TCGETS ioctl succeeds).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
