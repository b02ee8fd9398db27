#!/usr/bin/env bash
# Several users (daemon as root, -o allow_other): targets are private to
# their creator until shared the Unix way, models are their creator's,
# files named in settings (token_file, identity_file) are read with the
# creator's rights, and the state dir keeps its secrets from other users.
# Attacks: a user reads the store's files, sends a root file as a Slurm
# token to their own listener, uses root's ssh key, runs on another's
# target (directly, queued across a chmod, through a deployment), changes
# another's target or model.
source "$(dirname "$0")/../lib.sh"

UA=mlfs_ua UB=mlfs_ub UC=mlfs_uc GRP=mlfs_og
mu_users $UA $UB $UC
getent group $GRP >/dev/null || groupadd $GRP
usermod -aG $GRP $UA && usermod -aG $GRP $UB
EACCES="Permission denied"
# (writes whose errno is checked go through bash: dash's echo says "I/O
# error" whatever the errno)
ATTACKS=0

# attack DESCRIPTION COMMAND...: an attempt that must fail (counted).
attack() {
	local d=$1
	shift
	ATTACKS=$((ATTACKS + 1))
	if "$@" 2>/dev/null; then not_ok "$d (it succeeded)"; else ok "$d"; fi
}

mkdir -p "$T/root" && chmod 700 "$T/root"
decoy "$T/root/secret"
mount_or_bail "mount with allow_other" -o allow_other

# ---- the state dir ------------------------------------------------------------

TA=$MNT/targets/ta
check "$UA makes target ta with umask 0" as $UA sh -c "umask 0; mkdir $TA"
eq "ta is $UA's, 0700 whatever the umask" "$UA 700" "$(stat -c '%U %a' "$TA")"
eq "targets/local is shared (0755)" 755 "$(stat -c %a "$MNT/targets/local")"
# secrets in the store: an inline token, an env value, a deployment key
as $UA sh -c "printf 'url = http://127.0.0.1:9\ntoken = TOKSECRET$$\n' \
	> $TA/config"
mkdir "$MNT/runs/envrun"
printf 'PASS=ENVSECRET%s\n' $$ > "$MNT/runs/envrun/env"
mkdir -p "$MNT/models/dm/1" "$MNT/deployments/dk"
printf 'def run(d):\n    return 1\n' > "$MNT/deployments/dk/score.py"
echo dm:1 > "$MNT/deployments/dk/model"
check "a deployment gets a key" wr "$MNT/deployments/dk/ctl" deploy
KEY=$(cat "$MNT/deployments/dk/key")
check "… not empty" test -n "$KEY"
for f in workspace.db workspace.db-wal workspace.db-shm; do
	if [[ -e $STATE/$f ]]; then
		eq "$f is 0600" 600 "$(stat -c %a "$STATE/$f")"
		attack "$UB cannot read $f" as $UB cat "$STATE/$f"
	fi
done
eq "the state dir is 0711" 711 "$(stat -c %a "$STATE")"
eq "objects/ is 0711" 711 "$(stat -c %a "$STATE/objects")"
eq "trash/ is 0700" 700 "$(stat -c %a "$STATE/trash")"
for s in "TOKSECRET$$" "ENVSECRET$$" "$KEY"; do
	ATTACKS=$((ATTACKS + 1))
	eq "grep -r of the state dir as $UB finds no ${s:0:9}…" "" \
		"$(as $UB grep -rl -- "$s" "$STATE" 2>/dev/null)"
done
check "delete the deployment" wr "$MNT/deployments/dk/ctl" delete
check "… Draft" wait_for "$MNT/deployments/dk/status" Draft 30

# ---- token_file: read with the creator's rights --------------------------------

# a listener that records every request it gets
LOGH=$T/listener.log
python3 - "$LOGH" "$T/listener.port" <<'PY' &
import http.server, sys
log = open(sys.argv[1], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log.write(self.requestline + "\n" + str(self.headers) + "\n")
        log.flush()
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_POST = do_GET
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_port))
s.serve_forever()
PY
LPID=$!
declare -F track_pid >/dev/null && track_pid "$LPID"	# reaped if killed
wait_until 10 test -s "$T/listener.port"
LPORT=$(cat "$T/listener.port")
SECRET=$(awk '{print $3}' "$T/root/secret")
HA=$(getent passwd $UA | cut -d: -f6)
rm -f "$HA"/tok* "$HA"/id_u* "$HA/swaps"	# left by an earlier run

TS=$MNT/targets/tslurm
as $UA mkdir "$TS"
as $UA sh -c "echo slurm > $TS/type; printf 'url = http://127.0.0.1:$LPORT\ntoken_file = $T/root/secret\n' > $TS/config"
ATTACKS=$((ATTACKS + 1))
expect_err "token_file = a root-only file: provision is EACCES" "$EACCES" \
	as $UA bash -c "echo provision > $TS/ctl"
check "… with the sentence" grep -q "token_file $T/root/secret: the target's creator (uid $(id -u $UA)) cannot read it" "$TS/error"
eq "… still Draft" Draft "$(cat "$TS/status")"
# the daemon's own files through /proc: magic links to its open files, its
# environment and memory map are never read for a setting
REFUSED=0 TRIED=0
for f in /proc/self/fd/{0..12} /dev/fd/3 /dev/stdin /proc/self/environ \
	/proc/self/maps /proc/$DPID/environ /proc/thread-self/fd/5 \
	"$STATE/workspace.db"; do
	as $UA sh -c "printf 'url = http://127.0.0.1:$LPORT\ntoken_file = $f\n' > $TS/config"
	TRIED=$((TRIED + 1))
	as $UA bash -c "echo provision > $TS/ctl" 2>/dev/null ||
		REFUSED=$((REFUSED + 1))
	wait_until 10 sh -c "grep -qxE 'Draft|Failed' $TS/status"
done
ATTACKS=$((ATTACKS + TRIED))
eq "token_file naming the daemon's own files: all $TRIED refused" \
	"$TRIED" "$REFUSED"
check "… the listener got nothing" test ! -s "$LOGH"
# the creator's own token works, and is what the listener gets
as $UA sh -c "echo 'SLURM_JWT=alicetok$$' > $HA/tok; chmod 600 $HA/tok"
as $UA sh -c "printf 'url = http://127.0.0.1:$LPORT\ntoken_file = $HA/tok\n' > $TS/config"
check "$UA's own token_file: provision taken" as $UA sh -c "echo provision > $TS/ctl"
check "… the listener got $UA's token" wait_until 20 grep -q "alicetok$$" "$LOGH"
wait_until 30 grep -qx Failed "$TS/status"
# race: the token file swapped for a link to the root file while the target
# is provisioned again and again (write check, then the worker's read)
as $UA sh -c "
	end=\$((\$(date +%s) + 20)); i=0
	while [ \$(date +%s) -lt \$end ]; do
		ln -sf $T/root/secret $HA/tok.l && mv -f $HA/tok.l $HA/tok
		echo 'alicetok$$' > $HA/tok.n && mv -f $HA/tok.n $HA/tok
		i=\$((i + 1))
	done; echo \$i > $HA/swaps" &
SW=$!
PROV=0
while kill -0 $SW 2>/dev/null; do
	as $UA sh -c "echo provision > $TS/ctl" 2>/dev/null && PROV=$((PROV + 1))
	wait_until 10 sh -c "grep -qxE 'Failed|Succeeded' $TS/status"
done
wait $SW
ATTACKS=$((ATTACKS + PROV))
echo "# token_file race: $(cat "$HA/swaps") swaps, $PROV provisions taken"
check "the listener never saw the root secret" bash -c "! grep -q '$SECRET' '$LOGH'"
check "the root file is intact" decoy_intact "$T/root/secret"
kill "$LPID" 2>/dev/null
wait "$LPID" 2>/dev/null

# ---- identity_file ---------------------------------------------------------------

mkdir -p "$T/root/.ssh"
ssh-keygen -q -t ed25519 -N '' -C rootkey -f "$T/root/.ssh/id_test"
chmod 600 "$T/root/.ssh/id_test"
TH=$MNT/targets/tssh
as $UA mkdir "$TH"
as $UA sh -c "echo ssh > $TH/type; printf 'host = 127.0.0.1\nport = 1\nuser = $UA\nconnect_timeout = 2\nidentity_file = $T/root/.ssh/id_test\n' > $TH/config"
ATTACKS=$((ATTACKS + 1))
expect_err "identity_file = root's key: provision is EACCES" "$EACCES" \
	as $UA bash -c "echo provision > $TH/ctl"
check "… with the sentence" grep -q "identity_file $T/root/.ssh/id_test: the target's creator (uid $(id -u $UA)) cannot read it" "$TH/error"
as $UA sh -c "ssh-keygen -q -t ed25519 -N '' -C userkey -f $HA/id_u"
as $UA sh -c "printf 'host = 127.0.0.1\nport = 1\nuser = $UA\nconnect_timeout = 2\nidentity_file = $HA/id_u\n' > $TH/config"
check "$UA's own key: provision taken" as $UA sh -c "echo provision > $TH/ctl"
check "… Failed (nothing listens on port 1)" wait_for "$TH/status" Failed 30
KC=$(ls "$STATE"/objects/*/keys/identity 2>/dev/null | head -1)
check "ssh is given a copy of the key" test -n "$KC"
eq "… root's, 0600, in a 0700 folder" "root 600 root 700" \
	"$(stat -c '%U %a' "$KC") $(stat -c '%U %a' "$(dirname "$KC")")"
check "… with $UA's key bytes" cmp -s "$KC" "$HA/id_u"
as $UA sh -c "ln -sf $T/root/.ssh/id_test $HA/id_u"
ATTACKS=$((ATTACKS + 1))
expect_err "the key swapped for a link to root's: EACCES" "$EACCES" \
	as $UA bash -c "echo provision > $TH/ctl"
check "the copy never holds root's key" bash -c "! cmp -s '$KC' '$T/root/.ssh/id_test'"
as $UA sh -c "printf 'host = 127.0.0.1\nport = 1\nuser = $UA\nconnect_timeout = 2\n' > $TH/config"
check "no identity_file: provision taken" as $UA sh -c "echo provision > $TH/ctl"
check "… Failed: root's own keys are never offered" wait_for "$TH/status" Failed 30
check "… with the reason" grep -q "identity_file is required" "$TH/error"

# ---- a private target, shared the Unix way ---------------------------------------

as $UA sh -c "echo local > $TA/type; echo 'max_concurrent = 1' > $TA/config"
check "$UA provisions ta" as $UA sh -c "echo provision > $TA/ctl"
check "ta Succeeded" wait_for "$TA/status" Succeeded 20
attack "$UB cannot list ta" as $UB ls "$TA"
attack "$UB cannot read ta's status" as $UB cat "$TA/status"
attack "$UB cannot chmod ta" as $UB chmod 755 "$TA"
attack "$UB cannot chgrp ta" as $UB chgrp $GRP "$TA"
attack "$UB cannot chown ta" as $UB chown $UB "$TA"
attack "$UB cannot provision ta" as $UB sh -c "echo deprovision > $TA/ctl"
attack "$UB cannot remove ta" as $UB rmdir "$TA"
attack "$UA cannot chgrp ta to a group not theirs" as $UA chgrp root "$TA"
eq "ta unchanged" "$UA $UA 700 Succeeded" \
	"$(stat -c '%U %G %a' "$TA") $(cat "$TA/status")"

# mkrun USER NAME TARGET COMMAND: a Draft run of USER's
mkrun() {
	as "$1" sh -c "mkdir $MNT/runs/$2 && echo $3 > $MNT/runs/$2/target &&
		echo '$4' > $MNT/runs/$2/command"
}
mkrun $UB b1 ta "id -un"
ATTACKS=$((ATTACKS + 1))
expect_err "$UB's submit to private ta: EACCES" "$EACCES" \
	as $UB bash -c "echo submit > $MNT/runs/b1/ctl"
check "… the run's error names the owner" grep -q "target 'ta' is private to $UA: ask its owner to share it (chmod go+x" "$MNT/runs/b1/error"
eq "… still Draft" Draft "$(cat "$MNT/runs/b1/status")"
mkrun $UA a1 ta "id -un"
check "$UA submits to ta" as $UA sh -c "echo submit > $MNT/runs/a1/ctl"
check "… it completes as $UA" wait_for "$MNT/runs/a1/status" Completed 30
check "$UA shares ta: chmod go+x" as $UA chmod go+x "$TA"
eq "ta is 0711" 711 "$(stat -c %a "$TA")"
check "$UB submits to ta now" as $UB sh -c "echo submit > $MNT/runs/b1/ctl"
check "… it completes" wait_for "$MNT/runs/b1/status" Completed 30
eq "… as $UB" $UB "$(cat "$MNT/runs/b1/log")"
check "chmod 777 by $UA" as $UA chmod 777 "$TA"
eq "… gives nobody else write (0755)" 755 "$(stat -c %a "$TA")"

# a group share: $UB is in $GRP, $UC is not
check "$UA: chgrp $GRP" as $UA chgrp $GRP "$TA"
check "$UA: chmod 0710" as $UA chmod 0710 "$TA"
eq "ta is $GRP's, 0710" "$GRP 710" "$(stat -c '%G %a' "$TA")"
mkrun $UB b2 ta "true"
mkrun $UC c1 ta "true"
check "$UB (in $GRP) submits" as $UB sh -c "echo submit > $MNT/runs/b2/ctl"
ATTACKS=$((ATTACKS + 1))
expect_err "$UC (not in $GRP) is refused" "$EACCES" \
	as $UC bash -c "echo submit > $MNT/runs/c1/ctl"
check "b2 completes" wait_for "$MNT/runs/b2/status" Completed 30

# queued across a chmod: the worker checks again before the run starts
check "$UA: chmod 0711" as $UA chmod 0711 "$TA"
mkrun $UA a2 ta "sleep 3600"
check "$UA occupies ta's one slot" as $UA sh -c "echo submit > $MNT/runs/a2/ctl"
check "a2 Running" wait_for "$MNT/runs/a2/status" Running 30
mkrun $UB b3 ta "id -un"
check "$UB's run is taken, Queued" as $UB sh -c "echo submit > $MNT/runs/b3/ctl"
eq "b3 Queued" Queued "$(cat "$MNT/runs/b3/status")"
check "$UA takes ta back: chmod 0700" as $UA chmod 0700 "$TA"
check "$UA cancels a2" as $UA sh -c "echo cancel > $MNT/runs/a2/ctl"
ATTACKS=$((ATTACKS + 1))
check "b3 Failed, never started" wait_for "$MNT/runs/b3/status" Failed 30
check "… because ta is private now" grep -q "private to $UA" "$MNT/runs/b3/error"
eq "… no log of it" "" "$(cat "$MNT/runs/b3/log" 2>/dev/null)"

# root may do anything, and ownership can be given
check "root chmods ta" chmod 0750 "$TA"
check "root gives ta to $UB" chown $UB "$TA"
eq "ta is $UB's" "$UB 750" "$(stat -c '%U %a' "$TA")"
attack "$UA, no longer the owner, cannot chmod it" as $UA chmod 0755 "$TA"
check "root gives it back" chown $UA "$TA"
check "root submits to private ta" sh -c "mkdir $MNT/runs/r1 && echo ta > $MNT/runs/r1/target && echo true > $MNT/runs/r1/command && echo submit > $MNT/runs/r1/ctl"
check "… it completes" wait_for "$MNT/runs/r1/status" Completed 30
check "ta's mode survives the worker's updates" test "$(stat -c %a "$TA")" = 750

# ---- deployments on a private target ---------------------------------------------

check "root chmods ta 0700" chmod 0700 "$TA"
as $UA mkdir -p "$MNT/models/ma/1"
as $UA sh -c "echo w > $MNT/models/ma/1/w.bin"
DB=$MNT/deployments/db
as $UB mkdir "$DB"
as $UB sh -c "printf 'def run(d):\n    return 1\n' > $DB/score.py; echo ma:1 > $DB/model; echo ta > $DB/target"
ATTACKS=$((ATTACKS + 1))
expect_err "$UB's deploy to private ta: EACCES" "$EACCES" \
	as $UB bash -c "echo deploy > $DB/ctl"
check "… the deployment's error says why" grep -q "target 'ta' is private to $UA" "$DB/error"
eq "… still Draft" Draft "$(cat "$DB/status")"

# ---- models ----------------------------------------------------------------------

mkrun $UA ra local "echo weights > outputs/w.txt"
as $UA sh -c "echo submit > $MNT/runs/ra/ctl"
mkrun $UB rb local "echo evil > outputs/w.txt"
as $UB sh -c "echo submit > $MNT/runs/rb/ctl"
check "ra completes" wait_for "$MNT/runs/ra/status" Completed 30
check "rb completes" wait_for "$MNT/runs/rb/status" Completed 30
check "$UA registers model mm" as $UA sh -c "echo 'register mm' > $MNT/runs/ra/ctl"
eq "mm is $UA's" $UA "$(stat -c %U "$MNT/models/mm")"
ATTACKS=$((ATTACKS + 1))
expect_err "$UB's register into $UA's mm: EACCES" "$EACCES" \
	as $UB bash -c "echo 'register mm' > $MNT/runs/rb/ctl"
check "… with a sentence" grep -q "model 'mm' belongs to" "$MNT/runs/rb/error"
eq "mm has one version" 1 "$(ls "$MNT/models/mm" | wc -l)"
attack "$UB cannot mkdir a version in mm" as $UB mkdir "$MNT/models/mm/2"
attack "$UB cannot remove mm's version" as $UB rm -rf "$MNT/models/mm/1"
attack "$UB cannot remove mm" as $UB rmdir "$MNT/models/mm"
attack "$UB cannot write mm's files" as $UB sh -c "echo x > $MNT/models/mm/1/w.txt"
attack "$UB cannot chmod mm" as $UB chmod 777 "$MNT/models/mm"
eq "mm:1 is intact" weights "$(cat "$MNT/models/mm/1/w.txt")"
check "$UB may read mm:1" as $UB cat "$MNT/models/mm/1/w.txt" >/dev/null
check "$UB registers under a name of its own" as $UB sh -c "echo 'register mb' > $MNT/runs/rb/ctl"
DM=$MNT/deployments/dbm
as $UB mkdir "$DM"
as $UB sh -c "printf 'def run(d):\n    return 1\n' > $DM/score.py; echo mm:1 > $DM/model"
check "$UB may deploy $UA's mm:1 (pins it in use)" as $UB sh -c "echo deploy > $DM/ctl"
check "… Healthy" wait_for "$DM/status" Healthy 30
check "$UB deletes it" as $UB sh -c "echo delete > $DM/ctl"
check "… Draft" wait_for "$DM/status" Draft 30
check "$UA removes its model" as $UA rm -rf "$MNT/models/mm"

# ---- modes fixed at the next mount ------------------------------------------------

check "unmount" unmount_ws
chmod 644 "$STATE"/workspace.db*
chmod 755 "$STATE/trash"
mount_or_bail "mount again" -o allow_other
eq "workspace.db is 0600 again" 600 "$(stat -c %a "$STATE/workspace.db")"
for f in "$STATE"/workspace.db-*; do
	eq "$(basename "$f") is 0600 again" 600 "$(stat -c %a "$f")"
done
eq "trash/ is 0700 again" 700 "$(stat -c %a "$STATE/trash")"
eq "ta is still $UA's, 0700" "$UA 700" "$(stat -c '%U %a' "$TA")"
check "the decoys are intact" decoy_intact "$T/root/secret"
check "unmount at the end" unmount_ws
echo "# attacks: $ATTACKS"
done_testing
