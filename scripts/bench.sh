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
# in log), rss (daemon peak RSS), bulk (cp of a 256 MiB file into a run
# folder and reading it back, vs. the local disk), scale (stat and cat
# status of one run, ls runs, RSS and mount time at 1,000 / 10,000 /
# 100,000 runs; SCALE="1000 10000 100000" to choose), slurm (NSLURM=200
# trivial runs submitted through the tree to a slurm target vs. the same
# jobs by `sbatch --wrap true` in a shell loop, same private cluster; and
# what one poll round costs each way: GET /jobs vs. GET /job/{id} each),
# deploy (a trivial model served on the local target: time from `echo
# deploy > ctl` to Healthy, median of REPEAT; then requests/s and p50/p99
# latency of POST /score with 1 and 2 replicas, CONNS=4 keep-alive client
# connections for LOAD_S=5 seconds, by scripts/score-bench.py).
# Default: meta submit latency rss bulk; RUNS=10000, SUBMITS=1000.
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
SECTIONS=${*:-meta submit latency rss bulk}
SCALE=${SCALE:-1000 10000 100000}

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
	if [[ -n $SLURM_D ]]; then
		"$ROOT/scripts/slurm-cluster.sh" stop "$SLURM_D" >/dev/null 2>&1 || true
	fi
	rm -rf "$W"
}
SLURM_D=
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

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# MB/s of "$@" moving 256 MiB, median of REPEAT, each after PREP
mbps() {
	local prep=$1 i t0 t1
	shift
	for ((i = 0; i < REPEAT; i++)); do
		eval "$prep"
		t0=$(now)
		"$@"
		t1=$(now)
		echo "256 / ($t1 - $t0)" | bc -l
	done | sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]}'
}

bulk_section() {
	local src=$W/src256 mw nw mr nr
	dd if=/dev/urandom of="$src" bs=1M count=256 status=none
	mkdir -p "$MNT/runs/bulk"
	nw=$(mbps "rm -f $NATIVE/big" cp "$src" "$NATIVE/big")
	mw=$(mbps "rm -f $MNT/runs/bulk/big" cp "$src" "$MNT/runs/bulk/big")
	row "cp 256 MiB in (MB/s)" "$mw" "$nw" "$(ratio "$mw" "$nw")x"
	nr=$(mbps drop_caches cp "$NATIVE/big" /dev/null)
	mr=$(mbps drop_caches cp "$MNT/runs/bulk/big" /dev/null)
	row "read 256 MiB back, cold (MB/s)" "$mr" "$nr" "$(ratio "$mr" "$nr")x"
	nr=$(mbps : cp "$NATIVE/big" /dev/null)
	mr=$(mbps : cp "$MNT/runs/bulk/big" /dev/null)
	row "read 256 MiB back, warm (MB/s)" "$mr" "$nr" "$(ratio "$mr" "$nr")x"
	rm -f "$MNT/runs/bulk/big" "$NATIVE/big" "$src"
}

# per-op median (µs) of stat and of reading status, over 500 runs picked
# at random among N; "cold" after dropping the kernel's caches
op_costs() {
	python3 - "$MNT/runs" "$1" "$2" <<'PYEOF'
import os, random, statistics, sys, time
runs, n, cold = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "cold"
pick = [f"{runs}/z{random.randrange(n)}" for _ in range(500)]
if cold:
    os.system("sync; echo 3 > /proc/sys/vm/drop_caches")
else:
    for p in pick:
        os.stat(p)
        with open(p + "/status", "rb") as f: f.read()
st, rd = [], []
for p in pick:
    t = time.perf_counter_ns(); os.stat(p); st.append(time.perf_counter_ns() - t)
    t = time.perf_counter_ns()
    with open(p + "/status", "rb") as f: f.read()
    rd.append(time.perf_counter_ns() - t)
print(f"{statistics.median(st)/1000:.1f} {statistics.median(rd)/1000:.1f}")
PYEOF
}

scale_section() {
	local n have i t0 t1 ws wr cs cr lt rss mt
	for n in $SCALE; do
		have=$(ls "$MNT/runs" | grep -c '^z' || true)
		for ((i = have; i < n; i++)); do mkdir "$MNT/runs/z$i"; done
		read -r ws wr < <(op_costs "$n" warm)
		read -r cs cr < <(op_costs "$n" cold)
		lt=$(median_time ls "$MNT/runs")
		rss=$(awk '/VmRSS/ {print $2}' "/proc/$DPID/status")
		fusermount3 -u "$MNT"
		wait "$DPID" || true
		t0=$(now)
		mount_ws
		ls "$MNT/runs/z0" >/dev/null
		t1=$(now)
		mt=$(echo "$t1 - $t0" | bc -l)
		row "$n runs: stat one run, warm / cold (us)" "$ws / $cs" "-" "-"
		row "$n runs: cat status, warm / cold (us)" "$wr / $cr" "-" "-"
		row "$n runs: ls runs (s)" "$lt" "-" "-"
		row "$n runs: daemon RSS (MiB)" "$((rss / 1024))" "-" "-"
		row "$n runs: mount until ls works (s)" "$(printf %.3f "$mt")" "-" "-"
	done
}

# ---- slurm ----------------------------------------------------------------

ms() { printf '%.1f' "$(echo "$1 * 1000" | bc -l)"; }
count_jobs() { scontrol -o show jobs 2>/dev/null | grep -c " JobName=$1" || true; }

slurm_target() {
	mkdir "$MNT/targets/sl"
	echo slurm > "$MNT/targets/sl/type"
	printf 'url = %s\ntoken_file = %s\npartition = %s\n' "$SLURM_URL" \
		"$SLURM_TOKEN_FILE" "$SLURM_PARTITION" > "$MNT/targets/sl/config"
	echo provision > "$MNT/targets/sl/ctl"
	while [[ $(cat "$MNT/targets/sl/status") == Creating ]]; do sleep 0.05; done
	[[ $(cat "$MNT/targets/sl/status") == Succeeded ]] ||
		{ echo "bench: slurm target: $(cat "$MNT/targets/sl/error")" >&2; exit 1; }
}

# Seconds of `curl` over one kept-alive connection for the URLs given.
curl_time() {
	local u args=()
	for u in "$@"; do args+=(-o /dev/null "$u"); done
	curl -s -w '%{time_total}\n' -H "X-SLURM-USER-NAME: root" \
		-H "X-SLURM-USER-TOKEN: $(cat "$SLURM_TOKEN_FILE")" "${args[@]}" |
		awk '{ s += $1 } END { printf "%.4f", s }'
}

# One poll round both ways, with every job of this section still known.
poll_costs() {
	local api=$SLURM_URL/slurm/v0.0.38 ids urls=() all one304 each nj
	ids=$(scontrol -o show jobs | sed -n 's/^JobId=\([0-9]*\) JobName=ms.*/\1/p')
	nj=$(scontrol -o show jobs | grep -c '^JobId=')
	for i in $ids; do urls+=("$api/job/$i"); done
	all=$(curl_time "$api/jobs")
	one304=$(curl_time "$api/jobs?update_time=$(($(date +%s) + 5))")
	each=$(curl_time "${urls[@]}")
	row "poll: GET /jobs, $nj jobs known (ms)" "$(ms "$all")" "-" "-"
	row "poll: GET /jobs?update_time, 304 (ms)" "$(ms "$one304")" "-" "-"
	row "poll: GET /job/{id} x ${#urls[@]} (ms)" "$(ms "$each")" "-" "-"
	row "poll: GET /job/{id}, one (ms)" \
		"$(ms "$(echo "$each / ${#urls[@]}" | bc -l)")" "-" "-"
}

# deploy_wait DIR STATE: poll status until STATE (30 s at most).
deploy_wait() {
	for _ in $(seq 600); do
		[[ $(cat "$1/status") == "$2" ]] && return 0
		sleep 0.01
	done
	echo "bench: $1 is $(cat "$1/status"): $(cat "$1/error")" >&2
	return 1
}

# deploy_load DIR REPLICAS: requests/s, p50 and p99 rows for one load.
deploy_load() {
	local d=$1 out
	out=$(python3 "$ROOT/scripts/score-bench.py" "$(cat "$d/scoring_uri")" \
		"$(cat "$d/key")" -c "${CONNS:-4}" -d "${LOAD_S:-5}")
	read -r rps p50 p99 errs <<< "$out"
	row "/score, $2 replica(s): requests/s" "$rps" ">= 1000" "-"
	row "/score, $2 replica(s): p50 latency (ms)" "$p50" "-" "-"
	row "/score, $2 replica(s): p99 latency (ms)" "$p99" "< 20" "-"
	((errs == 0)) || row "/score, $2 replica(s): failed requests" "$errs" "0" "-"
}

deploy_section() {
	local d=$MNT/deployments/bench t0 t1 times=()
	mkdir -p "$MNT/models/trivial/1"
	echo '{"y": 1}' > "$MNT/models/trivial/1/y.json"
	mkdir "$d"
	printf 'def init():\n    pass\ndef run(data):\n    return {"y": 1}\n' \
		> "$d/score.py"
	echo trivial:1 > "$d/model"
	for ((i = 0; i < REPEAT; i++)); do
		t0=$(now)
		echo deploy > "$d/ctl"
		deploy_wait "$d" Healthy
		t1=$(now)
		times+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
		echo delete > "$d/ctl"
		deploy_wait "$d" Draft
	done
	row "echo deploy > ctl -> Healthy, median (ms)" "$(printf '%s\n' \
		"${times[@]}" | sort -n | awk '{a[NR]=$1} END \
		{printf "%.0f", a[int((NR+1)/2)]}')" "< 2000" "-"
	echo deploy > "$d/ctl"
	deploy_wait "$d" Healthy
	deploy_load "$d" 1
	echo "replicas = 2" > "$d/config"
	echo deploy > "$d/ctl"
	deploy_wait "$d" Healthy
	deploy_load "$d" 2
	echo delete > "$d/ctl"
	deploy_wait "$d" Draft
}

slurm_section() {
	local n=${NSLURM:-200} i t0 t1 t2 t3 t4 t5 t6 m b
	chmod 755 "$W"
	SLURM_D=$W/slurm
	"$ROOT/scripts/slurm-cluster.sh" start "$SLURM_D" >/dev/null
	set -a
	source "$SLURM_D/cluster.env"
	set +a
	t0=$(now)
	for ((i = 0; i < n; i++)); do
		sbatch -Q -J "sb$i" -o /dev/null --wrap true
	done
	t1=$(now)
	while [[ -n $(squeue -h -o %i) ]]; do sleep 0.05; done
	t2=$(now)
	slurm_target
	t3=$(now)
	for ((i = 0; i < n; i++)); do
		mkdir "$MNT/runs/ms$i"
		echo true > "$MNT/runs/ms$i/command"
		echo sl > "$MNT/runs/ms$i/target"
		echo submit > "$MNT/runs/ms$i/ctl"
	done
	t4=$(now)
	while (($(count_jobs ms) < n)); do sleep 0.02; done
	t5=$(now)
	wait_all_final ms "$n"
	t6=$(now)
	m=$(echo "$n / ($t5 - $t3)" | bc -l)
	b=$(echo "$n / ($t1 - $t0)" | bc -l)
	row "slurm: $n runs, shell loop done (s)" "$(printf %.2f "$(echo "$t4 - $t3" | bc -l)")" "-" "-"
	row "slurm: $n runs, submits/s (all in Slurm)" "$(printf %.0f "$m")" "$(printf %.0f "$b")" "$(ratio "$m" "$b")x"
	row "slurm: $n runs, until all Completed (s)" \
		"$(printf %.1f "$(echo "$t6 - $t3" | bc -l)")" \
		"$(printf %.1f "$(echo "$t2 - $t0" | bc -l)")" \
		"$(ratio "$(echo "$t6 - $t3" | bc -l)" "$(echo "$t2 - $t0" | bc -l)")x"
	row "slurm: jobs in Slurm per mlfs run" "$(echo "$(count_jobs ms) / $n" | bc)" "1" "-"
	poll_costs
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
	bulk)
		bulk_section
		;;
	scale)
		scale_section
		;;
	slurm)
		slurm_section
		;;
	deploy)
		deploy_section
		;;
	esac
done
