package cli

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"

	"github.com/filecache/filecache/cmd/filecache/internal/pagecache"
	"github.com/filecache/filecache/cmd/filecache/internal/units"
	"github.com/filecache/filecache/scripts/deploy"
)

// The deployment files (scripts/deploy) held to filecache's grammar and
// to each other: the unit's command line parses; its capabilities are
// those the bpf engine's check asks for, plus CAP_DAC_READ_SEARCH (which
// the integration test shows is needed), and nothing else; the DaemonSet
// runs the same command with the same capabilities and memory limit; the
// scrape configurations point at its port and pods.

// unitCaps are the capabilities the unit may name, by number.
var unitCaps = map[string]int{"CAP_BPF": pagecache.CapBPF, "CAP_PERFMON": pagecache.CapPerfmon, "CAP_DAC_READ_SEARCH": 2}

func execStart(t *testing.T) []string {
	t.Helper()
	argv, err := deploy.ExecStart()
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) < 2 || argv[0] != "/usr/local/bin/filecache" || argv[1] != "serve" {
		t.Fatalf("ExecStart %q: want /usr/local/bin/filecache serve ...", argv)
	}
	return argv
}

func TestUnitFile(t *testing.T) {
	argv := execStart(t)
	c, _, err := parse(argv[1:], &Env{})
	if err != nil {
		t.Fatalf("ExecStart %q does not parse: %v", argv, err)
	}
	if c.Serve.RootFS != "" || c.Serve.MaxAge <= 0 || c.Serve.N != 20 {
		t.Errorf("ExecStart %q: %+v", argv, c.Serve)
	}
	names, err := deploy.Capabilities()
	if err != nil {
		t.Fatal(err)
	}
	var caps pagecache.Caps
	for _, n := range names {
		bit, ok := unitCaps[n]
		if !ok {
			t.Errorf("the unit grants %s, which filecache serve does not need", n)
		}
		caps |= 1 << bit
	}
	ok := func(string) error { return nil }
	if err := pagecache.CheckBPF(caps, "", ok); err != nil {
		t.Errorf("the unit's capabilities %q do not pass the bpf engine's check: %v", names, err)
	}
	for _, n := range []string{"CAP_BPF", "CAP_PERFMON"} {
		if err := pagecache.CheckBPF(caps&^(1<<unitCaps[n]), "", ok); err == nil {
			t.Errorf("without %s the check still passes: it is not needed, or the check is wrong", n)
		}
	}
	if !slices.Contains(names, "CAP_DAC_READ_SEARCH") {
		t.Errorf("the unit lacks CAP_DAC_READ_SEARCH: mount points under private directories cannot be walked")
	}
	if v := deploy.UnitValues("Service", "ProtectHome"); len(v) != 1 || v[0] != "read-only" {
		t.Errorf("ProtectHome=%q: yes would cover /home, /root and /run/user with empty mounts", v)
	}
	for _, k := range []string{"PrivateDevices", "TemporaryFileSystem", "ProtectProc", "InaccessiblePaths"} {
		if v := deploy.UnitValues("Service", k); len(v) > 0 {
			t.Errorf("%s=%q hides filesystems or processes the walk needs", k, v)
		}
	}
	// systemd's own reading of the unit, with the binary where the unit
	// expects one.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("skip[feature:systemd-analyze]: no systemd-analyze to verify the unit with")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "filecache.service")
	if err := os.WriteFile(unit, []byte(strings.Replace(deploy.Unit, "ExecStart="+argv[0], "ExecStart="+self, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", unit).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// daemonSet is the part of the manifest the test reads.
type daemonSet struct {
	Kind     string
	Metadata struct {
		Namespace string
		Labels    map[string]string
	}
	Spec struct {
		Template struct {
			Metadata struct{ Labels map[string]string }
			Spec     struct {
				HostPID    bool `yaml:"hostPID"`
				Containers []struct {
					Command []string
					Args    []string
					Ports   []struct {
						Name          string
						ContainerPort int `yaml:"containerPort"`
					}
					SecurityContext struct {
						RunAsUser    *int `yaml:"runAsUser"`
						Capabilities struct{ Add, Drop []string }
					} `yaml:"securityContext"`
					Resources struct {
						Limits map[string]string
					}
					VolumeMounts []struct {
						Name             string
						MountPath        string `yaml:"mountPath"`
						ReadOnly         bool   `yaml:"readOnly"`
						MountPropagation string `yaml:"mountPropagation"`
					} `yaml:"volumeMounts"`
				}
				Volumes []struct {
					Name     string
					HostPath struct{ Path string } `yaml:"hostPath"`
				}
			}
		}
	}
}

// port is the port of a --web.listen-address value.
func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// memBytes reads a systemd (64M) or Kubernetes (64Mi) memory size; both
// mean MiB.
func memBytes(t *testing.T, s string) int64 {
	t.Helper()
	n, err := units.ParseSize(strings.TrimSuffix(s, "i"))
	if err != nil {
		t.Fatalf("memory size %q: %v", s, err)
	}
	return n
}

func TestDaemonSet(t *testing.T) {
	argv := execStart(t)
	var ds daemonSet
	if err := yaml.Unmarshal([]byte(deploy.DaemonSet), &ds); err != nil {
		t.Fatalf("daemonset.yaml: %v", err)
	}
	spec := ds.Spec.Template.Spec
	if ds.Kind != "DaemonSet" || len(spec.Containers) != 1 {
		t.Fatalf("daemonset.yaml: kind %q, %d containers", ds.Kind, len(spec.Containers))
	}
	c := spec.Containers[0]
	if !slices.Equal(c.Command, argv[:1]) {
		t.Errorf("command %q, the unit runs %q", c.Command, argv[0])
	}
	var rootfs string
	args := slices.DeleteFunc(slices.Clone(c.Args), func(a string) bool {
		v, ok := strings.CutPrefix(a, "--path.rootfs=")
		if ok {
			rootfs = v
		}
		return ok
	})
	if !slices.Equal(args, argv[1:]) {
		t.Errorf("args %q (without --path.rootfs), the unit's %q", args, argv[1:])
	}
	parsed, _, err := parse(c.Args, &Env{})
	if err != nil {
		t.Fatalf("the DaemonSet's args do not parse: %v", err)
	}
	if rootfs == "" || parsed.Serve.RootFS != rootfs {
		t.Errorf("--path.rootfs %q (parsed %q)", rootfs, parsed.Serve.RootFS)
	}
	// The host's root, read-only, following the host's later mounts, where
	// --path.rootfs says.
	found := false
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.HostPath.Path == "/" {
				found = m.MountPath == rootfs && m.ReadOnly && m.MountPropagation == "HostToContainer"
			}
		}
	}
	if !found {
		t.Errorf("no read-only HostToContainer mount of the host's / at %q: %+v", rootfs, c.VolumeMounts)
	}
	names, err := deploy.Capabilities()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range names {
		want = append(want, strings.TrimPrefix(n, "CAP_"))
	}
	sc := c.SecurityContext
	if !slices.Equal(slices.Sorted(slices.Values(sc.Capabilities.Add)), slices.Sorted(slices.Values(want))) || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("capabilities add %q drop %q; the unit's are %q and nothing else", sc.Capabilities.Add, sc.Capabilities.Drop, want)
	}
	// Kubernetes gives added capabilities only to root (no ambient ones).
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("runAsUser %v: the added capabilities are effective for uid 0 only", sc.RunAsUser)
	}
	if p := port(t, parsed.Serve.ListenAddress); len(c.Ports) != 1 || c.Ports[0].ContainerPort != p || c.Ports[0].Name != "metrics" {
		t.Errorf("ports %+v; serve listens on %d", c.Ports, p)
	}
	mem := deploy.UnitValues("Service", "MemoryMax")
	if len(mem) != 1 || memBytes(t, c.Resources.Limits["memory"]) != memBytes(t, mem[0]) {
		t.Errorf("memory limit %q, the unit's MemoryMax %q", c.Resources.Limits["memory"], mem)
	}
	if c.Resources.Limits["cpu"] == "" {
		t.Error("no CPU limit")
	}

	// The Kubernetes scrape configuration keeps exactly these pods' port.
	var kc struct {
		ScrapeConfigs []struct {
			JobName             string `yaml:"job_name"`
			MetricsPath         string `yaml:"metrics_path"`
			KubernetesSDConfigs []struct {
				Role       string
				Namespaces struct{ Names []string }
			} `yaml:"kubernetes_sd_configs"`
			RelabelConfigs []struct {
				SourceLabels []string `yaml:"source_labels"`
				Regex        string
				Action       string
			} `yaml:"relabel_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(deploy.KubernetesScrapeConfig), &kc); err != nil || len(kc.ScrapeConfigs) != 1 {
		t.Fatalf("prometheus-kubernetes.yml: %v, %d jobs", err, len(kc.ScrapeConfigs))
	}
	job := kc.ScrapeConfigs[0]
	if job.MetricsPath != "" && job.MetricsPath != parsed.Serve.TelemetryPath {
		t.Errorf("metrics_path %q, serve's %q", job.MetricsPath, parsed.Serve.TelemetryPath)
	}
	if len(job.KubernetesSDConfigs) != 1 || job.KubernetesSDConfigs[0].Role != "pod" || !slices.Contains(job.KubernetesSDConfigs[0].Namespaces.Names, ds.Metadata.Namespace) {
		t.Errorf("kubernetes_sd_configs %+v: want pods of namespace %q", job.KubernetesSDConfigs, ds.Metadata.Namespace)
	}
	keep := false
	for _, r := range job.RelabelConfigs {
		if r.Action == "keep" && slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_label_app_kubernetes_io_name", "__meta_kubernetes_pod_container_port_name"}) {
			keep = r.Regex == ds.Spec.Template.Metadata.Labels["app.kubernetes.io/name"]+";"+c.Ports[0].Name
		}
	}
	if !keep {
		t.Errorf("prometheus-kubernetes.yml keeps no pod labelled %q with port %q: %+v", ds.Spec.Template.Metadata.Labels, c.Ports[0].Name, job.RelabelConfigs)
	}
}

func TestScrapeConfig(t *testing.T) {
	argv := execStart(t)
	c, _, err := parse(argv[1:], &Env{})
	if err != nil {
		t.Fatal(err)
	}
	var sc struct {
		ScrapeConfigs []struct {
			JobName       string                       `yaml:"job_name"`
			MetricsPath   string                       `yaml:"metrics_path"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(deploy.ScrapeConfig), &sc); err != nil || len(sc.ScrapeConfigs) != 1 {
		t.Fatalf("prometheus.yml: %v, %+v", err, sc)
	}
	job := sc.ScrapeConfigs[0]
	if job.MetricsPath != "" && job.MetricsPath != c.Serve.TelemetryPath {
		t.Errorf("metrics_path %q, the unit serves %q", job.MetricsPath, c.Serve.TelemetryPath)
	}
	if len(job.StaticConfigs) != 1 || len(job.StaticConfigs[0].Targets) == 0 {
		t.Fatalf("prometheus.yml: want one static_configs with targets: %+v", job)
	}
	for _, target := range job.StaticConfigs[0].Targets {
		if port(t, target) != port(t, c.Serve.ListenAddress) {
			t.Errorf("target %s: the unit listens on %s", target, c.Serve.ListenAddress)
		}
	}
}
