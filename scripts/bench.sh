#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The project's benchmark.  Each figure is measured in the same run as its
# baseline and printed as a table row: what, mlfs, baseline, ratio.
# Times are medians of REPEAT runs, page cache warm (one warm-up run first).
#
#   scripts/bench.sh [-n RUNS] [-s SUBMITS] [-r REPEAT] [SECTION...]
#
# Sections: meta (the metadata workload over RUNS finished runs vs. the same
# tree copied to the local disk), submit (SUBMITS trivial runs made and
# submitted by a shell loop), latency (a printed line until it is readable
# in log), rss (daemon peak RSS).  Default: all, RUNS=10000, SUBMITS=1000.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NRUNS=10000 NSUB=1000 REPEAT=5
while getopts n:s:r:h o; do
	case $o in
	n) NRUNS=$OPTARG ;;
	s) NSUB=$OPTARG ;;
	r) REPEAT=$OPTARG ;;
	*) sed -n '2,13p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
SECTIONS=${*:-meta submit latency rss}

"$ROOT/scripts/deps.sh" build >/dev/null
[[ -f $ROOT/build/build.ninja ]] || meson setup "$ROOT/build" >/dev/null
ninja -C "$ROOT/build" >/dev/null
MLFS=$ROOT/build/mlfs

W=$(mktemp -d /tmp/mlfs-bench.XXXXXX)
MNT=$W/mnt STATE=$W/state NATIVE=$W/native
mkdir -p "$MNT" "$NATIVE"
DPID=
cleanup() {
	if [[ -n $DPID ]]; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
		wait "$DPID" 2>/dev/null || true
	fi
	rm -rf "$W"
}
trap cleanup EXIT

mount_ws() {
	"$MLFS" -f --state "$STATE" "$MNT" 2>>"$W/daemon.err" &
	DPID=$!
	for _ in $(seq 200); do
		grep -q " $MNT fuse" /proc/mounts && return 0
		sleep 0.05
	done
	echo "bench: mount failed" >&2
	exit 1
}

now() { date +%s.%N; }

# median of the times (seconds) of running "$@" REPEAT times
median_time() {
	local t0 t1 i
	"$@" >/dev/null 2>&1	# warm-up
	for ((i = 0; i < REPEAT; i++)); do
		t0=$(now)
		"$@" >/dev/null 2>&1
		t1=$(now)
		echo "$t1 - $t0" | bc -l
	done | sort -n | awk '{a[NR]=$1} END {printf "%.4f", a[int((NR+1)/2)]}'
}

row() { printf '%-46s %12s %12s %8s\n' "$@"; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

wait_all_final() {	# wait_all_final PREFIX COUNT
	local n
	while :; do
		n=$(cat "$MNT"/runs/"$1"*/status 2>/dev/null |
			grep -c -E '^(Completed|Failed|Canceled)$' || true)
		((n >= $2)) && return 0
		sleep 0.05
	done
}

make_runs() {	# make_runs PREFIX COUNT: mkdir, command, submit
	local i
	for ((i = 0; i < $2; i++)); do
		mkdir "$MNT/runs/$1$i"
		echo true > "$MNT/runs/$1$i/command"
		echo submit > "$MNT/runs/$1$i/ctl"
	done
}

command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null 2>&1 || true; }
mount_ws
row "figure" "mlfs" "baseline" "ratio"
row "------" "----" "--------" "-----"

for s in $SECTIONS; do
	case $s in
	submit)
		t0=$(now)
		make_runs s "$NSUB"
		t1=$(now)
		wait_all_final s "$NSUB"
		t2=$(now)
		sub=$(echo "$t1 - $t0" | bc -l)
		all=$(echo "$t2 - $t0" | bc -l)
		row "$NSUB runs: submitted (s)" "$(printf %.2f "$sub")" "-" "-"
		row "$NSUB runs: all Completed (s)" "$(printf %.2f "$all")" "-" "-"
		row "$NSUB runs: runs/s" "$(echo "$NSUB / $all" | bc)" "-" "-"
		;;
	meta)
		have=$(ls "$MNT/runs" | grep -c '^m' || true)
		if ((have < NRUNS)); then
			make_runs m $((NRUNS - have)) >/dev/null
			wait_all_final m "$NRUNS"
		fi
		rm -rf "$NATIVE" && mkdir -p "$NATIVE"
		cp -r "$MNT/." "$NATIVE/" 2>/dev/null || true
		for w in "ls -l runs" "cat runs/*/status" \
			"grep -l Failed runs/*/status" "find . -type f"; do
			m=$(cd "$MNT" && median_time bash -c "$w | wc -l")
			n=$(cd "$NATIVE" && median_time bash -c "$w | wc -l")
			row "$w ($NRUNS runs)" "$m" "$n" "$(ratio "$m" "$n")x"
		done
		all_m=$(cd "$MNT" && median_time bash -c 'ls -l runs >/dev/null; cat runs/*/status >/dev/null; grep -l Failed runs/*/status >/dev/null; find . -type f | wc -l')
		all_n=$(cd "$NATIVE" && median_time bash -c 'ls -l runs >/dev/null; cat runs/*/status >/dev/null; grep -l Failed runs/*/status >/dev/null; find . -type f | wc -l')
		row "metadata workload, all four" "$all_m" "$all_n" "$(ratio "$all_m" "$all_n")x"
		;;
	latency)
		mkdir "$MNT/runs/lat"
		cat > "$MNT/runs/lat/command" <<'SH'
for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.3; date +%s.%N; done
SH
		echo submit > "$MNT/runs/lat/ctl"
		lats=()
		seen=0
		while ((seen < 10)); do
			n=$(wc -l < "$MNT/runs/lat/log" 2>/dev/null || echo 0)
			if ((n > seen)); then
				t=$(now)
				stamp=$(sed -n "${n}p" "$MNT/runs/lat/log")
				lats+=("$(echo "($t - $stamp) * 1000" | bc -l)")
				seen=$n
			fi
			sleep 0.005
		done
		med=$(printf '%s\n' "${lats[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}')
		mx=$(printf '%s\n' "${lats[@]}" | sort -n | tail -1 | xargs printf %.1f)
		row "log line -> readable in log, median (ms)" "$med" "-" "-"
		row "log line -> readable in log, max (ms)" "$mx" "-" "-"
		;;
	rss)
		rss=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
		row "daemon peak RSS (MiB)" "$((rss / 1024))" "64 (limit)" "-"
		;;
	esac
done
