#!/usr/bin/env bash
# sysroot.sh [--depends] ARCH DIR [PACKAGE...]: download Debian packages
# built for ARCH (default: the static libraries libbpf links against:
# libelf, zlib, zstd) and extract them into DIR/root, a sysroot for cross
# builds. With --depends, the packages they depend on too (recursively), as
# a guest's userland needs (scripts/vmtest.sh).
#
# apt runs with a private state under DIR/apt (its own lists, cache and
# sources, APT::Architecture=ARCH): the machine's dpkg architecture list and
# apt lists stay untouched, and nothing is installed. The sources name the
# Debian archive (and security archive) of this machine's own apt
# configuration, for this machine's release, so the libraries match the
# cross toolchain's glibc; no host is written here. Quick when DIR already
# holds the same packages.
set -euo pipefail

depends=
if [ "${1:-}" = --depends ]; then
	depends=1
	shift
fi
arch=${1:?usage: sysroot.sh [--depends] ARCH DIR [PACKAGE...]}
dir=${2:?usage: sysroot.sh [--depends] ARCH DIR [PACKAGE...]}
shift 2
packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(libelf-dev zlib1g-dev libzstd-dev)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "sysroot.sh: $*" >&2; exit 1; }

# apt_uris prints every archive URI of the apt configuration (deb822 .sources
# files and one-line .list files alike), as vendor.sh and vmtest.sh read it.
apt_uris() {
	awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
	awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
}

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
want="$arch ${depends:+--depends }${packages[*]}"
if [ -f "$dir/root/.packages" ] && [ "$(cat "$dir/root/.packages")" = "$want" ]; then
	exit 0
fi

mirror=$(apt_uris | grep -E '/debian/?$' | grep -v -- '-security' | sed -n '1{s#/$##;p;}')
security=$(apt_uris | grep -E '/debian-security/?$' | sed -n '1{s#/$##;p;}')
[ -n "$mirror" ] || die "no Debian archive URI in /etc/apt/sources.list{,.d}"
[ -r "$keyring" ] || die "$keyring is missing (package debian-archive-keyring)"
# shellcheck disable=SC1091 # the machine's own
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release"

a=$dir/apt
mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$dir/debs"
{
	printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' "$mirror" "$codename" "$codename" "$keyring"
	if [ -n "$security" ]; then
		printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' "$security" "$codename" "$keyring"
	fi
} >"$a/sources.sources"
apt=(
	-o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache"
	-o "Dir::Etc::SourceList=$a/sources.sources" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
	-o Dir::State::status=/dev/null
	-o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
	-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
	-o APT::Update::Post-Invoke-Success::=
	-o APT::Sandbox::User=root
	-q
)
echo "sysroot.sh: $arch: ${packages[*]} ($codename)" >&2
apt-get "${apt[@]}" update >"$a/update.log" 2>&1 || die "apt-get update failed:$(printf '\n'; tail -5 "$a/update.log")"
if [ -n "$depends" ]; then
	# Every package named, and what each depends on (alternatives included).
	mapfile -t packages < <(apt-cache "${apt[@]}" depends --recurse --no-recommends --no-suggests \
		--no-conflicts --no-breaks --no-replaces --no-enhances "${packages[@]}" | grep -v '^[ <]' | sort -u)
fi
rm -f "$dir"/debs/*.deb
(cd "$dir/debs" && apt-get "${apt[@]}" download "${packages[@]}" >/dev/null) || die "apt-get download ${packages[*]} for $arch failed"
rm -rf "$dir/root"
mkdir -p "$dir/root"
for f in "$dir"/debs/*.deb; do
	dpkg-deb -x "$f" "$dir/root"
done
echo "$want" >"$dir/root/.packages"
