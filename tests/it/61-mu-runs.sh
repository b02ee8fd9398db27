#!/usr/bin/env bash
# Multi-user (issue 11): how runs and replicas are launched.  The daemon as
# root with -o allow_other; users mlfs_ua, mlfs_ub.  Attacks, by class:
#   2  the run's env reaches the root supervisor (LD_PRELOAD, …)
#   11 the daemon's own environment reaches a run or a replica
#   3  a copy keeps set-id bits (working copy, deployment snapshot)
#   5  swaps in the working copy while it is made and handed over
#   6  daemon records in folders a user can write (replica pid/err files,
#      a forged pid that makes `delete` kill a root process)
# Escapes must be 0.
source "$(dirname "$0")/../lib.sh"

mu_users mlfs_ua mlfs_ub
UA=mlfs_ua
UA_ID=$(id -u "$UA")
UA_HOME=$(getent passwd "$UA" | cut -d: -f6)
U="$T/u"			# the user's own scratch folder
mkdir -p "$U" && chown "$UA:" "$U"
MARK="$T/mark"			# where the preloaded library reports
mkdir -p "$MARK" && chmod 1777 "$MARK"
ROOTDIR="$T/rootdir"		# root-only: decoys, a victim folder
mkdir -p "$ROOTDIR" && chmod 755 "$ROOTDIR"
decoy "$ROOTDIR/secret"
decoy "$ROOTDIR/pidtmp"

MLFS_TEST_SECRET=s3cret-61 TEST_SECRET=s3cret-61 FOO_DAEMON=1 \
	mount_or_bail "mount as root with allow_other" -o allow_other

# run_as USER NAME COMMAND [ENV]: a run of USER's, submitted; its id.
run_as() {
	local u=$1 r=$MNT/runs/$2 id
	id=$(new_obj as "$u" mkdir "$r") || return 1
	as "$u" sh -c "printf '%s\n' \"\$1\" > '$r/command'" sh "$3" || return 1
	[[ -z ${4:-} ]] || as "$u" sh -c "printf '%s' \"\$1\" > '$r/env'" sh "$4" ||
		return 1
	echo "$id"
}
submit() { as "$UA" sh -c "echo submit > '$MNT/runs/$1/ctl'"; }
final() { wait_final "$MNT/runs/$1" 60; }

# ---- class 11: the run's environment is exactly the promised one ------------

R=$MNT/runs/env1
run_as "$UA" env1 'env > outputs/env; grep -E "^(Uid|Gid|Groups)" /proc/self/status > outputs/ids' \
	$'MYVAR=x y\n' >/dev/null
check "env1 submitted" submit env1
check "env1 Completed" final env1
eq "env1 Completed" Completed "$(cat "$R/status")"
ENVF=$(cat "$R/outputs/env" 2>/dev/null)
check "the daemon's MLFS_TEST_SECRET, TEST_SECRET do not reach the run" \
	eval '! grep -q s3cret-61 <<<"$ENVF"'
check "the daemon's FOO_DAEMON does not reach the run" \
	eval '! grep -q "^FOO_DAEMON=" <<<"$ENVF"'
names=$(sed -n 's/=.*//p' <<<"$ENVF" | grep -vxE 'PWD|OLDPWD|SHLVL|_' |
	sort | tr '\n' ' ')
eq "the run sees exactly env + MLFS_* + PATH HOME USER LOGNAME SHELL LANG PYTHONPATH" \
	"HOME LANG LOGNAME MLFS_METRICS MLFS_OUTPUTS MLFS_PARAMS MLFS_RUN MYVAR PATH PYTHONPATH SHELL USER " \
	"$names"
eq "HOME is the user's" "HOME=$UA_HOME" "$(grep '^HOME=' <<<"$ENVF")"
eq "USER is the user's" "USER=$UA" "$(grep '^USER=' <<<"$ENVF")"
eq "LOGNAME is the user's" "LOGNAME=$UA" "$(grep '^LOGNAME=' <<<"$ENVF")"
eq "SHELL from passwd" "SHELL=$(getent passwd "$UA" | cut -d: -f7)" \
	"$(grep '^SHELL=' <<<"$ENVF")"
eq "LANG defaults to C.UTF-8" "LANG=C.UTF-8" "$(grep '^LANG=' <<<"$ENVF")"
eq "PATH is the default" "PATH=/usr/local/bin:/usr/bin:/bin" \
	"$(grep '^PATH=' <<<"$ENVF")"
eq "an env value with a blank arrives whole" "MYVAR=x y" \
	"$(grep '^MYVAR=' <<<"$ENVF")"
ids=$(cat "$R/outputs/ids" 2>/dev/null)
eq "real, effective, saved and fs uid are the user's" \
	"$UA_ID $UA_ID $UA_ID $UA_ID" "$(awk '/^Uid/ {print $2, $3, $4, $5}' <<<"$ids")"
eq "no group of root's" "" "$(awk '/^Groups/ {for (i = 2; i <= NF; i++) if ($i == 0) print}' <<<"$ids")"

run_as "$UA" env2 'env > outputs/env' $'LANG=C\nPATH=/bin\n' >/dev/null
submit env2 && final env2
eq "env's LANG replaces the default" "LANG=C" \
	"$(grep '^LANG=' "$MNT/runs/env2/outputs/env")"
eq "env's PATH replaces the default" "PATH=/bin" \
	"$(grep '^PATH=' "$MNT/runs/env2/outputs/env")"

# ---- class 2: LD_PRELOAD in env never loads into a root process ------------

cat > "$U/evil.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%d.%d", MARKDIR, (int)geteuid(),
		 (int)getpid());
	close(open(p, O_WRONLY | O_CREAT, 0666));
}
EOF
chown "$UA:" "$U/evil.c"
check "$UA builds a preload library" as "$UA" cc -shared -fPIC \
	-DMARKDIR="\"$MARK\"" -o "$U/evil.so" "$U/evil.c"
for v in LD_PRELOAD LD_LIBRARY_PATH GCONV_PATH LD_AUDIT; do
	case $v in
	LD_PRELOAD) val="$U/evil.so" ;;
	LD_AUDIT) val="$U/evil.so" ;;
	*) val="$U" ;;
	esac
	run_as "$UA" "pre-$v" 'true' "$v=$val" >/dev/null
	submit "pre-$v" && final "pre-$v"
done
eq "the preload runs were not refused" "Completed" \
	"$(cat "$MNT/runs/pre-LD_PRELOAD/status")"
check "the library did load, as $UA, in the run" \
	eval 'ls "$MARK" | grep -q "^$UA_ID\."'
eq "it never loaded with euid 0 (escapes)" 0 \
	"$(ls "$MARK" | grep -c '^0\.')"

# ---- class 3 and 4 of the brief: working copy, set-id bits -----------------

R=$MNT/runs/suid
RID=$(run_as "$UA" suid 'ls -ld . > outputs/cwd; true')
as "$UA" cp /bin/true "$R/su"
as "$UA" cp /bin/true "$R/sg"
as "$UA" mkdir "$R/sgdir"
check "$UA sets u+s on a file of their own" as "$UA" chmod u+s "$R/su"
check "$UA sets g+s on a file of their own" as "$UA" chmod g+s "$R/sg"
submit suid && final suid
W=$STATE/objects/$RID/work
eq "the working copy's setuid file is $UA's, without set-id bits" \
	"$UA 755" "$(stat -c '%U %a' "$W/su" 2>&1)"
eq "the working copy's setgid file is $UA's, without set-id bits" \
	"$UA 755" "$(stat -c '%U %a' "$W/sg" 2>&1)"
eq "the working copy is $UA's alone (0700)" "$UA 700" \
	"$(stat -c '%U %a' "$W" 2>&1)"
eq "the run's state folder stays root's, closed to writes" "root 711" \
	"$(stat -c '%U %a' "$STATE/objects/$RID")"
check "$UA cannot forge the run's pid file" \
	eval '! as "$UA" sh -c "echo 1 1 1 > $STATE/objects/$RID/pid.x" 2>/dev/null'
check "$UA cannot plant a symlink next to the run's records" \
	eval '! as "$UA" ln -s "$ROOTDIR/secret" "$STATE/objects/$RID/exit.tmp" 2>/dev/null'
check "another user cannot enter the working copy" \
	eval '! as mlfs_ub ls "$W" >/dev/null 2>&1'

# ---- class 5: swaps while the working copy is made and handed over ---------
# The user watches and swaps inside the working copy while it is made: a
# folder becomes a symlink to a root-only folder, the old one renamed
# away; a watcher looks for any root-owned or set-id file in the copy.
# Bounded in wall time; escapes: a root-owned/set-id file seen, or the
# decoy changed.
decoy "$ROOTDIR/victim"
cat > "$U/swap.sh" <<EOF
w=\$1 end=\$((\$(date +%s) + 20))
while [ "\$(date +%s)" -lt "\$end" ] && [ ! -e "\$w/../exit" ]; do
	if [ -d "\$w/d" ] && [ ! -L "\$w/d" ]; then
		mv "\$w/d" "\$w/d.x" 2>/dev/null && ln -s "$ROOTDIR" "\$w/d" 2>/dev/null &&
			echo SWAP
	fi
	echo LOOK
	find "\$w" \( -user root -o -perm -4000 -o -perm -2000 \) ! -type d \
		-printf 'ESCAPE %u %m %p\n' 2>/dev/null
done
EOF
chown "$UA:" "$U/swap.sh"
iters=0 escapes=0 swaps=0 looks=0 end=$(($(date +%s) + 15))
while (($(date +%s) < end)); do
	iters=$((iters + 1))
	n=race$iters
	id=$(run_as "$UA" $n true) || break
	as "$UA" sh -c 'mkdir "$1/d" && for f in $(seq 1 60); do
		cp /bin/true "$1/d/f$f" && chmod u+s "$1/d/f$f"; done' sh \
		"$MNT/runs/$n"
	as "$UA" sh "$U/swap.sh" "$STATE/objects/$id/work" > "$U/esc.$n" 2>/dev/null &
	spid=$!
	submit $n
	final $n >/dev/null
	wait $spid
	escapes=$((escapes + $(grep -c ESCAPE "$U/esc.$n")))
	swaps=$((swaps + $(grep -c SWAP "$U/esc.$n")))
	looks=$((looks + $(grep -c LOOK "$U/esc.$n")))
done
echo "# class 5: $iters working copies raced (15 s): $swaps swaps, $looks looks, $escapes escapes"
eq "swaps never show a root-owned or set-id file ($iters races)" 0 "$escapes"
check "swaps never chown a root file (decoy intact)" decoy_intact "$ROOTDIR/victim"
check "nor the secret" decoy_intact "$ROOTDIR/secret"

# ---- class 3 for deployments, class 6: replica records ---------------------

D=$MNT/deployments/dep
check "$UA makes a model version" as "$UA" mkdir -p "$MNT/models/m/1"
DID=$(new_obj as "$UA" mkdir "$D")
as "$UA" sh -c "printf 'def run(d):\n    return 1\n' > '$D/score.py'"
as "$UA" sh -c "echo m:1 > '$D/model'"
as "$UA" cp /bin/true "$D/su"
as "$UA" chmod u+s "$D/su"
check "$UA deploys" as "$UA" sh -c "echo deploy > '$D/ctl'"
check "Healthy" wait_for "$D/status" Healthy 30
SNAP=$(ls -d "$STATE/objects/$DID"/gen/*/code 2>/dev/null | head -1)
eq "the snapshot's setuid file is $UA's, without set-id bits" "$UA 755" \
	"$(stat -c '%U %a' "$SNAP/su" 2>&1)"
eq "the snapshot is $UA's alone (0700)" "$UA 700" "$(stat -c '%U %a' "$SNAP" 2>&1)"
REPS=$STATE/objects/$DID/replicas
eq "replicas/ is the daemon's, closed to writes" "root 711" \
	"$(stat -c '%U %a' "$REPS" 2>&1)"
# the replica's environment: nothing of the daemon's
RPID=$(cat "$REPS"/g*.pid 2>/dev/null | awk '{print $1}' | head -1)
RENV=$(tr '\0' '\n' < "/proc/$RPID/environ" 2>/dev/null)
check "the replica runs (pid $RPID)" test -n "$RENV"
check "the daemon's environment does not reach the replica" \
	eval '! grep -qE "s3cret-61|^FOO_DAEMON=" <<<"$RENV"'
eq "the replica's HOME and USER are $UA's" "HOME=$UA_HOME USER=$UA" \
	"$(grep -E '^(HOME|USER)=' <<<"$RENV" | sort | tr '\n' ' ' | sed 's/ $//')"

# a planted symlink where the next generation's pid record goes
G=$(ls "$STATE/objects/$DID/gen" | sort -n | tail -1)
NG=$((G + 1))
as "$UA" ln -s "$ROOTDIR/pidtmp" "$REPS/g$NG-1.pid.tmp" 2>/dev/null
as "$UA" ln -s "$ROOTDIR/pidtmp" "$REPS/g$NG-1.pid" 2>/dev/null
# a forged record naming a root process, for the daemon to adopt
setsid sleep 1000 </dev/null >/dev/null 2>&1 &
VICTIM=$!
sleep 0.2
VT=$(sed 's/.*) //' "/proc/$VICTIM/stat" | awk '{print $20}')
as "$UA" sh -c "echo '$VICTIM $VT' > '$REPS/g$G-2.pid'" 2>/dev/null
check "$UA restarts" as "$UA" sh -c "echo restart > '$D/ctl'"
check "Healthy after restart" wait_for "$D/status" Healthy 30
check "a planted pid.tmp symlink overwrites no root file" \
	decoy_intact "$ROOTDIR/pidtmp"
check "unmount" unmount_ws
remount_or_bail "remount (adopts the replicas)" -o allow_other
check "$UA deletes" as "$UA" sh -c "echo delete > '$D/ctl'"
check "Draft" wait_for "$D/status" Draft 30
sleep 0.5
check "a forged pid record made delete kill no root process" \
	kill -0 "$VICTIM"
kill "$VICTIM" 2>/dev/null

# a server that points its error file at a root file, then fails
E=$MNT/deployments/leak
as "$UA" mkdir "$E"
as "$UA" sh -c "printf 'import os\nos.symlink(\"$ROOTDIR/secret\", os.environ[\"MLFS_ERROR_FILE\"])\nos._exit(3)\n' > '$E/score.py'"
as "$UA" sh -c "echo m:1 > '$E/model'"
check "$UA deploys the leaking server" as "$UA" sh -c "echo deploy > '$E/ctl'"
check "it ends Failed or Unhealthy" wait_until 30 \
	eval 'grep -qE "Failed|Unhealthy" "$E/status"'
check "no line of a root file reaches events" \
	eval '! grep -q "root secret" "$MNT/events"'
check "nor the deployment's error" eval '! grep -q "root secret" "$E/error"'
check "the secret is intact" decoy_intact "$ROOTDIR/secret"
as "$UA" sh -c "echo delete > '$E/ctl'" 2>/dev/null
wait_for "$E/status" Draft 30 >/dev/null

check "unmount exits 0" unmount_ws
done_testing
