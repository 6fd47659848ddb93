#!/usr/bin/env bash
# vmtest.sh: run filecache's root integration tests (cmd/filecache/integration)
# on the running kernel and on the newest Debian cloud kernel of each suite
# (bullseye 5.10, bookworm 6.1, trixie 6.12, sid), each booted in QEMU with an
# initramfs (busybox-static, bin/filecache, the static test binary) and an
# ext4 disk on /var/tmp. Prints a kernel x configuration table; exits non-zero
# if any configuration fails on any kernel.
#
# Environment:
#   VMTEST_SUITES    suites to boot (default: bullseye bookworm trixie sid; set
#                    and empty: none, only the host's rows, as make integration)
#   VMTEST_HOST      1: rows for the running kernel too (default when root), 0: none
#   VMTEST_REFRESH=1 resolve the newest kernel of each suite again (apt-get update)
#   VMTEST_CONFIGS   names of the configurations to run (default: all, below)
#   VMTEST_ACCEL     kvm, tcg, or a QEMU -accel value such as tcg,thread=multi
#                    (default: kvm if a probe boot works, else tcg,thread=single)
#   VMTEST_JOBS      VMs run at the same time (default: the number of CPUs)
#   VMTEST_TIMEOUT   seconds one VM may run before it is killed (default 600)
#   VMTEST_TEST_TIMEOUT  seconds one run of the suite may take (default 300)
#   VMTEST_BIN       the filecache binary (default bin/filecache)
#   VMTEST_RUN       a -test.run pattern: only the tests it matches (default: all)
# Everything lives in .cache/vmtest/: private apt state, debs, extracted
# kernels and initramfs images; logs/SUITE.log (a VM's whole console),
# logs/SUITE.CONFIG.log and logs/host.CONFIG.log (one test run each) and
# logs/table.txt (the last table).
#
# Skips: the suite tags every skip (cmd/filecache/integration/skip_test.go):
# skip[config] (the test does not apply to the configuration the row forces),
# skip[kernel<X.Y] (the kernel lacks a feature of Linux X.Y), skip[feature:NAME]
# (the machine lacks NAME), skip[guest] (the test runs on the host only). A
# row fails unless each of its skips, subtests' included, is a config skip
# in a row that forces a configuration, a kernel<X.Y skip on a kernel older
# than X.Y, or a guest skip in a guest. FILECACHE_FEATURES tells the
# suite what this script put in the guest (or what the host has), so that
# the test itself fails where such a feature is missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=$root/.cache/vmtest
bin=${VMTEST_BIN:-$root/bin/filecache}
read -r -a suites <<<"${VMTEST_SUITES-bullseye bookworm trixie sid}"
vm_timeout=${VMTEST_TIMEOUT:-600}
jobs=${VMTEST_JOBS:-$(nproc)}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# The configurations every kernel runs the whole suite under, in order:
# NAME|MIN_KERNEL|ENVIRONMENT. MIN_KERNEL (major.minor, or empty) skips the
# configuration on older kernels; ENVIRONMENT is space-separated VAR=value
# assignments added to FILECACHE_INTEGRATION=1 FILECACHE_BIN=....
# This is the one place to add or drop one (make integration runs the host's
# rows of this script).
# auto is the bpf engine with the kernel's own method, which every run of
# it asserts: bpf_loop from 5.17, the bounded loop before. So no row forces
# bpf_loop, and the bounded loop is forced only where auto does not use it.
# cachestat has no MIN_KERNEL: its row checks that every test says
# skip[kernel<6.5] where cachestat(2) is missing, and fails on a kernel
# that should have it.
configs=(
	"auto||"
	"bounded-loop|5.17|FILECACHE_BPF_METHOD=bounded-loop"
	"attached||FILECACHE_BPF_METHOD=attached"
	"cachestat||FILECACHE_ENGINE=cachestat"
	"mincore||FILECACHE_ENGINE=mincore"
)

# Features the suite skips without (skip[feature:NAME]), as NAME:SYMBOL: the
# Kconfig symbol that gives it. A guest has NAME when SYMBOL is y, or m and
# the module NAME is among those its /init loads; the host when SYMBOL is y,
# or m and the module is loaded. Plus every tool of the tools list below.
features=(
	ext4:CONFIG_EXT4_FS fuse:CONFIG_FUSE_FS overlay:CONFIG_OVERLAY_FS
	squashfs:CONFIG_SQUASHFS loop:CONFIG_BLK_DEV_LOOP pty:CONFIG_UNIX98_PTYS
	memcg:CONFIG_MEMCG thp:CONFIG_TRANSPARENT_HUGEPAGE
)

# Kernel features the guest needs: module name and Kconfig symbol. A symbol
# set to y is built in; to m, the module (the first found of names separated
# by /) and the modules it depends on are loaded by the guest's /init. A "?"
# marks one the guest can do without.
guest_modules=(
	virtio_pci:CONFIG_VIRTIO_PCI # the PCI transport of the disk
	virtio_blk:CONFIG_VIRTIO_BLK # the ext4 disk, /dev/vda
	# ext4/jbd2 metadata_csum look the "crc32c" hash up when mounting; with
	# no modprobe in the guest, a modular one must be loaded beforehand.
	crc32c_generic/crc32c_cryptoapi:CONFIG_CRYPTO_CRC32C?
	ext4:CONFIG_EXT4_FS      # /var/tmp
	loop:CONFIG_BLK_DEV_LOOP # TestBlockDevice
	overlay:CONFIG_OVERLAY_FS? # TestOverlayfs (it skips without)
	fuse:CONFIG_FUSE_FS?       # TestFUSE (it skips without)
	squashfs:CONFIG_SQUASHFS?  # TestReadOnlyMounts' squashfs image (it skips without)
)

# Tools the tests run, which scripts/deps.sh installs on the host and this
# script copies into the guests (the machine's own, with the shared
# libraries ldd lists): util-linux's (busybox's losetup has no --find
# --show, its setpriv no --bounding-set, and it has no prlimit; unshare
# comes along so the guest runs what the host runs), the image makers of
# TestReadOnlyMounts, and vmtouch and fincore, which the suite's own
# references are held to.
tools=(losetup setpriv unshare prlimit mkfs.ext4 mksquashfs vmtouch fincore)
# Tools deps.sh installs for tests that run on the host only.
host_tools=(prometheus)

test_timeout=${VMTEST_TEST_TIMEOUT:-300} # seconds for one run of the test binary
test_run=${VMTEST_RUN:-}
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
	apt-cache "${apt[@]}" show --no-all-versions "$image" | sed -n 's/^Depends: //p' | tr ',|' '\n' |
		awk '{ print $1 }' | sort -u | while read -r dep; do
		case $dep in
		linux-binary-"${image#linux-image-}" | linux-modules-"${image#linux-image-}" | linux-base-"${image#linux-image-}") echo "$dep" ;;
		esac
	done
}

# fetch_kernel SUITE downloads SUITE's kernel debs and extracts them into
# $cache/kernels/SUITE/root. The kernel is resolved once; again only with
# VMTEST_REFRESH=1 or when a deb of it is missing.
fetch_kernel() {
	local suite=$1 debs=$cache/debs/$1 k=$cache/kernels/$1 pkgs=() p f keep stamp need=
	mkdir -p "$debs"
	[ -s "$debs/packages" ] && mapfile -t pkgs <"$debs/packages"
	for p in "${pkgs[@]}"; do
		compgen -G "$debs/${p}_*.deb" >/dev/null || need=1
	done
	if [ ${#pkgs[@]} = 0 ] || [ -n "$need" ] || [ "${VMTEST_REFRESH:-}" = 1 ]; then
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

# ---------------------------------------------------------------------------
# The guest: modules, initramfs, disk.

# ko_name FILE prints the module name of a .ko[.xz|.zst|.gz] file.
ko_name() {
	local n
	n=$(basename "$1")
	n=${n%%.ko*}
	echo "${n//-/_}"
}

# prepare_modules SUITE decompresses the modules the guest needs, with those
# they depend on (the "depends=" of their .modinfo: the debs ship no
# modules.dep), into $kdir/modules/NAME.ko, and lists them in load order in
# $kdir/modules/load. Sets mod_notes to what is built in and what is loaded.
prepare_modules() {
	local suite=$1 out=$kdir/modules entry names sym optional val n f found
	local -A file_of=() done_=()
	rm -rf "$out"
	mkdir -p "$out"
	: >"$out/load"
	while read -r f; do
		file_of[$(ko_name "$f")]=$f
	done < <(find "$moddir/kernel" -name '*.ko*')
	mod_notes=()
	add_module() {
		local n=$1 f=${file_of[$1]:-} deps d
		[ -z "${done_[$n]:-}" ] || return 0
		done_[$n]=1
		[ -n "$f" ] || die "$suite: module $n (needed by the guest) is not in the kernel debs"
		case $f in
		*.ko.xz) xz -dc "$f" >"$out/$n.ko" ;;
		*.ko.zst) zstd -dcq "$f" >"$out/$n.ko" ;;
		*.ko.gz) gzip -dc "$f" >"$out/$n.ko" ;;
		*.ko) cp "$f" "$out/$n.ko" ;;
		*) die "$suite: $f: unknown module compression" ;;
		esac
		deps=$(tr '\0' '\n' <"$out/$n.ko" | sed -n 's/^depends=//p')
		deps=${deps%%$'\n'*}
		for d in ${deps//,/ }; do
			add_module "${d//-/_}"
		done
		echo "$n" >>"$out/load"
	}
	for entry in "${guest_modules[@]}"; do
		names=${entry%%:*} sym=${entry#*:} optional=
		case $sym in *\?) optional=1 sym=${sym%\?} ;; esac
		val=$(sed -n "s/^$sym=//p" "$kconfig")
		case $val in
		y) mod_notes+=("$sym=y") ;;
		m)
			found=
			for n in ${names//\// }; do
				if [ -n "${file_of[$n]:-}" ]; then
					add_module "$n"
					found=$n
					break
				fi
			done
			[ -n "$found" ] || die "$suite: $sym=m but no module ${names//\// or } in the debs"
			mod_notes+=("$found.ko")
			;;
		*)
			[ -n "$optional" ] || die "$suite: the kernel has no $sym (needed by the guest)"
			mod_notes+=("no $sym")
			;;
		esac
	done
	# What the modules pulled in (e.g. virtio, virtio_ring).
	while read -r n; do
		case " ${mod_notes[*]} " in *" $n.ko "*) ;; *) mod_notes+=("+$n.ko") ;; esac
	done <"$out/load"
}

# kernel_features KCONFIG LOADED prints, one a line, the features (above)
# of a kernel built with the config file KCONFIG that has loaded the
# modules named in LOADED, then the tools.
kernel_features() {
	local f name sym
	for f in "${features[@]}"; do
		name=${f%%:*} sym=${f#*:}
		case $(sed -n "s/^$sym=//p" "$1") in
		y) echo "$name" ;;
		m) case " $(echo "$2" | tr '\n' ' ') " in *" $name "*) echo "$name" ;; esac ;;
		esac
	done
	printf '%s\n' "${tools[@]}"
}

# host_features prints the running kernel's features and the tools.
host_features() {
	local kconfig=$cache/work/host.config
	if [ -r /proc/config.gz ]; then
		gzip -dc /proc/config.gz >"$kconfig"
	elif [ -r "/boot/config-$(uname -r)" ]; then
		cp "/boot/config-$(uname -r)" "$kconfig"
	else
		log "no kernel config (/proc/config.gz, /boot/config-$(uname -r)): the host's features are not listed"
		: >"$kconfig"
	fi
	kernel_features "$kconfig" "$(ls /sys/module)"
	printf '%s\n' "${host_tools[@]}"
}

# guest_init prints the guest's /init: mount, load the modules, mount the
# disk on /var/tmp, run the test binary once per line of /vmtest/configs
# between begin and end markers, power off.
guest_init() {
	cat <<INIT
#!/bin/sh
# Written by scripts/vmtest.sh.
export PATH=/usr/bin:/bin
# Tests too slow under emulation for what they show on another kernel
# (TestServeMemoryFlat's 2,000 scrapes) run on the host only.
export FILECACHE_VMTEST_GUEST=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
echo
case " \$(cat /proc/cmdline) " in *" vmtest.probe "*)
	echo "$marker probe \$(uname -r)"
	poweroff -f
esac
mount -t tmpfs tmpfs /tmp
# Loopback, for the tests of filecache serve (an HTTP server on 127.0.0.1).
ifconfig lo 127.0.0.1 up || echo "$marker no loopback"
# Pseudo-terminals, for the tests of what filecache does on a terminal.
mkdir -p /dev/pts && mount -t devpts -o ptmxmode=0666 devpts /dev/pts && { [ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx; }
echo "$marker kernel \$(uname -r)"
while read -r m; do
	insmod "/lib/modules/\$m.ko" || echo "$marker insmod \$m failed"
done </vmtest/modules
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
mount -t ext4 /dev/vda /var/tmp || echo "$marker cannot mount /dev/vda on /var/tmp"
chmod 1777 /var/tmp
export FILECACHE_FEATURES="\$(cat /vmtest/features)"
# Shortly before the host kills this VM: where each thread of the suite and
# of filecache waits in the kernel, then the suite's goroutines (SIGQUIT).
(
	sleep $((vm_timeout - 30))
	echo "$marker watchdog: the VM is killed in 30 s"
	for p in \$(pidof integration.test filecache); do
		for t in /proc/\$p/task/*; do
			echo "$marker thread \$p/\${t##*/} \$(cat \$t/comm) waits in \$(cat \$t/wchan)"
			cat \$t/stack
		done
	done
	kill -QUIT \$(pidof integration.test)
) &
run=\$(cat /vmtest/run)
while IFS='|' read -r name envs; do
	echo "$marker begin \$name"
	s=\$(date +%s)
	env \$envs FILECACHE_INTEGRATION=1 FILECACHE_BIN=/bin/filecache TMPDIR=/tmp \\
		/integration.test -test.v -test.count=1 -test.timeout=${test_timeout}s \${run:+"-test.run=\$run"}
	rc=\$?
	echo "$marker end \$name rc=\$rc secs=\$((\$(date +%s) - s))"
done </vmtest/configs
umount /var/tmp
echo "$marker poweroff"
poweroff -f
INIT
}

# copy_tools DIR copies tools into DIR/usr/bin, which comes first in
# the guest's PATH, and their libraries to the same paths under DIR, with
# libgcc_s, which glibc loads at run time (ldd does not list it) when a
# thread exits: mksquashfs aborts without it.
copy_tools() {
	local d=$1 t p lib
	mkdir -p "$d/usr/bin"
	# awk reads to the end: ldconfig, cut short, would die of SIGPIPE and,
	# under pipefail, end this script (seen once under load).
	lib=$(PATH=$PATH:/usr/sbin:/sbin ldconfig -p | awk '$1 == "libgcc_s.so.1" && /x86-64/ && !found { print $NF; found = 1 }')
	if [ -n "$lib" ]; then
		mkdir -p "$d$(dirname "$lib")"
		cp -L "$lib" "$d$lib"
	fi
	for t in "${tools[@]}"; do
		p=$(PATH=$PATH:/usr/sbin:/sbin command -v "$t") || die "$t is missing here (scripts/deps.sh installs it)"
		cp -L "$p" "$d/usr/bin/$t"
		for lib in $(ldd "$p" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
			if [ ! -e "$d$lib" ]; then
				mkdir -p "$d$(dirname "$lib")"
				cp -L "$lib" "$d$lib"
			fi
		done
	done
}

# build_common fills $cache/initramfs: busybox with its applets, the
# filecache binary, the test binary and /init.
build_common() {
	local d=$cache/initramfs a
	rm -rf "$d"
	mkdir -p "$d"/{bin,dev,proc,sys,tmp,var/tmp,lib/modules,vmtest}
	cp "$busybox" "$d/bin/busybox"
	for a in $("$busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$d/bin/$a"
	done
	copy_tools "$d"
	cp "$bin" "$d/bin/filecache"
	cp "$cache/integration.test" "$d/integration.test"
	guest_init >"$d/init"
	printf '%s' "$test_run" >"$d/vmtest/run"
	chmod 755 "$d/init" "$d/bin/filecache" "$d/integration.test"
}

# build_initrd writes $kdir/initrd.gz: the common tree plus this kernel's
# modules and configurations.
build_initrd() {
	local d=$kdir/initramfs
	rm -rf "$d"
	cp -a "$cache/initramfs" "$d"
	cp "$kdir"/modules/*.ko "$d/lib/modules/" 2>/dev/null || true
	cp "$kdir/modules/load" "$d/vmtest/modules"
	printf '%s\n' "${kconfigs[@]}" >"$d/vmtest/configs"
	kernel_features "$kconfig" "$(cat "$kdir/modules/load")" | tr '\n' ' ' >"$d/vmtest/features"
	(cd "$d" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$kdir/initrd.gz"
	rm -rf "$d"
}

# make_disk FILE makes the guest's /var/tmp: a sparse 4 GiB ext4 image.
make_disk() {
	local -a feat=()
	# orphan_file needs Linux 5.15: leave it out where mke2fs would add it.
	if grep -q orphan_file /etc/mke2fs.conf 2>/dev/null; then
		feat=(-O ^orphan_file)
	fi
	rm -f "$1"
	truncate -s 4G "$1"
	mkfs.ext4 -q -F "${feat[@]}" -L vmtest "$1"
}

# ---------------------------------------------------------------------------
# Configurations and results.

# kernel_at_least RELEASE MAJOR.MINOR
kernel_at_least() {
	local a b c d
	IFS=. read -r a b _ <<<"${1%%-*}"
	IFS=. read -r c d _ <<<"$2"
	b=${b%%[!0-9]*}
	[ "$a" -gt "$c" ] || { [ "$a" -eq "$c" ] && [ "$b" -ge "$d" ]; }
}

# select_configs RELEASE sets kconfigs to the NAME|ENVIRONMENT lines that
# apply to RELEASE.
select_configs() {
	local c name min envs
	kconfigs=()
	for c in "${configs[@]}"; do
		IFS='|' read -r name min envs <<<"$c"
		case " ${VMTEST_CONFIGS:-$name} " in *" $name "*) ;; *) continue ;; esac
		if [ -z "$min" ] || kernel_at_least "$1" "$min"; then
			kconfigs+=("$name|$envs")
		fi
	done
}

rows=() # kernel|where|config|result|pass|fail|skip|secs|log|status|skips by tag|note
failed=0

# skips LOG prints each skip of a test run, subtests' included, as
# NAME<TAB>TAG<TAB>MESSAGE: the tag of its skip[TAG] message, or
# "untagged" (with the test's last line of output).
skips() {
	awk '
	/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; next }
	/^ *--- SKIP: / { n = $3; print n "\t" ((n in tag) ? tag[n] : "untagged") "\t" ((n in msg) ? msg[n] : last[n]); next }
	/^ *--- (PASS|FAIL): / { next }
	match($0, /: skip\[[^]]*\]: /) { tag[cur] = substr($0, RSTART + 7, RLENGTH - 10); msg[cur] = substr($0, RSTART + 2); next }
	cur != "" { last[cur] = $0 }' "$1"
}

# running LOG prints the test a run was in when it ended: the last one
# started (=== RUN) that has no result line.
running() {
	awk '
	/^=== RUN / { order[$3] = ++n; next }
	/^ *--- (PASS|FAIL|SKIP): / { delete order[$3] }
	END {
		best = 0
		for (k in order) if (order[k] > best) { best = order[k]; name = k }
		if (best) print name
	}' "$1"
}

# explained TAG CONFIG RELEASE WHERE says whether a skip tagged TAG belongs
# in the row of CONFIG on kernel RELEASE, on the host or in a guest: config
# skips where a configuration is forced, kernel<X.Y skips on kernels older
# than X.Y, guest skips in guests, nothing else.
explained() {
	case $1 in
	config) [ "$2" != auto ] ;;
	kernel\<[0-9]*.[0-9]*) ! kernel_at_least "$3" "${1#kernel<}" ;;
	guest) [ "$4" != host ] ;;
	*) return 1 ;;
	esac
}

# record KERNEL WHERE CONFIG STATUS SECS LOG [NOTE] adds a row to the table:
# counts of tests and subtests passed, failed and skipped, the skips by tag
# (those the row does not explain go to LOG.skips and fail it), and NOTE or,
# for a run that did not end well, the test it was in.
record() {
	local kernel=$1 where=$2 name=$3 status=$4 secs=$5 out=$6 note=${7:-}
	local result=PASS pass fail skip=0 n tag why by_tag in
	local -A by=()
	pass=$(grep -cE '^ *--- PASS' "$out" || true)
	fail=$(grep -cE '^ *--- FAIL' "$out" || true)
	: >"$out.skips"
	while IFS=$'\t' read -r n tag why; do
		skip=$((skip + 1))
		by[$tag]=$((${by[$tag]:-0} + 1))
		explained "$tag" "$name" "$kernel" "$where" || printf '%s [%s] %s\n' "$n" "$tag" "$why" >>"$out.skips"
	done < <(skips "$out")
	by_tag=$(for tag in "${!by[@]}"; do echo "$tag:${by[$tag]}"; done | LC_ALL=C sort | tr '\n' ' ')
	if [ "$status" != 0 ]; then
		result=FAIL
		in=$(running "$out")
		if [ -z "$note" ] && grep -q "^$marker watchdog" "$out"; then
			note="stopped (SIGQUIT) 30 s before the VM's timeout"
		fi
		if [ -z "$note" ]; then
			note=$(sed -n 's/^panic: \(test timed out after [^ ]*\).*/\1/p;T;q' "$out")
			[ -n "$note" ] || ! grep -q '^panic: ' "$out" || note="panicked"
		fi
		if [ -n "$in" ]; then
			note="${note:-ended} in $in"
		fi
	fi
	if [ -s "$out.skips" ]; then
		result=FAIL
		note="${note:+$note; }$(wc -l <"$out.skips") skips unexplained"
	fi
	[ "$result" = PASS ] || failed=1
	rows+=("$kernel|$where|$name|$result|$pass|$fail|$skip|$secs|$out|$status|${by_tag% }|$note")
}

# failures LOG prints the output of each failed test, and a panic's start,
# in at most VMTEST_FAIL_LINES (80) lines.
failures() {
	awk -v max="${VMTEST_FAIL_LINES:-80}" '
	function emit(line) { if (++n <= max) print line; else if (n == max + 1) print "    [...]" }
	/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; next }
	/^ *--- FAIL: / { failed[++nf] = $3; next }
	/^ *--- (PASS|SKIP): / { next }
	/^panic: / { tail = 1 }
	tail { extra[++ne] = $0; next }
	cur != "" { out[cur] = out[cur] $0 "\n" }
	END {
		for (i = 1; i <= nf; i++) {
			if (failed[i] in shown) continue
			shown[failed[i]] = 1
			emit("--- FAIL: " failed[i])
			k = split(out[failed[i]], lines, "\n")
			for (j = 1; j < k; j++) emit(lines[j])
		}
		for (i = 1; i <= ne && i <= 40; i++) emit(extra[i])
	}' "$1"
}

print_table() {
	local r kernel where name result pass fail skip secs out status by_tag note
	printf '\n%-40s %-13s %-6s %4s %4s %4s %5s  %-30s %s\n' KERNEL CONFIG RESULT PASS FAIL SKIP SECS 'SKIPS BY TAG' NOTE
	for r in "${rows[@]}"; do
		IFS='|' read -r kernel where name result pass fail skip secs out status by_tag note <<<"$r"
		printf '%-40s %-13s %-6s %4s %4s %4s %5s  %-30s %s\n' "$kernel ($where)" "$name" "$result" "$pass" "$fail" "$skip" "$secs" "$by_tag" "$note"
	done
	for r in "${rows[@]}"; do
		IFS='|' read -r kernel where name result pass fail skip secs out status by_tag note <<<"$r"
		[ "$result" = FAIL ] || continue
		printf '\n===== %s (%s) %s: FAIL, exit status %s; %s\n' "$kernel" "$where" "$name" "$status" "${out#"$root"/}"
		if [ -n "$note" ]; then
			printf '%s\n' "$note"
		fi
		if grep -q '^--- FAIL: ' "$out"; then
			printf 'failed: %s\n' "$(sed -n 's/^--- FAIL: \([^ ]*\).*/\1/p' "$out" | tr '\n' ' ')"
		fi
		if [ -s "$out.skips" ]; then
			printf 'skips this row does not explain (config: only where a configuration is forced; kernel<X.Y: only on older kernels):\n'
			sed 's/^/  /' "$out.skips"
		fi
		failures "$out"
		if [ -f "$out.vm" ]; then
			cat "$out.vm"
		fi
	done
}

# ---------------------------------------------------------------------------
# Running.

# run_host runs every configuration on the running kernel, directly.
run_host() {
	local release c name envs out rc s feats
	local -a run=()
	release=$(uname -r)
	select_configs "$release"
	feats=$(host_features | tr '\n' ' ')
	[ -z "$test_run" ] || run=("-test.run=$test_run")
	for c in "${kconfigs[@]}"; do
		IFS='|' read -r name envs <<<"$c"
		out=$cache/logs/host.$name.log
		log "host $release: $name"
		s=$SECONDS
		rc=0
		# shellcheck disable=SC2086 # envs is a list of VAR=value words
		(cd "$cache" && env $envs FILECACHE_INTEGRATION=1 FILECACHE_BIN="$bin" FILECACHE_FEATURES="$feats" \
			"$cache/integration.test" -test.v -test.count=1 -test.timeout=${test_timeout}s "${run[@]}") >"$out" 2>&1 || rc=$?
		record "$release" host "$name" "$rc" $((SECONDS - s)) "$out"
	done
}

accel=${VMTEST_ACCEL:-}

# qemu_run ACCEL LOG DISK [APPEND] boots $vmlinuz with $kdir/initrd.gz and
# DISK as /dev/vda, console into LOG, killed after $vm_timeout seconds (or
# $qemu_timeout).
qemu_run() {
	local -a a=(-cpu max -accel "tcg,thread=single")
	case $1 in
	kvm) a=(-cpu host -accel kvm) ;;
	tcg?*) a=(-cpu max -accel "$1") ;; # e.g. tcg,thread=multi
	esac
	local rc=0
	timeout "${qemu_timeout:-$vm_timeout}" qemu-system-x86_64 "${a[@]}" -m 1024 -smp 2 -no-reboot -nographic -nic none \
		-kernel "$vmlinuz" -initrd "$kdir/initrd.gz" \
		-append "console=ttyS0 panic=-1 quiet random.trust_cpu=on ${4:-}" \
		-drive "file=$3,format=raw,if=virtio,cache=unsafe" </dev/null >"$2" 2>&1 &
	echo $! >"$kdir/qemu.pid"
	wait $! || rc=$?
	rm -f "$kdir/qemu.pid"
	return "$rc"
}

# choose_accel boots the kernel prepared last with KVM up to its /init and
# sets accel to kvm if that works, else to tcg. Under TCG each vCPU is one
# thread (thread=single): with thread=multi, guests Oopsed on a stale int3
# in syscall_trace_enter after the kernel live-patched the sys_enter
# tracepoint's jump label (the attached method attaches there), within
# seconds of attaching and detaching in a loop; with thread=single, never.
choose_accel() {
	local probe=$cache/logs/kvm-probe.log
	[ -z "$accel" ] || return 0
	accel=tcg
	[ -w /dev/kvm ] || return 0
	make_disk "$cache/work/probe.img"
	# (in a subshell: QEMU may abort, and the shell would say so on stderr)
	(qemu_timeout=60 qemu_run kvm "$probe" "$cache/work/probe.img" vmtest.probe) 2>/dev/null || true
	rm -f "$cache/work/probe.img"
	if grep -q "$marker probe" "$probe"; then
		accel=kvm
	else
		log "KVM cannot run the guest here ($(grep -m1 -iE 'error|fail' "$probe" || echo "no boot")): using TCG"
	fi
}

# boot_vm SUITE boots SUITE's prepared kernel; the console goes to
# logs/SUITE.log, QEMU's exit status (124: killed at the timeout) and the
# seconds it ran to $kdir/vm.rc and vm.secs.
boot_vm() {
	local suite=$1 s=$SECONDS rc=0
	kdir=$cache/kernels/$1
	vmlinuz=$(cat "$kdir/vmlinuz.path")
	make_disk "$cache/work/$suite.img"
	qemu_run "$accel" "$cache/logs/$suite.log" "$cache/work/$suite.img" || rc=$?
	rm -f "$cache/work/$suite.img"
	echo "$rc" >"$kdir/vm.rc"
	echo $((SECONDS - s)) >"$kdir/vm.secs"
	log "$suite: the VM ran $((SECONDS - s)) s"
}

# collect_vm SUITE records each configuration the VM of SUITE ran, from the
# markers in its console log.
collect_vm() {
	local suite=$1 vmlog=$cache/logs/$1.log c name envs out rc secs release note vmrc told=
	kdir=$cache/kernels/$1
	release=$(cat "$kdir/release")
	vmrc=$(cat "$kdir/vm.rc" 2>/dev/null || echo "?")
	tr -d '\r' <"$vmlog" >"$vmlog.tmp" && mv "$vmlog.tmp" "$vmlog"
	while IFS= read -r c; do
		IFS='|' read -r name envs <<<"$c"
		out=$cache/logs/$suite.$name.log
		awk -v b="$marker begin $name" -v e="$marker end $name " '
			$0 == b { on = 1; next }
			index($0, e) == 1 { on = 0 }
			on' "$vmlog" >"$out"
		rc=$(sed -n "s/^$marker end $name rc=\([0-9]*\) .*/\1/p" "$vmlog")
		secs=$(sed -n "s/^$marker end $name rc=[0-9]* secs=\([0-9]*\)$/\1/p" "$vmlog")
		rm -f "$out.vm"
		note=
		if [ -z "$rc" ]; then
			rc="none: not run, the VM had ended"
			if grep -qxF "$marker begin $name" "$vmlog"; then
				rc="none: the VM crashed or timed out during this run"
				note="the VM crashed"
				if [ "$vmrc" = 124 ]; then
					note="the VM was killed at ${vm_timeout} s"
				fi
			fi
			if [ -z "$told" ]; then # the console's end, once per VM
				told=1
				{
					echo "the end of the console, ${vmlog#"$root"/}:"
					tail -n 30 "$vmlog"
				} >"$out.vm"
			fi
		fi
		record "$release" "$suite" "$name" "$rc" "${secs:--}" "$out" "$note"
	done <"$kdir/configs"
}

# stop_vms ends the QEMU processes this script started (by their pids).
stop_vms() {
	local f
	for f in "$cache"/kernels/*/qemu.pid; do
		if [ -f "$f" ]; then
			kill "$(cat "$f")" 2>/dev/null || true
			rm -f "$f"
		fi
	done
	return 0
}

main() {
	local suite t s0=$SECONDS times=
	local -a booted=()
	[ -x "$bin" ] || die "$bin is missing: run make build"
	command -v go >/dev/null || die "go is missing"
	if [ ${#suites[@]} -gt 0 ]; then
		busybox=$(command -v busybox) || die "busybox is missing (package busybox-static)"
		file -L "$busybox" | grep -q 'statically linked' || die "$busybox is not static (package busybox-static)"
		for t in qemu-system-x86_64 mkfs.ext4 dpkg-deb apt-get xz zstd timeout ldd; do
			command -v "$t" >/dev/null || die "$t is missing (make deps)"
		done
	fi
	mkdir -p "$cache/logs" "$cache/work"
	# One run at a time in a checkout: they share this cache (make -j
	# integration vmtest); the suite's own lock orders runs across checkouts.
	exec 9>"$cache/lock"
	if ! flock -n 9; then
		log "another vmtest.sh runs in this checkout; waiting for it"
		flock 9
	fi
	trap stop_vms EXIT
	log "building the static test binary"
	(cd "$root" && CGO_ENABLED=0 go test -c -o "$cache/integration.test" ./cmd/filecache/integration)
	if [ ${#suites[@]} -gt 0 ]; then
		build_common
	fi

	if [ "${VMTEST_HOST:-$([ "$(id -u)" = 0 ] && echo 1)}" = 1 ]; then
		run_host
	else
		log "no row for this machine's kernel (the tests need root; VMTEST_HOST=1 forces it)"
	fi
	for suite in "${suites[@]}"; do
		fetch_kernel "$suite"
		kernel_files "$suite"
		prepare_modules "$suite"
		select_configs "$release"
		build_initrd
		echo "$release" >"$kdir/release"
		echo "$vmlinuz" >"$kdir/vmlinuz.path"
		printf '%s\n' "${kconfigs[@]}" >"$kdir/configs"
		log "$suite: $release: ${mod_notes[*]}; ${#kconfigs[@]} configurations"
		choose_accel
		while [ "$(jobs -pr | wc -l)" -ge "$jobs" ]; do
			wait -n || true
		done
		log "$suite: booting ($accel)"
		boot_vm "$suite" &
		booted+=("$suite")
	done
	wait || true
	for suite in "${booted[@]}"; do
		collect_vm "$suite"
		times+="${times:+, }$suite $(cat "$cache/kernels/$suite/vm.secs") s"
	done
	{
		print_table
		printf '\nvmtest: %d rows in %d s (VMs: %s, %s at a time); logs in %s\n' "${#rows[@]}" \
			$((SECONDS - s0)) "${accel:-none}" "$jobs" "${cache#"$root"/}/logs"
		if [ -n "$times" ]; then
			printf 'each VM ran (of %s s): %s\n' "$vm_timeout" "$times"
		fi
	} | tee "$cache/logs/table.txt"
	[ "$failed" = 0 ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi
