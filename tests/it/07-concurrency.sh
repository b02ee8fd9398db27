#!/usr/bin/env bash
# Concurrency: 4 shells create, submit, read and remove runs for ~10 s
# while a fifth lists and reads everything; every file operation goes
# through `timeout 30` (a watchdog for hangs), no unexpected error, every run ends,
# and the daemon still answers and unmounts cleanly.
source "$(dirname "$0")/../lib.sh"

DURATION=${DURATION:-10}
ERR=$T/errors
SLOW=$T/slow
: > "$ERR"
: > "$SLOW"

# op WHO WHAT COMMAND...: run COMMAND under a 30 s watchdog; log hangs
# and failures.  Returns COMMAND's status.  $EXPECT (an ERE) lists error
# texts that are expected races for this call.
op() {
	local who=$1 what=$2 out rc
	shift 2
	out=$(timeout -k 1 30 "$@" 2>&1 >/dev/null)
	rc=$?
	if ((rc == 124 || rc == 137)); then
		echo "$who: $what hung for 30 s" >> "$SLOW"
	elif ((rc != 0)); then
		if [[ -n "${EXPECT:-}" && "$out" =~ $EXPECT ]]; then
			:
		else
			echo "$who: $what failed ($rc): ${out//$'\n'/ | }" >> "$ERR"
		fi
	fi
	return $rc
}
put() { printf '%s\n' "$1" > "$2"; }	# for sh -c
export -f put

worker() {	# worker ID
	local id=$1 i=0 name d s k cmd end=$((SECONDS + DURATION))
	# for DURATION seconds, and at least 3 runs each however slow
	while ((SECONDS < end || i < 3)); do
		i=$((i + 1))
		name=w$id-$i
		d=$MNT/runs/$name
		op "$name" mkdir mkdir "$d" || continue
		((i % 2)) && cmd=true || cmd='sleep 0.1; echo slept'
		op "$name" "write command" bash -c 'put "$1" "$2"' _ "$cmd" "$d/command"
		op "$name" "cat status (Draft)" cat "$d/status"
		if op "$name" submit bash -c 'put submit "$1"' _ "$d/ctl"; then
			echo "$name" >> "$T/submitted.$id"
		else
			continue
		fi
		op "$name" "cat status" cat "$d/status"
		op "$name" "cat log" cat "$d/log"
		op "$name" "ls -l" ls -l "$d"
		s=
		local wend
		wend=$(deadline 20)
		while (($(now_ms) < wend)); do
			s=$(timeout -k 1 30 cat "$d/status" 2>>"$ERR")
			[[ $? == 124 ]] && echo "$name: cat status hung for 30 s" >> "$SLOW"
			case $s in Completed | Failed | Canceled) break ;; esac
			sleep 0.05
		done
		echo "$name $s" >> "$T/final.$id"
		op "$name" "cat log (final)" cat "$d/log"
		op "$name" "cat info.json" cat "$d/info.json"
		op "$name" "rm -r" rm -r "$d"
		[[ -e $d ]] && echo "$name: still there after rm -r" >> "$ERR"
	done
	echo "$i" > "$T/iters.$id"
}

reader() {
	local end=$((SECONDS + DURATION)) n=0
	# runs vanish between readdir and open: ENOENT is an expected race
	local EXPECT='No such file or directory'
	while ((SECONDS < end)); do
		op reader "ls -l runs" ls -l "$MNT/runs"
		op reader "cat runs/*/status" bash -c 'cat "$1"/runs/*/status' _ "$MNT"
		op reader "find runs" find "$MNT/runs" -maxdepth 2 -name status
		op reader "tail events" tail -n 3 "$MNT/events"
		op reader "ls targets" ls -l "$MNT/targets/local"
		n=$((n + 1))
	done
	echo "$n" > "$T/iters.reader"
}

mount_or_bail
fd0=$(ls /proc/"$DPID"/fd | wc -l)
t0=$SECONDS
pids=()
for id in 1 2 3 4; do
	worker "$id" &
	pids+=($!)
done
reader &
pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
echo "# took $((SECONDS - t0)) s; iterations: $(cat "$T"/iters.* | paste -sd' ')"

if [[ -s $ERR ]]; then
	not_ok "no shell saw an unexpected error ($(wc -l < "$ERR") errors)"
	head -15 "$ERR" | sed 's/^/#   /'
else
	ok "no shell saw an unexpected error"
fi
if [[ -s $SLOW ]]; then
	not_ok "no file operation hung for 30 s ($(wc -l < "$SLOW"))"
	head -10 "$SLOW" | sed 's/^/#   /'
else
	ok "no file operation hung for 30 s"
fi
sub=$(cat "$T"/submitted.* 2>/dev/null | wc -l)
fin=$(cat "$T"/final.* 2>/dev/null | grep -cE ' (Completed|Failed|Canceled)$')
check "runs were submitted ($sub)" test "$sub" -ge 8
eq "every submitted run reached a final state" "$sub" "$fin"
bad=$(cat "$T"/final.* 2>/dev/null | grep -vE ' Completed$' | head -5 | paste -sd,)
eq "every run Completed" "" "$bad"
check "the daemon is still mounted" is_mounted
fd1=$(ls /proc/"$DPID"/fd 2>/dev/null | wc -l)
check "no file descriptor leak in the daemon ($fd0 -> $fd1)" test "$fd1" -le $((fd0 + 16))
check "and answering" eval '[[ $(timeout 5 cat "$MNT/targets/local/status") == Succeeded ]]'
left=$(ls "$MNT/runs" | grep -cE '^w[0-9]+-' || true)
eq "no worker run left behind" 0 "$left"
check "a run still works afterwards" eval 'mkdir "$MNT/runs/after" && wr "$MNT/runs/after/command" "echo after" && wr "$MNT/runs/after/ctl" submit && wait_for "$MNT/runs/after/status" Completed 10'
check "unmount exits 0" unmount_ws
done_testing
