#!/usr/bin/env bash
# Races of a hostile user against submit and deploy (issue 11, classes 1,
# 3, 5): for 20 s of wall time each, the user flips a folder of the backing
# files of their run or deployment (STATE/objects/ID/files/d, which is
# theirs and reachable outside the mount) between a real folder and a
# symlink to a root-only folder, as fast as one process can, while the test
# submits runs, or deploys and deletes, again and again.  The copies the
# daemon makes (working copies, deployment snapshots) must never hold a
# root-owned file, a set-id file or the root folder's secret, and the
# decoy must come out byte-identical and root's.  Prints the iterations.
source "$(dirname "$0")/../lib.sh"

mu_users mlfs_ua
UA=mlfs_ua
ROOTDIR=$T/rootdir		# root-only: what the symlink points at
mkdir -p "$ROOTDIR" && chmod 700 "$ROOTDIR"
decoy "$ROOTDIR/secret"
cp /bin/true "$ROOTDIR/suid" && chmod 4755 "$ROOTDIR/suid"
FLIP=$T/flip.py
cat > "$FLIP" <<'PY'
import os, sys
# flip.py DIR TARGET STOPFILE: DIR <-> symlink to TARGET until STOPFILE
d, target, stop = sys.argv[1:4]
n = 0
while not os.path.exists(stop):
    try:
        os.rename(d, d + ".x")
        os.symlink(target, d)
        os.unlink(d)
        os.rename(d + ".x", d)
        n += 1
    except OSError:
        pass
print(n)
PY
chmod 644 "$FLIP"

mount_or_bail "mount as root with allow_other" -o allow_other

# fill DIR: a folder d of 20 files (one of them setuid) in an object folder
fill() {
	as $UA sh -c 'mkdir -p "$1/d" && for i in $(seq 1 20); do
		echo "file $i" > "$1/d/f$i"; done &&
		cp /bin/true "$1/d/su" && chmod u+s "$1/d/su"' sh "$1"
}
# flip_start OBJ_ID / flip_stop: the user's flipper on that object's d/
flip_start() {
	rm -f "$T/stop"
	as $UA python3 "$FLIP" "$STATE/objects/$1/files/d" "$ROOTDIR" \
		"$T/stop" >> "$T/flips" 2>/dev/null &
	FPID=$!
}
flip_stop() { touch "$T/stop"; wait "$FPID"; }
# escapes DIR...: lines naming what a copy must never hold
escapes() {
	find "$@" \( -user root -o -perm -4000 -o -perm -2000 \) ! -type d \
		-printf 'root-or-setid %u %m %p\n' 2>/dev/null
	grep -rls 'root secret' "$@" 2>/dev/null | sed 's/^/secret /'
}
: > "$T/flips"

# ---- submit -------------------------------------------------------------------
iters=0 bad=() end=$(($(now_ms) + 20000))
while (($(now_ms) < end)); do
	iters=$((iters + 1))
	r=r$iters
	id=$(new_obj as $UA mkdir "$MNT/runs/$r") || break
	fill "$MNT/runs/$r"
	as $UA sh -c "echo 'ls -R > outputs/seen 2>&1' > '$MNT/runs/$r/command'"
	flip_start "$id"
	as $UA sh -c "echo submit > '$MNT/runs/$r/ctl'"
	wait_final "$MNT/runs/$r" 60
	flip_stop
	mapfile -t -O "${#bad[@]}" bad < <(escapes "$STATE/objects/$id/work")
done
flips=$(awk '{s += $1} END {print s + 0}' "$T/flips")
echo "# submit: $iters runs raced in 20 s, $flips flips, ${#bad[@]} escapes"
check "submit: runs were raced ($iters)" test "$iters" -ge 1
eq "submit: no working copy holds a root or set-id file or the secret" "" \
	"${bad[*]:0:5}"
check "submit: the decoy is intact" decoy_intact "$ROOTDIR/secret"

# ---- deploy -------------------------------------------------------------------
D=$MNT/deployments/dep
check "$UA makes a model version" as $UA mkdir -p "$MNT/models/m/1"
DID=$(new_obj as $UA mkdir "$D")
fill "$D"
as $UA sh -c "printf 'def run(d):\n    return 1\n' > '$D/score.py'"
as $UA sh -c "echo m:1 > '$D/model'"
settled() { [[ $(cat "$D/status") =~ ^(Healthy|Failed|Draft)$ ]]; }
: > "$T/flips"
flip_start "$DID"
iters=0 healthy=0 bad=() end=$(($(now_ms) + 20000))
while (($(now_ms) < end)); do
	iters=$((iters + 1))
	as $UA sh -c "echo deploy > '$D/ctl'" 2>/dev/null
	wait_until 60 settled
	[[ $(cat "$D/status") == Healthy ]] && healthy=$((healthy + 1))
	# the snapshots of the generations (their code/ folders)
	mapfile -t -O "${#bad[@]}" bad < <(escapes "$STATE/objects/$DID"/gen/*/code)
	as $UA sh -c "echo delete > '$D/ctl'" 2>/dev/null
	wait_for "$D/status" Draft 60 >/dev/null 2>&1
done
flip_stop
flips=$(awk '{s += $1} END {print s + 0}' "$T/flips")
echo "# deploy: $iters deploys raced in 20 s ($healthy Healthy), $flips flips, ${#bad[@]} escapes"
check "deploy: deploys were raced ($iters)" test "$iters" -ge 1
eq "deploy: no snapshot holds a root or set-id file or the secret" "" \
	"${bad[*]:0:5}"
check "deploy: the decoy is intact" decoy_intact "$ROOTDIR/secret"
eq "the root folder holds what it held" "secret secret.sum suid" \
	"$(ls "$ROOTDIR" | paste -sd' ')"
check "unmount" unmount_ws
done_testing
