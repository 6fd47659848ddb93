#!/usr/bin/env bash
# vmtest.sh: run filecache's root integration tests (cmd/filecache/integration)
# on the running kernel and on the newest Debian cloud kernel of each suite
# (bullseye 5.10, bookworm 6.1, trixie 6.12, sid), each booted in QEMU with an
# initramfs (busybox-static, bin/filecache, the static test binary) and an
# ext4 disk on /var/tmp. Prints a kernel x configuration table; exits non-zero
# if any configuration fails on any kernel.
#
# Environment:
#   VMTEST_SUITES    suites to boot (default: bullseye bookworm trixie sid)
#   VMTEST_HOST=0    skip the row of the running kernel
#   VMTEST_REFRESH=1 resolve the newest kernel of each suite again (apt-get update)
#   VMTEST_ACCEL     kvm or tcg (default: try kvm once, fall back to tcg)
#   VMTEST_JOBS      VMs booted at the same time (default 1)
#   VMTEST_TIMEOUT   seconds one VM may run before it is killed (default 600)
#   VMTEST_BIN       the filecache binary (default bin/filecache)
# Everything lives in .cache/vmtest/: debs, extracted kernels, initramfs
# images, and logs/<suite>.log (the VM's whole console) per kernel.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=$root/.cache/vmtest
bin=${VMTEST_BIN:-$root/bin/filecache}
read -r -a suites <<<"${VMTEST_SUITES:-bullseye bookworm trixie sid}"
vm_timeout=${VMTEST_TIMEOUT:-600}
jobs=${VMTEST_JOBS:-1}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# The configurations every kernel runs the whole suite under, in order:
# NAME|MIN_KERNEL|ENVIRONMENT. MIN_KERNEL (major.minor, or empty) skips the
# configuration on older kernels; ENVIRONMENT is space-separated VAR=value
# assignments added to FILECACHE_INTEGRATION=1 FILECACHE_BIN=....
# This is the one place to add e.g. "cachestat||FILECACHE_ENGINE=cachestat".
configs=(
	"auto||"
	"bpf_loop|5.17|FILECACHE_BPF_METHOD=bpf_loop"
	"bounded-loop||FILECACHE_BPF_METHOD=bounded-loop"
	"attached||FILECACHE_BPF_METHOD=attached"
)

# Kernel features the guest needs: module name and Kconfig symbol. A symbol
# set to y is built in; to m, the module and what modules.dep says it needs
# are loaded by the guest's /init. A "?" marks one the guest can do without.
guest_modules=(
	virtio_pci:CONFIG_VIRTIO_PCI       # the PCI transport of the disk
	virtio_blk:CONFIG_VIRTIO_BLK       # the ext4 disk, /dev/vda
	crc32c_generic:CONFIG_CRYPTO_CRC32C? # ext4/jbd2 metadata_csum look "crc32c" up at mount (no modprobe here)
	ext4:CONFIG_EXT4_FS                # /var/tmp
	loop:CONFIG_BLK_DEV_LOOP           # TestBlockDevice
)

test_timeout=300 # seconds for one run of the test binary inside a VM
marker=@@vmtest

log() { printf 'vmtest: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------------------
# Kernels from the Debian archive the machine's own apt configuration names.

# apt_uris prints every archive URI of the apt configuration (deb822 .sources
# files and one-line .list files alike); the same reading as vendor.sh's.
apt_uris() {
	awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
	awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
}

# debian_mirror prints the first Debian archive URI, skipping security
# (vendor.sh's debian_mirror).
debian_mirror() {
	apt_uris | grep -E '/debian/?$' | grep -v -- '-security' | sed -n '1{s#/$##;p;}'
}

# debian_security_mirror prints the first Debian security archive URI, if any:
# stable kernels are updated there between point releases.
debian_security_mirror() {
	apt_uris | grep -E '/debian-security/?$' | sed -n '1{s#/$##;p;}'
}

# apt_opts SUITE sets the array apt to a private apt state for SUITE.
apt_opts() {
	local d=$cache/apt/$1
	apt=(
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache"
		-o "Dir::Etc::SourceList=$d/sources.sources" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
		-o Dir::State::status=/dev/null
		-o APT::Architecture=amd64 -o APT::Architectures=amd64
		-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
		-o APT::Update::Post-Invoke-Success::=
		-o APT::Sandbox::User=root
		-q
	)
}

# resolve SUITE prints the packages holding the newest cloud-amd64 kernel of
# SUITE (and its security suite): the versioned linux-image package the
# linux-image-cloud-amd64 metapackage depends on, plus the linux-binary,
# linux-modules and linux-base (config) packages it depends on when it is
# split (sid, since 7.x).
resolve() {
	local suite=$1 d=$cache/apt/$1 mirror security image
	mirror=$(debian_mirror)
	[ -n "$mirror" ] || die "no Debian archive URI in /etc/apt/sources.list{,.d}: cannot fetch kernels"
	security=$(debian_security_mirror)
	[ -r "$keyring" ] || die "$keyring is missing (package debian-archive-keyring)"
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	{
		printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$mirror" "$suite" "$keyring"
		if [ -n "$security" ] && [ "$suite" != sid ]; then
			printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' "$security" "$suite" "$keyring"
		fi
	} >"$d/sources.sources"
	apt_opts "$suite"
	# apt verifies each Release file against the keyring and fails otherwise.
	apt-get "${apt[@]}" update >"$d/update.log" 2>&1 ||
		die "apt-get update for $suite failed (signing key not in $keyring?):$(printf '\n'; tail -5 "$d/update.log")"
	image=$(apt-cache "${apt[@]}" show --no-all-versions linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^Depends: //p' | tr ',' '\n' | grep -oE 'linux-image-[0-9][^ ]*-cloud-amd64' | head -1) || true
	[ -n "$image" ] || die "$suite: no linux-image-cloud-amd64 or it names no kernel image"
	echo "$image"
	local dep
	apt-cache "${apt[@]}" show --no-all-versions "$image" | sed -n 's/^Depends: //p' | tr ',|' '\n\n' |
		awk '{ print $1 }' | sort -u | while read -r dep; do
		case $dep in
		linux-binary-"${image#linux-image-}" | linux-modules-"${image#linux-image-}" | linux-base-"${image#linux-image-}") echo "$dep" ;;
		esac
	done
}

# fetch_kernel SUITE downloads SUITE's kernel debs (once: VMTEST_REFRESH=1
# resolves the newest again) and extracts them into $cache/kernels/SUITE/root.
fetch_kernel() {
	local suite=$1 debs=$cache/debs/$1 k=$cache/kernels/$1 pkgs p f keep stamp
	mkdir -p "$debs"
	if [ ! -s "$debs/packages" ] || [ "${VMTEST_REFRESH:-}" = 1 ]; then
		log "$suite: resolving the newest cloud kernel"
		resolve "$suite" >"$debs/packages.new"
		mv "$debs/packages.new" "$debs/packages"
	fi
	mapfile -t pkgs <"$debs/packages"
	apt_opts "$suite"
	for p in "${pkgs[@]}"; do
		if ! compgen -G "$debs/${p}_*.deb" >/dev/null; then
			log "$suite: downloading $p"
			(cd "$debs" && apt-get "${apt[@]}" download "$p" >/dev/null)
		fi
	done
	for f in "$debs"/*.deb; do # drop kernels no longer resolved
		keep=0
		for p in "${pkgs[@]}"; do
			case $(basename "$f") in "${p}"_*) keep=1 ;; esac
		done
		[ "$keep" = 1 ] || rm -f "$f"
	done
	stamp=$(cd "$debs" && ls -- *.deb)
	if [ ! -f "$k/stamp" ] || [ "$(cat "$k/stamp")" != "$stamp" ]; then
		log "$suite: extracting $(echo "$stamp" | tr '\n' ' ')"
		rm -rf "$k"
		mkdir -p "$k/root"
		for f in "$debs"/*.deb; do
			dpkg-deb -x "$f" "$k/root"
		done
		echo "$stamp" >"$k/stamp"
	fi
}

# kernel_files SUITE sets kdir, release, vmlinuz, kconfig and moddir.
kernel_files() {
	kdir=$cache/kernels/$1
	local r=$kdir/root
	moddir=$(find "$r/lib/modules" "$r/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1 || true)
	[ -n "$moddir" ] || die "$1: no lib/modules/RELEASE in the kernel debs"
	release=$(basename "$moddir")
	vmlinuz=
	for f in "$r/boot/vmlinuz-$release" "$moddir/vmlinuz"; do
		[ -f "$f" ] && vmlinuz=$f && break
	done
	[ -n "$vmlinuz" ] || die "$1: no vmlinuz for $release"
	kconfig=
	for f in "$r/boot/config-$release" "$moddir/config"; do
		[ -f "$f" ] && kconfig=$f && break
	done
	[ -n "$kconfig" ] || die "$1: no kernel config for $release"
}
