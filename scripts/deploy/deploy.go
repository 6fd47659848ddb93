// Package deploy holds filecache's deployment files: the systemd unit
// (filecache.service), the Kubernetes DaemonSet (daemonset.yaml) and the
// Prometheus scrape configurations (prometheus.yml for hosts,
// prometheus-kubernetes.yml for the DaemonSet). They are embedded so the
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
)

// UnitValues is every value of key in the unit's [section], in order (a
// key may be given more than once). Comments and blank lines are skipped;
// the unit uses no line continuations.
func UnitValues(section, key string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(Unit, "\n") {
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

// ExecStart is the unit's command line, split into words. The unit keeps
// it plain (no quotes, no variables, no prefixes such as "-" or "+"), so
// words are separated by spaces; anything else is an error.
func ExecStart() ([]string, error) {
	v := UnitValues("Service", "ExecStart")
	if len(v) != 1 {
		return nil, fmt.Errorf("filecache.service: %d ExecStart lines, want 1", len(v))
	}
	if strings.ContainsAny(v[0], `"'\$%`) || strings.ContainsAny(v[0][:1], "-+@!:|") {
		return nil, fmt.Errorf("filecache.service: ExecStart=%s: quoting, variables or prefixes, which this reader does not follow", v[0])
	}
	return strings.Fields(v[0]), nil
}

// Capabilities is the unit's AmbientCapabilities, names as systemd spells
// them (CAP_BPF); an error if CapabilityBoundingSet says otherwise.
func Capabilities() ([]string, error) {
	amb, bound := UnitValues("Service", "AmbientCapabilities"), UnitValues("Service", "CapabilityBoundingSet")
	if len(amb) != 1 || len(bound) != 1 {
		return nil, fmt.Errorf("filecache.service: want one AmbientCapabilities and one CapabilityBoundingSet, have %q and %q", amb, bound)
	}
	a, b := strings.Fields(amb[0]), strings.Fields(bound[0])
	if strings.Join(a, " ") != strings.Join(b, " ") {
		return nil, fmt.Errorf("filecache.service: AmbientCapabilities %q and CapabilityBoundingSet %q differ", a, b)
	}
	return a, nil
}
