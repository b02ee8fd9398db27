#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and run the whole test suite: unit tests,
# mounted integration tests (Slurm and SSH included), and the same suite
# once more built with AddressSanitizer + UBSan, side by side in lanes
# (MLFS_LANES, default 3; MLFS_SERIAL=1: one).  Ends with one line:
#   N passed, M failed
#
#   scripts/test.sh [--no-asan] [--asan-only] [--fuzz SECONDS] [--retry]
#                   [PATTERN...]
#
# PATTERN limits the integration tests to files whose name contains it.
# --retry (local use only, never in CI) runs a failing integration file once
# more and counts the second attempt: CI is green only when the tests are.
# A test killed by its timeout is reaped (tests/reap.sh): its mounts, its
# daemon (stacks dumped into its log first) and its runs are stopped.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# The system's tools, not a login's shims: pyenv's python3 took 0.4 s a
# call here against 0.03 s for Debian's, which alone sees the python3-*
# packages scripts/deps.sh installs; the tests call python3 thousands of
# times.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

asan=1 plain=1 fuzz=0 retry=0 patterns=()
while (($#)); do
	case $1 in
	--no-asan) asan=0 ;;
	--asan-only) plain=0 ;;
	--fuzz) fuzz=$2; shift ;;
	--retry) retry=1 ;;
	-h | --help) sed -n '2,15p' "$0"; exit 0 ;;
	*) patterns+=("$1") ;;
	esac
	shift
done

scripts/deps.sh test || exit 1
((fuzz > 0)) && { scripts/deps.sh fuzz || exit 1; }

PASS=0 FAIL=0
# An integration file's time limit: 30 min, or MLFS_FILE_TIMEOUT seconds
# (scripts/test-slow.sh gives 45 min).  It only catches a hang: the
# longest file takes ~4 min under ASan on CI, and took over 15 on one
# core shared with other work (44-deploy-ssh, killed at the old bound
# with every check passed).
FILE_TIMEOUT=${MLFS_FILE_TIMEOUT:-1800}
LOGDIR=$(mktemp -d /tmp/mlfs-testlogs.XXXXXX)

count() {	# count FILE: "PASSED FAILED" of its ok / not ok lines
	echo "$(grep -c '^ok ' "$1") $(grep -c '^not ok ' "$1")"
}

build() {	# build DIR [meson options...]
	local dir=$1
	shift
	if [[ ! -f $dir/build.ninja ]]; then
		meson setup "$dir" "$@" >"$LOGDIR/setup-$(basename "$dir").log" 2>&1 || {
			cat "$LOGDIR/setup-$(basename "$dir").log"
			return 1
		}
	fi
	ninja -C "$dir" >"$LOGDIR/build-$(basename "$dir").log" 2>&1 || {
		tail -40 "$LOGDIR/build-$(basename "$dir").log"
		return 1
	}
}

selected() {
	local f=$1 p
	((${#patterns[@]})) || return 0
	for p in "${patterns[@]}"; do [[ $f == *"$p"* ]] && return 0; done
	return 1
}

run_one() {	# run_one LABEL TIMEOUT COMMAND...
	local label=$1 to=$2 out rc res
	shift 2
	out=$LOGDIR/$(echo "$label" | tr '/ ' '__').log
	local t0=$SECONDS
	export MLFS_TEST_DIRS=$out.dirs
	: >"$MLFS_TEST_DIRS"
	timeout -k 10 "$to" "$@" >"$out" 2>&1
	rc=$?
	# a test killed by its timeout never ran its cleanup
	((rc == 124 || rc == 137)) && echo "# timed out after ${to}s" >>"$out"
	[[ -n ${KEEP:-} ]] || bash tests/reap.sh $(cat "$MLFS_TEST_DIRS") >>"$out" 2>&1
	res=$(count "$out")
	if ((rc != 0)) && [[ ${res#* } == 0 ]]; then
		echo "not ok - $label exited $rc without a failed check" >>"$out"
		res="${res% *} 1"
	fi
	PASS=$((PASS + ${res% *}))
	FAIL=$((FAIL + ${res#* }))
	# lanes share stdout: one report, written whole
	{
		flock 5
		printf '%-44s %4s passed %3s failed  %3ds\n' "$label" "${res% *}" \
			"${res#* }" $((SECONDS - t0))
		if ((rc != 0)) || [[ ${res#* } != 0 ]]; then
			grep -E '^(not ok|#)' "$out" | grep -v '^# +[0-9.]* s$' |
				head -30 | sed 's/^/    /'
		fi
	} 5>>"$LOGDIR/out.lock"
}

# it_file LABEL COMMAND...: one integration test file, with a timeout far
# above what it needs; with --retry, a file that fails runs once more and
# only the second attempt counts -- loudly.
it_file() {
	local label=$1 p0=$PASS f0=$FAIL
	shift
	run_one "$label" "$FILE_TIMEOUT" "$@"
	if ((retry && FAIL > f0)); then
		echo "    ^ failed: running $label once more (--retry)"
		PASS=$p0 FAIL=$f0
		run_one "$label (second attempt)" "$FILE_TIMEOUT" "$@"
	fi
}

# fuzz.sh prints a line per target; make them countable checks
fuzz_checks() {
	scripts/fuzz.sh "$1" 2>&1 | awk '
		/executions in/ { print "ok - fuzz " $0; next }
		/CRASH|REGRESSION/ { print "not ok - fuzz " $0; next }
		{ print "# " $0 }'
	return "${PIPESTATUS[0]}"
}
export -f fuzz_checks

# ---- lanes -----------------------------------------------------------------
# Every piece of work (a unit test binary, an integration file of the plain
# or the ASan build, the fuzzing) is one line of a queue; MLFS_LANES lanes
# (default 3; MLFS_SERIAL=1 means 1) take the next line in turn, so the
# suite takes about the total over the lanes, not the total.  Most files
# wait on timers (ssh connects, Slurm's power saving, replicas starting) far
# more than they compute.  Each file brings its own mount, daemon, ports,
# hosts and users (tests/lib.sh); the one rule is that a file never runs
# beside itself (its plain and ASan runs share user names and scratch
# names).  The longest files are queued first.
LONG="70-cluster 44-deploy-ssh 20-ssh 48-endpoint-ssh 23-distributed
	18-code-dir 28-ssh-arrays 29-ssh-env 31-slurm-env 69-cluster-hosts
	26-ssh-inputs
	50-crash-load 27-environments 32-env-more 15-workcopy 46-autoscale
	53-hostile 63-serve-register 25-arrays 49-deploy-env 55-deploy-ssh-env
	65-mu-races 62-cgroups 60-mu-fs 52-stress"
# The long files that bring their own sshd, hosts or Slurm cluster are the
# heaviest beside others (key exchanges, many daemons): two at most at once.
# The shorter ones with an sshd (26, 28, 29) are not counted: they would
# wait behind the long ones for nothing.
HEAVY="70-cluster 44-deploy-ssh 20-ssh 69-cluster-hosts 48-endpoint-ssh"
LANES=${MLFS_LANES:-3}
[[ -n ${MLFS_SERIAL:-} ]] && LANES=1
QUEUE=$LOGDIR/queue RUNNING=$LOGDIR/running

builds=()
((plain)) && builds+=(plain)
((asan)) && builds+=(asan)
dir_of() { [[ $1 == plain ]] && echo build || echo build-asan; }

enqueue_it() {	# enqueue_it FILE: its line for each build
	local b
	for b in "${builds[@]}"; do echo "$b it $1"; done >>"$QUEUE"
}

make_queue() {
	local n t b
	: >"$QUEUE"
	: >"$RUNNING"
	for n in $LONG; do
		t=tests/it/$n.sh
		[[ -f $t ]] && selected "$t" && enqueue_it "$t"
	done
	((fuzz > 0)) && echo "fuzz fuzz $fuzz" >>"$QUEUE"
	for b in "${builds[@]}"; do
		[[ $b == plain ]] && echo "plain layers layers" >>"$QUEUE"
		# the names from the first build: the ASan one may still build
		for t in "$(dir_of "${builds[0]}")"/tests/test_*; do
			[[ -x $t && ! -d $t ]] &&
				echo "$b unit $(dir_of "$b")/tests/${t##*/}"
		done >>"$QUEUE"
	done
	for t in tests/it/*.sh; do
		selected "$t" || continue
		[[ " $(echo $LONG) " == *" $(basename "$t" .sh) "* ]] && continue
		enqueue_it "$t"
	done
}

heavy() { [[ " $(echo $HEAVY) " == *" $(basename "$1" .sh) "* ]]; }
heavy_running() {
	local f n=0
	while read -r f; do heavy "$f" && n=$((n + 1)); done <"$RUNNING"
	echo "$n"
}

# take: print the next line whose file is not running now and move it to
# the running list; fails when the queue is empty.
take() {
	local line f busy
	while :; do
		exec 6>>"$LOGDIR/queue.lock"
		flock 6
		[[ -s $QUEUE ]] || { exec 6>&-; return 1; }
		busy=1
		while read -r line; do
			f=${line##* }
			# the ASan build goes on beside the first lines
			if [[ $line == asan\ * && ! -e $LOGDIR/asan.built ]]; then
				[[ -e $LOGDIR/asan.failed ]] || continue
				grep -vxF "$line" "$QUEUE" >"$QUEUE.new"
				mv "$QUEUE.new" "$QUEUE"
				continue
			fi
			grep -qxF "$f" "$RUNNING" && continue
			heavy "$f" && (($(heavy_running) >= 2)) && continue
			echo "$f" >>"$RUNNING"
			grep -vxF "$line" "$QUEUE" >"$QUEUE.new"
			mv "$QUEUE.new" "$QUEUE"
			busy=0
			break
		done <"$QUEUE"
		exec 6>&-
		((busy)) || { echo "$line"; return 0; }
		sleep 1
	done
}

finish() {	# finish FILE: it no longer runs
	(
		flock 6
		grep -vxF "$1" "$RUNNING" >"$RUNNING.new"
		mv "$RUNNING.new" "$RUNNING"
	) 6>>"$LOGDIR/queue.lock"
}

work() {	# work BUILD KIND FILE: one line of the queue
	local b=$1 kind=$2 f=$3 dir
	dir=$(dir_of "$b")
	case $kind in
	unit) run_one "$b unit/$(basename "$f")" 600 "$f" ;;
	it) it_file "$b $(basename "$f" .sh)" env BUILD="$ROOT/$dir" bash "$f" ;;
	# it computes all the time: below the files that wait on timers
	fuzz) run_one "fuzz" 3600 nice -n 10 bash -c 'fuzz_checks "$0"' "$f" ;;
	layers) run_one "plain layers" 120 bash -c \
		'bash tests/test_layers.sh && if out=$(scripts/check-layers.sh 2>&1)
		then echo "ok - no layering error"; else echo "$out" | sed "s/^/# /"
		echo "not ok - scripts/check-layers.sh"; fi' ;;
	esac
}

lane() {	# lane N: take lines until none is left; counts in lane-N.counts
	local line
	PASS=0 FAIL=0
	while line=$(take); do
		# shellcheck disable=SC2086
		work $line
		finish "${line##* }"
	done
	echo "$PASS $FAIL" >"$LOGDIR/lane-$1.counts"
}

build_asan() {
	if build build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug; then
		touch "$LOGDIR/asan.built"
	else
		touch "$LOGDIR/asan.failed"
	fi
}
# The whole run is one function, parsed before anything runs: bash reads
# a script as it goes, and a job sent to the background may move the
# offset they share (a parse error at the end, once).
main() {
	if ((plain)); then
		build build || { echo "0 passed, 1 failed"; exit 1; }
	fi
	asan_pid=
	if ((asan)); then
		export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
		export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=0}
		# beside the plain build's first files (they wait on timers more
		# than they compute); alone when there is no plain build
		if ((plain)); then
			build_asan &
			asan_pid=$!
		else
			build_asan
		fi
		[[ -e $LOGDIR/asan.failed ]] && { echo "0 passed, 1 failed"; exit 1; }
	fi
	make_queue
	echo "== $(wc -l <"$QUEUE") pieces of work in $LANES lanes${builds[*]:+ (${builds[*]})}"
	pids=()
	for ((i = 1; i <= LANES; i++)); do
		lane "$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	if [[ -n $asan_pid ]]; then
		wait "$asan_pid"
		[[ -e $LOGDIR/asan.failed ]] && { echo "the ASan build failed"; FAIL=1; }
	fi
	for ((i = 1; i <= LANES; i++)); do
		read -r -a n <"$LOGDIR/lane-$i.counts" 2>/dev/null || n=(0 1)
		PASS=$((PASS + n[0])) FAIL=$((FAIL + n[1]))
	done
	echo "logs: $LOGDIR"
	echo "$PASS passed, $FAIL failed"
	((FAIL == 0))
}
main
