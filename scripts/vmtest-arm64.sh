#!/usr/bin/env bash
# vmtest-arm64.sh: prove the arm64 build (bin/arm64/filecache, make
# build-arm64) on Debian's arm64 cloud kernels, each booted in
# qemu-system-aarch64 under software emulation with an initramfs: arm64
# busybox, the binary, the arm64 integration suite (CGO_ENABLED=0 GOARCH=arm64
# go test -c) and the arm64 tools the suite runs, with an ext4 disk on
# /var/tmp. In each guest: a smoke run (filecache --version, doctor, --json
# on an 8 MiB tmpfs file that must show 2048 cached pages), then the suite
# once per configuration. Prints a kernel x configuration table; exits
# non-zero if anything failed.
#
# Written beside scripts/vmtest.sh (same guest layout, markers and
# configuration names) so that its pieces fold into it: kernel_packages,
# fetch_kernel, guest_userland and qemu_arm64 are the arm64-specific parts.
#
# Environment:
#   ARM64_SUITES   suites whose newest cloud-arm64 kernel is booted (default: bookworm trixie)
#   ARM64_CONFIGS  configurations, by name (default: auto bounded-loop; all: every one of vmtest.sh)
#   ARM64_SMOKE=1  only the smoke run, no suite
#   ARM64_JOBS     VMs at the same time (default 1: each takes one core)
#   ARM64_TIMEOUT  seconds one VM may run (default 1800)
#   ARM64_BIN      the arm64 filecache binary (default bin/arm64/filecache)
# Everything lives in .cache/vmtest-arm64/; logs/SUITE.log is a VM's console.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=$root/.cache/vmtest-arm64
bin=${ARM64_BIN:-$root/bin/arm64/filecache}
read -r -a suites <<<"${ARM64_SUITES:-bookworm trixie}"
# NAME|MIN_KERNEL|ENVIRONMENT: vmtest.sh's configs array, the one list.
configs=()
eval "$(sed -n '/^configs=(/,/^)/p' "$root/scripts/vmtest.sh")"
[ ${#configs[@]} -gt 0 ] || { echo "vmtest-arm64: no configs array in scripts/vmtest.sh" >&2; exit 1; }
read -r -a want_configs <<<"${ARM64_CONFIGS:-auto bounded-loop}"
if [ "${ARM64_CONFIGS:-}" = all ]; then
	want_configs=()
	for c in "${configs[@]}"; do want_configs+=("${c%%|*}"); done
fi
vm_timeout=${ARM64_TIMEOUT:-1800}
jobs=${ARM64_JOBS:-1}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
marker=@@vmtest
test_timeout=900 # seconds for one run of the suite inside a VM (emulated arm64 is slow)

# Kconfig symbols the guest needs (module names / symbol; ? = optional), as in vmtest.sh.
guest_modules=(
	virtio_pci:CONFIG_VIRTIO_PCI virtio_blk:CONFIG_VIRTIO_BLK
	crc32c_generic/crc32c_cryptoapi:CONFIG_CRYPTO_CRC32C? ext4:CONFIG_EXT4_FS
	loop:CONFIG_BLK_DEV_LOOP overlay:CONFIG_OVERLAY_FS? fuse:CONFIG_FUSE_FS? squashfs:CONFIG_SQUASHFS?
)
# The arm64 packages of the guest's tools (and, through sysroot.sh
# --depends, their libraries), and the tools taken from them.
guest_packages=(busybox-static mount util-linux e2fsprogs squashfs-tools libgcc-s1)
guest_tools=(losetup setpriv unshare prlimit mkfs.ext4 mksquashfs)

log() { printf 'vmtest-arm64: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

apt_uris() {
	awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
	awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
}

# apt_opts SUITE sets apt to a private arm64 apt state for SUITE.
apt_opts() {
	local d=$cache/apt/$1
	apt=(
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache"
		-o "Dir::Etc::SourceList=$d/sources.sources" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
		-o Dir::State::status=/dev/null -o APT::Architecture=arm64 -o APT::Architectures=arm64
		-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
		-o APT::Update::Post-Invoke-Success::= -o APT::Sandbox::User=root -q
	)
}

# kernel_packages SUITE prints the packages of SUITE's newest cloud-arm64
# kernel (the image, and on sid the linux-binary/modules/base it is split into).
kernel_packages() {
	local suite=$1 d=$cache/apt/$1 mirror security image dep
	mirror=$(apt_uris | grep -E '/debian/?$' | grep -v -- '-security' | sed -n '1{s#/$##;p;}')
	security=$(apt_uris | grep -E '/debian-security/?$' | sed -n '1{s#/$##;p;}')
	[ -n "$mirror" ] || die "no Debian archive URI in /etc/apt/sources.list{,.d}"
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	{
		printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$mirror" "$suite" "$keyring"
		if [ -n "$security" ] && [ "$suite" != sid ]; then
			printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' "$security" "$suite" "$keyring"
		fi
	} >"$d/sources.sources"
	apt_opts "$suite"
	apt-get "${apt[@]}" update >"$d/update.log" 2>&1 || die "apt-get update for $suite failed:$(printf '\n'; tail -5 "$d/update.log")"
	image=$(apt-cache "${apt[@]}" show --no-all-versions linux-image-cloud-arm64 2>/dev/null |
		sed -n 's/^Depends: //p' | tr ',' '\n' | grep -oE 'linux-image-[0-9][^ ]*-cloud-arm64' | head -1) || true
	[ -n "$image" ] || die "$suite: no linux-image-cloud-arm64"
	echo "$image"
	apt-cache "${apt[@]}" show --no-all-versions "$image" | sed -n 's/^Depends: //p' | tr ',|' '\n' |
		awk '{ print $1 }' | sort -u | while read -r dep; do
		case $dep in
		linux-binary-"${image#linux-image-}" | linux-modules-"${image#linux-image-}" | linux-base-"${image#linux-image-}") echo "$dep" ;;
		esac
	done
}

# fetch_kernel SUITE downloads and extracts SUITE's kernel (cached) and sets
# kdir, release, vmlinuz, kconfig and moddir.
fetch_kernel() {
	local suite=$1 debs=$cache/debs/$1 p f
	kdir=$cache/kernels/$1
	mkdir -p "$debs"
	if [ ! -s "$debs/packages" ] || [ "${ARM64_REFRESH:-}" = 1 ]; then
		log "$suite: resolving the newest cloud-arm64 kernel"
		kernel_packages "$suite" >"$debs/packages.new"
		mv "$debs/packages.new" "$debs/packages"
		rm -f "$debs"/*.deb
		rm -rf "$kdir"
	fi
	if [ ! -d "$kdir/root" ]; then
		apt_opts "$suite"
		[ -d "$cache/apt/$suite/lists" ] || kernel_packages "$suite" >/dev/null
		while read -r p; do
			compgen -G "$debs/${p}_*.deb" >/dev/null || (cd "$debs" && log "$suite: downloading $p" && apt-get "${apt[@]}" download "$p" >/dev/null)
		done <"$debs/packages"
		mkdir -p "$kdir/root.new"
		for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$kdir/root.new"; done
		mv "$kdir/root.new" "$kdir/root"
	fi
	moddir=$(find "$kdir/root/lib/modules" "$kdir/root/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1 || true)
	[ -n "$moddir" ] || die "$suite: no lib/modules/RELEASE in the kernel debs"
	release=$(basename "$moddir")
	vmlinuz='' kconfig=''
	for f in "$kdir/root/boot/vmlinuz-$release" "$moddir/vmlinuz"; do [ -f "$f" ] && vmlinuz=$f && break; done
	for f in "$kdir/root/boot/config-$release" "$moddir/config"; do [ -f "$f" ] && kconfig=$f && break; done
	if [ -z "$vmlinuz" ] || [ -z "$kconfig" ]; then die "$suite: no vmlinuz or config for $release"; fi
}

# prepare_modules SUITE: the modules the guest needs, with what they depend
# on, decompressed into $kdir/modules in load order ($kdir/modules/load).
prepare_modules() {
	local suite=$1 out=$kdir/modules entry names sym optional val n f found
	local -A file_of=() done_=()
	rm -rf "$out"
	mkdir -p "$out"
	: >"$out/load"
	while read -r f; do
		n=$(basename "$f")
		n=${n%%.ko*}
		file_of[${n//-/_}]=$f
	done < <(find "$moddir/kernel" -name '*.ko*')
	add_module() {
		local n=$1 f=${file_of[$1]:-} deps d
		[ -z "${done_[$n]:-}" ] || return 0
		done_[$n]=1
		[ -n "$f" ] || die "$suite: module $n is not in the kernel debs"
		case $f in
		*.ko.xz) xz -dc "$f" >"$out/$n.ko" ;;
		*.ko.zst) zstd -dcq "$f" >"$out/$n.ko" ;;
		*.ko.gz) gzip -dc "$f" >"$out/$n.ko" ;;
		*) cp "$f" "$out/$n.ko" ;;
		esac
		deps=$(tr '\0' '\n' <"$out/$n.ko" | sed -n 's/^depends=//p')
		deps=${deps%%$'\n'*}
		for d in ${deps//,/ }; do add_module "${d//-/_}"; done
		echo "$n" >>"$out/load"
	}
	for entry in "${guest_modules[@]}"; do
		names=${entry%%:*} sym=${entry#*:} optional=
		case $sym in *\?) optional=1 sym=${sym%\?} ;; esac
		val=$(sed -n "s/^$sym=//p" "$kconfig")
		case $val in
		y) ;;
		m)
			found=
			for n in ${names//\// }; do
				if [ -n "${file_of[$n]:-}" ]; then add_module "$n" && found=1 && break; fi
			done
			[ -n "$found" ] || die "$suite: $sym=m but no module ${names//\// or }"
			;;
		*) [ -n "$optional" ] || die "$suite: the kernel has no $sym" ;;
		esac
	done
}

# guest_userland fills $cache/initramfs: arm64 busybox and its applets, the
# arm64 tools with the libraries they need (readelf NEEDED, closed over),
# the dynamic loader and libgcc_s (glibc loads it when a thread exits),
# filecache, the suite and /init.
guest_userland() {
	local u=$cache/userland/root d=$cache/initramfs t p a lib need
	"$root/scripts/sysroot.sh" --depends arm64 "$cache/userland" "${guest_packages[@]}"
	rm -rf "$d"
	mkdir -p "$d"/{bin,usr/bin,dev,proc,sys,tmp,var/tmp,lib/modules,vmtest}
	cp "$u/bin/busybox" "$d/bin/busybox"
	file -L "$d/bin/busybox" | grep -q 'ARM aarch64.*statically linked' || die "$u/bin/busybox is not a static arm64 busybox"
	# The applet list of the host's busybox (the same Debian version).
	for a in $(busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"
	done
	# find_lib SONAME prints its path in the userland, relative to it.
	find_lib() {
		local dir
		for dir in lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu lib usr/lib; do
			[ -e "$u/$dir/$1" ] && { echo "$dir/$1"; return; }
		done
		die "no $1 (needed by the guest's tools) in the arm64 packages"
	}
	need=()
	for t in "${guest_tools[@]}"; do
		p=
		for a in sbin usr/sbin bin usr/bin; do [ -e "$u/$a/$t" ] && p=$u/$a/$t && break; done
		[ -n "$p" ] || die "$t is not in the arm64 packages (${guest_packages[*]})"
		cp -L "$p" "$d/usr/bin/$t"
		need+=("$d/usr/bin/$t")
	done
	lib=$(find_lib libgcc_s.so.1)
	mkdir -p "$d/$(dirname "$lib")"
	cp -L "$u/$lib" "$d/$lib"
	need+=("$d/$lib")
	while [ ${#need[@]} -gt 0 ]; do
		p=${need[0]}
		need=("${need[@]:1}")
		for lib in $(readelf -d "$p" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			lib=$(find_lib "$lib")
			if [ ! -e "$d/$lib" ]; then
				mkdir -p "$d/$(dirname "$lib")"
				cp -L "$u/$lib" "$d/$lib"
				need+=("$d/$lib")
			fi
		done
	done
	cp -L "$u/lib/ld-linux-aarch64.so.1" "$d/lib/ld-linux-aarch64.so.1"
	cp "$bin" "$d/bin/filecache"
	cp "$cache/integration.test" "$d/integration.test"
	guest_init >"$d/init"
	chmod 755 "$d/init" "$d/bin/filecache" "$d/integration.test"
}

guest_init() {
	cat <<INIT
#!/bin/sh
# Written by scripts/vmtest-arm64.sh.
export PATH=/usr/bin:/bin
export FILECACHE_VMTEST_GUEST=1 # as in vmtest.sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
mount -t tmpfs tmpfs /tmp
ifconfig lo 127.0.0.1 up || echo "$marker no loopback" # for filecache serve's tests
mkdir -p /dev/pts && mount -t devpts -o ptmxmode=0666 devpts /dev/pts && { [ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx; }
echo "$marker kernel \$(uname -r) \$(uname -m)"
while read -r m; do
	insmod "/lib/modules/\$m.ko" || echo "$marker insmod \$m failed"
done </vmtest/modules
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
mount -t ext4 /dev/vda /var/tmp || echo "$marker cannot mount /dev/vda on /var/tmp"
chmod 1777 /var/tmp
echo "$marker begin smoke"
s=\$(date +%s)
/bin/filecache --version
/bin/filecache doctor
echo "$marker doctor rc=\$?"
/bin/filecache doctor --json
head -c 8388608 /dev/urandom >/tmp/smoke
/bin/filecache --json /tmp/smoke
echo "$marker query rc=\$?"
echo "$marker end smoke rc=0 secs=\$((\$(date +%s) - s))"
while IFS='|' read -r name envs; do
	echo "$marker begin \$name"
	s=\$(date +%s)
	env \$envs FILECACHE_INTEGRATION=1 FILECACHE_BIN=/bin/filecache TMPDIR=/tmp \\
		/integration.test -test.v -test.count=1 -test.timeout=${test_timeout}s
	rc=\$?
	echo "$marker end \$name rc=\$rc secs=\$((\$(date +%s) - s))"
done </vmtest/configs
umount /var/tmp
echo "$marker poweroff"
poweroff -f
INIT
}

kernel_at_least() {
	local a b c d
	IFS=. read -r a b _ <<<"${1%%-*}"
	IFS=. read -r c d _ <<<"$2"
	b=${b%%[!0-9]*}
	[ "$a" -gt "$c" ] || { [ "$a" -eq "$c" ] && [ "$b" -ge "$d" ]; }
}

# select_configs RELEASE sets kconfigs to the NAME|ENVIRONMENT lines to run.
select_configs() {
	local c name min envs
	kconfigs=()
	[ "${ARM64_SMOKE:-}" != 1 ] || return 0
	for c in "${configs[@]}"; do
		IFS='|' read -r name min envs <<<"$c"
		case " ${want_configs[*]} " in *" $name "*) ;; *) continue ;; esac
		if [ -z "$min" ] || kernel_at_least "$1" "$min"; then kconfigs+=("$name|$envs"); fi
	done
}

# build_initrd SUITE writes $kdir/initrd.gz: the common tree, this kernel's
# modules and the configurations.
build_initrd() {
	local d=$kdir/initramfs
	rm -rf "$d"
	cp -a "$cache/initramfs" "$d"
	cp "$kdir"/modules/*.ko "$d/lib/modules/" 2>/dev/null || true
	cp "$kdir/modules/load" "$d/vmtest/modules"
	printf '%s\n' "${kconfigs[@]}" | sed '/^$/d' >"$d/vmtest/configs"
	cp "$d/vmtest/configs" "$kdir/configs"
	(cd "$d" && find . | LC_ALL=C sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$kdir/initrd.gz"
	rm -rf "$d"
}

# qemu_arm64 LOG DISK boots $vmlinuz with $kdir/initrd.gz. pauth-impdef:
# the architected pointer-authentication algorithm costs 3x under TCG;
# thread=single: under thread=multi the attached method missed its trigger.
qemu_arm64() {
	timeout "$vm_timeout" qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -accel tcg,thread=single \
		-smp 2 -m 1024 -no-reboot -nographic -nic none \
		-kernel "$vmlinuz" -initrd "$kdir/initrd.gz" -append "console=ttyAMA0 panic=-1 quiet" \
		-drive "file=$2,format=raw,if=virtio,cache=unsafe" </dev/null >"$1" 2>&1 &
	echo $! >"$kdir/qemu.pid"
	wait $! || true
	rm -f "$kdir/qemu.pid"
}

boot_vm() {
	local suite=$1 img=$cache/work/$1.img s=$SECONDS
	kdir=$cache/kernels/$1
	vmlinuz=$(cat "$kdir/vmlinuz.path")
	rm -f "$img"
	truncate -s 4G "$img"
	mkfs.ext4 -q -F -L vmtest "$img"
	qemu_arm64 "$cache/logs/$suite.log" "$img"
	rm -f "$img"
	log "$suite: the VM ran $((SECONDS - s)) s"
}

rows=()
failed=0

# collect SUITE: a row for the smoke run and one per configuration.
collect() {
	local suite=$1 vmlog=$cache/logs/$1.log c name out rc secs release result why pass fail skip
	kdir=$cache/kernels/$1
	release=$(cat "$kdir/release")
	tr -d '\r' <"$vmlog" >"$vmlog.tmp" && mv "$vmlog.tmp" "$vmlog"
	for name in smoke $(cut -d'|' -f1 "$kdir/configs"); do
		out=$cache/logs/$suite.$name.log
		awk -v b="$marker begin $name" -v e="$marker end $name " '$0 == b { on = 1; next } index($0, e) == 1 { on = 0 } on' "$vmlog" >"$out"
		rc=$(sed -n "s/^$marker end $name rc=\([0-9]*\) .*/\1/p" "$vmlog")
		secs=$(sed -n "s/^$marker end $name rc=[0-9]* secs=\([0-9]*\)$/\1/p" "$vmlog")
		result=PASS why=
		pass=$(grep -c '^--- PASS' "$out" || true)
		fail=$(grep -c '^--- FAIL' "$out" || true)
		skip=$(grep -c '^--- SKIP' "$out" || true)
		if [ -z "$rc" ]; then
			result=FAIL why="no result: the VM crashed or timed out (${vmlog#"$root"/})"
		elif [ "$name" = smoke ]; then
			pass=- fail=- skip=-
			grep -q "^$marker doctor rc=0$" "$out" || why="doctor failed"
			grep -q "^filecache .*linux/arm64)$" "$out" || why="--version does not say linux/arm64"
			grep -q "^$marker query rc=0$" "$out" && grep -q '"cached_pages": 2048,' "$out" ||
				why="--json on the 8 MiB tmpfs file did not say 2048 cached pages"
			[ -z "$why" ] || result=FAIL
		elif [ "$rc" != 0 ]; then
			result=FAIL why="exit status $rc: $(sed -n 's/^--- FAIL: \([^ ]*\).*/\1/p' "$out" | tr '\n' ' ')"
		fi
		[ "$result" = PASS ] || failed=1
		rows+=("$release|$suite|$name|$result|$pass|$fail|$skip|${secs:--}|$why")
	done
}

stop_vms() {
	local f
	for f in "$cache"/kernels/*/qemu.pid; do
		[ -f "$f" ] || continue
		kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
}

main() {
	local suite t s0=$SECONDS r kernel name result pass fail skip secs why
	[ -x "$bin" ] || die "$bin is missing: run make build-arm64"
	file "$bin" | grep -q 'ARM aarch64.*statically linked' || die "$bin is not a static arm64 binary"
	for t in qemu-system-aarch64 busybox mkfs.ext4 dpkg-deb apt-get readelf xz zstd go timeout; do
		command -v "$t" >/dev/null || die "$t is missing (make deps)"
	done
	[ -r "$keyring" ] || die "$keyring is missing (package debian-archive-keyring)"
	mkdir -p "$cache/logs" "$cache/work"
	trap stop_vms EXIT
	log "building the arm64 test binary"
	(cd "$root" && CGO_ENABLED=0 GOARCH=arm64 go test -c -o "$cache/integration.test" ./cmd/filecache/integration)
	guest_userland
	for suite in "${suites[@]}"; do
		fetch_kernel "$suite"
		prepare_modules "$suite"
		select_configs "$release"
		build_initrd
		echo "$release" >"$kdir/release"
		echo "$vmlinuz" >"$kdir/vmlinuz.path"
		while [ "$(jobs -pr | wc -l)" -ge "$jobs" ]; do wait -n || true; done
		log "$suite: booting $release (smoke + ${#kconfigs[@]} configurations)"
		boot_vm "$suite" &
	done
	wait || true
	for suite in "${suites[@]}"; do collect "$suite"; done
	{
		printf '\n%-36s %-13s %-6s %4s %4s %4s %5s\n' KERNEL CONFIG RESULT PASS FAIL SKIP SECS
		for r in "${rows[@]}"; do
			IFS='|' read -r kernel _ name result pass fail skip secs why <<<"$r"
			printf '%-36s %-13s %-6s %4s %4s %4s %5s %s\n' "$kernel" "$name" "$result" "$pass" "$fail" "$skip" "$secs" "$why"
		done
		printf '\nvmtest-arm64: %d rows in %d s; logs in %s\n' "${#rows[@]}" $((SECONDS - s0)) "${cache#"$root"/}/logs"
	} | tee "$cache/logs/table.txt"
	[ "$failed" = 0 ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi
