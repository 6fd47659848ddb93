package report

import (
	"fmt"

	"github.com/filecache/filecache/cmd/filecache/internal/cgroups"
	"github.com/filecache/filecache/cmd/filecache/internal/procs"
	"github.com/filecache/filecache/cmd/filecache/internal/scan"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
)

// Process is one --pid process's sums over the regular files it holds
// open or mapped.
type Process struct {
	PID       int
	Comm      string
	Container cgroups.Container
	Files     int
	Size      int64
	Total     uint64 // pages the files span
	Pages     uint64 // pages cached
}

// AddHeld counts a measured file into the sums of each --pid process
// holding it.
func (r *Report) AddHeld(f scan.File) {
	if f.Err != nil {
		return
	}
	for _, h := range f.Holders {
		for i := range r.Processes {
			if p := &r.Processes[i]; p.PID == h.PID {
				p.Files++
				p.Size += f.Size
				p.Total += r.pagesOf(f)
				p.Pages += f.Pages
			}
		}
	}
}

type jsonHolder struct {
	PID    int    `json:"pid"`
	Comm   string `json:"comm"`
	FDs    []int  `json:"fds"`
	Mapped bool   `json:"mapped"`
}

type jsonProcess struct {
	PID         int     `json:"pid"`
	Comm        string  `json:"comm"`
	ContainerID string  `json:"container_id,omitempty"`
	PodUID      string  `json:"pod_uid,omitempty"`
	Files       int     `json:"files"`
	SizeBytes   int64   `json:"size_bytes"`
	TotalPages  uint64  `json:"total_pages"`
	Cached      uint64  `json:"cached_pages"`
	CachedB     uint64  `json:"cached_bytes"`
	Percent     float64 `json:"percent"`
}

func jsonHolders(hs []procs.Holder) *[]jsonHolder {
	if len(hs) == 0 {
		return nil
	}
	out := []jsonHolder{}
	for _, h := range hs {
		fds := h.FDs
		if fds == nil {
			fds = []int{}
		}
		out = append(out, jsonHolder{PID: h.PID, Comm: h.Comm, FDs: fds, Mapped: h.Mapped})
	}
	return &out
}

func (r Report) jsonProcess(p Process) jsonProcess {
	return jsonProcess{PID: p.PID, Comm: p.Comm, ContainerID: p.Container.ID, PodUID: p.Container.PodUID,
		Files: p.Files, SizeBytes: p.Size, TotalPages: p.Total, Cached: p.Pages, CachedB: p.Pages * uint64(r.PageSize),
		Percent: units.Percent(p.Pages, p.Total)}
}

// processName is a process's row in the table.
func processName(p Process) string {
	s := fmt.Sprintf("pid %d (%s)", p.PID, units.Display(p.Comm))
	if p.Container.ID != "" {
		s += " in container " + p.Container.Short()
	}
	return fmt.Sprintf("%s: %d files", s, p.Files)
}

// Process streams one --pid process's sums (NDJSON, before the summary).
func (n *NDJSON) Process(r Report, p Process) error {
	return n.encode(struct {
		Record string `json:"record"`
		jsonProcess
	}{"process", r.jsonProcess(p)})
}
