#!/usr/bin/env bash
# Fresh reads through the kernel cache: status right after transitions,
# tail -f of a growing log, sizes that match contents, events.
source "$(dirname "$0")/../lib.sh"

newrun() {
	mkdir "$MNT/runs/$1" || return 1
	wr "$MNT/runs/$1/command" "$2"
	[[ -z "${3:-}" ]] || wr "$MNT/runs/$1/target" "$3"
}
rank() {
	case $1 in
	Draft) echo 0 ;; Queued) echo 1 ;; Starting) echo 2 ;; Running) echo 3 ;;
	Completed | Failed | Canceled) echo 4 ;; *) echo 9 ;;
	esac
}
# size_ok FILE: stat size equals the number of bytes cat reads
size_ok() {
	local s c
	s=$(stat -c %s "$1") c=$(cat "$1" | wc -c)
	[[ $s == "$c" ]] || { echo "# $1: stat $s, content $c" >&2; return 1; }
}

mount_or_bail

# ---- status never goes backwards, and is fresh --------------------------------
TQ=$MNT/targets/one
mkdir "$TQ"
wr "$TQ/type" local
wr "$TQ/config" "max_concurrent = 1"
wr "$TQ/ctl" provision
check "target one Succeeded" wait_for "$TQ/status" Succeeded 10
# blk holds the target's one slot until the test lets it go; s1 waits
# behind it (Queued), then runs until the test lets it go (Running): each
# state lasts as long as the test needs to see it, whatever the speed
go_after() { echo "while [ ! -e $T/$1.go ]; do sleep 0.05; done"; }
newrun blk "$(go_after blk)" one
newrun s1 "$(go_after s1)" one
wr "$MNT/runs/blk/ctl" submit
check "blk Running" wait_for "$MNT/runs/blk/status" Running
wr "$MNT/runs/s1/ctl" submit
first=$(cat "$MNT/runs/s1/status")
seq_=$first prev=$first back=0 reads=1 junk= end=$(deadline 30)
while (($(now_ms) < end)); do
	# let each state go once it has been seen a few times
	((reads == 20)) && touch "$T/blk.go"
	[[ $prev == Running && ! -e $T/s1.go ]] && touch "$T/s1.go"
	# NUL bytes made visible: a status read is one whole word
	s=$(tr '\0' '@' < "$MNT/runs/s1/status")
	reads=$((reads + 1))
	[[ $(rank "$s") == 9 ]] && junk="$junk '${s//$'\n'/\\n}'"
	if [[ $s != "$prev" ]]; then
		(($(rank "$s") < $(rank "$prev"))) && back=1
		seq_="$seq_ $s"
		prev=$s
	fi
	[[ $(rank "$s") == 4 ]] && break
done
echo "# status sequence ($reads reads): $seq_"
check "cat status right after submit is not Draft ($first)" test "$first" != Draft
eq "status never goes backwards" 0 "$back"
eq "status ends Completed" Completed "$prev"
check "status showed Queued" eval "[[ ' $seq_ ' == *' Queued '* ]]"
check "status showed Running" eval "[[ ' $seq_ ' == *' Running '* ]]"
check "no unknown status word" eval "[[ '$seq_' =~ ^(Queued|Starting|Running|Completed)( (Queued|Starting|Running|Completed))*$ ]]"
eq "no read of status held junk or a cut word" "" "$junk"

# many short runs, status read in a tight loop: always one whole word
junk= nreads=0
for i in $(seq 1 15); do
	newrun t$i 'true'
	wr "$MNT/runs/t$i/ctl" submit
	for ((k = 0; k < 2000; k++)); do
		s=$(tr '\0' '@' < "$MNT/runs/t$i/status")
		nreads=$((nreads + 1))
		[[ $(rank "$s") == 9 ]] && junk="$junk t$i:'${s//$'\n'/\\n}'"
		[[ $(rank "$s") == 4 ]] && break
	done
done
eq "status of 15 short runs: each of $nreads reads one whole word" "" "$junk"

# three threads reading status in a tight loop while runs go by: every
# read is one whole word and its newline (no cut word, no NUL, no padding)
read -r hreads hjunk < <(timeout 600 python3 "$ROOT/tests/status-hammer.py" "$MNT" 30 3)
echo "# status hammer: ${hreads:-?} reads"
check "status hammer: some reads done (${hreads:-0})" test "${hreads:-0}" -gt 100
eq "status hammer: no read of a status was torn" 0 "${hjunk:-?}"

stale=0
for i in 1 2 3 4 5 6 7 8; do
	newrun q$i 'true'
	cat "$MNT/runs/q$i/status" >/dev/null	# warm the cache with Draft
	wr "$MNT/runs/q$i/ctl" submit
	s=$(cat "$MNT/runs/q$i/status")
	[[ $s == Draft ]] && stale=$((stale + 1))
done
eq "cat status right after echo submit is never Draft (8 runs)" 0 "$stale"

# the moment events shows a transition, status and info.json show it too
late=0 late_info=0
for i in 1 2 3 4 5 6; do
	newrun f$i 'sleep 0.3'
	wr "$MNT/runs/f$i/ctl" submit
	for s in Running Completed; do
		end=$(deadline 30)
		while (($(now_ms) < end)); do
			cat "$MNT/runs/f$i/status" >/dev/null	# keep it cached
			grep -qE " run f$i $s\$" "$MNT/events" && break
			sleep 0.01
		done
		got=$(cat "$MNT/runs/f$i/status")
		if [[ $(rank "$got") -lt $(rank "$s") ]]; then
			late=$((late + 1))
			echo "# f$i: events says $s, status says $got"
		fi
		got=$(json_get "$MNT/runs/f$i/info.json" status)
		[[ $(rank "$got") -lt $(rank "$s") ]] && late_info=$((late_info + 1))
	done
done
eq "status is fresh as soon as events has the line (12 transitions)" 0 "$late"
eq "info.json is fresh as soon as events has the line" 0 "$late_info"

# ---- tail -f of a growing log --------------------------------------------------
L=$MNT/runs/tl
# six lines, then the run waits for the test's go before the other six: it
# is certainly Running while tail -f must have seen the first ones
newrun tl "i=1; while [ \$i -le 6 ]; do echo \"line \$i\"; i=\$((i + 1)); sleep 0.1; done
while [ ! -e $T/tl.go ]; do sleep 0.05; done
while [ \$i -le 12 ]; do echo \"line \$i\"; i=\$((i + 1)); sleep 0.1; done"
tail -n +1 -f "$L/log" > "$T/tail.out" 2>"$T/tail.err" &
TAILPID=$!
wr "$L/ctl" submit
check "tl Running" wait_for "$L/status" Running
sizes_bad=0 samples=0
# sizes_match: stat's size of log is what cat reads (sampled while waiting):
# the log only grows, so what cat read lies between the sizes stat gave
# just before and just after -- however many lines came meanwhile on a
# slow machine; a stale size would be below what was already readable.
sizes_match() {
	local s1 c s2
	s1=$(stat -c %s "$L/log") c=$(cat "$L/log" | wc -c) s2=$(stat -c %s "$L/log")
	samples=$((samples + 1))
	((s1 <= c && c <= s2)) || { sizes_bad=$((sizes_bad + 1)); echo "# log: stat $s1/$s2, content $c"; }
}
six_seen() { sizes_match; [[ $(grep -c . "$T/tail.out") -ge 6 ]]; }
check "tail -f saw the first 6 lines while the run was Running" wait_until 20 six_seen
eq "the run is still Running (it waits for the test)" Running "$(cat "$L/status")"
touch "$T/tl.go"
eq "ls -l size of log = bytes read, during the run ($samples samples)" 0 "$sizes_bad"
check "tl Completed" wait_for "$L/status" Completed 10
want=$(for i in $(seq 1 12); do echo "line $i"; done)
check "tail -f got all 12 lines" wait_until 4 eval '[[ $(grep -c . "$T/tail.out") -ge 12 ]]'
kill "$TAILPID" 2>/dev/null
wait "$TAILPID" 2>/dev/null
eq "tail -f lines in order, none doubled" "$want" "$(cat "$T/tail.out")"
eq "tail reported no error" "" "$(grep -v 'has been replaced\|following new file' "$T/tail.err")"
eq "cat log after the end" "$want" "$(cat "$L/log")"
check "ls -l size of log = bytes read, after the run" size_ok "$L/log"
eq "ls -l shows the same size" "$(cat "$L/log" | wc -c)" "$(ls -l "$L/log" | awk '{print $5}')"

# tail -f --pid stops with the process it follows
newrun tp 'for i in 1 2 3; do echo "p $i"; sleep 0.3; done'
wr "$MNT/runs/tp/ctl" submit
check "tp Running" wait_for "$MNT/runs/tp/status" Running
( while [[ $(cat "$MNT/runs/tp/status") == Running ]]; do sleep 0.1; done ) &
WPID=$!
timeout 120 tail -n +1 -s 0.2 -f --pid=$WPID "$MNT/runs/tp/log" > "$T/tp.out"
eq "tail -f --pid got the whole log" $'p 1\np 2\np 3' "$(cat "$T/tp.out")"

# ---- sizes of generated files ------------------------------------------------------
for f in status exit_code error info.json ctl command env log metrics; do
	check "tl/$f: stat size = content length" size_ok "$L/$f"
done
newrun fx 'exit 4'
wr "$MNT/runs/fx/ctl" submit
check "fx Failed" wait_for "$MNT/runs/fx/status" Failed
for f in status exit_code error info.json ctl; do
	check "fx/$f: stat size = content length" size_ok "$MNT/runs/fx/$f"
done
for f in status nodes info.json ctl config type error; do
	check "targets/one/$f: stat size = content length" size_ok "$TQ/$f"
done

# ---- events ---------------------------------------------------------------------------
check "events: stat size = content length" size_ok "$MNT/events"
n0=$(cat "$MNT/events" | wc -l)
mkdir "$MNT/runs/ev"
check "tail -n1 events shows the mkdir" \
	eval "tail -n1 '$MNT/events' | grep -qE ' run ev created$'"
wr "$MNT/runs/ev/ctl" bogus 2>/dev/null
check "tail -n1 events shows the refusal" \
	eval "tail -n1 '$MNT/events' | grep -qE ' run ev error: '"
wr "$MNT/runs/ev/command" 'true'
wr "$MNT/runs/ev/ctl" submit
check "ev Completed" wait_for "$MNT/runs/ev/status" Completed
eq "tail -n1 events is the Completed line" "run ev Completed" \
	"$(tail -n1 "$MNT/events" | cut -d' ' -f2-)"
n1=$(cat "$MNT/events" | wc -l)
check "events grew ($n0 -> $n1)" test "$n1" -gt "$n0"
check "events: stat size = content length, after growing" size_ok "$MNT/events"
check "every events line starts with an ISO time" \
	eval "! grep -vqE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z [a-z]+ [^ ]+ ' '$MNT/events'"
ord=$(grep -E ' run ev ' "$MNT/events" | cut -d' ' -f4- | grep -vE '^error' | paste -sd' ')
check "events order for ev: created ... Queued ... Running ... Completed ($ord)" \
	eval "[[ '$ord' =~ ^created\\ Queued\\ (Starting\\ )?Running\\ Completed$ ]]"

check "unmount exits 0" unmount_ws
done_testing
