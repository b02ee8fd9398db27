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
# connections for LOAD_S=5 seconds, by scripts/score-bench.py), cluster
# (a managed cluster, type = cluster, on 3 test hosts of
# scripts/cluster-hosts.sh: provision Creating -> Succeeded, median of
# REPEAT; CREPEAT=3 cycles at 0 nodes of `echo submit` -> Running and of
# the run's end -> every node powered_down, idle_seconds = 10; NCLUSTER=200
# trivial runs with the 3 nodes up vs. the same on the attached test
# cluster (a slurm target); the daemon's and the controller's CPU while
# the cluster idles IDLE_S=30 s), workcopy (a run whose folder holds
# WC_FILES=32 files of 8 MiB and a 1 GiB sparse file: seconds from
# `echo submit` to Completed for `true` on the local target, the working
# copy made in between, vs. `cp -a` of the same tree on the same file
# system; on the state dir's file system, then on an xfs image, where
# both clone (reflink), when mkfs.xfs is present), autoscale (a step load
# of AS_LOAD=4 held requests: time to the first added replica ready and to
# 1 -> AS_LOAD replicas, target_in_flight = 1), endpoint (the same
# trivial deployment, 2 replicas, behind endpoints/ebench (HAProxy):
# requests/s and p99 through the endpoint vs. straight to the deployment,
# same run, CONNS keep-alive connections, EP_PAIRS=11 pairs of EP_LOAD_S=1
# second side by side (medians; the ratio the median of the pairs'
# ratios); the same through the endpoint vs. through a bare HAProxy hop
# (a frontend and one server, nothing else: what any proxy in front costs
# on this machine); the endpoint vs. straight to a second deployment of 2
# replicas whose run() takes ~1 ms of CPU (EP_WORK_N=25000), reached by the
# pin header; and a traffic
# change -> applied, a write of `traffic`, which returns once the proxy
# took it, median of 20; and the same write to a Draft endpoint: the write
# path without the proxy).
# after (the overhead of `after` on the local target: from the moment run A's
# command ends to the moment B's, which waits for A, starts, median of
# REPEAT; baseline: from `echo submit` of a run to its command's start;
# and from A's end to the return of a `cat runs/A/wait` begun before; then
# on the private Slurm cluster, AFTER_SLURM=0 to skip: A ends -> B starts
# with B held by Slurm's dependency vs. held by the daemon (A on another
# target of the same cluster), default poll_seconds),
# inputs (a run reading IN_MB=512 MiB by reference vs. copied into its
# folder first: `echo submit` or the cp to Completed; on an ssh target
# (the test sshd), the first run, which sends the input into the host's
# cache, vs. a second, which reuses it),
# clone (`echo clone` of a run with CL_MB=256 MiB and CL_FILES=1000 small
# files vs. cp -a of its files on the state dir's disk, and vs. mkdir +
# cp -a through the mount),
# dist (procs_per_node on the local target, median of REPEAT: `echo
# submit` -> the last of 4 processes started, vs. the one process of a
# plain run; 4 processes printing DIST_LINES=100000 lines each through the
# rank-prefixing relay, submit -> `cat wait` returns, vs. one process
# printing 4 x DIST_LINES straight into log),
# plots (runs/index.html for PLOT_RUNS="1000 10000" finished runs, each with
# a summary of 3 metrics as the worker writes it: rendered anew after a
# change, and kept while nothing changed vs. `ls -l runs`, medians of
# REPEAT; metrics.svg of 100,000 points drawn, as build/tests/test_plot
# times it),
# env (environments/: the first build of a Containerfile FROM a busybox
# rootfs; the second build of the unchanged folder vs. podman build of it
# with its layer cache, median of REPEAT; podman run --rm IMAGE true vs.
# sh -c true, the floor a run in an environment pays),
# array (an array of NARRAY=1000 trivial tasks, `array = 0-999`, from
# `echo submit` to the return of `cat wait`, vs. NARRAY separate trivial
# runs made and submitted by a shell loop until all are final; local
# target, same max_concurrent, same run; then on a slurm target a job
# array of NSLARRAY=100 trivial tasks vs. sbatch --array of the same).
# target, same max_concurrent, same run),
# ssh-array (the same array of NARRAY trivial tasks on an ssh target, the
# test sshd of scripts/ssh-host.sh on 127.0.0.1, vs. on the local target:
# `echo submit` to the return of `cat wait`; both max_concurrent default
# to the machine's cpus).
# Default: meta submit latency rss bulk; RUNS=10000, SUBMITS=1000.
# MLFS_BIN=PATH measures that daemon instead of build/mlfs (another
# version: before and after a change, in the same conditions).
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

MLFS=${MLFS_BIN:-$ROOT/build/mlfs}
if [[ -z ${MLFS_BIN:-} ]]; then
	"$ROOT/scripts/deps.sh" build >/dev/null
	[[ -f $ROOT/build/build.ninja ]] || meson setup "$ROOT/build" >/dev/null
	ninja -C "$ROOT/build" >/dev/null
fi

W=$(mktemp -d /tmp/mlfs-bench.XXXXXX)
MNT=$W/mnt STATE=$W/state NATIVE=$W/native
mkdir -p "$MNT" "$NATIVE"
DPID=
cleanup() {
	if [[ -n $CLHOSTS_D ]]; then
		cluster_teardown || true
	fi
	if [[ -n $DPID ]]; then
		unmount_ws
	fi
	if [[ -n $SLURM_D ]]; then
		"$ROOT/scripts/slurm-cluster.sh" stop "$SLURM_D" >/dev/null 2>&1 || true
	fi
	if [[ -n $CLHOSTS_D ]]; then
		"$ROOT/scripts/cluster-hosts.sh" stop "$CLHOSTS_D" >/dev/null 2>&1 || true
	fi
	if [[ -n $BARE_PID ]]; then
		kill "$BARE_PID" 2>/dev/null || true
	fi
	if [[ -d $W/sshd ]]; then
		"$ROOT/scripts/ssh-host.sh" stop "$W/sshd" >/dev/null 2>&1 || true
		chmod -R u+w "$W/remote" 2>/dev/null || true
	fi
	if mountpoint -q "$W/xfs" 2>/dev/null; then
		umount "$W/xfs" || umount -l "$W/xfs"
	fi
	rm -rf "$W"
}
SLURM_D=
CLHOSTS_D=
BARE_PID=
trap cleanup EXIT

# The daemon has not exited (a zombie is gone)
daemon_alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$DPID/stat" 2>/dev/null | cut -c1)
	[[ -n $st && $st != Z ]]
}

# Unmount and wait for the daemon.  A mount namespace made while the
# workspace was mounted (test hosts of scripts/cluster-hosts.sh, ours or
# another test's) holds a copy of the mount that our unmount does not
# reach, and the daemon lives on: after 10 s its FUSE connection is
# aborted, which ends it.
unmount_ws() {
	local dev
	dev=$(mountpoint -d "$MNT" 2>/dev/null) || dev=
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	for _ in $(seq 100); do
		daemon_alive || break
		sleep 0.1
	done
	if daemon_alive && [[ -n $dev ]]; then
		echo "bench: the daemon outlived the unmount: aborting its connection" >&2
		echo 1 > "/sys/fs/fuse/connections/${dev#*:}/abort" 2>/dev/null || true
	fi
	wait "$DPID" 2>/dev/null || true
}

mount_ws() {
	# allow_other: the environments' figures run as a user
	"$MLFS" -f --state "$STATE" -o allow_other "$MNT" 2>>"$W/daemon.err" &
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

# The tree of the workcopy section in folder $1.
wc_tree() {
	local i
	mkdir -p "$1/data"
	for ((i = 0; i < ${WC_FILES:-32}; i++)); do
		head -c 8M "$W/wc8m" > "$1/data/f$i"
	done
	truncate -s 1G "$1/sparse"
	echo 'int main(void) { return 0; }' > "$1/a.c"
}

# Seconds from submit to Completed of run $1 (its files made before).
wc_submit() {
	local r=$MNT/runs/$1 t0 s
	echo true > "$r/command"
	t0=$(now)
	echo submit > "$r/ctl"
	while :; do
		s=$(cat "$r/status")
		case $s in Completed | Failed | Canceled) break ;; esac
		sleep 0.005
	done
	[[ $s == Completed ]] || { echo "bench: workcopy run $1 $s" >&2; exit 1; }
	echo "$(now) - $t0" | bc -l
}

median() { sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'; }

# One row: the working copy on the file system of $STATE vs. cp -a there.
wc_row() {
	local what=$1 i m n t0
	for ((i = 0; i <= REPEAT; i++)); do
		mkdir "$MNT/runs/wc$i"
		wc_tree "$MNT/runs/wc$i"
	done
	wc_submit wc$REPEAT >/dev/null	# warm-up
	m=$(for ((i = 0; i < REPEAT; i++)); do wc_submit wc$i; done | median)
	local d=${STATE%/*}	# beside the state dir: the same file system
	wc_tree "$d/wc-src"
	n=$(for ((i = 0; i <= REPEAT; i++)); do
		rm -rf "$d/wc-dst"
		sync
		t0=$(now)
		cp -a "$d/wc-src" "$d/wc-dst"
		((i == 0)) || echo "$(now) - $t0" | bc -l
	done | median)
	rm -rf "$d/wc-src" "$d/wc-dst"
	row "working copy, $what (s)" "$m" "$n" "$(ratio "$m" "$n")x"
}

workcopy_section() {
	local fs img
	head -c 8M /dev/urandom > "$W/wc8m"
	fs=$(findmnt -no FSTYPE -T "${STATE%/*}")
	wc_row "$((${WC_FILES:-32} * 8)) MiB + sparse, $fs"
	if ! command -v mkfs.xfs >/dev/null; then
		row "working copy on xfs (reflink)" "-" "no mkfs.xfs" "-"
		return
	fi
	unmount_ws
	img=$W/xfs.img
	truncate -s 8G "$img"
	mkfs.xfs -q -m reflink=1 "$img"
	mkdir -p "$W/xfs"
	mount -o loop "$img" "$W/xfs"
	STATE=$W/xfs/state
	mount_ws
	wc_row "$((${WC_FILES:-32} * 8)) MiB + sparse, xfs (reflink)"
	unmount_ws
	STATE=$W/state
	umount "$W/xfs"
	rm -f "$img"
	mount_ws
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

# ---- after ------------------------------------------------------------------

# ms between two stamp files (seconds.nanoseconds)
stamp_ms() { echo "($(cat "$2") - $(cat "$1")) * 1000" | bc -l; }

# One A -> B pair, I: prints "after_ms wait_ms submit_ms".
after_once() {
	local a=$MNT/runs/aa$1 b=$MNT/runs/ab$1 c=$MNT/runs/ac$1 d=$W/after$1
	mkdir -p "$d" "$a" "$b" "$c"
	echo "while [ ! -e $d/go ]; do sleep 0.01; done; date +%s.%N > $d/a_end" \
		> "$a/command"
	echo "date +%s.%N > $d/b_start" > "$b/command"
	echo "aa$1" > "$b/after"
	echo submit > "$a/ctl"
	echo submit > "$b/ctl"
	until [[ $(cat "$a/status") == Running ]]; do sleep 0.01; done
	(cat "$a/wait" >/dev/null; date +%s.%N > "$d/waited") &
	local waiter=$!
	touch "$d/go"
	until [[ -s $d/b_start ]]; do sleep 0.005; done
	wait "$waiter"		# not the daemon, another child
	echo "date +%s.%N > $d/c_start" > "$c/command"
	date +%s.%N > "$d/c_submit"
	echo submit > "$c/ctl"
	until [[ -s $d/c_start ]]; do sleep 0.005; done
	echo "$(stamp_ms "$d/a_end" "$d/b_start") $(stamp_ms "$d/a_end" \
		"$d/waited") $(stamp_ms "$d/c_submit" "$d/c_start")"
}

# One A -> B pair on Slurm, A on target $1 (sl: B's `after` held by
# Slurm's dependency; sl2, another target on the same cluster: held by the
# daemon, which submits B once its poll saw A end), I $2: prints the ms
# from A's end to B's start.
after_slurm_once() {
	local a=$MNT/runs/sa$1x$2 b=$MNT/runs/sb$1x$2 d=$W/safter$1x$2
	mkdir -p "$d" "$a" "$b"
	echo "while [ ! -e $d/go ]; do sleep 0.01; done; date +%s.%N > $d/a_end" \
		> "$a/command"
	echo "$1" > "$a/target"
	echo "date +%s.%N > $d/b_start" > "$b/command"
	echo sl > "$b/target"
	echo "sa$1x$2" > "$b/after"
	echo submit > "$a/ctl"
	until [[ $(cat "$a/status") == Running ]]; do sleep 0.01; done
	echo submit > "$b/ctl"
	if [[ $1 == sl ]]; then	# in Slurm, held, before A ends
		until grep -q '"backend_id":[[:space:]]*"slurm' "$b/info.json"; do
			sleep 0.01
		done
	fi
	touch "$d/go"
	until [[ -s $d/b_start ]]; do sleep 0.01; done
	stamp_ms "$d/a_end" "$d/b_start"
}

after_section() {
	local i col sd dd
	for ((i = 0; i < REPEAT; i++)); do after_once "$i"; done > "$W/after.txt"
	col() { awk -v c="$1" '{ print $c }' "$W/after.txt" | median; }
	row "after: A ends -> B starts, local (ms)" "$(col 1)" "$(col 3)" \
		"$(ratio "$(col 1)" "$(col 3)")x"
	row "  (baseline: echo submit -> the run starts)" "" "" ""
	row "wait: A ends -> cat runs/A/wait returns (ms)" "$(col 2)" "-" "-"
	[[ ${AFTER_SLURM:-1} == 1 ]] || return 0
	slurm_up
	slurm_target sl2
	sd=$(for ((i = 0; i < REPEAT; i++)); do after_slurm_once sl "$i"; done | median)
	dd=$(for ((i = 0; i < REPEAT; i++)); do after_slurm_once sl2 "$i"; done | median)
	row "after, Slurm: A ends -> B starts (ms)" "$sd" "$dd" \
		"$(ratio "$sd" "$dd")x"
	row "  (baseline: the daemon waits, poll_seconds $(slurm_poll_s))" "" "" ""
}

# inputs: a run that reads IN_MB=512 MiB (8 files) by reference (its
# `inputs`), from `echo submit` to Completed, vs. the way without: the
# data copied into the run's folder (through the mount) and read there;
# median of REPEAT, the page cache warm for both.
in_done() {
	local s
	while :; do
		s=$(cat "$1/status")
		case $s in Completed | Failed | Canceled) break ;; esac
		sleep 0.005
	done
	[[ $s == Completed ]] || { echo "bench: $1 $s: $(cat "$1/error")" >&2; exit 1; }
}

inputs_section() {
	local d=$W/in-data i r t0 a=() b=()
	mkdir -p "$d"
	for i in $(seq 8); do
		head -c "$((${IN_MB:-512} / 8))M" /dev/urandom > "$d/part$i"
	done
	cat "$d"/* > /dev/null
	for ((i = 0; i < REPEAT; i++)); do
		r=$MNT/runs/in$i
		mkdir "$r"
		echo "d $d" > "$r/inputs"
		echo 'cat "$MLFS_INPUT_d"/* > /dev/null' > "$r/command"
		t0=$(now)
		echo submit > "$r/ctl"
		in_done "$r"
		a+=("$(echo "$(now) - $t0" | bc -l)")
		r=$MNT/runs/cp$i
		mkdir "$r"
		echo 'cat in-data/* > /dev/null' > "$r/command"
		t0=$(now)
		cp -r "$d" "$r/"
		echo submit > "$r/ctl"
		in_done "$r"
		b+=("$(echo "$(now) - $t0" | bc -l)")
		rm -rf "$r/in-data"
	done
	row "inputs: ${IN_MB:-512} MiB by reference, run (s)" \
		"$(printf '%s\n' "${a[@]}" | median)" \
		"$(printf '%s\n' "${b[@]}" | median)" \
		"$(ratio "$(printf '%s\n' "${a[@]}" | median)" \
			"$(printf '%s\n' "${b[@]}" | median)")x"
	row "  (baseline: cp into the run, then the run)" "" "" ""
	inputs_ssh_rows "$d"
	rm -rf "$d"
}

# inputs on ssh: the same data as the input of a run on an ssh target (the
# test sshd of scripts/ssh-host.sh on 127.0.0.1, this user's login): `echo
# submit` to Completed for the first run, which copies the input with the
# user's rights, digests it and sends it into the host's cache, vs. a
# second run of the same content, which copies and digests it again but
# sends nothing; median of REPEAT, the cache emptied before each pair.
ssh_in_run() {	# ssh_in_run NAME DATA: one run, its seconds
	local r=$MNT/runs/$1 t0
	mkdir "$r"
	echo inbox > "$r/target"
	echo "d $2" > "$r/inputs"
	echo 'cat "$MLFS_INPUT_d"/* > /dev/null' > "$r/command"
	t0=$(now)
	echo submit > "$r/ctl"
	in_done "$r"
	echo "$(now) - $t0" | bc -l
}

# ssh_box NAME WORKDIR: targets/NAME, an ssh target of the test sshd
# (started here) with its workdir in $W/WORKDIR, attached; fails when no
# test sshd starts.
ssh_box() {
	local t=$MNT/targets/$1
	"$ROOT/scripts/ssh-host.sh" start "$W/sshd" >/dev/null 2>&1 || return 1
	source "$W/sshd/host.env"
	mkdir "$t"
	echo ssh > "$t/type"
	printf 'host = %s\nport = %s\nuser = %s\nidentity_file = %s\nworkdir = %s\n' \
		"$SSH_HOST" "$SSH_PORT" "$SSH_USER" "$SSH_IDENTITY" \
		"$W/$2" > "$t/config"
	echo provision > "$t/ctl"
	while [[ $(cat "$t/status") == Creating ]]; do sleep 0.05; done
	[[ $(cat "$t/status") == Succeeded ]] ||
		{ echo "bench: ssh target: $(cat "$t/error")" >&2; exit 1; }
}

inputs_ssh_rows() {
	local i a=() b=()
	if ! ssh_box inbox remote; then
		row "inputs on ssh: no test sshd, skipped" "" "" ""
		return
	fi
	for ((i = 0; i < REPEAT; i++)); do
		chmod -R u+w "$W/remote/inputs" 2>/dev/null || true
		rm -rf "$W/remote/inputs"
		a+=("$(ssh_in_run sa$i "$1")")
		b+=("$(ssh_in_run sb$i "$1")")
	done
	row "inputs on ssh: ${IN_MB:-512} MiB, 1st run sends (s)" \
		"$(printf '%s\n' "${a[@]}" | median)" \
		"$(printf '%s\n' "${b[@]}" | median)" \
		"$(ratio "$(printf '%s\n' "${a[@]}" | median)" \
			"$(printf '%s\n' "${b[@]}" | median)")x"
	row "  (baseline: the 2nd run, which reuses it)" "" "" ""
	chmod -R u+w "$W/remote" 2>/dev/null || true
	"$ROOT/scripts/ssh-host.sh" stop "$W/sshd" >/dev/null 2>&1 || true
}

# ---- clone ------------------------------------------------------------------

# seconds of "$@", median of REPEAT, "$prep" (eval'd with I set) before each
clone_time() {
	local prep=$1 t0 t1
	shift
	for ((I = 0; I < REPEAT; I++)); do
		eval "$prep"
		t0=$(now)
		eval "$@"
		t1=$(now)
		echo "$t1 - $t0" | bc -l
	done | median
}

# `echo clone` of a run holding CL_MB MiB in one file and CL_FILES small
# files (in code/) vs. cp -a of the same tree on the state dir's disk, and
# vs. what a user does without clone: mkdir a run and cp -a the files in
# through the mount.
clone_section() {
	local src=$MNT/runs/clsrc files mc nc fc i
	mkdir -p "$src/code"
	dd if=/dev/urandom of="$src/code/big" bs=1M count="${CL_MB:-256}" \
		status=none
	for ((i = 0; i < ${CL_FILES:-1000}; i++)); do
		echo "$i" > "$src/code/f$i"
	done
	echo true > "$src/command"
	files=$(ls -d "$STATE"/objects/*/files | while read -r d; do
		[[ -e $d/code/big ]] && echo "$d"; done | head -1)
	mc=$(clone_time : 'echo "clone cl$I" > "$src/ctl"')
	nc=$(clone_time 'rm -rf "$NATIVE/cl"' 'cp -a "$files" "$NATIVE/cl"')
	fc=$(clone_time 'mkdir "$MNT/runs/cf$I"' \
		'cp -a "$src/code" "$MNT/runs/cf$I/"')
	row "clone: ${CL_MB:-256} MiB + ${CL_FILES:-1000} files (s)" "$mc" \
		"$nc" "$(ratio "$mc" "$nc")x"
	row "  (baseline: cp -a on the state dir's disk)" "" "" ""
	row "  mkdir + cp -a through the mount instead (s)" "$fc" "$mc" \
		"$(ratio "$fc" "$mc")x"
	rm -rf "$NATIVE/cl"
}

# ---- dist -------------------------------------------------------------------

# dist_once NAME PROCS COMMAND: submit -> the run is final (s), its files in
# $W/NAME; COMMAND may use $D (that folder).
dist_once() {
	local r=$MNT/runs/$1 d=$W/$1
	mkdir -p "$d" "$r"
	echo "${3//\$D/$d}" > "$r/command"
	echo "procs_per_node = $2" > "$r/resources"
	date +%s.%N > "$d/submit"
	echo submit > "$r/ctl"
	cat "$r/wait" >/dev/null
	date +%s.%N > "$d/end"
}

# ms from submit to the latest start.* stamp in $W/NAME
dist_start_ms() {
	sort -n "$W/$1"/start.* | tail -n1 > "$W/$1/last"
	stamp_ms "$W/$1/submit" "$W/$1/last"
}

dist_section() {
	local i n=${DIST_LINES:-100000} line
	line='yes "loss 0.123456 step 123456 of a training run, a log line" | head -n'
	for ((i = 0; i < REPEAT; i++)); do
		dist_once ds4_$i 4 'date +%s.%N > $D/start.$RANK'
		dist_once ds1_$i 1 'date +%s.%N > $D/start.0'
		echo "$(dist_start_ms ds4_$i) $(dist_start_ms ds1_$i)"
	done > "$W/dist-start.txt"
	for ((i = 0; i < REPEAT; i++)); do
		dist_once dl4_$i 4 "$line $n"
		dist_once dl1_$i 1 "$line $((4 * n))"
		echo "$(stamp_ms "$W/dl4_$i/submit" "$W/dl4_$i/end") $(stamp_ms \
			"$W/dl1_$i/submit" "$W/dl1_$i/end")"
	done > "$W/dist-log.txt"
	col() { awk -v c="$2" '{ print $c }' "$W/$1" | median; }
	row "dist: submit -> 4 processes started (ms)" \
		"$(col dist-start.txt 1)" "$(col dist-start.txt 2)" \
		"$(ratio "$(col dist-start.txt 1)" "$(col dist-start.txt 2)")x"
	row "  (baseline: the same for 1 process)" "" "" ""
	row "dist: 4 x $n log lines relayed, run (ms)" \
		"$(col dist-log.txt 1)" "$(col dist-log.txt 2)" \
		"$(ratio "$(col dist-log.txt 1)" "$(col dist-log.txt 2)")x"
	row "  (baseline: 1 process, $((4 * n)) lines direct)" "" "" ""
}

# ---- array -------------------------------------------------------------------

# array_run NAME N [TARGET]: an array run of N trivial tasks; prints the
# seconds from `echo submit` to the return of `cat wait`.
array_run() {
	local r=$MNT/runs/$1 t0
	mkdir "$r"
	echo true > "$r/command"
	[[ -z ${3:-} ]] || echo "$3" > "$r/target"
	echo "array = 0-$(($2 - 1))" > "$r/resources"
	t0=$(now)
	echo submit > "$r/ctl"
	cat "$r/wait" >/dev/null
	echo "$(now) - $t0" | bc -l
}

array_section() {
	local n=${NARRAY:-1000} t1 t2 ta tr
	ta=$(array_run arr "$n")
	t1=$(now)
	make_runs sep "$n"
	wait_all_final sep "$n"
	t2=$(now)
	tr=$(echo "$t2 - $t1" | bc -l)
	row "array: $n trivial tasks, submit -> final (s)" \
		"$(printf %.2f "$ta")" "$(printf %.2f "$tr")" \
		"$(ratio "$ta" "$tr")x"
	row "  (baseline: $n separate runs, loop -> all final)" "" "" ""
	array_slurm
}

# The same on a Slurm target: one job array of NSLARRAY=100 trivial tasks
# through the tree vs. sbatch --array of the same until squeue is empty:
# what mlfs adds to Slurm's own pace.
array_slurm() {
	local n=${NSLARRAY:-100} t0 t1 tm tb
	slurm_up
	t0=$(now)
	sbatch -Q -J sba -o /dev/null --array="0-$((n - 1))" --wrap true
	while [[ -n $(squeue -h -o %i) ]]; do sleep 0.05; done
	t1=$(now)
	tm=$(array_run sarr "$n" sl)
	tb=$(echo "$t1 - $t0" | bc -l)
	row "array (slurm): $n tasks, submit -> final (s)" \
		"$(printf %.2f "$tm")" "$(printf %.2f "$tb")" \
		"$(ratio "$tm" "$tb")x"
	row "  (baseline: sbatch --array, until squeue is empty)" \
		"" "" ""
}

# ---- ssh-array ---------------------------------------------------------------

array_secs() {	# array_secs NAME TARGET N: an array of N `true`, its seconds
	local r=$MNT/runs/$1 t0
	mkdir "$r"
	echo true > "$r/command"
	echo "array = 0-$(($3 - 1))" > "$r/resources"
	echo "$2" > "$r/target"
	t0=$(now)
	echo submit > "$r/ctl"
	cat "$r/wait" >/dev/null
	echo "$(now) - $t0" | bc -l
}

ssh_array_section() {
	local n=${NARRAY:-1000} ts tl
	if ! ssh_box abox aremote; then
		row "ssh-array: no test sshd, skipped" "" "" ""
		return
	fi
	ts=$(array_secs sarr abox "$n")
	tl=$(array_secs larr local "$n")
	row "ssh-array: $n trivial tasks, submit -> final (s)" \
		"$(printf %.2f "$ts")" "$(printf %.2f "$tl")" \
		"$(ratio "$ts" "$tl")x"
	row "  (baseline: the same array on the local target)" "" "" ""
	"$ROOT/scripts/ssh-host.sh" stop "$W/sshd" >/dev/null 2>&1 || true
}

# ---- plots ------------------------------------------------------------------

# A summary (lib/plot.c plot_summary) in each run's folder of the state
# dir, as the worker leaves it: 3 metrics of 48 points.  Planted, so that
# 10,000 runs need not run first: the page reads nothing else of a run.
plant_summaries() {
	local d line
	line=$(seq 48 | awk '{ printf " %.4f", 1 / $1 }')
	for d in "$STATE"/objects/*/; do
		[[ -e $d/metrics.sum ]] && continue
		printf 'loss 0.02 48%s\nacc 0.9 48%s\nlr 0.001 48%s\n' \
			"$line" "$line" "$line" > "$d/metrics.sum"
	done
}

# Runs pl0 .. pl<N-1>, made by one process (a mkdir(1) each took ~0.1 s
# here: 15 min for 10,000), then ended Completed with a duration of their
# own, in the store while the daemon is stopped: the page then shows
# finished runs, as a sweep leaves them.
plant_runs() {
	python3 - "$MNT/runs" "$1" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    try:
        os.mkdir(f"{d}/pl{i}")
    except FileExistsError:
        pass
PY
	unmount_ws
	sqlite3 "$STATE/workspace.db" "UPDATE objects SET state = 'Completed',
		exit_code = 0, queued = created, started = created + 1,
		ended = created + 1 + id % 600
		WHERE kind = 2 AND name LIKE 'pl%' AND state = 'Draft'"
	mount_ws
}

plots_section() {
	local n pt lt
	for n in ${PLOT_RUNS:-1000 10000}; do
		plant_runs "$n"
		plant_summaries
		# rendered: a run made and removed first changes the page
		pt=$(median_time bash -c "mkdir $MNT/runs/plx; rmdir $MNT/runs/plx; cat $MNT/runs/index.html")
		lt=$(median_time bash -c "mkdir $MNT/runs/plx; rmdir $MNT/runs/plx")
		row "$n runs: mkdir+rmdir+cat index.html vs without cat (s)" \
			"$pt" "$lt" "$(ratio "$pt" "$lt")x"
		pt=$(median_time cat "$MNT/runs/index.html")
		lt=$(median_time ls -l "$MNT/runs")
		row "$n runs: cat index.html, unchanged vs ls -l (s)" "$pt" "$lt" \
			"$(ratio "$pt" "$lt")x"
	done
	pt=$("$ROOT/build/tests/test_plot" | sed -n 's/^# 100k points rendered in \(.*\) ms/\1/p')
	row "metrics.svg of 100,000 points: drawn (ms)" "$pt" "-" "-"
}

# ---- slurm ----------------------------------------------------------------

ms() { printf '%.1f' "$(echo "$1 * 1000" | bc -l)"; }
count_jobs() { scontrol -o show jobs 2>/dev/null | grep -c " JobName=$1" || true; }

# slurm_target [NAME]: a slurm target (default sl) on the private cluster,
# made once.
slurm_target() {
	local t=$MNT/targets/${1:-sl}
	[[ -d $t ]] && return 0
	mkdir "$t"
	echo slurm > "$t/type"
	printf 'url = %s\ntoken_file = %s\npartition = %s\n' "$SLURM_URL" \
		"$SLURM_TOKEN_FILE" "$SLURM_PARTITION" > "$t/config"
	echo provision > "$t/ctl"
	while [[ $(cat "$t/status") == Creating ]]; do sleep 0.05; done
	[[ $(cat "$t/status") == Succeeded ]] ||
		{ echo "bench: slurm target: $(cat "$t/error")" >&2; exit 1; }
}

# The private cluster (scripts/slurm-cluster.sh) in $W/slurm, started once,
# and the target sl on it.
slurm_cluster_up() {
	[[ -z $SLURM_D ]] || return 0
	chmod 755 "$W"
	SLURM_D=$W/slurm
	"$ROOT/scripts/slurm-cluster.sh" start "$SLURM_D" >/dev/null
	set -a
	source "$SLURM_D/cluster.env"
	set +a
}
slurm_up() {
	slurm_cluster_up
	slurm_target sl
}

# The targets' poll_seconds (their config sets none: the driver's default).
slurm_poll_s() {
	sed -n 's/^#define POLL_DEFAULT[[:space:]]*\([0-9.]*\).*/\1/p' \
		"$ROOT"/targets/slurm_*.c "$ROOT"/targets/slurm_*.h | head -1
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

# trivial_deployment DIR: a Draft deployment of a model answering {"y": 1}.
trivial_deployment() {
	mkdir -p "$MNT/models/trivial/1"
	# once: a version another section used may be frozen
	[[ -e $MNT/models/trivial/1/y.json ]] ||
		echo '{"y": 1}' > "$MNT/models/trivial/1/y.json"
	mkdir "$1"
	printf 'def init():\n    pass\ndef run(data):\n    return {"y": 1}\n' \
		> "$1/score.py"
	echo trivial:1 > "$1/model"
}

deploy_section() {
	local d=$MNT/deployments/bench t0 t1 times=()
	trivial_deployment "$d"
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

# as_wait DIR READY [SECONDS]: until `replicas` says READY ready and as
# many desired (60 s at most).
as_wait() {
	local want=$'ready '"$2"$'\ndesired '"$2"
	for _ in $(seq $((${3:-60} * 100))); do
		[[ $(cat "$1/replicas") == "$want" ]] && return 0
		sleep 0.01
	done
	echo "bench: $1 has $(tr '\n' ' ' < "$1/replicas")" >&2
	return 1
}

# as_hold DIR N GO: N requests on connections of their own, each held in
# run() (or waiting for it) until the file GO exists.
as_hold() {
	local u
	u=$(cat "$1/scoring_uri")
	u=${u#http://}
	u=${u%/score}
	python3 - "${u%:*}" "${u##*:}" "$(cat "$1/key")" "$3" "$2" <<'PY' &
import http.client, json, sys, threading
host, port, key, go, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
def one():
    c = http.client.HTTPConnection(host, port, timeout=120)
    c.request("POST", "/score", body=json.dumps({"wait": go}),
              headers={"Authorization": "Bearer " + key})
    c.getresponse().read()
th = [threading.Thread(target=one) for _ in range(n)]
for t in th: t.start()
for t in th: t.join()
PY
	AS_PID=$!
}

# autoscale: a step load of AS_LOAD=4 held requests on a deployment at 1
# replica, target_in_flight = 1, max_replicas = AS_LOAD: time from the
# load's start to the first added replica ready, and to all of them (goal
# <= 5 s locally); median of REPEAT.  Between rounds the load is released
# and it scales back in to 1 (scale_in_cooldown = 1).
autoscale_section() {
	local d=$MNT/deployments/asbench n=${AS_LOAD:-4} t0 t1 t2 one=() all=()
	trivial_deployment "$d"
	cat > "$d/score.py" <<'PY'
import json, os, time
def run(data):
    w = json.loads(data).get("wait")
    end = time.monotonic() + 60
    while w and not os.path.exists(w) and time.monotonic() < end:
        time.sleep(0.005)
    return {"y": 1}
PY
	printf 'max_replicas = %d\ntarget_in_flight = 1\nscale_out_cooldown = 0\nscale_in_cooldown = 1\n' \
		"$n" > "$d/config"
	echo deploy > "$d/ctl"
	deploy_wait "$d" Healthy
	for ((i = 0; i < REPEAT; i++)); do
		rm -f "$W/as-go"
		t0=$(now)
		as_hold "$d" "$n" "$W/as-go"
		until grep -q '^ready [2-9]' "$d/replicas"; do sleep 0.005; done
		t1=$(now)
		as_wait "$d" "$n"
		t2=$(now)
		one+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
		all+=("$(echo "($t2 - $t0) * 1000" | bc -l)")
		touch "$W/as-go"
		wait "$AS_PID"
		as_wait "$d" 1
	done
	row "autoscale: load -> a 2nd replica ready (ms)" \
		"$(printf '%s\n' "${one[@]}" | median)" "-" "-"
	row "autoscale: load -> 1 to $n replicas ready (ms)" \
		"$(printf '%s\n' "${all[@]}" | median)" "<= 5000" "-"
	touch "$W/as-go"
	echo delete > "$d/ctl"
	deploy_wait "$d" Draft
}

# score_load URL KEY [-H HEADER]: "requests/s p50 p99 errors" of one load.
score_load() {
	python3 "$ROOT/scripts/score-bench.py" "$@" -c "${CONNS:-4}" \
		-d "${LOAD_S:-5}"
}

# ep_pairs URI KEY EURI EKEY [HEADER]: EP_PAIRS (default 11) pairs of loads
# of EP_LOAD_S seconds each (default 1), A (URI) and B (EURI, with HEADER
# when given), back to back, the order swapped every pair (ABBA): on a
# shared machine the load drifts by the second, and only figures taken
# side by side compare.  One line a pair: a_rps b_rps a_p99 b_p99 a_errors
# b_errors.
ep_pairs() {
	local i a b h=()
	[[ -n ${5:-} ]] && h=(-H "$5")
	for ((i = 0; i < ${EP_PAIRS:-11}; i++)); do
		if ((i % 2)); then
			b=$(LOAD_S=${EP_LOAD_S:-1} score_load "$3" "$4" "${h[@]}")
			a=$(LOAD_S=${EP_LOAD_S:-1} score_load "$1" "$2")
		else
			a=$(LOAD_S=${EP_LOAD_S:-1} score_load "$1" "$2")
			b=$(LOAD_S=${EP_LOAD_S:-1} score_load "$3" "$4" "${h[@]}")
		fi
		read -r ar _ ap ae <<< "$a"
		read -r br _ bp be <<< "$b"
		echo "$ar $br $ap $bp $ae $be"
	done
}

# ep_rows FILE WHAT: the rows of ep_pairs' lines in FILE: B's requests/s
# against A's (the ratio the median of each pair's own ratio: a load that
# drifts between pairs cancels out), B's p99 against A's, failures.
ep_rows() {
	local rps0 rps1 ratio err0 err1
	rps0=$(awk '{print $1}' "$1" | median1)
	rps1=$(awk '{print $2}' "$1" | median1)
	ratio=$(awk '$1 > 0 {print $2 / $1}' "$1" | sort -n |
		awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}')
	row "$2: requests/s" "$rps1" "$rps0" "${ratio}x"
	row "$2: p99 (ms)" "$(awk '{print $4}' "$1" | median)" \
		"$(awk '{print $3}' "$1" | median)" \
		"$(awk '{print $4 - $3}' "$1" | median | xargs printf %+.2f)"
	err0=$(awk '{n += $5} END {print n + 0}' "$1")
	err1=$(awk '{n += $6} END {print n + 0}' "$1")
	((err0 + err1 == 0)) || row "$2: failed requests" "$err1" "$err0" "-"
}

# bare_proxy PORT BACKEND_PORT: HAProxy with nothing but a frontend and
# one server (no key, no map, no log): the cost of the hop itself, which
# any proxy in front of the replicas pays.  Its pid in BARE_PID.
bare_proxy() {
	printf '%s\n' global 'nbthread 2' defaults 'mode http' \
		'timeout connect 5s' 'timeout client 30s' 'timeout server 30s' \
		'frontend bare' "bind 127.0.0.1:$1" 'default_backend replicas' \
		'backend replicas' "server d 127.0.0.1:$2" > "$W/bare.cfg"
	/usr/sbin/haproxy -db -f "$W/bare.cfg" 2>>"$W/bare.err" &
	BARE_PID=$!
	until curl -s -m 5 -o /dev/null "http://127.0.0.1:$1/"; do
		kill -0 "$BARE_PID" || { cat "$W/bare.err" >&2; return 1; }
		sleep 0.05
	done
}

endpoint_section() {
	local d=$MNT/deployments/ebench e=$MNT/endpoints/ebench
	local w=$MNT/deployments/ebwork uri euri ekey port i t0 t1 times=()
	trivial_deployment "$d"
	echo "replicas = 2" > "$d/config"
	echo deploy > "$d/ctl"
	# the same 2 replicas with a run() of about 1 ms of CPU here
	# (EP_WORK_N): a small model's prediction, not an empty one
	trivial_deployment "$w"
	printf 'def init():\n    pass\ndef run(data):\n    return {"y": sum(i * i for i in range(%d))}\n' \
		"${EP_WORK_N:-25000}" > "$w/score.py"
	echo "replicas = 2" > "$w/config"
	echo deploy > "$w/ctl"
	deploy_wait "$d" Healthy
	deploy_wait "$w" Healthy
	uri=$(cat "$d/scoring_uri")
	mkdir "$e"
	echo ebench > "$d/endpoint"
	echo ebench > "$w/endpoint"
	echo 'ebench 100' > "$e/traffic"
	echo start > "$e/ctl"
	deploy_wait "$e" Healthy
	euri=$(cat "$e/scoring_uri")
	ekey=$(cat "$e/keys/primary")
	# the worker reloads the proxy once the deployments joined
	for i in ebench ebwork; do
		until curl -sf -m 5 -H "Authorization: Bearer $ekey" \
			-H "azureml-model-deployment: $i" -d '{}' "$euri" \
			>/dev/null; do sleep 0.05; done
	done
	ep_pairs "$uri" "$(cat "$d/key")" "$euri" "$ekey" > "$W/ep-pairs"
	ep_rows "$W/ep-pairs" "endpoint vs deployment, 2 replicas, trivial run()"
	# the floor: the same load through a bare HAProxy hop
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	bare_proxy "$port" "$(sed 's|.*:\([0-9]*\)/.*|\1|' <<< "$uri")"
	ep_pairs "http://127.0.0.1:$port/score" "$(cat "$d/key")" "$euri" "$ekey" \
		> "$W/ep-bare"
	kill "$BARE_PID"
	wait "$BARE_PID" 2>/dev/null || true
	BARE_PID=
	ep_rows "$W/ep-bare" "endpoint vs bare HAProxy hop, trivial run()"
	ep_pairs "$(cat "$w/scoring_uri")" "$(cat "$w/key")" "$euri" "$ekey" \
		"azureml-model-deployment: ebwork" > "$W/ep-work"
	ep_rows "$W/ep-work" "endpoint vs deployment, 2 replicas, 1 ms run()"
	# the write returns once the proxy applied it (runtime API inside it);
	# the same write to a Draft endpoint (no proxy) is the write path's
	# own share (FUSE, the check, the store's commit).  Timed by bash's
	# clock, not by $(now): the fork and exec of date(1) took ~115 ms of
	# each figure on a loaded machine, the write itself well under 1 ms.
	mkdir "$e-draft"
	for f in "$e" "$e-draft"; do
		times=()
		for i in $(seq 20); do
			t0=${EPOCHREALTIME/./}
			echo 'ebench 100' > "$f/traffic"
			t1=${EPOCHREALTIME/./}
			times+=("$((t1 - t0))")
		done
		printf '%s\n' "${times[@]}" | awk '{print $1 / 1000}' |
			median > "$W/ep-write.$(basename "$f")"
	done
	row "traffic change -> applied, median (ms)" "$(cat "$W/ep-write.ebench")" \
		"<= 100" "-"
	row "traffic write, Draft endpoint (no proxy), median (ms)" \
		"$(cat "$W/ep-write.ebench-draft")" "-" "-"
	rmdir "$e" "$e-draft"
	echo delete > "$d/ctl"
	echo delete > "$w/ctl"
	deploy_wait "$d" Draft
	deploy_wait "$w" Draft
}

slurm_section() {
	local n=${NSLURM:-200} i t0 t1 t2 t3 t4 t5 t6 m b
	slurm_cluster_up
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

# ---- cluster (managed) ------------------------------------------------------

# The managed target is targets/mc, its runs runs/c*; the attached test
# cluster of the throughput comparison is the slurm section's targets/sl.
CL_IDLE=10

# median of the numbers on stdin, printed with 1 decimal
median1() { sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}'; }

# cl_wait STATE SECONDS: the managed target's status reaches STATE.
cl_wait() {
	local end=$((SECONDS + $2)) s
	while s=$(cat "$MNT/targets/mc/status"); [[ $s != "$1" ]]; do
		if [[ $s == Failed ]] || ((SECONDS > end)); then
			echo "bench: cluster target is $s, not $1:" \
				"$(cat "$MNT/targets/mc/error")" >&2
			return 1
		fi
		sleep 0.05
	done
}

# cl_nodes WORD...: how many lines of `nodes` have one of these states
cl_nodes() {
	awk -v w=" $* " 'index(w, " " $2 " ") { n++ } END { print n + 0 }' \
		"$MNT/targets/mc/nodes"
}

# cl_until SECONDS WHAT COND...: poll until COND holds, at most SECONDS
cl_until() {
	local end=$((SECONDS + $1)) what=$2
	shift 2
	until "$@"; do
		if ((SECONDS > end)); then
			echo "bench: cluster: no $what after $1 s; nodes:" >&2
			cat "$MNT/targets/mc/nodes" >&2
			return 1
		fi
		sleep 0.1
	done
}
all_off() { (($(cl_nodes powered_down) == 3)); }
none_up() { (($(cl_nodes idle mixed allocated powering_up) == 0)); }
all_idle() { (($(cl_nodes idle) == 3)); }

# run_until NAME STATE SECONDS: runs/NAME reaches STATE (or fails the bench)
run_until() {
	local end=$((SECONDS + $3)) s
	while s=$(cat "$MNT/runs/$1/status"); [[ $s != "$2" ]]; do
		case $s in Completed | Failed | Canceled)
			echo "bench: run $1 is $s, not $2:" \
				"$(cat "$MNT/runs/$1/error")" >&2
			return 1 ;;
		esac
		((SECONDS > end)) && { echo "bench: run $1 still $s" >&2; return 1; }
		sleep 0.05
	done
}

# Provision REPEAT times (deprovision between): Creating -> Succeeded.
cluster_provisions() {
	local d=$MNT/targets/mc i t0 t1 t2 up=() down=()
	for ((i = 0; i < REPEAT; i++)); do
		if ((i)); then
			t1=$(now)
			echo deprovision > "$d/ctl"
			cl_wait Draft 180
			t2=$(now)
			down+=("$(echo "$t2 - $t1" | bc -l)")
		fi
		t0=$(now)
		echo provision > "$d/ctl"
		cl_wait Succeeded 180
		t1=$(now)
		up+=("$(echo "$t1 - $t0" | bc -l)")
	done
	row "cluster: provision 3 hosts, median (s)" \
		"$(printf '%s\n' "${up[@]}" | median1)" "<= 20" "-"
	((${#down[@]})) && row "cluster: deprovision 3 hosts, median (s)" \
		"$(printf '%s\n' "${down[@]}" | median1)" "-" "-"
	return 0
}

# CREPEAT cycles from 0 nodes: a 1-node run's submit -> Running (its
# nodes powered up by Slurm), then from its end (as mlfs sees Completed,
# up to poll_seconds = 1 after Slurm) until no node is up and until all
# are powered_down again.
cluster_scale() {
	local i r t0 t1 t2 t3 t4 up=() stop=() off=()
	for ((i = 0; i < ${CREPEAT:-3}; i++)); do
		cl_until 300 "3 nodes powered_down" all_off
		r=cu$i
		mkdir "$MNT/runs/$r"
		echo 'sleep 2' > "$MNT/runs/$r/command"
		echo mc > "$MNT/runs/$r/target"
		t0=$(now)
		echo submit > "$MNT/runs/$r/ctl"
		run_until "$r" Running 120
		t1=$(now)
		run_until "$r" Completed 120
		t2=$(now)
		cl_until 300 "node left up" none_up
		t3=$(now)
		cl_until 300 "3 nodes powered_down" all_off
		t4=$(now)
		up+=("$(echo "$t1 - $t0" | bc -l)")
		stop+=("$(echo "$t3 - $t2" | bc -l)")
		off+=("$(echo "$t4 - $t2" | bc -l)")
	done
	row "cluster: submit -> Running at 0 nodes, med (s)" \
		"$(printf '%s\n' "${up[@]}" | median1)" "<= 15" "-"
	row "cluster: run end -> no node up, med (s)" \
		"$(printf '%s\n' "${stop[@]}" | median1)" "-" "-"
	row "cluster: run end -> all powered_down, med (s)" \
		"$(printf '%s\n' "${off[@]}" | median1)" "<= $((CL_IDLE + 15))" "-"
}

# runs/s of N trivial runs to target $2 (names $1N), made by a shell loop,
# until all are final.
cluster_tp() {
	local p=$1 t=$2 n=$3 i t0 t1
	t0=$(now)
	for ((i = 0; i < n; i++)); do
		mkdir "$MNT/runs/$p$i"
		echo true > "$MNT/runs/$p$i/command"
		echo "$t" > "$MNT/runs/$p$i/target"
		echo submit > "$MNT/runs/$p$i/ctl"
	done
	wait_all_final "$p" "$n"
	t1=$(now)
	echo "$n / ($t1 - $t0)" | bc -l
}

cluster_throughput() {
	local n=${NCLUSTER:-200} m b bm ba
	echo 'resize 3 3' > "$MNT/targets/mc/ctl"
	cl_wait Succeeded 120
	cl_until 300 "3 nodes idle" all_idle
	if [[ -z $SLURM_D ]]; then
		SLURM_D=$W/slurm
		"$ROOT/scripts/slurm-cluster.sh" start "$SLURM_D" >/dev/null
	fi
	set -a
	source "$SLURM_D/cluster.env"
	set +a
	[[ -d $MNT/targets/sl ]] || slurm_target
	m=$(cluster_tp cm mc "$n")
	b=$(cluster_tp ca sl "$n")
	bm=$(cat "$MNT"/runs/cm*/status | grep -vc '^Completed$' || true)
	ba=$(cat "$MNT"/runs/ca*/status | grep -vc '^Completed$' || true)
	row "cluster: $n runs/s vs slurm target (>= 0.9x)" \
		"$(printf %.1f "$m")" "$(printf %.1f "$b")" "$(ratio "$m" "$b")x"
	((bm + ba == 0)) ||
		row "cluster: runs not Completed (managed, slurm)" "$bm" "$ba" "-"
}

# utime + stime (+ of waited-for children) of the pids given, in ticks
ticks() {
	local p s=0
	for p in "$@"; do
		[[ -r /proc/$p/stat ]] || continue
		s=$((s + $(sed 's/.*) //' "/proc/$p/stat" |
			awk '{ print $12 + $13 + $14 + $15 }')))
	done
	echo "$s"
}

# cpu_pct TICKS0 TICKS1 HZ T0 T1: percent of one core
cpu_pct() {
	printf %.2f "$(echo "($2 - $1) / $3 / ($5 - $4) * 100" | bc -l)"
}

# The daemon's, the controller's (munged, slurmctld, slurmrestd) and the
# hosts' (slurmd, munged) CPU over IDLE_S seconds, nodes up and no run.
cluster_idle() {
	local s=${IDLE_S:-30} cdir ctl=() hosts=() i p a0 b0 c0 a1 b1 c1 t0 t1 hz
	hz=$(getconf CLK_TCK)
	cdir=$(echo "$STATE"/objects/*/cluster)
	for p in munged slurmctld slurmrestd; do
		ctl+=("$(cat "$cdir/$p.pid")")
	done
	for i in 1 2 3; do
		for p in $("$ROOT/scripts/cluster-hosts.sh" procs "$CLHOSTS_D" "$i"); do
			hosts+=("$p")
		done
	done
	sleep 2
	t0=$(now)
	a0=$(ticks "$DPID") b0=$(ticks "${ctl[@]}") c0=$(ticks "${hosts[@]}")
	sleep "$s"
	a1=$(ticks "$DPID") b1=$(ticks "${ctl[@]}") c1=$(ticks "${hosts[@]}")
	t1=$(now)
	row "cluster idle ${s} s: daemon CPU (% of a core)" \
		"$(cpu_pct "$a0" "$a1" "$hz" "$t0" "$t1")" "< 1" "-"
	row "cluster idle: daemon RSS (MiB)" \
		"$(($(awk '/VmRSS/ {print $2}' "/proc/$DPID/status") / 1024))" "-" "-"
	row "cluster idle: controller CPU (% of a core)" \
		"$(cpu_pct "$b0" "$b1" "$hz" "$t0" "$t1")" "< 1" "-"
	row "cluster idle: hosts' slurmd+munged CPU (%)" \
		"$(cpu_pct "$c0" "$c1" "$hz" "$t0" "$t1")" "-" "-"
}

# Runs cancelled, the cluster deprovisioned (best effort, also on an
# error half way): no controller or slurmd of ours is left running.
cluster_teardown() {
	local d=$MNT/targets/mc r s end=$((SECONDS + 120)) cdir p n
	[[ -d $d ]] || return 0
	for r in "$MNT"/runs/c*/; do
		case $(cat "$r/status" 2>/dev/null) in
		Queued | Starting | Running) echo cancel > "$r/ctl" 2>/dev/null || true ;;
		esac
	done
	while s=$(cat "$d/status") && ((SECONDS < end)); do
		case $s in
		Draft) break ;;
		Succeeded | Failed)
			echo deprovision > "$d/ctl" 2>/dev/null || true ;;
		esac
		sleep 0.5
	done
	# mlfs-cluster-power never exits when slurmctld ran it (its `wait`
	# hangs: SIGCHLD, and TERM, are blocked in the mask slurmctld gives
	# it): KILL those of our state dir, by pid
	for p in /proc/[0-9]*; do
		tr '\0' ' ' 2>/dev/null < "$p/cmdline" |
			grep -qF "/mlfs-cluster-power $STATE/objects/" &&
			{ kill -KILL "${p#/proc/}" 2>/dev/null || true; }
	done
	# a controller left by a failed deprovision: our daemon started it
	for cdir in "$STATE"/objects/*/cluster; do
		for n in munged slurmctld slurmrestd; do
			p=$(cat "$cdir/$n.pid" 2>/dev/null) || continue
			[[ $(readlink "/proc/$p/exe" 2>/dev/null) == */$n ]] &&
				kill "$p" 2>/dev/null || true
		done
	done
	return 0
}

# The hosts' mount namespaces are private copies made at their start:
# they hold every FUSE mount of this machine of that moment, whose daemons
# would then outlive their unmount until the hosts stop.  Detach those
# copies there (the hosts need the state dir, not a mount).
cluster_detach_fuse() {
	local i m
	for i in 1 2 3; do
		for m in $("$ROOT/scripts/cluster-hosts.sh" exec "$CLHOSTS_D" "$i" \
			awk '$3 ~ /^fuse\./ { print $2 }' /proc/self/mounts); do
			"$ROOT/scripts/cluster-hosts.sh" exec "$CLHOSTS_D" "$i" \
				umount -l "$m" 2>/dev/null || true
		done
	done
}

cluster_section() {
	local d=$MNT/targets/mc
	chmod 755 "$W"
	CLHOSTS_D=$W/hosts
	"$ROOT/scripts/cluster-hosts.sh" start "$CLHOSTS_D" 3 >/dev/null 2>&1
	source "$CLHOSTS_D/hosts.env"
	cluster_detach_fuse
	mkdir "$d"
	echo cluster > "$d/type"
	printf '%s\n' "hosts = $CLUSTER_HOSTS" "user = root" \
		"identity_file = $CLUSTER_IDENTITY" "min_nodes = 0" \
		"idle_seconds = $CL_IDLE" > "$d/config"
	cluster_provisions
	cluster_scale
	cluster_throughput
	cluster_idle
	cluster_teardown
	[[ $(cat "$d/status") == Draft ]] ||
		echo "bench: cluster target left $(cat "$d/status")" >&2
	"$ROOT/scripts/cluster-hosts.sh" stop "$CLHOSTS_D" >/dev/null 2>&1
	CLHOSTS_D=
}

# ---- env --------------------------------------------------------------------

# env_build NAME: echo build > ctl -> settled (s); its status in $W/NAME.st
env_build() {
	local e=$MNT/environments/$1 t0 t1 st
	t0=$(now)
	echo "${2:-build}" > "$e/ctl"
	while st=$(cat "$e/status"); [[ $st == Building ]]; do sleep 0.01; done
	t1=$(now)
	echo "$st" > "$W/$1.st"
	echo "$t1 - $t0" | bc -l
}

# A busybox rootfs imported, a Containerfile built FROM it; then the
# second build of the unchanged folder (mlfs's own key: no podman build)
# vs. podman build of the same folder with its layer cache; and podman
# run --rm IMAGE true vs. sh -c true (what a run in an environment adds).
env_section() {
	local r=$W/envroot b=$MNT/environments/ebase e=$MNT/environments/ebench
	local base first again pb pr sh ul ctx
	command -v podman >/dev/null || { echo "bench: env: no podman" >&2; return; }
	mkdir -p "$r"/{bin,tmp,etc,proc,sys,dev,run,root,var/tmp}
	cp /bin/busybox "$r/bin/" && ln -s busybox "$r/bin/sh" &&
		ln -s busybox "$r/bin/true"
	tar -C "$r" --numeric-owner --owner=0 --group=0 -cf "$W/envroot.tar" .
	mkdir "$b" "$e"
	echo "rootfs = $W/envroot.tar" > "$b/config"
	env_build ebase >/dev/null
	base=$(cat "$b/image")
	printf 'FROM %s\nRUN echo built > /tmp/built\n' "$base" > "$e/Containerfile"
	first=$(env_build ebench)
	again=$(for ((i = 0; i < REPEAT; i++)); do env_build ebench; done |
		median)
	# the copy the daemon built from (objects/ID/build/ctx)
	ctx=$(dirname "$(ls "$STATE"/objects/*/build/ctx/Containerfile |
		tail -1)")
	pb=$(median_time podman build --runtime runc -q \
		--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$ctx")
	row "env: first build of a Containerfile (s)" "$(printf %.3f "$first")" \
		"-" "-"
	row "env: second build, unchanged folder (s)" "$again" "$pb" \
		"$(ratio "$again" "$pb")x"
	row "  (baseline: podman build, its layer cache)" "" "" ""
	ul="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
	# shellcheck disable=SC2086
	# the options a run gets, but the user and its files (container.c)
	ct="--runtime runc --init --cap-drop=all --network=host"
	ct="$ct --security-opt=no-new-privileges"
	pr=$(median_time podman run --rm $ct $ul "$base" true)
	pp=$(median_time podman run --rm --runtime runc $ul "$base" true)
	sh=$(median_time sh -c true)
	row "env: podman run --rm IMAGE true, a run's options (s)" "$pr" "$sh" \
		"$(ratio "$pr" "$sh")x"
	row "  (podman's own network, as before: $pp s)" "" "" ""
	row "  (baseline: sh -c true; a run's floor in a container)" "" "" ""
	env_runs_rows
}

# Runs through runs/, as a user (a run of root never runs in an
# environment): one trivial run at a time, submit -> Completed, in the
# environment vs. the same run without one (median of REPEAT: what a
# container adds to a run's start-up); then 100 trivial runs submitted at
# once, all Completed, with vs. without (the ratio).
BU=
as_bu() { setpriv --reuid="$BU" --regid="$BU" --clear-groups -- "$@"; }
env_one_run() {	# env_one_run NAME ENV: mkdir, submit, wait: its seconds
	local r=$MNT/runs/$1 t0 t1 st
	as_bu mkdir "$r" || return 1
	as_bu sh -c "echo true > '$r/command'${2:+; echo $2 > '$r/environment'}"
	t0=$(now)
	as_bu sh -c "echo submit > '$r/ctl'" || return 1
	while st=$(cat "$r/status"); [[ $st != Completed && $st != Failed ]]; do
		sleep 0.005
	done
	t1=$(now)
	[[ $st == Completed ]] || { echo "bench: env: $1 $st: $(cat "$r/error")" >&2; return 1; }
	echo "$t1 - $t0" | bc -l
}
env_many() {	# env_many PREFIX N ENV: N runs submitted, all final: seconds
	local i t0 t1
	for ((i = 0; i < $2; i++)); do
		as_bu mkdir "$MNT/runs/$1$i"
		as_bu sh -c "echo true > '$MNT/runs/$1$i/command'${3:+; echo $3 > '$MNT/runs/$1$i/environment'}"
	done
	t0=$(now)
	for ((i = 0; i < $2; i++)); do
		as_bu sh -c "echo submit > '$MNT/runs/$1$i/ctl'"
	done
	wait_all_final "$1" "$2"
	t1=$(now)
	echo "$t1 - $t0" | bc -l
}
env_runs_rows() {
	local i one plain many many0 nf
	id mlfs_bench >/dev/null 2>&1 ||
		useradd -M -s /usr/sbin/nologin mlfs_bench 2>/dev/null
	BU=$(id -u mlfs_bench 2>/dev/null) || { echo "bench: env: no user" >&2; return; }
	[[ $(id -g mlfs_bench) == "$BU" ]] || { echo "bench: env: mlfs_bench's gid differs" >&2; return; }
	chmod 755 "$W"
	env_one_run ewarm ebench >/dev/null && env_one_run pwarm >/dev/null ||
		return
	one=$(for ((i = 0; i < REPEAT; i++)); do env_one_run "eone$i" ebench; done | median)
	plain=$(for ((i = 0; i < REPEAT; i++)); do env_one_run "pone$i"; done | median)
	row "env: a trivial run, submit -> Completed (s)" "$one" "$plain" \
		"$(ratio "$one" "$plain")x"
	row "  (added by the container: $(printf %.0f "$(echo "($one - $plain) * 1000" | bc -l)") ms; baseline: the same run without)" "" "" ""
	many=$(env_many emany 100 ebench)
	many0=$(env_many pmany 100)
	nf=$(grep -lv Completed "$MNT"/runs/emany*/status "$MNT"/runs/pmany*/status 2>/dev/null | wc -l || true)
	row "env: 100 trivial runs, all final (s)" "$(printf %.2f "$many")" \
		"$(printf %.2f "$many0")" "$(ratio "$many" "$many0")x"
	row "  (baseline: the same 100 without; $nf not Completed)" "" "" ""
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
	endpoint)
		endpoint_section
		;;
	cluster)
		cluster_section
		;;
	workcopy)
		workcopy_section
		;;
	after)
		after_section
		;;
	inputs)
		inputs_section
		;;
	dist)
		dist_section
		;;
	plots)
		plots_section
		;;
	autoscale)
		autoscale_section
		;;
	clone)
		clone_section
		;;
	env)
		env_section
		;;
	array)
		array_section
		;;
	ssh-array)
		ssh_array_section
		;;
	esac
done
