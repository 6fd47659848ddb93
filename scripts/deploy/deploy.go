// Package deploy holds filecache's deployment files: the systemd unit
// (filecache.service), the Kubernetes DaemonSet (daemonset.yaml), the
// Prometheus scrape configurations (prometheus.yml for hosts,
// prometheus-kubernetes.yml for the DaemonSet) and the warm-restart units
// (filecache-snapshot.service, filecache-restore.service). They are embedded so the
// tests that hold them to what filecache does read these exact bytes,
// wherever the tests run (in a vmtest guest too).
package deploy

import (
	_ "embed"
	"fmt"
	"strings"
)

// The files, as committed.
var (
	//go:embed filecache.service
	Unit string
	//go:embed daemonset.yaml
	DaemonSet string
	//go:embed prometheus.yml
	ScrapeConfig string
	//go:embed prometheus-kubernetes.yml
	KubernetesScrapeConfig string
	//go:embed filecache-snapshot.service
	SnapshotUnit string
	//go:embed filecache-restore.service
	RestoreUnit string
)

// UnitValues is every value of key in the serve unit's [section] (Values).
func UnitValues(section, key string) []string { return Values(Unit, section, key) }

// Values is every value of key in a unit's [section], in order (a key may
// be given more than once). Comments and blank lines are skipped; the
// units use no line continuations.
func Values(unit, section, key string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(unit, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "["):
			in = l == "["+section+"]"
		case in:
			if k, v, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == key {
				out = append(out, strings.TrimSpace(v))
			}
		}
	}
	return out
}

// ExecStart is the serve unit's command line, split into words (Command).
func ExecStart() ([]string, error) { return Command(Unit, "filecache.service", "ExecStart") }

// Command is a unit's command line (ExecStart, ExecStop), split into
// words. The units keep it plain (no quotes, no variables, no prefixes
// such as "-" or "+"), so words are separated by spaces; anything else is
// an error. name is the unit's file name, for errors.
func Command(unit, name, key string) ([]string, error) {
	v := Values(unit, "Service", key)
	if len(v) != 1 {
		return nil, fmt.Errorf("%s: %d %s lines, want 1", name, len(v), key)
	}
	if strings.ContainsAny(v[0], `"'\$%`) || strings.ContainsAny(v[0][:1], "-+@!:|") {
		return nil, fmt.Errorf("%s: %s=%s: quoting, variables or prefixes, which this reader does not follow", name, key, v[0])
	}
	return strings.Fields(v[0]), nil
}

// Capabilities is the serve unit's capabilities (UnitCapabilities).
func Capabilities() ([]string, error) { return UnitCapabilities(Unit, "filecache.service") }

// UnitCapabilities is a unit's AmbientCapabilities, names as systemd
// spells them (CAP_BPF); an error if CapabilityBoundingSet says otherwise.
func UnitCapabilities(unit, name string) ([]string, error) {
	amb, bound := Values(unit, "Service", "AmbientCapabilities"), Values(unit, "Service", "CapabilityBoundingSet")
	if len(amb) != 1 || len(bound) != 1 {
		return nil, fmt.Errorf("%s: want one AmbientCapabilities and one CapabilityBoundingSet, have %q and %q", name, amb, bound)
	}
	a, b := strings.Fields(amb[0]), strings.Fields(bound[0])
	if strings.Join(a, " ") != strings.Join(b, " ") {
		return nil, fmt.Errorf("%s: AmbientCapabilities %q and CapabilityBoundingSet %q differ", name, a, b)
	}
	return a, nil
}
