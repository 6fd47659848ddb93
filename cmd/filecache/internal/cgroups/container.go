package cgroups

import (
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Container is what a cgroup's path says of the container it belongs to,
// by the naming conventions of the runtimes that made it.
type Container struct {
	// ID is the container's id: the runtime's 64 hex digits, or the name
	// of a systemd-nspawn, machined or LXC container. "" when the path
	// names no container.
	ID string
	// PodUID is the Kubernetes pod's UID, as the API shows it (dashes), for
	// a container of a pod or the pod's own cgroup; "" otherwise.
	PodUID string
	// Runtime names the convention the path follows: docker, containerd,
	// cri-o, podman, systemd-nspawn, machined, lxc; cri-o-conmon and
	// podman-conmon for the monitor process beside a container (whose
	// pages include the container's log files); "" for a container id whose
	// runtime the path does not say (a Kubernetes container under the
	// cgroupfs driver, a bare 64-hex directory).
	Runtime string
}

// Short is the container id as `docker ps` shows it: 12 digits of a hex id,
// a name whole.
func (c Container) Short() string {
	if len(c.ID) == 64 && hexID.MatchString(c.ID) {
		return c.ID[:12]
	}
	return c.ID
}

var (
	hexID = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// Runtime scopes (systemd driver) and cgroupfs directories named
	// after the container: PREFIX-ID.scope, or PREFIX-ID.
	prefixed = []struct{ prefix, runtime string }{
		{"cri-containerd-", "containerd"},
		{"crio-conmon-", "cri-o-conmon"},
		{"crio-", "cri-o"},
		{"libpod-conmon-", "podman-conmon"},
		{"libpod-", "podman"},
		{"docker-", "docker"},
		{"nerdctl-", "containerd"},
	}
	// A pod's slice (systemd driver: kubepods[-QOS]-pod<UID with _>.slice,
	// possibly under a kubelet- prefix) or directory (cgroupfs: pod<UID>).
	podSlice = regexp.MustCompile(`^(?:[a-z]+-)*kubepods(?:-[a-z]+)?-pod([0-9a-fA-F_]+)\.slice$`)
	podDir   = regexp.MustCompile(`^pod([0-9a-fA-F-]+)$`)
)

// ContainerOf reads the container (and Kubernetes pod) a cgroup path
// belongs to, as /proc/PID/cgroup writes it, for cgroup v1 and v2 alike.
// The innermost container wins: a cgroup a container made inside itself
// (nested docker, the payload of systemd-nspawn) is the inner one's.
func ContainerOf(p string) Container {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	var c Container
	kube := -1 // the first component of a kubepods hierarchy
	for i, name := range parts {
		if kube < 0 && (name == "kubepods" || strings.HasSuffix(name, "kubepods.slice") || strings.HasPrefix(name, "kubepods-")) {
			kube = i
		}
		if m := podSlice.FindStringSubmatch(name); m != nil {
			c.PodUID = strings.ReplaceAll(m[1], "_", "-")
		} else if m := podDir.FindStringSubmatch(name); m != nil && kube >= 0 && kube < i {
			c.PodUID = m[1]
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if id, rt, ok := containerName(parts, i); ok {
			c.ID, c.Runtime = id, rt
			break
		}
	}
	return c
}

// containerName reads parts[i] as a container's cgroup.
func containerName(parts []string, i int) (id, runtime string, ok bool) {
	name := parts[i]
	parent := ""
	if i > 0 {
		parent = parts[i-1]
	}
	bare := strings.TrimSuffix(name, ".scope")
	for _, p := range prefixed {
		if rest, found := strings.CutPrefix(bare, p.prefix); found && hexID.MatchString(rest) {
			return rest, p.runtime, true
		}
	}
	switch {
	case hexID.MatchString(name):
		// cgroupfs drivers: docker/ID, kubepods/.../pod<UID>/ID, a
		// containerd namespace's NAMESPACE/ID.
		if parent == "docker" {
			return name, "docker", true
		}
		return name, "", true
	case strings.HasPrefix(name, "systemd-nspawn@") && strings.HasSuffix(name, ".service"):
		return unitUnescape(strings.TrimSuffix(strings.TrimPrefix(name, "systemd-nspawn@"), ".service")), "systemd-nspawn", true
	case parent == "machine.slice" && strings.HasPrefix(name, "machine-") && strings.HasSuffix(name, ".scope"):
		return unitUnescape(strings.TrimSuffix(strings.TrimPrefix(name, "machine-"), ".scope")), "machined", true
	case strings.HasPrefix(name, "lxc.payload."):
		return strings.TrimPrefix(name, "lxc.payload."), "lxc", true
	case parent == "lxc" && name != "" && i == 1:
		return name, "lxc", true
	}
	return "", "", false
}

// unitUnescape undoes systemd's escaping of unit names (\x2d for "-").
func unitUnescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
