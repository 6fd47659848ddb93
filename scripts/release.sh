#!/usr/bin/env bash
# release.sh DIST VERSION BIN:ARCH...: write DIST/filecache-VERSION-linux-ARCH.tar.gz
# for each static binary BIN built for ARCH (amd64, arm64), and
# DIST/sha256sums.txt. Each tarball holds one directory, filecache-VERSION-linux-ARCH/,
# with the binary, its man page (filecache.1), bash, zsh and fish completions
# (completions/), README.md and LICENSE. `make release` runs it.
#
# Reproducible: the same sources give the same bytes. Every entry has the
# mtime of the commit (SOURCE_DATE_EPOCH overrides), owner and group 0
# (numeric), modes 755/644, and entries are sorted by name; gzip -n writes no
# name or time.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dist=${1:?usage: release.sh DIST VERSION BIN:ARCH...}
version=${2:?usage: release.sh DIST VERSION BIN:ARCH...}
shift 2
[ $# -gt 0 ] || { echo "release.sh: no BIN:ARCH" >&2; exit 1; }
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}

mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
rm -f "$dist"/filecache-*-linux-*.tar.gz "$dist/sha256sums.txt"
for pair in "$@"; do
	bin=${pair%:*} arch=${pair##*:}
	name=filecache-$version-linux-$arch
	d=$stage/$name
	mkdir -p "$d/completions"
	cp "$bin" "$d/filecache"
	cp "$root/cmd/filecache/docs/filecache.1" "$root/README.md" "$root/LICENSE" "$d/"
	cp "$root"/cmd/filecache/docs/completions/* "$d/completions/"
	(cd "$stage" && tar --create --format=gnu --sort=name --mtime="@$epoch" \
		--owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX "$name") |
		gzip -9 -n >"$dist/$name.tar.gz"
	echo "release.sh: $dist/$name.tar.gz ($(du -k "$dist/$name.tar.gz" | cut -f1) KiB)" >&2
done
(cd "$dist" && sha256sum filecache-*-linux-*.tar.gz >sha256sums.txt)
