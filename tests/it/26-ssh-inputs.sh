#!/usr/bin/env bash
# `inputs` on an ssh target (issue 15 items 4 and 7): a folder, a file and
# another run's outputs are copied with the run's user's rights, sent once
# into the host's cache keyed by content and reused by the next run;
# read-only for the run; an input the user cannot read fails the run with
# a sentence, never read with the daemon's rights.  And import mlfs on the
# host: mlfs.log / mlfs.param reach metrics, params and metrics.svg, and
# $MLFS_PARAMS written by hand reaches params.  Root daemon, user $UA, the
# ssh login $UH (not root: the permission bits bind it).
source "$(dirname "$0")/../lib.sh"

UA=mlfs_ua UH=mlfs_rh	# $UH: made by ssh-host.sh, the host's login
mu_users $UA
SSHD=$T/sshd
REMOTE=$T/remote	# the host's folders (the ssh login is $UH)
CACHE=$REMOTE/work/inputs

ssh_cleanup() {
	kill_recorded "$REMOTE"/*/*/pid
	chmod -R u+w "$REMOTE" 2>/dev/null
	sshd_cut
}
trap 'ssh_cleanup; cleanup' EXIT

if ! "$ROOT/scripts/ssh-host.sh" start "$SSHD" $UH >/dev/null; then
	echo "Bail out! cannot start a test sshd"
	exit 1
fi
source "$SSHD/host.env"
HA=$(getent passwd $UA | cut -d: -f6)
install -o $UA -g $UA -m 600 "$SSH_IDENTITY" "$HA/id_host"
mkdir -p "$REMOTE" && chown $UH: "$REMOTE"

U=$T/u				# the user's own data
mkdir -p "$U/data/sub" && echo alpha > "$U/data/a.txt" &&
	echo beta > "$U/data/sub/b.txt" && echo gamma > "$U/one.csv" &&
	chown -R $UA: "$U"
VAULT=$T/vault			# root's: not traversable by users
mkdir -p "$VAULT" && chmod 700 "$VAULT"
decoy "$VAULT/secret"
SECRET=$(cat "$VAULT/secret")

mount_or_bail "mount with allow_other" -o allow_other

ua() { as $UA "$@"; }
TG=$MNT/targets/box
ua mkdir "$TG" && ua sh -c "echo ssh > $TG/type" &&
	ua sh -c "printf 'host = %s\nport = %s\nuser = %s\nidentity_file = %s\nworkdir = %s\nconnect_timeout = 5\n' \
		$SSH_HOST $SSH_PORT $UH $HA/id_host $REMOTE/work > $TG/config"
check "$UA provisions an ssh target" ua sh -c "echo provision > $TG/ctl"
check "… Succeeded" wait_for "$TG/status" Succeeded 30

# mk NAME COMMAND: a Draft run of the user's on the ssh target
mk() {
	ua mkdir "$MNT/runs/$1" &&
		ua sh -c 'printf "%s\n" "$1" > "$2"' sh "$2" "$MNT/runs/$1/command" &&
		ua sh -c "echo box > '$MNT/runs/$1/target'"
}
put() { ua bash -c 'printf "%s\n" "$1" > "$2"' sh "$2" "$MNT/runs/$1/$3"; }
submit() { ua sh -c "echo submit > '$MNT/runs/$1/ctl'"; }
st() { cat "$MNT/runs/$1/status"; }
final() { wait_final "$MNT/runs/$1" 90; }
# cached: the entries of the cache on the host (KEY folders)
cached() { ls "$CACHE" 2>/dev/null | sort; }

# ---- a folder, a file, another run's outputs ---------------------------------
mk prev 'echo from-prev > "$MLFS_OUTPUTS/o.txt"'
submit prev
check "prev (the run whose outputs are read) ends" final prev
eq "prev Completed" Completed "$(st prev)"

READ='cat "$MLFS_INPUT_data/a.txt" "$MLFS_INPUT_data/sub/b.txt" "$MLFS_INPUT_one" "$MLFS_INPUT_prev/o.txt" > "$MLFS_OUTPUTS/got"
echo "$MLFS_INPUT_data" > "$MLFS_OUTPUTS/where"
echo "$MLFS_INPUT_one" >> "$MLFS_OUTPUTS/where"
{ echo x > "$MLFS_INPUT_data/new"; } 2> "$MLFS_OUTPUTS/werr"
{ echo x >> "$MLFS_INPUT_one"; } 2>> "$MLFS_OUTPUTS/werr"
{ rm -f "$MLFS_INPUT_data/a.txt"; } 2> "$MLFS_OUTPUTS/rmerr"
ls "$MLFS_INPUT_data/sub/marker" > "$MLFS_OUTPUTS/marker" 2>&1
true'
INPUTS="data $U/data
one $U/one.csv
prev runs/prev/outputs"
mk p1 "$READ"
put p1 "$INPUTS" inputs
submit p1
check "p1 ends" final p1
eq "p1 Completed" Completed "$(st p1)" || cat "$MNT/runs/p1/error" "$MNT/runs/p1/log" >&2
eq "p1 read the folder, the file and prev's outputs" \
	$'alpha\nbeta\ngamma\nfrom-prev' "$(cat "$MNT/runs/p1/outputs/got" 2>/dev/null)"
WHERE=$(cat "$MNT/runs/p1/outputs/where" 2>/dev/null)
DATA=$(sed -n 1p <<<"$WHERE")
check "MLFS_INPUT_data is a folder of the host's cache (WORKDIR/inputs/KEY)" \
	eval '[[ $DATA =~ ^$CACHE/[0-9a-f]{64}$ ]]'
check "MLFS_INPUT_one is the file, by its name, in its cache folder" \
	eval '[[ $(sed -n 2p <<<"$WHERE") =~ ^$CACHE/[0-9a-f]{64}/one.csv$ ]]'
eq "three inputs, three cache entries, no leftover .tmp" 3 "$(cached | grep -c '^[0-9a-f]\{64\}$')"
check "… and nothing else in the cache" eval '[[ $(cached | wc -l) -eq 3 ]]'
check "a write into the input failed (read-only)" \
	grep -q "Permission denied" "$MNT/runs/p1/outputs/werr"
eq "… both writes" 2 "$(grep -c "Permission denied" "$MNT/runs/p1/outputs/werr")"
check "a removal in the input failed" grep -q "Permission denied" \
	"$MNT/runs/p1/outputs/rmerr"
check "the cached input is intact" test -e "$DATA/a.txt" -a ! -e "$DATA/new"
eq "the cached input is the host login's, read-only" "$UH 444" \
	"$(stat -c '%U %a' "$DATA/a.txt")"
check "… no folder of it writable" eval \
	'[[ -z $(find "$DATA" -type d -perm /222) ]]'
check "the user's source is untouched and still theirs" \
	eval '[[ $(stat -c %U "$U/data/a.txt") == $UA && ! -e $U/data/new ]]'

# ---- the next run with the same content: nothing sent --------------------------
INODE=$(stat -c %i "$DATA")
# a mark only the cache has (the test is root): a second upload would not
# bring it, a reuse shows it to the run
chmod u+w "$DATA/sub" && touch "$DATA/sub/marker" && chmod u-w "$DATA/sub"
mk p2 "$READ"
put p2 "$INPUTS" inputs
submit p2
check "p2 ends" final p2
eq "p2 Completed" Completed "$(st p2)"
eq "p2 read the same" $'alpha\nbeta\ngamma\nfrom-prev' \
	"$(cat "$MNT/runs/p2/outputs/got" 2>/dev/null)"
eq "p2 got the same cache folder" "$WHERE" "$(cat "$MNT/runs/p2/outputs/where" 2>/dev/null)"
eq "… the same inode: not sent again" "$INODE" "$(stat -c %i "$DATA")"
check "… the run saw the cache's own mark: reused, not uploaded" \
	grep -q "sub/marker$" "$MNT/runs/p2/outputs/marker"
eq "still three entries" 3 "$(cached | wc -l)"

# changed content: a new key, the old entry stays for runs that use it
ua sh -c "echo ALPHA > $U/data/a.txt"
mk p3 'cat "$MLFS_INPUT_data/a.txt" > "$MLFS_OUTPUTS/got"; echo "$MLFS_INPUT_data" > "$MLFS_OUTPUTS/where"'
put p3 "data $U/data" inputs
submit p3
check "p3 ends" final p3
eq "p3 read the new content" ALPHA "$(cat "$MNT/runs/p3/outputs/got" 2>/dev/null)"
check "… from another cache folder" eval \
	'[[ $(cat "$MNT/runs/p3/outputs/where") != "$DATA" ]]'
eq "four entries now" 4 "$(cached | wc -l)"

# ---- inputs the user cannot read: the run fails, nothing is sent --------------
BEFORE=$(cached)
mk v1 'cat "$MLFS_INPUT_v" > "$MLFS_OUTPUTS/got"'
put v1 "v $VAULT/secret" inputs
submit v1
check "v1 ends" final v1
eq "a root-only file: the run Failed" Failed "$(st v1)"
check "error names the input and says why" grep -q \
	"input 'v': cannot read $VAULT/secret as uid $(id -u $UA): Permission denied" \
	"$MNT/runs/v1/error"
ua ln -s "$VAULT" "$U/link"
mk v2 'ls "$MLFS_INPUT_v" > "$MLFS_OUTPUTS/got"'
put v2 "v $U/link" inputs
submit v2
check "v2 ends" final v2
eq "through the user's own link to a root-only folder: Failed" Failed "$(st v2)"
check "… error names the input" grep -q "input 'v'" "$MNT/runs/v2/error"
mk v3 'true'
put v3 "gone $U/nosuch" inputs
submit v3
check "v3 ends" final v3
eq "a missing input: Failed" Failed "$(st v3)"
check "… error names it" grep -q "input 'gone': cannot read $U/nosuch.*No such file" \
	"$MNT/runs/v3/error"
eq "nothing was sent for them" "$BEFORE" "$(cached)"
check "the host never got the root-only bytes" \
	bash -c "! grep -rqF '$SECRET' '$REMOTE'"
check "the decoy is intact" decoy_intact "$VAULT/secret"

# ---- import mlfs, MLFS_PARAMS -------------------------------------------------
if command -v python3 >/dev/null; then
	mk py 'python3 - <<EOF
import mlfs, os
for i in range(5):
    mlfs.log("loss", 1.0 / (1 + i), step=i)
mlfs.param("kernel", "linear")
mlfs.log("opt", "sgd")
print("params at", os.environ["MLFS_PARAMS"])
EOF
echo "lr 0.01" >> "$MLFS_PARAMS"'
	submit py
	check "py ends" final py
	eq "py Completed (import mlfs on the host)" Completed "$(st py)" ||
		cat "$MNT/runs/py/log" >&2
	check "mlfs.log reached metrics" grep -q "^loss 0.2 4 " "$MNT/runs/py/metrics"
	check "mlfs.param reached params" grep -qx "kernel linear" "$MNT/runs/py/params"
	check "a text value logged is a param" grep -qx "opt sgd" "$MNT/runs/py/params"
	check "a line written to \$MLFS_PARAMS by hand" grep -qx "lr 0.01" \
		"$MNT/runs/py/params"
	check "MLFS_PARAMS is a file of the run's folder on the host" \
		grep -q "^params at $REMOTE/work/.*/params$" "$MNT/runs/py/log"
	check "metrics.svg plots loss" grep -q "loss" "$MNT/runs/py/metrics.svg"
	check "… with a line for it" grep -q "<polyline\|<path" "$MNT/runs/py/metrics.svg"
else
	echo "# python3 missing: import mlfs not tested"
fi

done_testing
