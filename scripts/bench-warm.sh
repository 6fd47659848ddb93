#!/usr/bin/env bash
# bench-warm.sh: a warm restart's restore against vmtouch -t, on the same
# files. A tree of WARM_SIZE (2 GiB) on a disk-backed filesystem (WARM_DIR's,
# /var/tmp by default: it must be evictable, so not tmpfs):
#   big    8 files of an eighth of WARM_SIZE/2 each, every third 64 KiB cached
#   small  WARM_SIZE/2 in 1 MiB files, every other file wholly cached
# A snapshot of the tree is taken once (`filecache snapshot`, timed, its size
# printed), then RUNS times, interleaved, each after evicting the tree
# (`filecache evict`, checked to leave no page):
#   restore    filecache restore SNAPSHOT          (its default: 4 files at once,
#                                                   1 on a rotational disk)
#   restore-j4 filecache restore --jobs 4 SNAPSHOT (4 files at once on any disk)
#   restore-j1 filecache restore --jobs 1 SNAPSHOT (one file at a time)
#   vmtouch    vmtouch -t DIR                      (every page of every file)
# each timed from fork to exit. After each restore the tree is snapshot again
# and its file lines compared with the first snapshot's: "exact" when equal;
# after vmtouch every page must be cached. The table shows medians.
#
# The host reclaims this VM's page cache by itself (DAMON, PLATFORM.md): a
# page left unused for about a minute may go, so the snapshot is taken right
# after the pattern is set and each check right after its run; a restore
# found short of pages is reported as such, not hidden. The virtual disk
# may also be cached by the host, which makes reads faster than the device.
#
# A benchmark, not a test: it exits 0 when the measurements ran. Needs root,
# vmtouch, python3 and about WARM_SIZE free on WARM_DIR's filesystem.
#
# Environment:
#   FILECACHE_BIN  filecache binary (default: bin/filecache in the repo root)
#   RUNS           timed runs of each (default 3)
#   WARM_DIR       where the tree is written (default /var/tmp), removed after
#   WARM_SIZE      the tree's size in MiB (default 2048)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILECACHE_BIN=${FILECACHE_BIN:-$root/bin/filecache}
RUNS=${RUNS:-3}
WARM_DIR=${WARM_DIR:-/var/tmp}
WARM_SIZE=${WARM_SIZE:-2048}

die() {
	echo "bench-warm: $*" >&2
	exit 1
}

usec() {
	local t=${1//[!0-9]/}
	echo $((10#$t))
}

[[ -n ${EPOCHREALTIME:-} ]] || die "bash >= 5 is needed (EPOCHREALTIME)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $WARM_SIZE =~ ^[1-9][0-9]*$ && $WARM_SIZE -ge 64 ]] || die "WARM_SIZE must be a number of MiB, 64 or more, not '$WARM_SIZE'"
[[ $EUID -eq 0 ]] || die "must run as root (filecache loads BPF programs)"
command -v vmtouch >/dev/null || die "vmtouch is missing: apt-get install -y vmtouch"
command -v python3 >/dev/null || die "python3 is missing (it writes the tree): apt-get install -y python3"
[[ -x $FILECACHE_BIN ]] || die "$FILECACHE_BIN is missing: run 'make build' (or set FILECACHE_BIN)"
fstype=$(stat -f -c %T "$WARM_DIR")
[[ $fstype != tmpfs ]] || die "$WARM_DIR is on tmpfs, whose pages cannot be evicted: set WARM_DIR to a disk"
free_mib=$(($(stat -f -c '%a * %S' "$WARM_DIR") / 1048576))
((free_mib > WARM_SIZE + 256)) || die "$WARM_DIR has $free_mib MiB free, the tree needs $WARM_SIZE"

work=$(mktemp -d "$WARM_DIR/filecache-bench-warm.XXXXXX")
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() { rm -rf "$work"; }
trap cleanup EXIT INT TERM
tree=$work/tree
snap=$work/snapshot.ndjson.gz
fc=$FILECACHE_BIN

echo "bench-warm: writing a $WARM_SIZE MiB tree in $tree ($fstype) ..."
python3 - "$tree" "$WARM_SIZE" <<'EOF'
import os, sys
tree, size = sys.argv[1], int(sys.argv[2]) << 20
os.makedirs(tree + "/big")
os.makedirs(tree + "/small")
block = os.urandom(1 << 20)
def write(path, n):
    with open(path, "wb") as f:
        while n > 0:
            f.write(block[:min(n, len(block))])
            n -= len(block)
for i in range(8):
    write(f"{tree}/big/{i}", size // 2 // 8)
for i in range(size // 2 >> 20):
    write(f"{tree}/small/{i // 100:03d}-{i:05d}", 1 << 20)
os.sync()
EOF

# pattern: the scattered cache the snapshot records.
pattern() {
	"$fc" evict "$tree" >/dev/null
	python3 - "$tree" <<'EOF'
import os, sys
tree = sys.argv[1]
def read(path, spans):
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no readahead: exactly these
    for off, n in spans:
        os.pread(fd, n, off)
    os.close(fd)
for name in sorted(os.listdir(tree + "/big")):
    p = f"{tree}/big/{name}"
    read(p, [(off, 64 << 10) for off in range(0, os.path.getsize(p), 192 << 10)])
for i, name in enumerate(sorted(os.listdir(tree + "/small"))):
    if i % 2 == 0:
        read(f"{tree}/small/{name}", [(0, 1 << 20)])
EOF
}

# cached: pages of the tree in the page cache.
cached() {
	"$fc" --json "$tree" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["total"]["cached_pages"], d["total"]["total_pages"])'
}

# lines FILE: a snapshot's file lines, sorted (header and end line dropped).
lines() {
	zcat "$1" | grep '"record":"file"' | sort
}

evict() {
	"$fc" evict "$tree" >/dev/null
	read -r c _ < <(cached)
	[[ $c -eq 0 ]] || echo "bench-warm: WARNING: $c pages still cached after evict" >&2
}

pattern
t0=$EPOCHREALTIME
"$fc" snapshot --output "$snap" "$tree" >"$work/snapshot.out"
snap_us=$(($(usec "$EPOCHREALTIME") - $(usec "$t0")))
cat "$work/snapshot.out"
lines "$snap" >"$work/want"
want_pages=$(zcat "$snap" | python3 -c 'import json, sys
for l in sys.stdin:
    d = json.loads(l)
    if d["record"] == "end": print(d["pages"])')
read -r _ total_pages < <(cached)
page=$(getconf PAGESIZE)
echo "bench-warm: snapshot of $want_pages pages ($((want_pages * page / 1048576)) MiB) of $total_pages in $((snap_us / 1000)) ms, $(stat -c %s "$snap") bytes gzip'd"

declare -A times checks
tools=(restore restore-j4 restore-j1 vmtouch)
for ((run = 1; run <= RUNS; run++)); do
	for tool in "${tools[@]}"; do
		evict
		case $tool in
		restore) cmd=("$fc" restore "$snap") ;;
		restore-j4) cmd=("$fc" restore --jobs 4 "$snap") ;;
		restore-j1) cmd=("$fc" restore --jobs 1 "$snap") ;;
		vmtouch) cmd=(vmtouch -t -q "$tree") ;;
		esac
		t0=$EPOCHREALTIME
		"${cmd[@]}" >/dev/null
		us=$(($(usec "$EPOCHREALTIME") - $(usec "$t0")))
		times[$tool]+="$us "
		if [[ $tool == vmtouch ]]; then
			read -r c t < <(cached)
			check="$c/$t pages"
		else
			"$fc" snapshot --output "$work/again.ndjson.gz" "$tree" >/dev/null
			if lines "$work/again.ndjson.gz" | cmp -s - "$work/want"; then
				check=exact
			else
				read -r c _ < <(cached)
				check="DIFFERS: $c pages cached, the snapshot lists $want_pages"
			fi
		fi
		checks[$tool]+="$check; "
		echo "bench-warm: run $run: $tool $((us / 1000)) ms ($check)"
	done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
vm=$(echo "${times[vmtouch]}" | median)
echo
printf '%-11s %9s %10s %8s %8s  %s\n' TOOL READS MEDIAN MiB/s "VS VMTOUCH" CHECKS
for tool in "${tools[@]}"; do
	m=$(echo "${times[$tool]}" | median)
	bytes=$((want_pages * page))
	[[ $tool == vmtouch ]] && bytes=$((total_pages * page))
	printf '%-11s %5d MiB %7d ms %8d %9sx  %s\n' "$tool" $((bytes / 1048576)) $((m / 1000)) $((bytes * 1000000 / m / 1048576)) \
		"$(awk -v a="$vm" -v b="$m" 'BEGIN {printf "%.2f", a / b}')" "${checks[$tool]}"
done
