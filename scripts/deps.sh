#!/usr/bin/env bash
# deps.sh: install what building and testing filecache needs on a Debian
# machine (packages by name, from the machine's own apt sources), then fetch
# and build the pinned libbpf. Quiet and quick when everything is there.
set -euo pipefail

packages=(
	clang-19 llvm-19        # BPF compiler and llvm-strip
	gcc make pkg-config curl ca-certificates xz-utils
	libelf-dev zlib1g-dev libzstd-dev  # static libs libbpf links against
	linux-libc-dev          # <linux/types.h> for the layout check in cgo/
	bpftool                 # make vmlinux-full; gen min_core_btf, an oracle for cgo's CO-RE test
	shellcheck              # make lint
	vmtouch util-linux-extra time  # reference tools (fincore is in util-linux-extra) and GNU time for benchmarks
	util-linux              # losetup for the block device test
	squashfs-tools          # mksquashfs: the read-only squashfs test (TestReadOnlyMounts)
	prometheus              # a real Prometheus scraping filecache serve (TestServePrometheus; promtool)
	file                    # check-static
	qemu-system-x86 busybox-static e2fsprogs zstd debian-archive-keyring  # make vmtest: kernels in QEMU
	# make release: the arm64 cross build (its static libelf/zlib/zstd come
	# from arm64 .debs, scripts/sysroot.sh), its arm64 kernels in QEMU, and
	# the shells and groff the completion and man page tests run
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross linux-libc-dev-arm64-cross qemu-system-arm
	bash zsh fish groff-base
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps.sh: installing ${missing[*]}" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "deps.sh: go is not on PATH (Go >= 1.26 is needed)" >&2; exit 1; }
"$(dirname "$0")/../vendor.sh"
