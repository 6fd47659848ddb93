package exporter

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/filecache/filecache/cmd/filecache/internal/top"
)

// Other is the label value of the series that folds what is not shown one
// by one: files outside the top N, filesystems below MinBytes. No mount
// point, path or filesystem type can be spelled so.
const Other = "(other)"

// The label names. device, mountpoint and fstype are node_exporter's names
// for its filesystem metrics, so the two join.
var (
	fsLabels = []string{"device", "mountpoint", "fstype"}
	// cgroup is a (cgroup, file) pair's cgroup (--by-cgroup); container_id
	// and pod_uid are its container and pod, or those of the mount
	// namespace the file was reached through. Empty when unknown, which
	// Prometheus takes as no label.
	fileLabels   = []string{"path", "mountpoint", "cgroup", "container_id", "pod_uid"}
	cgroupLabels = []string{"cgroup", "container_id", "pod_uid"}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	fsBytesDesc    = desc("filecache_filesystem_cached_bytes", "Page cache held by the inodes of a filesystem (mountpoint=\"(other)\": the filesystems holding less than --min, together).", fsLabels...)
	fsInodesDesc   = desc("filecache_filesystem_cached_inodes", "Inodes of a filesystem with pages in the page cache.", fsLabels...)
	fsCompleteDesc = desc("filecache_filesystem_walk_complete", "1 if the walk visited every inode of the filesystem, 0 if it walked part of it or none.", fsLabels...)
	foldedDesc     = desc("filecache_filesystems_folded", "Filesystems folded into the mountpoint=\"(other)\" series because they hold less than --min.")
	fileBytesDesc  = desc("filecache_file_cached_bytes", "Page cache held by one of the N files holding the most, or with --by-cgroup one cgroup's share of one (path=\"(other)\": every other file); the series sum to the filesystems' sum.", fileLabels...)
	cgroupDesc     = desc("filecache_cgroup_cached_bytes", "Page cache charged to a memory cgroup (--by-cgroup; cgroup=\"(other)\": the cgroups holding less than --min, together).", cgroupLabels...)
	cgroupsFolded  = desc("filecache_cgroups_folded", "Cgroups folded into the cgroup=\"(other)\" series because they hold less than --min (--by-cgroup).")
	memCachedDesc  = desc("filecache_meminfo_cached_bytes", "Cached in /proc/meminfo, read right after the walk.")
	memBuffersDesc = desc("filecache_meminfo_buffers_bytes", "Buffers in /proc/meminfo, read right after the walk.")
	memShmemDesc   = desc("filecache_meminfo_shmem_bytes", "Shmem in /proc/meminfo, read right after the walk.")
	durationDesc   = desc("filecache_walk_duration_seconds", "How long the walk whose figures are served took.")
	lastWalkDesc   = desc("filecache_last_walk_timestamp_seconds", "When the walk whose figures are served ended, in seconds since the epoch.")
	walksDesc      = desc("filecache_walks_total", "Walks of the page cache since the exporter started (scrapes that share or reuse a walk add none).")
	errorDesc      = desc("filecache_scrape_error", "1 if the walk whose figures are served failed, wholly or for some filesystem; the next scrape walks again.")
	buildDesc      = desc("filecache_build_info", "filecache's version, the revision and Go version it was built from, and libbpf's version.", "version", "revision", "goversion", "libbpf")

	allDescs = []*prometheus.Desc{fsBytesDesc, fsInodesDesc, fsCompleteDesc, foldedDesc, fileBytesDesc,
		memCachedDesc, memBuffersDesc, memShmemDesc, durationDesc, lastWalkDesc, walksDesc, errorDesc, buildDesc,
		cgroupDesc, cgroupsFolded}
)

// fsSum is one filesystem series: a filesystem, or several sharing labels.
type fsSum struct {
	bytes, inodes float64
	complete      bool
	walked        bool // has figures (a filesystem that failed has none)
}

// metrics sends what r says, with walks the walks ended so far.
func (e *Exporter) metrics(r *result, walks uint64, ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := e.cfg.Build
	gauge(buildDesc, 1, clean(b.Version), clean(b.Revision), clean(b.GoVersion), clean(b.Libbpf))
	ch <- prometheus.MustNewConstMetric(walksDesc, prometheus.CounterValue, float64(walks))
	gauge(errorDesc, boolValue(r.failed))
	if r.err != nil {
		return
	}
	gauge(durationDesc, r.end.Sub(r.start).Seconds())
	gauge(lastWalkDesc, float64(r.end.UnixNano())/1e9)
	s := r.snap
	if s.Mem.Read {
		gauge(memCachedDesc, float64(s.Mem.Cached))
		gauge(memBuffersDesc, float64(s.Mem.Buffers))
		gauge(memShmemDesc, float64(s.Mem.Shmem))
	}

	ps := float64(s.PageSize)
	// Series are summed by their labels: two filesystems or files may
	// show the same (deleted files of one name, names made valid UTF-8),
	// and a registry refuses a label set twice.
	var fsOrder [][3]string
	fss := map[[3]string]*fsSum{}
	other := &fsSum{complete: true, walked: true}
	folded, total := 0, 0.0
	for _, t := range s.FS {
		if t.Err != nil && unreachable(t.Err) {
			continue
		}
		sum := &fsSum{bytes: float64(t.Pages) * ps, inodes: float64(t.Cached), complete: t.Err == nil && t.Complete, walked: t.Err == nil}
		if sum.walked {
			total += sum.bytes
		}
		if sum.walked && uint64(sum.bytes) < e.cfg.MinBytes {
			other.bytes += sum.bytes
			other.inodes += sum.inodes
			other.complete = other.complete && sum.complete
			folded++
			continue
		}
		key := e.fsLabelValues(t.FS)
		if old, ok := fss[key]; ok {
			old.bytes += sum.bytes
			old.inodes += sum.inodes
			old.complete = old.complete && sum.complete
			old.walked = old.walked || sum.walked
			continue
		}
		fss[key] = sum
		fsOrder = append(fsOrder, key)
	}
	fsOrder = append(fsOrder, [3]string{Other, Other, Other})
	fss[fsOrder[len(fsOrder)-1]] = other
	for _, k := range fsOrder {
		sum := fss[k]
		if sum.walked {
			gauge(fsBytesDesc, sum.bytes, k[:]...)
			gauge(fsInodesDesc, sum.inodes, k[:]...)
		}
		gauge(fsCompleteDesc, boolValue(sum.complete), k[:]...)
	}
	gauge(foldedDesc, float64(folded))

	var fileOrder [][5]string
	files := map[[5]string]float64{}
	listed := 0.0
	for _, v := range s.Shown() {
		if len(fileOrder) >= e.cfg.N {
			break
		}
		row := v.Row
		fs := s.FS[row.FS].FS
		p := rowPath(row, fs)
		if row.NSPid != 0 && v.Container.ID != "" && !row.NoName {
			p = rowPath(top.Row{Path: top.PromPath(row, v.Container), Deleted: row.Deleted}, fs)
		}
		cg := ""
		if v.Pair != nil {
			cg = s.CgroupLabel(v.Pair.ID, v.Pair.Other)
		}
		key := [5]string{clean(e.strip(p)), e.fsLabelValues(fs)[1], clean(cg), clean(v.Container.ID), clean(v.Container.PodUID)}
		if _, ok := files[key]; !ok {
			fileOrder = append(fileOrder, key)
		}
		b := float64(v.Pages) * ps
		files[key] += b
		listed += b
	}
	for _, k := range fileOrder {
		gauge(fileBytesDesc, files[k], k[:]...)
	}
	// The walk of a filesystem can take its rows from a second run (when
	// the first admitted more inodes than one run returns), so a row may
	// have grown past its filesystem's sum: the rest never goes negative.
	gauge(fileBytesDesc, max(total-listed, 0), Other, Other, "", "", "")
	if s.CgroupWalk {
		e.cgroupMetrics(s, gauge)
	}
}

// cgroupMetrics sends each cgroup's pages, those holding less than MinBytes
// folded into one series.
func (e *Exporter) cgroupMetrics(s top.Snapshot, gauge func(*prometheus.Desc, float64, ...string)) {
	ps := float64(s.PageSize)
	var order [][3]string
	sums := map[[3]string]float64{}
	other, folded := 0.0, 0
	for _, cg := range s.Cgroups {
		b := float64(cg.Pages) * ps
		if uint64(b) < e.cfg.MinBytes {
			other += b
			folded++
			continue
		}
		c := s.Container(cg.ID)
		key := [3]string{clean(s.CgroupLabel(cg.ID, false)), clean(c.ID), clean(c.PodUID)}
		if _, ok := sums[key]; !ok {
			order = append(order, key)
		}
		sums[key] += b
	}
	for _, k := range order {
		gauge(cgroupDesc, sums[k], k[:]...)
	}
	gauge(cgroupDesc, other, Other, "", "")
	gauge(cgroupsFolded, float64(folded))
}

// fsLabelValues are a filesystem's device, mountpoint and fstype labels:
// the mount source, the mount point users see, and the type, as
// node_exporter gives them. The kernel's shmem and block device
// filesystems, which no mount shows, are named "shmem" and "bdev".
func (e *Exporter) fsLabelValues(fs top.Filesystem) [3]string {
	if fs.Label != "" {
		return [3]string{fs.Label, fs.Label, clean(fs.FSType)}
	}
	return [3]string{clean(fs.Source), clean(e.strip(fs.Name())), clean(fs.FSType)}
}

// rowPath is how a file is named: its path, marked when deleted; an inode
// with no name left by device and number.
func rowPath(r top.Row, fs top.Filesystem) string {
	p := r.Path
	if r.NoName {
		p = fmt.Sprintf("(no name: inode %d on %d:%d)", r.Ino, unix.Major(fs.Dev), unix.Minor(fs.Dev))
	}
	if r.Deleted {
		p += " (deleted)"
	}
	return p
}

// strip takes RootFS off a path under it.
func (e *Exporter) strip(p string) string {
	root := strings.TrimSuffix(e.cfg.RootFS, "/")
	if root == "" {
		return p
	}
	if p == root {
		return "/"
	}
	if rest, ok := strings.CutPrefix(p, root+"/"); ok {
		return "/" + rest
	}
	return p
}

// Rooted keeps, of each filesystem mounted under root (--path.rootfs), only
// its mounts under root: those name it and its files, and lead the walk
// to it. Filesystems with no mount under root (the container's own) and
// the kernel's labelled ones are left as they are.
func Rooted(fss []top.Filesystem, root string) []top.Filesystem {
	root = strings.TrimSuffix(root, "/")
	if root == "" {
		return fss
	}
	out := make([]top.Filesystem, 0, len(fss))
	for _, fs := range fss {
		var in []top.Mount
		for _, m := range fs.Mounts {
			if m.Point == root || strings.HasPrefix(m.Point, root+"/") {
				in = append(in, m)
			}
		}
		if fs.Label == "" && len(in) > 0 {
			fs.Mounts = in
		}
		out = append(out, fs)
	}
	return out
}

// clean makes a label value valid UTF-8, as Prometheus requires.
func clean(v string) string { return strings.ToValidUTF8(v, "\uFFFD") }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
