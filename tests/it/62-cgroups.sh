#!/usr/bin/env bash
# Runs and replicas on the local target are contained in cgroups (issue 11,
# item 7): no setsid child outlives its run (Completed, Canceled, time
# limit, after a kill -9 of the daemon), memory = becomes a limit whose
# breach fails the run with a sentence, cpus = a CPU quota, pids_max bounds
# a fork bomb, a replica's stray child ends at delete.  Daemon as root with
# -o allow_other; runs as an unprivileged user and as root.
source "$(dirname "$0")/../lib.sh"

mu_users
UA=mlfs_ua

# Each stray is `sh -c LOOP mlfscg_<tag>`: its argv carries the tag, it
# ignores TERM (a SIG_IGN survives exec), it leaves its session (setsid).
TAG=$$
UP=$T/up	# where strays say they started
mkdir -m 1777 "$UP"
stray() {	# stray NAME: shell text that starts one and waits for it
	printf '%s' "setsid sh -c 'trap \"\" TERM; touch $UP/$1; while :; do sleep 1; done' mlfscg_${TAG}_$1 </dev/null >/dev/null 2>&1 & while [ ! -e $UP/$1 ]; do sleep 0.1; done"
}
# only the stray's own argv ends with its tag (the supervisor's and the
# run's shell's hold it inside the command)
alive() { pgrep -f " mlfscg_${TAG}_$1\$" >/dev/null; }
gone() { ! alive "$1"; }
stray_pid() { pgrep -f " mlfscg_${TAG}_$1\$" | head -1; }

# cg_file PID CONTROLLER FILE: that file of the process's cgroup (v1
# controller hierarchy, or the unified one where there is no v1 hierarchy).
cg_file() {
	local p
	p=$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$1/cgroup")
	if [[ -n $p && -d /sys/fs/cgroup/$2$p ]]; then
		echo "/sys/fs/cgroup/$2$p/$3"
	else
		p=$(awk -F: '$1 == 0 { print $3 }' "/proc/$1/cgroup")
		echo "/sys/fs/cgroup$p/$3"
	fi
}

# newrun NAME USER COMMAND [RESOURCES] [TARGET]: made and submitted as USER.
newrun() {
	local R=$MNT/runs/$1
	as "$2" mkdir "$R" &&
		as "$2" sh -c "printf '%s\n' \"\$1\" > $R/command" _ "$3" &&
		{ [[ -z ${4:-} ]] || as "$2" sh -c "printf '%s\n' \"\$1\" > $R/resources" _ "$4"; } &&
		{ [[ -z ${5:-} ]] || as "$2" sh -c "echo $5 > $R/target"; } &&
		as "$2" sh -c "echo submit > $R/ctl"
}

mount_or_bail "mount with allow_other" -o allow_other

# ---- a stray child ends with its Completed run -------------------------------
for who in $UA root; do
	n=c_$who
	check "$who: a run that leaves a setsid child behind" newrun $n $who "$(stray $n); echo done"
	check "$who: it completes" wait_for "$MNT/runs/$n/status" Completed 30
	check "$who: its setsid child is gone after Completed" wait_until 10 gone $n
done

# ---- cancel, time limit --------------------------------------------------------
check "a long run with a stray child" newrun k1 $UA "$(stray k1); sleep 1000"
check "it runs" wait_for "$MNT/runs/k1/status" Running 30
check "its stray child runs" wait_until 20 alive k1
pid=$(stray_pid k1)
check "the stray child is in the run's cgroup" \
	grep -qE ':/.*mlfs-[0-9a-f]{8}/run-[0-9]+$' "/proc/$pid/cgroup"
eq "the stray runs as $UA" $UA "$(ps -o user= -p "$pid")"
eq "pids.max is 4096 by default" 4096 "$(cat "$(cg_file "$pid" pids pids.max)")"
if [[ -e $(cg_file "$pid" cpu cpu.cfs_quota_us) ]]; then
	eq "no cpus =, no CPU quota" -1 "$(cat "$(cg_file "$pid" cpu cpu.cfs_quota_us)")"
else
	eq "no cpus =, no CPU quota" "max 100000" "$(cat "$(cg_file "$pid" cpu cpu.max)")"
fi
expect_err "$UA cannot leave the run's cgroup" "Permission denied" \
	as $UA sh -c "echo $pid > /sys/fs/cgroup/pids/cgroup.procs"
check "cancel" as $UA sh -c "echo cancel > $MNT/runs/k1/ctl"
check "Canceled" wait_for "$MNT/runs/k1/status" Canceled 30
check "the TERM-proof stray child is gone after Canceled" wait_until 10 gone k1

check "a run over its time limit, with a stray child" \
	newrun t1 $UA "$(stray t1); sleep 1000" "time = 0:00:03"
check "its stray child runs" wait_until 20 alive t1
check "Failed at the time limit" wait_for "$MNT/runs/t1/status" Failed 30
check "error says time limit" grep -q 'time limit' "$MNT/runs/t1/error"
check "the stray child is gone" wait_until 10 gone t1

# ---- memory = ------------------------------------------------------------------
check "a run that takes 200 MB with memory = 64M" newrun m1 $UA \
	"python3 -c 'x = b\"x\" * (200 << 20); print(len(x))'" "memory = 64M"
check "Failed" wait_for "$MNT/runs/m1/status" Failed 60
eq "error says it ran out of memory" "the run ran out of memory (limit 64M)" \
	"$(cat "$MNT/runs/m1/error")"
check "the same run within memory = 1G completes" newrun m2 $UA \
	"python3 -c 'x = b\"x\" * (200 << 20); print(len(x))'" "memory = 1G"
check "Completed" wait_for "$MNT/runs/m2/status" Completed 60

# ---- cpus = -------------------------------------------------------------------
for cpus in 0.5 2; do
	n=q${cpus/./_}
	check "a run with cpus = $cpus" newrun $n $UA "$(stray $n); sleep 1000" "cpus = $cpus"
	check "its stray child runs" wait_until 20 alive $n
	pid=$(stray_pid $n)
	want=$(awk -v c=$cpus 'BEGIN { print c * 100000 }')
	if [[ -e $(cg_file "$pid" cpu cpu.cfs_quota_us) ]]; then
		eq "cpu.cfs_quota_us is $cpus CPUs" "$want" "$(cat "$(cg_file "$pid" cpu cpu.cfs_quota_us)")"
	else
		eq "cpu.max is $cpus CPUs" "$want 100000" "$(cat "$(cg_file "$pid" cpu cpu.max)")"
	fi
	check "cancel" as $UA sh -c "echo cancel > $MNT/runs/$n/ctl"
	check "Canceled, stray gone" wait_until 30 gone $n
done

# ---- pids_max: a fork bomb (bounded by depth: 511 processes at most even
# uncontained) on a target that allows 50 -------------------------------------
B=$MNT/targets/bad
for v in 0 -1 abc 4194305; do
	mkdir "$B"
	wr "$B/type" local
	wr "$B/config" "pids_max = $v"
	expect_err "pids_max = $v is refused" "Invalid argument" wr "$B/ctl" provision
	check "pids_max = $v: error says why" grep -q 'pids_max' "$B/error"
	rmdir "$B"
done
TG=$MNT/targets/small
check "a local target with pids_max = 50" mkdir "$TG"
wr "$TG/type" local
wr "$TG/config" "pids_max = 50"
check "provision" wr "$TG/ctl" provision
check "Succeeded" wait_for "$TG/status" Succeeded 20
chmod 755 "$TG" 2>/dev/null
wr "$T/bomb.sh" 'b() { if [ "$1" -gt 0 ]; then b $(($1 - 1)) & b $(($1 - 1)) & wait; fi; sleep 4; }; b 8'
chmod 644 "$T/bomb.sh"
check "a fork bomb on it" newrun fb root "sh $T/bomb.sh mlfscg_${TAG}_fb; echo bomb over" "" small
check "it runs" wait_until 20 alive fb
bp=$(stray_pid fb)
eq "pids.max of its cgroup is 50" 50 "$(cat "$(cg_file "$bp" pids pids.max)" 2>/dev/null)"
most=0
for ((i = 0; i < 40; i++)); do
	c=$(pgrep -fc " mlfscg_${TAG}_fb\$")
	((c > most)) && most=$c
	[[ $(cat "$MNT/runs/fb/status") == Running ]] || break
	sleep 0.1
done
check "at most 50 of its processes at once (saw $most)" test "$most" -le 50
check "it ends" wait_final "$MNT/runs/fb" 60
check "none of its processes is left" wait_until 10 gone fb
check "the log says a fork failed" grep -qiE 'fork|resource' "$MNT/runs/fb/log"
check "the machine still runs things" newrun after $UA "echo fine"
check "another run completes" wait_for "$MNT/runs/after/status" Completed 30

# ---- kill -9 of the daemon: its successor still ends everything ---------------
check "a long run with a stray child" newrun a1 $UA "$(stray a1); sleep 1000"
check "its stray child runs" wait_until 20 alive a1
crash_ws
check "the stray outlives the daemon's crash" alive a1
remount_or_bail "remount after kill -9" -o allow_other
check "the run is adopted, Running" wait_for "$MNT/runs/a1/status" Running 30
check "cancel" as $UA sh -c "echo cancel > $MNT/runs/a1/ctl"
check "Canceled" wait_for "$MNT/runs/a1/status" Canceled 30
check "the stray child is gone" wait_until 10 gone a1

# ---- a replica's stray child ends at delete -----------------------------------
R=$MNT/runs/train
check "a run with outputs" newrun train $UA 'echo 1 > "$MLFS_OUTPUTS/m.txt"'
check "Completed" wait_for "$R/status" Completed 30
check "register it" as $UA sh -c "echo 'register cgm' > $R/ctl"
D=$MNT/deployments/cgd
check "a deployment whose server leaves a stray child" as $UA mkdir "$D"
as $UA sh -c "echo cgm:1 > $D/model"
as $UA sh -c "printf '%s\n' \"\$1\" 'port = 0' > $D/config" _ \
	"command = $(stray rep); exec python3 -m http.server --bind 127.0.0.1 \"\$PORT\""
check "deploy" as $UA sh -c "echo deploy > $D/ctl"
check "Healthy" wait_for "$D/status" Healthy 30
check "the replica's stray child runs" wait_until 20 alive rep
pid=$(stray_pid rep)
check "it is in the replica's cgroup" \
	grep -qE ':/.*mlfs-[0-9a-f]{8}/rep-[0-9]+-g1-[0-9]+$' "/proc/$pid/cgroup"
check "delete" as $UA sh -c "echo delete > $D/ctl"
check "Draft" wait_for "$D/status" Draft 30
check "the replica's stray child is gone" wait_until 10 gone rep

# ---- cgroup v2 (MLFS_CGROUP=v2: the unified hierarchy, wherever mounted) ---
# The daemon starts in a cgroup of its own (as a systemd service does), not
# in the root one: it moves itself into a leaf of its subtree, so that the
# "no internal processes" rule lets it hand controllers to its runs.
check "unmount" unmount_ws
V2=$(findmnt -n -t cgroup2 -o TARGET | head -1)
V2T=$V2/mlfs-t62-$$
check "a v2 cgroup for the daemon to start in" mkdir "$V2T"
echo $$ > "$V2T/cgroup.procs"
MLFS_CGROUP=v2 mount_or_bail "mount again on cgroup v2" -o allow_other
# this shell and its watchdog leave; the daemon stays, and moves itself
# on its local target's worker, which may start a moment after the mount
# (moved out with them before it had, it made its leaf under the root)
for p in $(cat "$V2T/cgroup.procs"); do
	[[ $p == "$DPID" ]] || echo "$p" > "$V2/cgroup.procs"
done
check "v2: the daemon moved itself into its leaf" wait_until 20 \
	grep -qE "^0::/mlfs-t62-$$/mlfs-[0-9a-f]{8}/daemon\$" "/proc/$DPID/cgroup"
check "v2: and said nothing against it" \
	eval "! grep -q 'cannot move the daemon' '$DAEMON_ERR'"
check "v2: a run that leaves a setsid child behind" newrun v2c $UA "$(stray v2c); echo done"
check "v2: it completes" wait_for "$MNT/runs/v2c/status" Completed 30
check "v2: its setsid child is gone" wait_until 10 gone v2c
check "v2: a long run with a stray child" newrun v2k $UA "$(stray v2k); sleep 1000"
check "v2: its stray child runs" wait_until 20 alive v2k
check "v2: the stray is in the run's unified cgroup" \
	grep -qE '^0::/.*mlfs-[0-9a-f]{8}/run-[0-9]+$' "/proc/$(stray_pid v2k)/cgroup"
check "v2: cancel" as $UA sh -c "echo cancel > $MNT/runs/v2k/ctl"
check "v2: Canceled" wait_for "$MNT/runs/v2k/status" Canceled 30
check "v2: the stray child is gone" wait_until 10 gone v2k
check "v2: the run's cgroup is below the daemon's subtree" \
	grep -q "runs under $V2T/mlfs-" "$DAEMON_ERR"

# ---- MLFS_CGROUP=off: process groups, as before cgroups ----------------------
check "unmount" unmount_ws
MLFS_CGROUP=off mount_or_bail "mount again without cgroups" -o allow_other
check "off: a run" newrun off1 $UA "$(stray off1); sleep 1000"
check "off: its stray child runs" wait_until 20 alive off1
check "off: the stray is in no cgroup of mlfs" \
	eval "! grep -q mlfs- /proc/$(stray_pid off1)/cgroup"
check "off: cancel" as $UA sh -c "echo cancel > $MNT/runs/off1/ctl"
check "off: Canceled" wait_for "$MNT/runs/off1/status" Canceled 30
kill -9 "$(stray_pid off1)"	# what cgroups are for: it outlived its run

check "unmount" unmount_ws
bases=$(grep -o 'runs under [^ ]*' "$DAEMON_ERR" | cut -d' ' -f3 | sort -u)
eq "the daemon said where its cgroups are, v1 then v2" 2 "$(echo "$bases" | grep -c .)"
for base in $bases; do
	check "no cgroup of a run or replica is left in $base" \
		eval "[[ -d '$base' ]] && ! ls '$base' | grep -qE '^(run|rep)-'"
done
rmdir "$V2T"/mlfs-*/daemon "$V2T"/mlfs-*
check "the v2 cgroups of the daemon end with it" rmdir "$V2T"
done_testing
