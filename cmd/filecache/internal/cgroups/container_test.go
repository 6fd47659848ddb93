package cgroups

import "testing"

// Cgroup paths as /proc/PID/cgroup writes them on real machines, for each
// runtime and driver, cgroup v1 and v2.
func TestContainerOf(t *testing.T) {
	const (
		id  = "3f1b6c0a9e2d4b5c8a7f6e5d4c3b2a190817263544536271809a8b7c6d5e4f3a"
		id2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		uid = "7c2b1e4a-5d3f-4a1b-9c8e-2f6d0a1b3c4d"
		usc = "7c2b1e4a_5d3f_4a1b_9c8e_2f6d0a1b3c4d"
	)
	for _, tc := range []struct {
		path string
		want Container
	}{
		// Docker, cgroupfs driver (v1, and v2 with cgroupns=host).
		{"/docker/" + id, Container{ID: id, Runtime: "docker"}},
		// Docker, systemd driver.
		{"/system.slice/docker-" + id + ".scope", Container{ID: id, Runtime: "docker"}},
		// Docker in docker: the inner container.
		{"/docker/" + id + "/docker/" + id2, Container{ID: id2, Runtime: "docker"}},
		// containerd CRI, systemd driver, cgroup v2 (Kubernetes >= 1.25 default).
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + usc + ".slice/cri-containerd-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: "containerd"}},
		// Guaranteed QoS: no QoS slice.
		{"/kubepods.slice/kubepods-pod" + usc + ".slice/cri-containerd-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: "containerd"}},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + usc + ".slice/cri-containerd-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: "containerd"}},
		// kind and kubeadm with a cgroup root: kubelet.slice/kubelet-kubepods...
		{"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + usc + ".slice/cri-containerd-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: "containerd"}},
		// cgroupfs driver (v1): kubepods/QOS/pod<UID>/<ID>.
		{"/kubepods/burstable/pod" + uid + "/" + id, Container{ID: id, PodUID: uid}},
		{"/kubepods/pod" + uid + "/" + id, Container{ID: id, PodUID: uid}},
		{"/kubepods/besteffort/pod" + uid + "/" + id, Container{ID: id, PodUID: uid}},
		// A static pod's UID is a hash without dashes.
		{"/kubepods/burstable/pod0f4d5c6b7a8e9f0a1b2c3d4e5f6a7b8c/" + id, Container{ID: id, PodUID: "0f4d5c6b7a8e9f0a1b2c3d4e5f6a7b8c"}},
		// The pod's own cgroup: a pod, no container.
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + usc + ".slice", Container{PodUID: uid}},
		{"/kubepods/burstable/pod" + uid, Container{PodUID: uid}},
		// CRI-O, systemd driver: the container and its conmon.
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + usc + ".slice/crio-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: "cri-o"}},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + usc + ".slice/crio-conmon-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: "cri-o-conmon"}},
		// CRI-O, cgroupfs driver.
		{"/kubepods/burstable/pod" + uid + "/crio-" + id, Container{ID: id, PodUID: uid, Runtime: "cri-o"}},
		// Docker as the Kubernetes runtime (dockershim, cri-dockerd), systemd driver.
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + usc + ".slice/docker-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: "docker"}},
		// Podman: root (machine.slice), rootless (user slice), its inner
		// "container" cgroup (systemd in the container), conmon, cgroupfs.
		{"/machine.slice/libpod-" + id + ".scope", Container{ID: id, Runtime: "podman"}},
		{"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope", Container{ID: id, Runtime: "podman"}},
		{"/machine.slice/libpod-" + id + ".scope/container", Container{ID: id, Runtime: "podman"}},
		{"/machine.slice/libpod-conmon-" + id + ".scope", Container{ID: id, Runtime: "podman-conmon"}},
		{"/libpod_parent/libpod-" + id, Container{ID: id, Runtime: "podman"}},
		// systemd-nspawn as a service, its payload, and as a machined scope.
		{"/machine.slice/systemd-nspawn@web.service", Container{ID: "web", Runtime: "systemd-nspawn"}},
		{"/machine.slice/systemd-nspawn@my\\x2dbox.service/payload/system.slice/nginx.service", Container{ID: "my-box", Runtime: "systemd-nspawn"}},
		{"/machine.slice/machine-my\\x2dbox.scope", Container{ID: "my-box", Runtime: "machined"}},
		{"/machine.slice/machine-my\\x2dbox.scope/payload", Container{ID: "my-box", Runtime: "machined"}},
		// containerd without Kubernetes: nerdctl (systemd), ctr (cgroupfs namespace/id).
		{"/system.slice/nerdctl-" + id + ".scope", Container{ID: id, Runtime: "containerd"}},
		{"/default/" + id, Container{ID: id}},
		// LXC.
		{"/lxc.payload.web1", Container{ID: "web1", Runtime: "lxc"}},
		{"/lxc/web1", Container{ID: "web1", Runtime: "lxc"}},
		// No container: services, sessions, the root, this project's own
		// machines, a pod-like name outside kubepods, a non-hex scope.
		{"/", Container{}},
		{"/system.slice/sshd.service", Container{}},
		{"/user.slice/user-0.slice/session-3.scope", Container{}},
		{"/process_api/126e27d9ff800b464a931c32ef98a79b", Container{}},
		{"/podcasts/pod1234", Container{}},
		{"/system.slice/docker-notanid.scope", Container{}},
		{"/system.slice/docker.service", Container{}},
		{"/system.slice/containerd.service", Container{}},
		{"/kubepods.slice/kubepods-burstable.slice", Container{}},
	} {
		if got := ContainerOf(tc.path); got != tc.want {
			t.Errorf("ContainerOf(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
	}
}

func TestContainerShort(t *testing.T) {
	for id, want := range map[string]string{
		"3f1b6c0a9e2d4b5c8a7f6e5d4c3b2a190817263544536271809a8b7c6d5e4f3a": "3f1b6c0a9e2d",
		"my-box": "my-box",
		"":       "",
	} {
		if got := (Container{ID: id}).Short(); got != want {
			t.Errorf("Short(%q) = %q, want %q", id, got, want)
		}
	}
}
