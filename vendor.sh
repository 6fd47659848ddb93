#!/usr/bin/env bash
# vendor.sh [arm64]: fetch the pinned libbpf source and build it as a static
# library into libbpf/ (source in libbpf/src-<ver>, headers and libbpf.a in
# libbpf/out). With arm64, cross-build it for arm64 instead, into
# libbpf/src-<ver>-arm64 and libbpf/out-arm64, with Debian's aarch64 cross
# compiler and the arm64 libelf/zlib headers of the sysroot that
# scripts/sysroot.sh made (SYSROOT, default .cache/sysroot/arm64/root).
#
# libbpfgo v0.8.0-libbpf-1.5 is written against libbpf 1.5.0; a header/library
# mismatch breaks cgo, so the version and the tarball's sha256 are pinned here.
# The tarball is Debian's orig tarball of that release, fetched from the Debian
# mirror this machine's own apt configuration names (no host is written here).
set -euo pipefail

LIBBPF_VERSION=1.5.0
LIBBPF_SHA256=53492aff6dd47e4da04ef5e672d753b9743848bdb38e9d90eafbe190b7983c44
LIBBPF_POOL=pool/main/libb/libbpf

top=$(cd "$(dirname "$0")" && pwd)
dir=$top/libbpf
src=$dir/src-$LIBBPF_VERSION
out=$dir/out
cross=()
case ${1:-} in
"") ;;
arm64)
	sysroot=${SYSROOT:-$top/.cache/sysroot/arm64/root}
	[ -f "$sysroot/usr/include/libelf.h" ] || { echo "vendor.sh: no libelf.h in $sysroot (scripts/sysroot.sh arm64 makes it)" >&2; exit 1; }
	src=$src-arm64 out=$out-arm64
	cross=(CC=aarch64-linux-gnu-gcc AR=aarch64-linux-gnu-ar NO_PKG_CONFIG=1 "EXTRA_CFLAGS=-I$sysroot/usr/include")
	;;
*) echo "vendor.sh: unknown target $1 (arm64, or none for this machine)" >&2; exit 1 ;;
esac
tarball=$dir/libbpf_$LIBBPF_VERSION.orig.tar.gz

if [ -f "$out/lib/libbpf.a" ] && [ -f "$out/.version" ] && [ "$(cat "$out/.version")" = "$LIBBPF_VERSION" ]; then
	exit 0
fi

# debian_mirror prints the first Debian archive URI of the apt configuration
# (deb822 .sources files and one-line .list files alike), skipping security.
debian_mirror() {
	{
		awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
		awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
	} | grep -E '/debian/?$' | grep -v -- '-security' | sed -n '1{s#/$##;p;}'
}

have_tarball() {
	[ -f "$tarball" ] && echo "$LIBBPF_SHA256  $tarball" | sha256sum --quiet -c - 2>/dev/null
}

mkdir -p "$dir"
if ! have_tarball; then
	mirror=$(debian_mirror)
	if [ -z "$mirror" ]; then
		echo "vendor.sh: no Debian archive found in /etc/apt/sources.list{,.d}; put libbpf_$LIBBPF_VERSION.orig.tar.gz in $dir" >&2
		exit 1
	fi
	echo "vendor.sh: fetching libbpf $LIBBPF_VERSION from $mirror" >&2
	curl -fsSL --retry 3 -o "$tarball.part" "$mirror/$LIBBPF_POOL/libbpf_$LIBBPF_VERSION.orig.tar.gz"
	mv "$tarball.part" "$tarball"
	if ! have_tarball; then
		echo "vendor.sh: $tarball: sha256 mismatch (want $LIBBPF_SHA256); refusing to build" >&2
		rm -f "$tarball"
		exit 1
	fi
fi

rm -rf "$src" "$out"
mkdir -p "$src"
tar -xzf "$tarball" -C "$src" --strip-components=1
make -s -C "$src/src" BUILD_STATIC_ONLY=1 OBJDIR="$src/build" DESTDIR="$out" "${cross[@]}" \
	PREFIX= LIBDIR=/lib INCLUDEDIR=/include UAPIDIR=/include \
	-j"$(nproc)" install install_uapi_headers >/dev/null
echo "$LIBBPF_VERSION" > "$out/.version"
echo "vendor.sh: built $out/lib/libbpf.a" >&2
