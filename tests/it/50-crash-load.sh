#!/usr/bin/env bash
# Crash consistency under load (issue 6): a local target with
# max_concurrent = 50 keeps ~50 runs active while 3 shells write the
# settings of Draft runs and copy files into them; the daemon is killed
# with -9 mid-flight, remounted over its dead mount, and then everything
# is checked: every run present, finished runs show their final status and
# exit code, active runs are tracked to the end, nothing ran twice (a count
# file outside the mount), every log is byte-identical to what the run
# wrote, the Draft runs' settings and files are what the shells last wrote.
# Twice: the second crash comes while runs are still being submitted.
source "$(dirname "$0")/../lib.sh"
trap cleanup_deep EXIT

NRUNS=${CRASH_RUNS:-50}
EXEC=$T/exec			# one line per execution of a run
REC=$T/rec			# what the writer shells wrote
mkdir -p "$REC" "$T/src"
: > "$EXEC"
head -c 1024 /dev/urandom > "$T/pat"	# the byte pattern each chunk ends with

# The runs: count the execution, 5 chunks of the pattern; after the second
# one, wait for the round's gate ($T/gate-a, $T/gate-b), which the test
# opens only after the crash: every run is certainly active when the daemon
# is killed, however slow the machine.  Exit with a code derived from the
# name.
cat > "$T/runner.sh" <<EOF
n=\$1
echo "\$n" >> $EXEC
for i in 1 2 3 4 5; do
	printf '%s chunk %d\n' "\$n" "\$i"
	cat $T/pat
	if [ \$i = 2 ]; then
		while [ ! -e $T/gate-\$(echo \$n | cut -c1) ]; do sleep 0.1; done
	fi
	sleep 0.1
done
exit \$2
EOF
expected_log() {
	local i
	for i in 1 2 3 4 5; do
		printf '%s chunk %d\n' "$1" "$i"
		cat "$T/pat"
	done
}
code_of() { echo $((10#${1:1} % 4)); }	# a07 -> 3, b12 -> 0
execs() { grep -cx "$1" "$EXEC"; }

# put FILE TEXT: TEXT plus a newline in one write(2)
put() { printf '%s\n' "$2" | dd of="$1" status=none 2>&1; }

mktarget() {	# mktarget NAME MAX_CONCURRENT
	mkdir "$MNT/targets/$1" && wr "$MNT/targets/$1/type" local &&
		wr "$MNT/targets/$1/config" "max_concurrent = $2" &&
		wr "$MNT/targets/$1/ctl" provision &&
		wait_for "$MNT/targets/$1/status" Succeeded 10
}

newrun() {	# newrun NAME
	mkdir "$MNT/runs/$1" &&
		wr "$MNT/runs/$1/command" "sh $T/runner.sh $1 $(code_of "$1")" &&
		wr "$MNT/runs/$1/target" big
}

# ---- the Draft writers -------------------------------------------------------
# writer K: owns Draft runs wKa and wKb; writes settings and copies files
# into them until $T/stop exists or an operation fails (then it records the
# failure in $T/wfail.K and stops: at most one operation in flight at the
# crash).  Before each operation it records the attempt (.try), after its
# success the value (.ok), each with the operation's number (.tryn, .okn):
# an operation in flight at the crash is one whose numbers differ, even when
# it wrote the same value as the last one that succeeded.
writer() {
	local k=$1 i=0 r f v out
	while [[ ! -e $T/stop ]]; do
		i=$((i + 1))
		r=w${k}$([[ $((RANDOM % 2)) == 0 ]] && echo a || echo b)
		case $((RANDOM % 4)) in
		0) f=env v="K$k=$i"$'\n'"ITER=$i" ;;
		1) f=command v="echo $r $i" ;;
		2) f=resources v="cpus = $((i % 2 + 1))" ;;
		3) f= ;;
		esac
		if [[ -n $f ]]; then
			printf '%s\n' "$v" > "$REC/$r.$f.try"
			echo "$WROUND.$i" > "$REC/$r.$f.tryn"
			if out=$(put "$MNT/runs/$r/$f" "$v"); then
				printf '%s\n' "$v" > "$REC/$r.$f.ok"
				echo "$WROUND.$i" > "$REC/$r.$f.okn"
			else
				echo "$r/$f: $out" > "$T/wfail.$k"
				break
			fi
		else
			# a new name each round: a copy in flight at the crash
			# never overwrites one that an earlier round copied
			v=r${WROUND}f$i
			head -c $((RANDOM % 40000 + 1)) /dev/urandom > "$T/src/$r.$v"
			echo "$v" > "$REC/$r.files.try"
			if out=$(cp "$T/src/$r.$v" "$MNT/runs/$r/$v" 2>&1); then
				echo "$v" >> "$REC/$r.files.ok"
			else
				echo "$r/$v: $out" > "$T/wfail.$k"
				break
			fi
		fi
		sleep 0.0$((RANDOM % 5))
	done
}
WPIDS=()
WROUND=0
start_writers() {
	WROUND=$((WROUND + 1))
	rm -f "$T/stop" "$T"/wfail.*
	WPIDS=()
	local k
	for k in 1 2 3; do
		writer "$k" &
		WPIDS+=($!)
	done
}
stop_writers() {
	touch "$T/stop"
	local p
	for p in "${WPIDS[@]}"; do wait "$p"; done
	WPIDS=()
}

# Check every Draft run against the record: each setting is the last value
# written successfully, or (only for the one operation in flight at the
# crash) the attempted value or empty; every file copied successfully is
# byte-identical to its source.
check_drafts() {
	local round=$1 k s r f ok try cur bad=() badf=() n=0
	for k in 1 2 3; do
		for s in a b; do
			r=w$k$s
			[[ "$(cat "$MNT/runs/$r/status" 2>/dev/null)" == Draft ]] ||
				bad+=("$r:status=$(cat "$MNT/runs/$r/status" 2>&1)")
			for f in env command resources; do
				[[ -f $REC/$r.$f.ok || -f $REC/$r.$f.try ]] || continue
				cur=$(cat "$MNT/runs/$r/$f" 2>&1)
				ok=$(cat "$REC/$r.$f.ok" 2>/dev/null)
				try=$(cat "$REC/$r.$f.try" 2>/dev/null)
				n=$((n + 1))
				[[ "$cur" == "$ok" ]] && continue
				# in flight at a crash: the attempted value, or empty
				# (the open's O_TRUNC done, the write not)
				[[ "$(cat "$REC/$r.$f.tryn")" != "$(cat "$REC/$r.$f.okn" 2>/dev/null)" &&
					( "$cur" == "$try" || -z "$cur" ) ]] && continue
				bad+=("$r/$f='${cur//$'\n'/\\n}' (last ok '${ok//$'\n'/\\n}')")
			done
			[[ -f $REC/$r.files.ok ]] || continue
			while read -r f; do
				n=$((n + 1))
				cmp -s "$T/src/$r.$f" "$MNT/runs/$r/$f" || badf+=("$r/$f")
			done < "$REC/$r.files.ok"
		done
	done
	eq "$round: the Draft runs are Draft and their settings are the last ones written ($n checked)" \
		"" "${bad[*]:0:5}"
	eq "$round: every file copied into a Draft run is byte-identical" "" "${badf[*]:0:8}"
}

# check_runs ROUND NAMES...: the runs (all submitted) end with the right
# state and exit code, ran exactly once, logs byte-identical.
check_runs() {
	local round=$1 r st ec want missing=() notfinal=() wrong=() twice=() badlog=()
	local badev=()
	shift
	for r in "$@"; do
		[[ -d $MNT/runs/$r ]] || missing+=("$r")
	done
	eq "$round: every run is present after the remount" "" "${missing[*]:0:10}"
	for r in "$@"; do
		wait_final "$MNT/runs/$r" 20 2>/dev/null || notfinal+=("$r:$(cat "$MNT/runs/$r/status" 2>&1)")
	done
	eq "$round: every run is tracked to a final state" "" "${notfinal[*]:0:10}"
	sleep 0.3
	for r in "$@"; do
		want=$(code_of "$r")
		st=$(cat "$MNT/runs/$r/status" 2>&1)
		ec=$(cat "$MNT/runs/$r/exit_code" 2>&1)
		if ((want == 0)); then
			[[ $st == Completed && $ec == 0 ]] || wrong+=("$r:$st/$ec")
		else
			[[ $st == Failed && $ec == "$want" ]] || wrong+=("$r:$st/$ec(want $want)")
		fi
		[[ $(execs "$r") == 1 ]] || twice+=("$r:$(execs "$r")")
		cmp -s <(expected_log "$r") "$MNT/runs/$r/log" ||
			badlog+=("$r($(stat -c %s "$MNT/runs/$r/log" 2>&1)B)")
		[[ $(ev_count "run $r (Completed|Failed|Canceled)\$") == 1 ]] ||
			badev+=("$r:$(ev_count "run $r (Completed|Failed|Canceled)\$")")
	done
	eq "$round: final status and exit code as the run exited" "" "${wrong[*]:0:10}"
	eq "$round: no run executed twice (or not at all)" "" "${twice[*]:0:10}"
	eq "$round: every log is byte-identical to what the run wrote" "" "${badlog[*]:0:10}"
	eq "$round: events has exactly one final line per run" "" "${badev[*]:0:10}"
}

# The daemon says at start-up that it checked (and what it repaired).
check_startup_log() {
	local n
	n=$(grep -c 'start-up after an unclean stop' "$DAEMON_ERR")
	check "$1: the daemon logged its start-up check after the crash" test "$n" -gt "$STARTS"
	STARTS=$n
	grep -E 'repaired|start-up after' "$DAEMON_ERR" | tail -5 | sed 's/^/# daemon: /'
}

mount_or_bail
STARTS=$(grep -c 'start-up after an unclean stop' "$DAEMON_ERR")
echo "# fresh state dir: the first mount logged $STARTS 'unclean stop' line(s)"
check "target big with max_concurrent = 50" mktarget big 50
for k in 1 2 3; do
	for s in a b; do
		mkdir "$MNT/runs/w$k$s"
		put "$MNT/runs/w$k$s/command" "echo w$k$s" >/dev/null
	done
done

# ---- round 1: ~50 runs Running, kill -9 ----------------------------------
A=()
for ((i = 1; i <= NRUNS; i++)); do A+=("$(printf 'a%02d' "$i")"); done
bad=0
for r in "${A[@]}"; do newrun "$r" || bad=$((bad + 1)); done
eq "round 1: $NRUNS runs made" 0 "$bad"
start_writers
bad=0
for r in "${A[@]}"; do wr "$MNT/runs/$r/ctl" submit 2>/dev/null || bad=$((bad + 1)); done
eq "round 1: $NRUNS runs submitted" 0 "$bad"
running() {
	local r n=0
	for r in "$@"; do
		[[ $(cat "$MNT/runs/$r/status" 2>/dev/null) == Running ]] && n=$((n + 1))
	done
	echo "$n"
}
wait_until 60 eval '(( $(running "${A[@]}") == NRUNS ))'
n=$(running "${A[@]}")
eq "round 1: all the runs Running at once (they wait for the gate)" "$NRUNS" "$n"
eq "round 1: the writers saw no error before the crash" "" "$(cat "$T"/wfail.* 2>/dev/null)"
crash_ws
stop_writers
echo "# round 1: crashed with $(wc -l < "$EXEC") executions started"
touch "$T/gate-a"	# the runs go on and end while the daemon is dead
check "round 1: the mount is dead after kill -9" is_dead_mount
remount_or_bail "round 1: mount again over the dead mount"
eq "round 1: the daemon cleared the dead mount (one mount on MNT, not two stacked)" 1 "$(mount_count)"
check_startup_log "round 1"
check_runs "round 1" "${A[@]}"
check_drafts "round 1"

# ---- round 2: crash while runs are being submitted and running -------------
B=()
for ((i = 1; i <= NRUNS; i++)); do B+=("$(printf 'b%02d' "$i")"); done
bad=0
for r in "${B[@]}"; do newrun "$r" || bad=$((bad + 1)); done
eq "round 2: $NRUNS runs made" 0 "$bad"
start_writers
: > "$T/sub.ok"
: > "$T/sub.try"
(
	for r in "${B[@]}"; do
		echo "$r" >> "$T/sub.try"
		wr "$MNT/runs/$r/ctl" submit 2>/dev/null || exit 0
		echo "$r" >> "$T/sub.ok"
		sleep 0.05
	done
) &
SUBPID=$!
# crash once a few runs are submitted, with the submitter still going
wait_until 60 eval '(( $(wc -l < "$T/sub.ok") >= 10 ))'
eq "round 2: the writers saw no error before the crash" "" "$(cat "$T"/wfail.* 2>/dev/null)"
crash_ws
stop_writers
wait "$SUBPID"
touch "$T/gate-b"
nsub=$(wc -l < "$T/sub.ok")
echo "# round 2: crashed after $nsub submits, $(grep -c '^b' "$EXEC") executions started"
check "round 2: the crash came mid-submission ($nsub of $NRUNS submitted)" \
	test "$nsub" -gt 0 -a "$nsub" -lt "$NRUNS"
check "round 2: the mount is dead after kill -9" is_dead_mount
remount_or_bail "round 2: mount again over the dead mount"
eq "round 2: the daemon cleared the dead mount (one mount on MNT, not two stacked)" 1 "$(mount_count)"
check_startup_log "round 2"
mapfile -t SUB < "$T/sub.ok"
check_runs "round 2" "${SUB[@]}"
# the submit in flight at the crash: Draft and never run, or ran once
inflight=$(tail -n 1 "$T/sub.try")
if [[ -n $inflight && $inflight != "$(tail -n 1 "$T/sub.ok")" ]]; then
	st=$(cat "$MNT/runs/$inflight/status" 2>&1)
	if [[ $st == Draft ]]; then
		eq "round 2: the submit in flight ($inflight) left a Draft that never ran" 0 "$(execs "$inflight")"
	else
		check_runs "round 2 in-flight submit" "$inflight"
	fi
fi
# never submitted: still Draft, never ran, and they still work
rest=()
for r in "${B[@]}"; do
	grep -qx "$r" "$T/sub.try" || rest+=("$r")
done
bad=()
for r in "${rest[@]}"; do
	[[ $(cat "$MNT/runs/$r/status" 2>&1) == Draft && $(execs "$r") == 0 ]] ||
		bad+=("$r:$(cat "$MNT/runs/$r/status" 2>&1)/$(execs "$r")")
done
eq "round 2: runs never submitted are Draft and never ran" "" "${bad[*]:0:10}"
check_drafts "round 2"
# the first round's runs are untouched by the second crash
bad=()
for r in "${A[@]}"; do
	cmp -s <(expected_log "$r") "$MNT/runs/$r/log" || bad+=("$r")
	[[ $(execs "$r") == 1 ]] || bad+=("$r:ran $(execs "$r")x")
done
eq "round 2: the first round's logs and counts unchanged" "" "${bad[*]:0:10}"
if ((${#rest[@]})); then
	bad=0
	for r in "${rest[@]}"; do wr "$MNT/runs/$r/ctl" submit 2>/dev/null || bad=$((bad + 1)); done
	eq "round 2: the runs left Draft can be submitted after the crash" 0 "$bad"
	check_runs "round 2 late submits" "${rest[@]}"
fi
echo "# crashes survived: 2; runs checked: $((${#A[@]} + ${#B[@]})); executions: $(wc -l < "$EXEC")"
check "unmount exits 0" unmount_ws
eq "after the unmount nothing is left mounted on MNT (no dead mount)" 0 "$(mount_count)"
check "MNT is a plain, empty folder again" eval '[[ -z "$(ls -A "$MNT" 2>&1)" ]]'
done_testing
