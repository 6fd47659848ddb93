#!/usr/bin/env bash
# check-release.sh: make release, then make it again from a copy of the
# sources in another directory (libbpf, the BPF objects and both binaries
# built anew there; only downloads are shared) and fail unless both give
# byte-identical tarballs. Then check what each tarball holds: a static
# binary for its architecture that passes check-static.sh, the man page
# (groff reads it without a warning) and the completions, byte for byte as
# checked in, README.md and LICENSE, all owned by 0/0; and that the amd64
# binary says its version. Part of make test.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fail() { echo "check-release: $*" >&2; exit 1; }

version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
make -s release VERSION="$version" COMMIT="$commit"

tmp=$(mktemp -d /tmp/filecache-check-release.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The sources as they are (tracked and untracked, not ignored), elsewhere.
s=$tmp/src
mkdir -p "$s/libbpf" "$s/.cache"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
	[ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$s"
cp libbpf/libbpf_*.orig.tar.gz "$s/libbpf/"
cp -a .cache/sysroot "$s/.cache/"
t0=$SECONDS
make -s -C "$s" release VERSION="$version" COMMIT="$commit" DIST="$tmp/dist" >"$tmp/build.log" 2>&1 ||
	fail "make release in $s failed:$(printf '\n'; tail -20 "$tmp/build.log")"
if ! cmp -s dist/sha256sums.txt "$tmp/dist/sha256sums.txt"; then
	diff dist/sha256sums.txt "$tmp/dist/sha256sums.txt" >&2 || true
	fail "a second build from the same sources gave other tarballs (not reproducible)"
fi
echo "check-release: a second build elsewhere ($((SECONDS - t0)) s) gave the same bytes:"
sed 's/^/  /' dist/sha256sums.txt
(cd dist && sha256sum --quiet -c sha256sums.txt) || fail "dist/sha256sums.txt does not verify"

for arch in amd64 arm64; do
	name=filecache-$version-linux-$arch
	tgz=dist/$name.tar.gz
	[ -f "$tgz" ] || fail "$tgz is missing"
	want=$(printf '%s\n' "$name/" "$name/LICENSE" "$name/README.md" "$name/completions/" \
		"$name/completions/_filecache" "$name/completions/filecache.bash" "$name/completions/filecache.fish" \
		"$name/filecache" "$name/filecache.1")
	[ "$(tar -tzf "$tgz")" = "$want" ] || fail "$tgz holds$(printf '\n'; tar -tzf "$tgz"), want$(printf '\n%s' "$want")"
	if tar -tvzf "$tgz" | awk '$2 != "0/0" { bad = 1 } END { exit !bad }'; then
		fail "$tgz has entries not owned by 0/0"
	fi
	x=$tmp/x-$arch
	mkdir -p "$x"
	tar -xzf "$tgz" -C "$x"
	d=$x/$name
	case $arch in
	amd64) machine='x86-64' ;;
	arm64) machine='ARM aarch64' ;;
	esac
	file "$d/filecache" | grep -q "ELF 64-bit LSB executable, $machine, .*statically linked" ||
		fail "$tgz: filecache is not a static $arch executable: $(file -b "$d/filecache")"
	./scripts/check-static.sh "$d/filecache" >/dev/null
	[ -x "$d/filecache" ] || fail "$tgz: filecache is not executable"
	for f in filecache.1 completions/_filecache completions/filecache.bash completions/filecache.fish; do
		cmp -s "$d/$f" "cmd/filecache/docs/${f}" || fail "$tgz: $f differs from cmd/filecache/docs/$f"
	done
	for f in README.md LICENSE; do
		cmp -s "$d/$f" "$f" || fail "$tgz: $f differs"
	done
	if ! warn=$(groff -man -ww -z "$d/filecache.1" 2>&1) || [ -n "$warn" ]; then
		fail "$tgz: groff on filecache.1: $warn"
	fi
	echo "check-release: $tgz ($(du -k "$tgz" | cut -f1) KiB): static $arch binary, man page, completions, README.md, LICENSE"
done
# The binary this machine runs says which build it is.
got=$("$tmp/x-amd64/filecache-$version-linux-amd64/filecache" --version)
case $got in
"filecache $version (commit $commit, go"*", libbpf "*", linux/amd64)") ;;
*) fail "filecache --version says: $got" ;;
esac
echo "check-release: $got"
