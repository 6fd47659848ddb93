#!/usr/bin/env bash
# bench.sh: filecache against vmtouch and util-linux fincore, side by side in
# one run, on the same files, for three workloads:
#   small   one 12 KiB file, fully cached
#   sparse  a SPARSE_SIZE (1 TiB) sparse file with 64 MiB cached in the middle
#   full    a fully cached 256 MiB file
# All files live on a tmpfs this script mounts in a mktemp -d directory (nothing
# is reclaimed under the measurement; a sparse 1 TiB i_size costs nothing
# there), unmounted and removed on exit, failure or Ctrl-C.
#
# Every tool first runs once per workload under GNU time: its cached-page count
# is checked against the other tools and the expected count (a WARNING line if
# they differ), and its peak RSS is taken from that run. Then each tool runs N
# times with its output to /dev/null, timed from fork to exit with bash's
# microsecond clock (EPOCHREALTIME, no extra process in the timed span); the
# table shows the median. When vmtouch's or fincore's first run took >= 1 s
# (the 1 TiB file: ~11 s each), it counts as a timed run (GNU time's ~1 ms
# overhead is noise there) and that tool does RUNS_SLOW timed runs instead of
# RUNS, so by default they run once each on the 1 TiB file.
#
# A benchmark, not a test: it exits 0 when the measurements ran, even when a
# target is missed (printed as MISS); non-zero only when something could not
# be run. Needs root (mount, BPF), GNU time (/usr/bin/time), vmtouch, fincore.
#
# Environment:
#   FILECACHE_BIN  filecache binary (default: bin/filecache in the repo root)
#   RUNS           timed runs per workload and tool (default 5)
#   RUNS_SLOW      timed runs of vmtouch/fincore when one run takes >= 1 s (default 1)
#   SPARSE_SIZE    size of the sparse file, as truncate(1) reads it (default 1T);
#                  e.g. SPARSE_SIZE=8G RUNS=1 ./scripts/bench.sh for a smoke run
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILECACHE_BIN=${FILECACHE_BIN:-$root/bin/filecache}
RUNS=${RUNS:-5}
RUNS_SLOW=${RUNS_SLOW:-1}
SPARSE_SIZE=${SPARSE_SIZE:-1T}
GNU_TIME=/usr/bin/time

# Targets.
TARGET_SPEEDUP=300 # (a) sparse: filecache at least this many times faster than each tool
TARGET_RSS_MIB=64  # (b) sparse: filecache peak RSS below this
TARGET_SMALL_MS=25 # (c) small: filecache end to end at most this

die() {
	echo "bench: $*" >&2
	exit 1
}

# --- preconditions -----------------------------------------------------------
[[ -n ${EPOCHREALTIME:-} ]] || die "bash >= 5 is needed (EPOCHREALTIME); this is bash $BASH_VERSION"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $RUNS_SLOW =~ ^[1-9][0-9]*$ ]] || die "RUNS_SLOW must be a positive integer, not '$RUNS_SLOW'"
[[ $EUID -eq 0 ]] || die "must run as root (it mounts a tmpfs, and filecache loads a BPF program)"
if [[ ! -x $GNU_TIME ]]; then
	echo "bench: $GNU_TIME (GNU time) is missing; it measures peak RSS." >&2
	echo "bench: install it with: apt-get install -y time   (Debian package 'time')" >&2
	exit 1
fi
command -v vmtouch >/dev/null || die "vmtouch is missing: apt-get install -y vmtouch"
command -v fincore >/dev/null || die "fincore is missing: apt-get install -y util-linux-extra (util-linux before Debian 12)"
[[ -x $FILECACHE_BIN ]] || die "$FILECACHE_BIN is missing or not executable: run 'make build' (or set FILECACHE_BIN)"
FILECACHE_BIN=$(cd "$(dirname "$FILECACHE_BIN")" && pwd)/$(basename "$FILECACHE_BIN")
page_size=$(getconf PAGESIZE)

# --- scratch tmpfs, removed on every exit ------------------------------------
dir=""
mounted=0
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	if [[ $mounted -eq 1 ]]; then
		umount "$dir" 2>/dev/null || umount -l "$dir" || echo "bench: could not unmount $dir" >&2
	fi
	if [[ -n $dir ]]; then
		rmdir "$dir" 2>/dev/null || echo "bench: could not remove $dir" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

dir=$(mktemp -d "${TMPDIR:-/tmp}/filecache-bench.XXXXXX")
# 256 MiB + 64 MiB of data, plus tool outputs; huge=never keeps 4 KiB pages.
mount -t tmpfs -o size=448m,mode=0700,huge=never filecache-bench "$dir" || die "cannot mount a tmpfs on $dir"
mounted=1
out=$dir/out
mkdir "$out"

# --- the files ---------------------------------------------------------------
mib=$((1024 * 1024))
f_small=$dir/small
f_sparse=$dir/sparse
f_full=$dir/full

head -c 12288 /dev/urandom >"$f_small"
truncate -s "$SPARSE_SIZE" "$f_sparse" 2>"$out/truncate.err" ||
	die "SPARSE_SIZE=$SPARSE_SIZE: $(cat "$out/truncate.err")"
sparse_bytes=$(stat -c %s "$f_sparse")
((sparse_bytes >= 64 * mib)) || die "SPARSE_SIZE=$SPARSE_SIZE is below 64 MiB"
# 64 MiB straddling the middle, MiB-aligned.
seek_mib=$((sparse_bytes / 2 / mib - 32))
dd if=/dev/urandom of="$f_sparse" bs=1M count=64 seek="$seek_mib" conv=notrunc iflag=fullblock status=none
head -c $((256 * mib)) /dev/urandom >"$f_full"

declare -A expect label
expect[small]=3
expect[sparse]=$((64 * mib / page_size))
expect[full]=$((256 * mib / page_size))
label[small]="small: 12 KiB, all cached"
label[sparse]="sparse: $SPARSE_SIZE, 64 MiB cached"
label[full]="full: 256 MiB, all cached"
declare -A file=([small]=$f_small [sparse]=$f_sparse [full]=$f_full)
workloads=(small sparse full)
tools=(filecache vmtouch fincore)

# tool_cmd TOOL FILE: sets the array cmd to the command line for TOOL on FILE.
tool_cmd() {
	case $1 in
	filecache) cmd=("$FILECACHE_BIN" --json "$2") ;;
	vmtouch) cmd=(vmtouch "$2") ;;
	fincore) cmd=(fincore --bytes --noheadings --output PAGES "$2") ;;
	esac
}

# filecache_json FILE: prints "cached_pages engine method n_errors" from
# filecache's JSON (python3 when present, else grep on the compact form).
filecache_json() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["files"][0]["cached_pages"], d.get("engine", "?"), d.get("method", "?"), len(d.get("errors") or []))
' "$1" 2>/dev/null && return
	fi
	local pages engine method nerr=0
	pages=$(grep -o '"cached_pages": *[0-9]*' "$1" | head -n1 | grep -o '[0-9]*$') || pages='?'
	engine=$(grep -o '"engine": *"[^"]*"' "$1" | head -n1 | sed 's/.*"\([^"]*\)"$/\1/') || engine='?'
	method=$(grep -o '"method": *"[^"]*"' "$1" | head -n1 | sed 's/.*"\([^"]*\)"$/\1/') || method='?'
	grep -q '"errors": *\[ *\]' "$1" || nerr=1
	echo "${pages:-?} ${engine:-?} ${method:-?} $nerr"
}

# cached_pages TOOL OUTFILE: the cached page count from TOOL's output.
cached_pages() {
	local n=""
	case $1 in
	filecache) n=$(filecache_json "$2" | awk '{print $1}') ;;
	vmtouch) n=$(awk -F'[ /]+' '/Resident Pages:/ {print $4; exit}' "$2") ;;
	fincore) n=$(awk 'NR == 1 {print $1}' "$2") ;;
	esac
	[[ $n =~ ^[0-9]+$ ]] && echo "$n" || echo "?"
}

# usec EPOCHREALTIME-VALUE: integer microseconds (the separator follows LC_NUMERIC).
usec() {
	local t=${1//[!0-9]/}
	echo $((10#$t))
}

declare -A count rss_kib med_us min_us max_us nruns
fc_engine='?' fc_method='?'

# measure WORKLOAD TOOL N N_SLOW: N timed runs, or N_SLOW when the first run
# took >= 1 s.
measure() {
	local w=$1 t=$2 n=$3 n_slow=$4 key="$1:$2" tf="$out/$1.$2"
	local cmd t0 t1 rc=0 first_us i samples=()
	tool_cmd "$t" "${file[$w]}"

	# First run, under GNU time: the page count, peak RSS, and a warm-up.
	t0=$EPOCHREALTIME
	"$GNU_TIME" -f '%e %M' -o "$tf.time" -- "${cmd[@]}" >"$tf.out" 2>"$tf.err" </dev/null || rc=$?
	t1=$EPOCHREALTIME
	if ((rc != 0)); then
		echo "bench: $t on $w failed (exit $rc): ${cmd[*]}" >&2
		cat "$tf.err" "$tf.out" >&2
		exit 1
	fi
	rss_kib[$key]=$(awk 'END {print $2}' "$tf.time")
	count[$key]=$(cached_pages "$t" "$tf.out")
	if [[ $t == filecache && $w == small ]]; then
		read -r _ fc_engine fc_method _ < <(filecache_json "$tf.out")
	fi
	if [[ $t == filecache ]] && [[ $(filecache_json "$tf.out" | awk '{print $4}') != 0 ]]; then
		echo "WARNING: filecache reported errors on $w: $(tr -d '\n' <"$tf.out" | head -c 300)"
	fi
	first_us=$(($(usec "$t1") - $(usec "$t0")))
	if ((first_us >= 1000000)); then
		samples+=("$first_us")
		n=$n_slow
	fi

	# Timed runs: fork to exit, output discarded.
	for ((i = ${#samples[@]}; i < n; i++)); do
		rc=0
		t0=$EPOCHREALTIME
		"${cmd[@]}" >/dev/null 2>"$tf.err" </dev/null || rc=$?
		t1=$EPOCHREALTIME
		if ((rc != 0)); then
			echo "bench: $t on $w failed (exit $rc) in timed run $((i + 1)): ${cmd[*]}" >&2
			cat "$tf.err" >&2
			exit 1
		fi
		samples+=($(($(usec "$t1") - $(usec "$t0"))))
	done
	nruns[$key]=${#samples[@]}
	read -r "med_us[$key]" "min_us[$key]" "max_us[$key]" < <(printf '%s\n' "${samples[@]}" | sort -n | awk '
		{ v[NR] = $1 }
		END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%d %d %d\n", m, v[1], v[NR]
		}')
}

# --- header ------------------------------------------------------------------
vmtouch_version=$(vmtouch 2>&1 | sed -n 's/^vmtouch \(v[0-9.]*\).*/\1/p' | head -n1) || true
fincore_version=$(fincore --version 2>&1 | head -n1) || true
filecache_version=$("$FILECACHE_BIN" --version 2>/dev/null | head -n1) || filecache_version=""

echo "filecache benchmark  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "kernel:    $(uname -r) ($(uname -m), $(nproc) CPUs, page size $page_size)"
echo "filecache: $FILECACHE_BIN${filecache_version:+ ($filecache_version)}"
echo "vmtouch:   $(command -v vmtouch) ${vmtouch_version:-(version unknown)}"
echo "fincore:   $(command -v fincore) (${fincore_version:-version unknown})"
echo "files:     tmpfs at $dir; sparse file $sparse_bytes bytes, 64 MiB written at $seek_mib MiB"
echo "runs:      RUNS=$RUNS, RUNS_SLOW=$RUNS_SLOW (vmtouch/fincore when a run takes >= 1 s)"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before measuring; other work on the machine skews short runs"
echo

# --- measure -----------------------------------------------------------------
for w in "${workloads[@]}"; do
	for t in "${tools[@]}"; do
		n_slow=$RUNS
		[[ $t == filecache ]] || n_slow=$RUNS_SLOW
		echo "bench: measuring ${label[$w]} with $t ..." >&2
		measure "$w" "$t" "$RUNS" "$n_slow"
	done
done
# The counts again after all the timing, to show the state held throughout.
for w in "${workloads[@]}"; do
	tool_cmd filecache "${file[$w]}"
	"${cmd[@]}" >"$out/after.$w" 2>&1 || die "filecache on $w failed: $(cat "$out/after.$w")"
	after=$(cached_pages filecache "$out/after.$w")
	if [[ $after != "${count[$w:filecache]}" ]]; then
		echo "WARNING: $w: filecache counted ${count[$w:filecache]} pages before timing and $after after"
	fi
done

echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after measuring (vmtouch/fincore on a big sparse file add ~1 each)"
echo "filecache: engine=$fc_engine method=$fc_method"
if [[ $fc_engine != bpf ]]; then
	echo "WARNING: filecache engine is '$fc_engine', not 'bpf': this run does not measure the BPF path"
fi
echo

# --- agreement ---------------------------------------------------------------
echo "cached pages (first run of each tool):"
agree=1
for w in "${workloads[@]}"; do
	fc=${count[$w:filecache]} vt=${count[$w:vmtouch]} fi=${count[$w:fincore]}
	printf '  %-32s expected %9s  filecache %9s  vmtouch %9s  fincore %9s\n' \
		"${label[$w]}" "${expect[$w]}" "$fc" "$vt" "$fi"
	if ! [[ $fc == "$vt" && $fc == "$fi" ]]; then
		echo "  WARNING: $w: the tools disagree on the cached page count (filecache $fc, vmtouch $vt, fincore $fi)"
		agree=0
	elif [[ $fc != "${expect[$w]}" ]]; then
		echo "  WARNING: $w: the tools agree on $fc cached pages but ${expect[$w]} were written"
		agree=0
	fi
done
[[ $agree -eq 1 ]] && echo "  all tools agree"
echo

# --- table -------------------------------------------------------------------
fmt_row='%-32s %-10s %4s %11s %11s %11s %10s  %s\n'
# shellcheck disable=SC2059
printf "$fmt_row" workload tool runs "median s" "min s" "max s" "RSS MiB" "vs filecache"
for w in "${workloads[@]}"; do
	fc_med=${med_us[$w:filecache]}
	for t in "${tools[@]}"; do
		k=$w:$t
		ratio=$(awk -v a="${med_us[$k]}" -v b="$fc_med" -v t="$t" 'BEGIN {
			if (t == "filecache") { print "1x (baseline)"; exit }
			if (b <= 0) { print "n/a"; exit }
			r = a / b
			if (r >= 1) printf (r >= 10 ? "%.0fx slower\n" : "%.1fx slower\n"), r
			else printf "%.2fx (%.1fx faster)\n", r, 1 / r
		}')
		# shellcheck disable=SC2059
		printf "$fmt_row" "$([[ $t == filecache ]] && echo "${label[$w]}")" "$t" "${nruns[$k]}" \
			"$(awk -v u="${med_us[$k]}" 'BEGIN {printf "%.4f", u / 1e6}')" \
			"$(awk -v u="${min_us[$k]}" 'BEGIN {printf "%.4f", u / 1e6}')" \
			"$(awk -v u="${max_us[$k]}" 'BEGIN {printf "%.4f", u / 1e6}')" \
			"$(awk -v k="${rss_kib[$k]}" 'BEGIN {printf "%.1f", k / 1024}')" "$ratio"
	done
done
echo "(wall time: fork to exit, median of the timed runs; RSS: peak resident set of the first run, GNU time %M / 1024)"
echo

# --- targets -----------------------------------------------------------------
echo "targets:"
pass_fail() { if [[ $1 -eq 1 ]]; then echo PASS; else echo MISS; fi; }
fc_sparse=${med_us[sparse:filecache]}
read -r r_vt r_fi ok_a < <(awk -v f="$fc_sparse" -v v="${med_us[sparse:vmtouch]}" -v i="${med_us[sparse:fincore]}" \
	-v x="$TARGET_SPEEDUP" 'BEGIN {
		if (f <= 0) f = 1
		printf "%.0f %.0f %d\n", v / f, i / f, (v / f >= x && i / f >= x)
	}')
note=""
[[ $sparse_bytes -eq $((1024 * 1024 * mib)) ]] || note="  (target is set for a 1 TiB file; this one is $SPARSE_SIZE)"
printf '  (a) %s  sparse file: filecache >= %dx faster than vmtouch (%sx) and fincore (%sx)%s\n' \
	"$(pass_fail "$ok_a")" "$TARGET_SPEEDUP" "$r_vt" "$r_fi" "$note"
rss_sparse=${rss_kib[sparse:filecache]}
ok_b=$((rss_sparse < TARGET_RSS_MIB * 1024 ? 1 : 0))
printf '  (b) %s  sparse file: filecache peak RSS < %d MiB (%s MiB)\n' \
	"$(pass_fail "$ok_b")" "$TARGET_RSS_MIB" "$(awk -v k="$rss_sparse" 'BEGIN {printf "%.1f", k / 1024}')"
small_us=${med_us[small:filecache]}
ok_c=$((small_us <= TARGET_SMALL_MS * 1000 ? 1 : 0))
printf '  (c) %s  small file: filecache end to end <= %d ms (median %s ms, max %s ms, %d timed runs)\n' \
	"$(pass_fail "$ok_c")" "$TARGET_SMALL_MS" \
	"$(awk -v u="$small_us" 'BEGIN {printf "%.1f", u / 1000}')" \
	"$(awk -v u="${max_us[small:filecache]}" 'BEGIN {printf "%.1f", u / 1000}')" "${nruns[small:filecache]}"
exit 0
