#!/usr/bin/env bash
# bench-top.sh: `filecache top` against `vmtouch -F /`, side by side in one run
# on this machine as it is: the question both answer is "what is in the page
# cache?" (vmtouch only by crawling every file of the root filesystem).
#
#   1. filecache --json top -n 20 once under GNU time: peak RSS, and how many
#      inodes it walked (summed over the filesystems of the report); then RUNS
#      timed runs (bash's microsecond clock, output to /dev/null), median.
#      Then top --by-cgroup the same way: its cost a cached page over plain top.
#   2. The same with -n 500, after adding EXTRA_FILES cached one-page files on
#      a scratch tmpfs: peak RSS must follow the rows asked for, not the
#      inodes walked.
#   3. vmtouch -F / twice under GNU time: the first run finds the dentry and
#      inode caches as they were (~13-24 s here), the second finds them full
#      of the root filesystem's inodes, which it loaded (~5 s); filecache top
#      is timed again after it, since those inodes are now on its lists too.
#   4. Each walk forced (--bpf-method bpf_loop, where the kernel has it, and
#      bounded-loop): top --mount of the EXTRA_FILES tmpfs against an empty
#      tmpfs, RUNS runs of each interleaved, medians; the difference over the
#      inodes is the walk's cost an inode, without the program's load.
# Prints the time per 150,000 inodes (target <= 100 ms), the ratio to vmtouch
# (target > 100x) before and after, the RSS figures and each walk's cost.
#
# A benchmark, not a test: exits 0 when the measurements ran, with MISS lines
# for missed targets. Needs root, GNU time, vmtouch and python3.
#
# Environment:
#   FILECACHE_BIN  filecache binary (default: bin/filecache in the repo root)
#   RUNS           timed runs of filecache (default 5)
#   EXTRA_FILES    one-page files added for the RSS check (default 200000)
#   VMTOUCH=0      skip vmtouch (a quick run)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILECACHE_BIN=${FILECACHE_BIN:-$root/bin/filecache}
RUNS=${RUNS:-5}
EXTRA_FILES=${EXTRA_FILES:-200000}
VMTOUCH=${VMTOUCH:-1}
GNU_TIME=/usr/bin/time
TARGET_MS_PER_150K=100
TARGET_SPEEDUP=100

die() {
	echo "bench-top: $*" >&2
	exit 1
}

usec() {
	local t=${1//[!0-9]/}
	echo $((10#$t))
}

[[ $EUID -eq 0 ]] || die "must run as root (filecache top loads a BPF program)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $EXTRA_FILES =~ ^[0-9]+$ ]] || die "EXTRA_FILES must be a number, not '$EXTRA_FILES'"
[[ -x $GNU_TIME ]] || die "$GNU_TIME is missing: apt-get install -y time"
command -v python3 >/dev/null || die "python3 is missing: apt-get install -y python3"
[[ $VMTOUCH == 0 ]] || command -v vmtouch >/dev/null || die "vmtouch is missing: apt-get install -y vmtouch"
[[ -x $FILECACHE_BIN ]] || die "$FILECACHE_BIN is missing: run 'make build'"

dir=$(mktemp -d /tmp/filecache-bench-top.XXXXXX)
empty=$(mktemp -d /tmp/filecache-bench-top-empty.XXXXXX)
mounted=0
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	[[ $mounted -eq 0 ]] || umount "$dir" || umount -l "$dir"
	mountpoint -q "$empty" && { umount "$empty" || umount -l "$empty"; }
	rmdir "$dir" "$empty" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT

# median_ms CMD...: RUNS timed runs, median in milliseconds (3 decimals).
median_ms() {
	local i t0 t1 times=()
	for ((i = 0; i < RUNS; i++)); do
		t0=$EPOCHREALTIME
		"$@" >/dev/null 2>&1 || true
		t1=$EPOCHREALTIME
		times+=($(($(usec "$t1") - $(usec "$t0"))))
	done
	printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]/1000}'
}

# measure N: one run under GNU time; prints "RSS_KIB INODES FILESYSTEMS ROWS".
measure() {
	"$GNU_TIME" -f '%M' -o "$dir.rss" "$FILECACHE_BIN" --json top -n "$1" >"$dir.json" 2>"$dir.err" || true
	python3 - "$dir.json" "$(cat "$dir.rss")" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], sum(f["inodes"] for f in d["filesystems"]), len(d["filesystems"]), len(d["rows"]))
EOF
	rm -f "$dir.json" "$dir.rss" "$dir.err"
}

out=$(measure 20) || die "filecache top failed: $("$FILECACHE_BIN" top -n 1 2>&1 | tail -1)"
read -r rss20 inodes fss rows20 <<<"$out"
ms=$(median_ms "$FILECACHE_BIN" top -n 20)
per150k=$(awk -v ms="$ms" -v n="$inodes" 'BEGIN {printf "%.1f", ms * 150000 / n}')

echo "filecache top: $inodes inodes in $fss filesystems walked in $ms ms (median of $RUNS): $per150k ms per 150,000 inodes (target <= $TARGET_MS_PER_150K)"
awk -v v="$per150k" -v t="$TARGET_MS_PER_150K" 'BEGIN {if (v > t) print "MISS: time per 150,000 inodes"}'

# top --by-cgroup reads every cached page's memory cgroup as well: its cost
# over plain top's, per cached page walked (the filesystems' walked_pages).
pages=$("$FILECACHE_BIN" --json top --by-cgroup -n 20 2>/dev/null |
	python3 -c 'import json, sys; print(sum(f.get("walked_pages", 0) for f in json.load(sys.stdin)["filesystems"]))') ||
	die "filecache top --by-cgroup failed: $("$FILECACHE_BIN" top --by-cgroup -n 1 2>&1 | tail -1)"
cgms=$(median_ms "$FILECACHE_BIN" top --by-cgroup -n 20)
echo "filecache top --by-cgroup: $pages cached pages walked in $cgms ms (median of $RUNS): $(awk -v a="$cgms" -v b="$ms" -v n="$pages" 'BEGIN {printf "%.0f", (a - b) * 1e6 / (n ? n : 1)}') ns a cached page over plain top"

# vmtouch_ms: one run of vmtouch -F / under GNU time; prints "MS RSS_KIB".
vmtouch_ms() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$GNU_TIME" -f '%M' -o "$dir.vrss" vmtouch -F / >/dev/null 2>&1 || true
	t1=$EPOCHREALTIME
	echo "$(awk -v a="$(usec "$t0")" -v b="$(usec "$t1")" 'BEGIN {printf "%.0f", (b - a) / 1000}') $(cat "$dir.vrss")"
	rm -f "$dir.vrss"
}

if [[ $VMTOUCH == 1 ]]; then
	read -r vms vrss <<<"$(vmtouch_ms)"
	ratio=$(awk -v a="$vms" -v b="$ms" 'BEGIN {printf "%.0f", a / b}')
	echo "vmtouch -F / (caches as found): $vms ms, peak RSS $((vrss / 1024)) MiB: filecache top is ${ratio}x faster (target > ${TARGET_SPEEDUP}x)"
	awk -v r="$ratio" -v t="$TARGET_SPEEDUP" 'BEGIN {if (r <= t) print "MISS: speed-up over vmtouch -F /"}'
	# vmtouch has now loaded every inode of the root filesystem: both again.
	read -r vms2 _ <<<"$(vmtouch_ms)"
	out=$(measure 20)
	read -r _ inodes2 _ _ <<<"$out"
	ms2=$(median_ms "$FILECACHE_BIN" top -n 20)
	ratio2=$(awk -v a="$vms2" -v b="$ms2" 'BEGIN {printf "%.0f", a / b}')
	per2=$(awk -v ms="$ms2" -v n="$inodes2" 'BEGIN {printf "%.1f", ms * 150000 / n}')
	echo "after it, with every inode of / cached: filecache top $ms2 ms for $inodes2 inodes ($per2 ms per 150,000), vmtouch -F / $vms2 ms: ${ratio2}x"
	awk -v r="$ratio2" -v t="$TARGET_SPEEDUP" 'BEGIN {if (r <= t) print "MISS: speed-up over vmtouch -F / with warm caches"}'
fi

# More inodes, more rows asked for: what the memory follows.
mount -t tmpfs -o size=$((EXTRA_FILES / 200 + 64))m,nr_inodes=$((EXTRA_FILES + 1000)) tmpfs "$dir"
mounted=1
python3 - "$dir" "$EXTRA_FILES" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(0, n, 1000):
    sub = os.path.join(d, "d%d" % (i // 1000))
    os.mkdir(sub)
    for j in range(i, min(i + 1000, n)):
        with open(os.path.join(sub, "f%d" % j), "wb") as f:
            f.write(b"x")
EOF
out=$(measure 20)
read -r rss20b inodesb _ _ <<<"$out"
out=$(measure 500)
read -r rss500 _ _ rows500 <<<"$out"
echo "peak RSS: $((rss20 / 1024)) MiB for $rows20 rows of $inodes inodes; $((rss20b / 1024)) MiB for 20 rows of $inodesb inodes; $((rss500 / 1024)) MiB for $rows500 rows"
awk -v a="$rss20" -v b="$rss20b" 'BEGIN {if (b > a * 1.25 + 2048) print "MISS: RSS grew with the inodes walked"}'

# Each walk forced, on the tmpfs of EXTRA_FILES files and on an empty one,
# the runs interleaved so that a busy machine slows both walks alike.
mount -t tmpfs tmpfs "$empty"
methods=()
declare -A winodes wruns wtimes
for m in bpf_loop bounded-loop; do
	if ! "$FILECACHE_BIN" --json --bpf-method="$m" top -n 20 --mount "$dir" >"$dir.json" 2>"$dir.err"; then
		echo "$m walk: not on this kernel ($(tail -1 "$dir.err"))"
		rm -f "$dir.json" "$dir.err"
		continue
	fi
	read -r "winodes[$m]" "wruns[$m]" <<<"$(python3 -c 'import json, sys; f = json.load(open(sys.argv[1]))["filesystems"][0]; print(f["inodes"], f["runs"])' "$dir.json")"
	rm -f "$dir.json" "$dir.err"
	methods+=("$m")
done
# once_us CMD...: one run's wall time in microseconds.
once_us() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>&1 || true
	t1=$EPOCHREALTIME
	echo $(($(usec "$t1") - $(usec "$t0")))
}
for ((i = 0; i < RUNS; i++)); do
	for m in "${methods[@]}"; do
		wtimes[$m.empty]+="$(once_us "$FILECACHE_BIN" --bpf-method="$m" top -n 20 --mount "$empty") "
		wtimes[$m.full]+="$(once_us "$FILECACHE_BIN" --bpf-method="$m" top -n 20 --mount "$dir") "
	done
done
median_of() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]/1000}'; }
for m in "${methods[@]}"; do
	t0=$(median_of "${wtimes[$m.empty]}")
	t1=$(median_of "${wtimes[$m.full]}")
	echo "$m walk: ${winodes[$m]} inodes in $t1 ms (${wruns[$m]} test runs), an empty tmpfs in $t0 ms: $(awk -v a="$t0" -v b="$t1" -v n="${winodes[$m]}" 'BEGIN {printf "%.0f", (b - a) * 1e6 / n}') ns an inode"
done
