#!/usr/bin/env bash
# bench.sh: filecache against vmtouch and util-linux fincore, side by side in
# one run, on the same files, for four workloads:
#   small   one 12 KiB file, fully cached
#   sparse  a SPARSE_SIZE (1 TiB) sparse file with 64 MiB cached in the middle
#   full    a fully cached 256 MiB file
#   tree    a directory tree of TREE_FILES (100,000) files of 6400 bytes, 1000 a
#           directory, fully cached (2 pages a file: ~780 MiB); measured with
#           `filecache DIR`, `vmtouch DIR` and `find DIR -type f -print0 |
#           xargs -0 fincore` (fincore cannot walk a tree; the whole pipeline is
#           timed, through one bash -c)
# then the page walk of --by-cgroup (filecache-cg: filecache --json --by-cgroup)
# against plain filecache on the small and sparse files and on
#   gib     a fully cached 1 GiB file (262,144 pages), vmtouch and fincore beside
# with its cost per cached page (by-cgroup minus plain, over the pages cached).
# and, with BIG_TREE=1 (the default), the time and peak RSS of filecache on a
# tree of FILECACHE_BENCH_BIG (1,000,000) one-byte files (directories of
# 1000), as a table and as --ndjson, beside vmtouch's and find+fincore's time
# and RSS. Then, with the same three tools where they apply:
#   loop    `filecache FILE` in a loop of LOOP_CALLS (1000) calls on the small
#           file, against `vmtouch FILE` and `fincore FILE` in the same loop
#           (the tools take turns, a tenth of the calls at a time): the cost
#           of one call, as a script calling filecache per file pays
#   cold    a tree of COLD_FILES (100,000) files on a disk filesystem
#           (COLD_DIR, default /var/tmp: tmpfs keeps every dentry), timed
#           with the dentry and inode caches dropped before each run
#           (echo 2 > /proc/sys/vm/drop_caches, for every tool, the tools
#           taking turns run by run; under the integration suite's lock,
#           since it drops them machine-wide)
# With BASELINE_BIN (an older filecache, e.g. one built from main), that
# binary is timed beside filecache on the trees too: "no slower than today".
#
# filecache's timed runs are the command a user types: `filecache PATH`, the
# table (for a few plain files that is the fast path, before the Go runtime
# starts); its first run, whose figures are checked, is --json.
# All files live on a tmpfs this script mounts in a mktemp -d directory (nothing
# is reclaimed under the measurement; a sparse 1 TiB i_size costs nothing
# there), unmounted and removed on exit, failure or Ctrl-C. Trees are written
# by one python3 process, not a process per file.
#
# Every tool first runs once per workload under GNU time, all tools back to
# back before any timing: its cached-page count is checked against the other
# tools and the expected count (a WARNING line if they differ; for the tree,
# if they are not within 1% of one another), and its peak RSS is taken from
# that run. Then each tool runs N times with its output to /dev/null, timed
# from fork to exit with bash's microsecond clock (EPOCHREALTIME, no extra
# process in the timed span); the table shows the median. When a first run
# took >= 1 s (the 1 TiB file: ~11 s each for vmtouch and fincore; the tree:
# ~1 s), it counts as a timed run (GNU time's ~1 ms overhead is noise there),
# and vmtouch and fincore do RUNS_SLOW timed runs instead of RUNS on the
# sparse file, so by default they run once each on the 1 TiB file. On the
# tree every tool does RUNS.
#
# A benchmark, not a test: it exits 0 when the measurements ran, even when a
# target is missed (printed as MISS); non-zero only when something could not
# be run. Needs root (mount, BPF), GNU time (/usr/bin/time), vmtouch, fincore,
# find, xargs, python3 (to write the trees).
#
# Environment:
#   FILECACHE_BIN  filecache binary (default: bin/filecache in the repo root)
#   RUNS           timed runs per workload and tool (default 5)
#   RUNS_SLOW      timed runs of vmtouch/fincore when one run takes >= 1 s (default 1)
#   SPARSE_SIZE    size of the sparse file, as truncate(1) reads it (default 1T);
#                  e.g. SPARSE_SIZE=8G RUNS=1 ./scripts/bench.sh for a smoke run
#   TREE_FILES     files in the tree workload (default 100000); e.g.
#                  TREE_FILES=5000 SPARSE_SIZE=8G RUNS=1 ./scripts/bench.sh
#   BIG_TREE       1: also build the big tree and time filecache, vmtouch and
#                  find+fincore on it, with their peak RSS (default 1; 0: skipped)
#   FILECACHE_BENCH_BIG  files in the big tree (default 1000000; smaller on a
#                  slow machine: the RSS target is set for 1,000,000)
#   LOOP_CALLS     calls in the per-file loop (default 1000)
#   COLD_FILES     files in the cold-dentry tree (default 100000; 0: skipped)
#   COLD_DIR       where the cold-dentry tree is written (default /var/tmp)
#   COLD_RUNS      timed runs per tool on the cold-dentry tree (default 3)
#   BASELINE_BIN   an older filecache to time beside this one on the trees
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILECACHE_BIN=${FILECACHE_BIN:-$root/bin/filecache}
RUNS=${RUNS:-5}
RUNS_SLOW=${RUNS_SLOW:-1}
SPARSE_SIZE=${SPARSE_SIZE:-1T}
TREE_FILES=${TREE_FILES:-100000}
BIG_TREE=${BIG_TREE:-1}
LOOP_CALLS=${LOOP_CALLS:-1000}
COLD_FILES=${COLD_FILES:-100000}
COLD_DIR=${COLD_DIR:-/var/tmp}
COLD_RUNS=${COLD_RUNS:-3}
BASELINE_BIN=${BASELINE_BIN:-}
GNU_TIME=/usr/bin/time
TREE_FILE_BYTES=6400   # each file of the tree workload
TREE_PER_DIR=1000      # files a directory, in both trees
BIG_TREE_FILES=${FILECACHE_BENCH_BIG:-1000000} # files in the BIG_TREE=1 tree
BIG_TREE_BYTES=1       # each of its files: one cached page

# Targets.
TARGET_SPEEDUP=300 # (a) sparse: filecache at least this many times faster than each tool
TARGET_RSS_MIB=64  # (b) sparse: filecache peak RSS below this
TARGET_SMALL_MS=25 # (c) small: filecache end to end at most this
TARGET_TREE_SPEEDUP=8     # (d) tree: filecache at least this many times faster than each tool
TARGET_TREE_AGREE_PCT=1   # (e) tree: the three tools' cached-page totals within this % of one another
TARGET_BIG_RSS_MIB=64     # (f) BIG_TREE=1: filecache peak RSS below this, as a table and as --ndjson

die() {
	echo "bench: $*" >&2
	exit 1
}

# usec EPOCHREALTIME-VALUE: integer microseconds (the separator follows LC_NUMERIC).
usec() {
	local t=${1//[!0-9]/}
	echo $((10#$t))
}

# secs_since EPOCHREALTIME-VALUE: seconds elapsed since then, one decimal.
secs_since() {
	awk -v a="$(usec "$1")" -v b="$(usec "$EPOCHREALTIME")" 'BEGIN {printf "%.1f", (b - a) / 1e6}'
}

# --- preconditions -----------------------------------------------------------
[[ -n ${EPOCHREALTIME:-} ]] || die "bash >= 5 is needed (EPOCHREALTIME); this is bash $BASH_VERSION"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $RUNS_SLOW =~ ^[1-9][0-9]*$ ]] || die "RUNS_SLOW must be a positive integer, not '$RUNS_SLOW'"
[[ $TREE_FILES =~ ^[1-9][0-9]*$ ]] || die "TREE_FILES must be a positive integer, not '$TREE_FILES'"
[[ $BIG_TREE == 0 || $BIG_TREE == 1 ]] || die "BIG_TREE must be 0 or 1, not '$BIG_TREE'"
[[ $EUID -eq 0 ]] || die "must run as root (it mounts a tmpfs, and filecache loads a BPF program)"
if [[ ! -x $GNU_TIME ]]; then
	echo "bench: $GNU_TIME (GNU time) is missing; it measures peak RSS." >&2
	echo "bench: install it with: apt-get install -y time   (Debian package 'time')" >&2
	exit 1
fi
command -v vmtouch >/dev/null || die "vmtouch is missing: apt-get install -y vmtouch"
command -v fincore >/dev/null || die "fincore is missing: apt-get install -y util-linux-extra (util-linux before Debian 12)"
command -v find >/dev/null || die "find is missing: apt-get install -y findutils"
command -v xargs >/dev/null || die "xargs is missing: apt-get install -y findutils"
command -v python3 >/dev/null || die "python3 is missing (it writes the trees): apt-get install -y python3"
[[ -x $FILECACHE_BIN ]] || die "$FILECACHE_BIN is missing or not executable: run 'make build' (or set FILECACHE_BIN)"
[[ $LOOP_CALLS =~ ^[1-9][0-9]*$ ]] || die "LOOP_CALLS must be a positive integer, not '$LOOP_CALLS'"
[[ $COLD_FILES =~ ^[0-9]+$ ]] || die "COLD_FILES must be a number, not '$COLD_FILES'"
[[ $COLD_RUNS =~ ^[1-9][0-9]*$ ]] || die "COLD_RUNS must be a positive integer, not '$COLD_RUNS'"
[[ $BIG_TREE_FILES =~ ^[1-9][0-9]*$ ]] || die "FILECACHE_BENCH_BIG must be a positive integer, not '$BIG_TREE_FILES'"
[[ -z $BASELINE_BIN || -x $BASELINE_BIN ]] || die "BASELINE_BIN=$BASELINE_BIN is not executable"
[[ $COLD_FILES == 0 || -d $COLD_DIR ]] || die "COLD_DIR=$COLD_DIR is not a directory"
[[ -z $BASELINE_BIN ]] || BASELINE_BIN=$(cd "$(dirname "$BASELINE_BIN")" && pwd)/$(basename "$BASELINE_BIN")
FILECACHE_BIN=$(cd "$(dirname "$FILECACHE_BIN")" && pwd)/$(basename "$FILECACHE_BIN")
page_size=$(getconf PAGESIZE)
mib=$((1024 * 1024))

# --- scratch tmpfs, removed on every exit ------------------------------------
dir=""
mounted=0
cold_root=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	if [[ -n $cold_root ]]; then
		rm -rf -- "$cold_root" || echo "bench: could not remove $cold_root" >&2
	fi
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

# The tmpfs holds 256 MiB + 64 MiB of data, the tree (every file rounded up to
# whole pages), the big tree with BIG_TREE=1 (a page a file) and tool outputs;
# nr_inodes leaves room for every file and directory of the trees.
tree_pages_per_file=$(((TREE_FILE_BYTES + page_size - 1) / page_size))
tree_dirs=$(((TREE_FILES + TREE_PER_DIR - 1) / TREE_PER_DIR))
tmpfs_mib=$((448 + 1024 + TREE_FILES * tree_pages_per_file * page_size / mib + 64))
tmpfs_inodes=$((TREE_FILES + tree_dirs + 4096))
big_dirs=$(((BIG_TREE_FILES + TREE_PER_DIR - 1) / TREE_PER_DIR))
if [[ $BIG_TREE == 1 ]]; then
	tmpfs_mib=$((tmpfs_mib + BIG_TREE_FILES * ((BIG_TREE_BYTES + page_size - 1) / page_size) * page_size / mib + 64))
	tmpfs_inodes=$((tmpfs_inodes + BIG_TREE_FILES + big_dirs))
fi
# tmpfs pages cannot be reclaimed (no swap here, typically): refuse to start
# rather than push the machine out of memory. The kernel's own inode and dentry
# for a file cost about 1 KiB more; count 2.
avail_mib=$(($(awk '/^MemAvailable:/ {print $2; exit}' /proc/meminfo) / 1024))
need_mib=$((tmpfs_mib + tmpfs_inodes * 2 / 1024 + 512))
((need_mib <= avail_mib)) ||
	die "needs about $need_mib MiB of free memory (tmpfs of $tmpfs_mib MiB, $tmpfs_inodes inodes), MemAvailable is $avail_mib MiB: lower TREE_FILES or drop BIG_TREE=1"

dir=$(mktemp -d "${TMPDIR:-/tmp}/filecache-bench.XXXXXX")
# huge=never keeps 4 KiB pages.
mount -t tmpfs -o "size=${tmpfs_mib}m,nr_inodes=$tmpfs_inodes,mode=0700,huge=never" filecache-bench "$dir" ||
	die "cannot mount a tmpfs on $dir"
mounted=1
out=$dir/out
mkdir "$out"

# --- the files ---------------------------------------------------------------
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
f_gib=$dir/gib
dd if=/dev/zero of="$f_gib" bs=1M count=1024 status=none

# build_tree ROOT FILES BYTES: ROOT/dNNNN/fNNNN, TREE_PER_DIR files a directory,
# each BYTES long (slices of one random buffer), all from one python3 process.
build_tree() {
	python3 - "$1" "$2" "$3" "$TREE_PER_DIR" <<'EOF'
import os, sys
root, n, size, per_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
buf = memoryview(os.urandom(size + 4096))
os.mkdir(root, 0o700)
for d in range((n + per_dir - 1) // per_dir):
    sub = os.path.join(root, "d%04d" % d)
    os.mkdir(sub, 0o700)
    for i in range(min(per_dir, n - d * per_dir)):
        fd = os.open(os.path.join(sub, "f%04d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        view = buf[i % 4096:i % 4096 + size]
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
EOF
}

d_tree=$dir/tree
echo "bench: writing the tree: $TREE_FILES files of $TREE_FILE_BYTES bytes in $tree_dirs directories ..." >&2
t0=$EPOCHREALTIME
build_tree "$d_tree" "$TREE_FILES" "$TREE_FILE_BYTES" || die "cannot write the tree $d_tree"
tree_build_s=$(secs_since "$t0")

declare -A expect label
expect[small]=3
expect[sparse]=$((64 * mib / page_size))
expect[full]=$((256 * mib / page_size))
expect[tree]=$((TREE_FILES * tree_pages_per_file))
label[small]="small: 12 KiB, all cached"
label[sparse]="sparse: $SPARSE_SIZE, 64 MiB cached"
label[full]="full: 256 MiB, all cached"
label[tree]="tree: $TREE_FILES x $TREE_FILE_BYTES B, cached"
expect[gib]=$((1024 * mib / page_size))
label[gib]="gib: 1 GiB, all cached"
declare -A file=([small]=$f_small [sparse]=$f_sparse [full]=$f_full [tree]=$d_tree [gib]=$f_gib)
workloads=(small sparse full tree)

# workload_tools WORKLOAD: sets the array tools to the tools run on WORKLOAD.
workload_tools() {
	if [[ $1 == tree ]]; then
		tools=(filecache vmtouch find+fincore)
		if [[ -n $BASELINE_BIN ]]; then tools+=(baseline); fi
	else
		tools=(filecache vmtouch fincore)
	fi
}

# tool_cmd TOOL PATH: sets the array cmd to the command line for TOOL on PATH.
tool_cmd() {
	case $1 in
	filecache) cmd=("$FILECACHE_BIN" --json "$2") ;;
	baseline) cmd=("$BASELINE_BIN" --json "$2") ;;
	filecache-cg) cmd=("$FILECACHE_BIN" --json --by-cgroup "$2") ;;
	vmtouch) cmd=(vmtouch "$2") ;;
	fincore) cmd=(fincore --bytes --noheadings --output PAGES "$2") ;;
	find+fincore)
		# shellcheck disable=SC2016  # expanded by the inner bash
		cmd=("$BASH" -c 'set -o pipefail; find "$1" -type f -print0 | xargs -0 fincore --bytes --noheadings --output PAGES' find+fincore "$2")
		;;
	esac
}

# filecache_json FILE: prints "cached_pages engine method n_errors" from
# filecache's JSON (python3 when present, else grep on the compact form): the
# first file's figures, or the first tree's when no file was named; n_errors
# counts the errors[] entries and the paths without figures inside the tree.
filecache_json() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
e = d["files"][0] if d.get("files") else d["trees"][0]
print(e["cached_pages"], d.get("engine", "?"), d.get("method", "?"), len(d.get("errors") or []) + e.get("failed", 0))
' "$1" 2>/dev/null && return
	fi
	local pages engine method nerr=0
	pages=$(grep -o '"cached_pages": *[0-9]*' "$1" | head -n1 | grep -o '[0-9]*$') || pages='?'
	engine=$(grep -o '"engine": *"[^"]*"' "$1" | head -n1 | sed 's/.*"\([^"]*\)"$/\1/') || engine='?'
	method=$(grep -o '"method": *"[^"]*"' "$1" | head -n1 | sed 's/.*"\([^"]*\)"$/\1/') || method='?'
	grep -q '"errors": *\[ *\]' "$1" || nerr=1
	! grep -q '"failed": *[1-9]' "$1" || nerr=1
	echo "${pages:-?} ${engine:-?} ${method:-?} $nerr"
}

# cached_pages TOOL OUTFILE: the cached page count from TOOL's output (for
# find+fincore, the sum over its lines, one a file).
cached_pages() {
	local n=""
	case $1 in
	filecache | filecache-cg | baseline) n=$(filecache_json "$2" | awk '{print $1}') ;;
	vmtouch) n=$(awk -F'[ /]+' '/Resident Pages:/ {print $4; exit}' "$2") ;;
	fincore) n=$(awk 'NR == 1 {print $1}' "$2") ;;
	find+fincore) n=$(awk '$1 !~ /^[0-9]+$/ {bad = 1} {s += $1} END {if (NR && !bad) print s}' "$2") ;;
	esac
	[[ $n =~ ^[0-9]+$ ]] && echo "$n" || echo "?"
}

declare -A count rss_kib med_us min_us max_us nruns first_us
fc_engine='?' fc_method='?'

# first_run WORKLOAD TOOL: one run under GNU time: the page count, peak RSS,
# and a warm-up.
first_run() {
	local w=$1 t=$2 key="$1:$2" tf="$out/$1.$2"
	local cmd t0 t1 rc=0
	tool_cmd "$t" "${file[$w]}"

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
	if [[ $t == filecache* ]] && [[ $(filecache_json "$tf.out" | awk '{print $4}') != 0 ]]; then
		echo "WARNING: filecache reported errors on $w: $(tr -d '\n' <"$tf.out" | head -c 300)"
	fi
	first_us[$key]=$(($(usec "$t1") - $(usec "$t0")))
}

# timed_runs WORKLOAD TOOL N N_SLOW: N timed runs, fork to exit, output
# discarded; when the first run took >= 1 s it counts as one, and N_SLOW runs
# are made instead.
timed_runs() {
	local w=$1 t=$2 n=$3 n_slow=$4 key="$1:$2" tf="$out/$1.$2"
	local cmd t0 t1 rc i samples=()
	tool_cmd "$t" "${file[$w]}"
	# Timed as a user types it: the table (the first run's --json is checked).
	[[ $t == filecache ]] && cmd=("$FILECACHE_BIN" "${file[$w]}")
	[[ $t == baseline ]] && cmd=("$BASELINE_BIN" "${file[$w]}")
	if ((first_us[$key] >= 1000000)); then
		samples+=("${first_us[$key]}")
		n=$n_slow
	fi

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

# tree_agreement: sets tree_agree (1 when filecache's, vmtouch's and
# find+fincore's cached-page totals for the tree are numbers within
# TARGET_TREE_AGREE_PCT % of one another, else 0) and tree_spread (the largest
# minus the smallest, in % of the largest; "?" when one is not a number).
tree_agreement() {
	read -r tree_agree tree_spread < <(awk -v p="$TARGET_TREE_AGREE_PCT" -v a="${count[tree:filecache]}" \
		-v b="${count[tree:vmtouch]}" -v c="${count[tree:find+fincore]}" 'BEGIN {
			if (a !~ /^[0-9]+$/ || b !~ /^[0-9]+$/ || c !~ /^[0-9]+$/) { print 0, "?"; exit }
			lo = a; hi = a
			if (b < lo) lo = b; if (b > hi) hi = b
			if (c < lo) lo = c; if (c > hi) hi = c
			spread = hi > 0 ? 100 * (hi - lo) / hi : 0
			printf "%d %.3f\n", (spread <= p), spread
		}')
}

# gnu_timed NAME CMD...: one run of CMD under GNU time: NAME.out, NAME.err,
# NAME.time ("seconds peak-KiB") in $out; a failure ends the script.
gnu_timed() {
	local name=$1 rc=0
	shift
	"$GNU_TIME" -f '%e %M' -o "$out/$name.time" -- "$@" >"$out/$name.out" 2>"$out/$name.err" </dev/null || rc=$?
	((rc == 0)) || die "$* failed (exit $rc): $(head -c 600 "$out/$name.err")"
}

# ratio_of A B: A against B (the baseline), as the tables say it.
ratio_of() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (b <= 0 || a <= 0) { print "n/a"; exit }
		r = a / b
		if (r >= 1) printf (r >= 10 ? "%.0fx slower\n" : "%.1fx slower\n"), r
		else printf "%.2fx (%.1fx faster)\n", r, 1 / r
	}'
}

# vs NAME BASE A B: "1x (baseline)" when NAME is BASE, else ratio_of A B.
vs() {
	if [[ $1 == "$2" ]]; then
		echo "1x (baseline)"
	else
		ratio_of "$3" "$4"
	fi
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
echo "files:     tmpfs at $dir (${tmpfs_mib} MiB, $tmpfs_inodes inodes); sparse file $sparse_bytes bytes, 64 MiB written at $seek_mib MiB"
echo "tree:      $TREE_FILES files of $TREE_FILE_BYTES bytes in $tree_dirs directories (TREE_FILES), written in $tree_build_s s"
echo "runs:      RUNS=$RUNS, RUNS_SLOW=$RUNS_SLOW (vmtouch/fincore on the sparse file when a run takes >= 1 s)"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before measuring; other work on the machine skews short runs"
echo

# --- measure -----------------------------------------------------------------
for w in "${workloads[@]}"; do
	workload_tools "$w"
	for t in "${tools[@]}"; do
		echo "bench: first run of $t on ${label[$w]} ..." >&2
		first_run "$w" "$t"
	done
	if [[ $w == tree ]]; then
		tree_agreement
		if [[ $tree_agree != 1 ]]; then
			echo "WARNING: tree: cached pages differ by more than $TARGET_TREE_AGREE_PCT% before timing (spread $tree_spread%):" \
				"filecache ${count[tree:filecache]}, vmtouch ${count[tree:vmtouch]}, find+fincore ${count[tree:find+fincore]}"
		fi
	fi
	for t in "${tools[@]}"; do
		n_slow=$RUNS
		[[ $t == filecache || $w == tree ]] || n_slow=$RUNS_SLOW
		echo "bench: timing ${label[$w]} with $t ..." >&2
		timed_runs "$w" "$t" "$RUNS" "$n_slow"
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
	workload_tools "$w"
	fi_tool=${tools[2]}
	fc=${count[$w:filecache]} vt=${count[$w:vmtouch]} fi=${count[$w:$fi_tool]}
	printf '  %-32s expected %9s  filecache %9s  vmtouch %9s  %s %9s\n' \
		"${label[$w]}" "${expect[$w]}" "$fc" "$vt" "$fi_tool" "$fi"
	if [[ $w == tree ]] && ! [[ $fc == "$vt" && $fc == "$fi" ]]; then
		# Within 1% is the target; a fully cached tmpfs tree should give exact sums.
		if [[ $tree_agree == 1 ]]; then
			echo "  NOTE: tree: the totals differ by $tree_spread%, within $TARGET_TREE_AGREE_PCT% but not exact (filecache $fc, vmtouch $vt, find+fincore $fi)"
		else
			echo "  WARNING: tree: the totals differ by $tree_spread%, more than $TARGET_TREE_AGREE_PCT% (filecache $fc, vmtouch $vt, find+fincore $fi)"
		fi
		agree=0
	elif ! [[ $fc == "$vt" && $fc == "$fi" ]]; then
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
fmt_row='%-32s %-12s %4s %11s %11s %11s %10s  %s\n'
# shellcheck disable=SC2059
printf "$fmt_row" workload tool runs "median s" "min s" "max s" "RSS MiB" "vs filecache"
for w in "${workloads[@]}"; do
	workload_tools "$w"
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
echo "(wall time: fork to exit, median of the timed runs; RSS: peak resident set of the first run, GNU time %M / 1024;"
echo " find+fincore: find DIR -type f -print0 | xargs -0 fincore, timed whole through one bash -c; its RSS is its largest process's)"
echo

# --- the page walk (--by-cgroup) ----------------------------------------------
# cg_split OUTFILE: "cgroups pages" of the first file of a --by-cgroup JSON:
# how many cgroups its pages are split over, and their sum.
cg_split() {
	python3 -c '
import json, sys
cg = json.load(open(sys.argv[1]))["files"][0].get("cgroups")
print(len(cg), sum(c["cached_pages"] for c in cg)) if cg is not None else print("? ?")
' "$1" 2>/dev/null || echo "? ?"
}
echo "page walk (--by-cgroup): cost per cached page, not per file byte"
# shellcheck disable=SC2059
printf "$fmt_row" workload tool runs "median s" "min s" "max s" "RSS MiB" "the walk"
cg_ok=1
for w in small sparse gib; do
	tools=(filecache filecache-cg)
	[[ $w == gib ]] && tools+=(vmtouch fincore)
	for t in "${tools[@]}"; do
		[[ -n ${med_us[$w:$t]:-} ]] && continue # measured above
		echo "bench: first run of $t on ${label[$w]} ..." >&2
		first_run "$w" "$t"
		echo "bench: timing ${label[$w]} with $t ..." >&2
		timed_runs "$w" "$t" "$RUNS" "$RUNS"
	done
	read -r ncg cgsum < <(cg_split "$out/$w.filecache-cg.out")
	if [[ ${count[$w:filecache-cg]} != "${expect[$w]}" || $cgsum != "${expect[$w]}" ]]; then
		echo "  WARNING: $w: --by-cgroup counted ${count[$w:filecache-cg]} pages, its cgroups $cgsum, ${expect[$w]} were written"
		cg_ok=0
	fi
	for t in "${tools[@]}"; do
		k=$w:$t
		# shellcheck disable=SC2059
		printf "$fmt_row" "$([[ $t == filecache ]] && echo "${label[$w]}")" "$t" "${nruns[$k]}" \
			"$(awk -v u="${med_us[$k]}" 'BEGIN {printf "%.4f", u / 1e6}')" \
			"$(awk -v u="${min_us[$k]}" 'BEGIN {printf "%.4f", u / 1e6}')" \
			"$(awk -v u="${max_us[$k]}" 'BEGIN {printf "%.4f", u / 1e6}')" \
			"$(awk -v k="${rss_kib[$k]}" 'BEGIN {printf "%.1f", k / 1024}')" \
			"$([[ $t == filecache-cg ]] && awk -v c="${med_us[$k]}" -v p="${med_us[$w:filecache]}" -v n="${expect[$w]}" -v g="$ncg" \
				'BEGIN {
					printf "%d cgroup(s); %+.1f ms", g, (c - p) / 1e3
					if (n >= 10000) printf ", %.0f ns a cached page", (c - p) * 1e3 / n
					else printf " (the walk program loads instead of the query)"
				}')"
	done
done
[[ $cg_ok == 1 ]] && echo "  --by-cgroup found every page written, and its cgroups hold them all"
echo "(filecache-cg: filecache --json --by-cgroup; the pages are charged to this script's memory cgroup, one cgroup)"
echo

# --- the 1,000,000-file tree (BIG_TREE=1) ------------------------------------
big_rss_table='' big_rss_ndjson=''
if [[ $BIG_TREE == 1 ]]; then
	d_big=$dir/big
	echo "bench: writing the big tree: $BIG_TREE_FILES files of $BIG_TREE_BYTES B in $big_dirs directories ..." >&2
	t0=$EPOCHREALTIME
	build_tree "$d_big" "$BIG_TREE_FILES" "$BIG_TREE_BYTES" || die "cannot write the big tree $d_big"
	big_build_s=$(secs_since "$t0")
	echo "tree of $BIG_TREE_FILES files (BIG_TREE=1): $big_dirs directories x $TREE_PER_DIR files of $BIG_TREE_BYTES B, written in $big_build_s s"
	big_expect=$((BIG_TREE_FILES * ((BIG_TREE_BYTES + page_size - 1) / page_size)))
	# filecache's count is read from its table below.
	# Each once, under GNU time: filecache as a table (kept, it is a few lines)
	# and as --ndjson (a line a file, discarded); vmtouch and find+fincore
	# (their output kept for the page count).
	echo "bench: filecache on the big tree, table ..." >&2
	gnu_timed big.table "$FILECACHE_BIN" "$d_big"
	echo "bench: filecache on the big tree, --ndjson ..." >&2
	gnu_timed big.ndjson "$FILECACHE_BIN" --ndjson "$d_big"
	: >"$out/big.ndjson.out" # a line a file: not kept
	for t in vmtouch find+fincore; do
		echo "bench: $t on the big tree ..." >&2
		tool_cmd "$t" "$d_big"
		gnu_timed "big.$t" "${cmd[@]}"
	done
	big_rss_table=$(awk 'END {print $2}' "$out/big.table.time")
	big_rss_ndjson=$(awk 'END {print $2}' "$out/big.ndjson.time")
	big_s_table=$(awk 'END {print $1}' "$out/big.table.time")
	fmt_big='  %-40s %9s s  peak RSS %7s MiB  %s\n'
	for k in table ndjson vmtouch find+fincore; do
		case $k in
		table) name="filecache DIR" ;;
		ndjson) name="filecache --ndjson DIR >/dev/null" ;;
		*) name=$k ;;
		esac
		s_k=$(awk 'END {print $1}' "$out/big.$k.time")
		# shellcheck disable=SC2059
		printf "$fmt_big" "$name" "$s_k" "$(awk 'END {printf "%.1f", $2 / 1024}' "$out/big.$k.time")" \
			"$(vs "$k" table "$s_k" "$big_s_table")"
	done
	echo "  (each run once; wall time and peak RSS from GNU time %e %M; GNU time's 0.01 s resolution)"
	for t in vmtouch find+fincore; do
		c=$(cached_pages "$t" "$out/big.$t.out")
		[[ $c == "$big_expect" ]] || echo "  WARNING: big tree: $t counted $c cached pages, $big_expect were written"
	done
	sed 's/^/  | /' "$out/big.table.out"
	# The tree's row: "CACHED N/M SIZE PERCENT PATH (K files)".
	big_cached=$(awk -v p="$d_big" '$5 == p {split($2, a, "/"); print a[1]; exit}' "$out/big.table.out")
	if [[ $big_cached != "$big_expect" ]]; then
		echo "  WARNING: big tree: filecache counted ${big_cached:-?} cached pages, $big_expect were written"
	fi
	if [[ -s $out/big.table.err || -s $out/big.ndjson.err ]]; then
		echo "  WARNING: big tree: filecache wrote to stderr: $(cat "$out/big.table.err" "$out/big.ndjson.err" | head -c 300)"
	fi
	rm -rf -- "$d_big" # its pages are not needed by what follows
else
	echo "tree of $BIG_TREE_FILES files: skipped (writing it takes a while); run it with BIG_TREE=1 ./scripts/bench.sh"
fi
echo

# --- one file a call, LOOP_CALLS times ---------------------------------------
# What a script calling a tool per file pays: LOOP_CALLS calls of each tool
# on the small file, timed whole. The tools take turns in 10 blocks of a
# tenth of the calls each, so load from other work on the machine falls on
# every tool alike; the loop's own cost (bash forking) is in every figure.
declare -A loop_us=([filecache]=0 [vmtouch]=0 [fincore]=0)
loop_tools=(filecache vmtouch fincore)
echo "one file a call: $LOOP_CALLS calls on the small file (12 KiB, all cached) of each tool, in 10 interleaved blocks"
echo "bench: $LOOP_CALLS calls of each of ${loop_tools[*]} ..." >&2
for ((b = 0; b < 10; b++)); do
	n=$((LOOP_CALLS / 10 + (b < LOOP_CALLS % 10 ? 1 : 0)))
	for t in "${loop_tools[@]}"; do
		tool_cmd "$t" "$f_small"
		[[ $t == filecache ]] && cmd=("$FILECACHE_BIN" "$f_small") # as typed: the fast path
		t0=$EPOCHREALTIME
		for ((i = 0; i < n; i++)); do
			"${cmd[@]}" >/dev/null 2>"$out/loop.err" </dev/null || die "${cmd[*]} failed: $(head -c 600 "$out/loop.err")"
		done
		t1=$EPOCHREALTIME
		loop_us[$t]=$((loop_us[$t] + $(usec "$t1") - $(usec "$t0")))
	done
done
for t in "${loop_tools[@]}"; do
	printf '  %-12s %9.3f s  %7.3f ms a call  %s\n' "$t" \
		"$(awk -v u="${loop_us[$t]}" 'BEGIN {print u / 1e6}')" \
		"$(awk -v u="${loop_us[$t]}" -v n="$LOOP_CALLS" 'BEGIN {print u / n / 1e3}')" \
		"$(vs "$t" filecache "${loop_us[$t]}" "${loop_us[filecache]}")"
done
echo "  (filecache FILE as typed: a table on stdout; output to /dev/null for every tool)"
echo

# --- the cold-dentry tree ----------------------------------------------------
# A tree on a disk filesystem, each run preceded by echo 2 > drop_caches: the
# dentries and unused inodes are gone, the filesystem's metadata blocks stay
# in the block device's cache. The tools take turns, run by run, so load from
# other work falls on each alike. Dropping is machine-wide, so it runs under
# the integration suite's lock.
declare -A cold_med cold_count cold_samples
if ((COLD_FILES > 0)); then
	cold_root=$(mktemp -d "$COLD_DIR/filecache-bench-cold.XXXXXX")
	d_cold=$cold_root/tree
	echo "bench: writing the cold-dentry tree: $COLD_FILES files of $TREE_FILE_BYTES B under $COLD_DIR ..." >&2
	t0=$EPOCHREALTIME
	build_tree "$d_cold" "$COLD_FILES" "$TREE_FILE_BYTES" || die "cannot write the cold tree $d_cold"
	sync -f "$d_cold"
	cold_build_s=$(secs_since "$t0")
	echo "cold dentries: $COLD_FILES files of $TREE_FILE_BYTES B in $cold_root ($(stat -f -c %T "$cold_root"), written and synced in $cold_build_s s);"
	echo "  echo 2 > /proc/sys/vm/drop_caches before each run; $COLD_RUNS rounds, each tool once a round"
	exec {lock_fd}>"${TMPDIR:-/tmp}/filecache-integration.lock"
	echo "bench: waiting for the integration lock (drop_caches is machine-wide) ..." >&2
	flock "$lock_fd"
	cold_tools=(filecache vmtouch find+fincore)
	if [[ -n $BASELINE_BIN ]]; then cold_tools+=(baseline); fi
	echo "bench: cold-dentry tree, $COLD_RUNS rounds of ${cold_tools[*]} ..." >&2
	for ((i = 0; i < COLD_RUNS; i++)); do
		for t in "${cold_tools[@]}"; do
			tool_cmd "$t" "$d_cold"
			[[ $t == filecache ]] && cmd=("$FILECACHE_BIN" "$d_cold")
			[[ $t == baseline ]] && cmd=("$BASELINE_BIN" "$d_cold")
			echo 2 >/proc/sys/vm/drop_caches
			rc=0
			t0=$EPOCHREALTIME
			"${cmd[@]}" >"$out/cold.$t.out" 2>"$out/cold.$t.err" </dev/null || rc=$?
			t1=$EPOCHREALTIME
			((rc == 0)) || die "${cmd[*]} failed on the cold tree (exit $rc): $(head -c 600 "$out/cold.$t.err")"
			cold_samples[$t]+=" $(($(usec "$t1") - $(usec "$t0")))"
		done
	done
	flock -u "$lock_fd"
	exec {lock_fd}>&-
	for t in "${cold_tools[@]}"; do
		read -r "cold_med[$t]" lo hi < <(tr ' ' '\n' <<<"${cold_samples[$t]}" | awk 'NF' | sort -n | awk '
			{ v[NR] = $1 }
			END { printf "%d %d %d\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR] }')
		case $t in
		filecache | baseline) cold_count[$t]=$(awk -v p="$d_cold" '$5 == p {split($2, a, "/"); print a[1]; exit}' "$out/cold.$t.out") ;;
		*) cold_count[$t]=$(cached_pages "$t" "$out/cold.$t.out") ;;
		esac
		printf '  %-12s median %8.3f s  min %8.3f s  max %8.3f s  cached pages %8s  %s\n' "$t" \
			"$(awk -v u="${cold_med[$t]}" 'BEGIN {print u / 1e6}')" \
			"$(awk -v u="$lo" 'BEGIN {print u / 1e6}')" "$(awk -v u="$hi" 'BEGIN {print u / 1e6}')" \
			"${cold_count[$t]:-?}" "$(vs "$t" filecache "${cold_med[$t]}" "${cold_med[filecache]}")"
	done
	echo "  (wall time: fork to exit; cached pages: as the tool's last run counted them)"
else
	echo "cold dentries: skipped (COLD_FILES=0)"
fi
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
read -r r_tvt r_tff ok_d < <(awk -v f="${med_us[tree:filecache]}" -v v="${med_us[tree:vmtouch]}" \
	-v i="${med_us[tree:find+fincore]}" -v x="$TARGET_TREE_SPEEDUP" 'BEGIN {
		if (f <= 0) f = 1
		printf "%.2f %.2f %d\n", v / f, i / f, (v / f >= x && i / f >= x)
	}')
note=""
[[ $TREE_FILES -eq 100000 ]] || note="  (target is set for 100000 files; this tree has $TREE_FILES)"
printf '  (d) %s  tree: filecache >= %dx faster than vmtouch (%sx) and find+fincore (%sx)%s\n' \
	"$(pass_fail "$ok_d")" "$TARGET_TREE_SPEEDUP" "$r_tvt" "$r_tff" "$note"
printf '  (e) %s  tree: cached-page totals within %s%% (filecache %s, vmtouch %s, find+fincore %s; spread %s%%)\n' \
	"$(pass_fail "$tree_agree")" "$TARGET_TREE_AGREE_PCT" "${count[tree:filecache]}" "${count[tree:vmtouch]}" \
	"${count[tree:find+fincore]}" "$tree_spread"
if [[ $BIG_TREE == 1 ]]; then
	ok_f=$((big_rss_table < TARGET_BIG_RSS_MIB * 1024 && big_rss_ndjson < TARGET_BIG_RSS_MIB * 1024 ? 1 : 0))
	printf '  (f) %s  %d-file tree: filecache peak RSS < %d MiB, table (%s MiB) and --ndjson (%s MiB)\n' \
		"$(pass_fail "$ok_f")" "$BIG_TREE_FILES" "$TARGET_BIG_RSS_MIB" \
		"$(awk -v k="$big_rss_table" 'BEGIN {printf "%.1f", k / 1024}')" \
		"$(awk -v k="$big_rss_ndjson" 'BEGIN {printf "%.1f", k / 1024}')"
else
	printf '  (f) SKIP  %d-file tree: filecache peak RSS < %d MiB, table and --ndjson (BIG_TREE=1 to run it)\n' \
		"$BIG_TREE_FILES" "$TARGET_BIG_RSS_MIB"
fi
ok_g=$((small_us <= ${med_us[small:vmtouch]} ? 1 : 0))
printf '  (g) %s  small file: filecache no slower than vmtouch (median %s ms against %s ms)\n' "$(pass_fail "$ok_g")" \
	"$(awk -v u="$small_us" 'BEGIN {printf "%.2f", u / 1000}')" "$(awk -v u="${med_us[small:vmtouch]}" 'BEGIN {printf "%.2f", u / 1000}')"
ok_h=$((loop_us[filecache] <= loop_us[vmtouch] ? 1 : 0))
printf '  (h) %s  %d calls, one file each: filecache no slower than vmtouch (%s ms against %s ms a call)\n' "$(pass_fail "$ok_h")" \
	"$LOOP_CALLS" "$(awk -v u="${loop_us[filecache]}" -v n="$LOOP_CALLS" 'BEGIN {printf "%.3f", u / n / 1000}')" \
	"$(awk -v u="${loop_us[vmtouch]}" -v n="$LOOP_CALLS" 'BEGIN {printf "%.3f", u / n / 1000}')"
if ((COLD_FILES > 0)) && [[ -n $BASELINE_BIN ]]; then
	ok_i=$((cold_med[filecache] <= cold_med[baseline] ? 1 : 0))
	printf '  (i) %s  cold dentries: filecache no slower than BASELINE_BIN (%s s against %s s)\n' "$(pass_fail "$ok_i")" \
		"$(awk -v u="${cold_med[filecache]}" 'BEGIN {printf "%.3f", u / 1e6}')" "$(awk -v u="${cold_med[baseline]}" 'BEGIN {printf "%.3f", u / 1e6}')"
else
	echo "  (i) SKIP  cold dentries: filecache no slower than today's (set BASELINE_BIN, and COLD_FILES > 0)"
fi
exit 0
