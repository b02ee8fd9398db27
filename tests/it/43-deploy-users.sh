#!/usr/bin/env bash
# A deployment made by another user (-o allow_other, daemon as root) serves
# as that user, never as root, and its key belongs to that user.
source "$(dirname "$0")/../lib.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "ok 1 # SKIP needs root (to be several users)"
	exit 0
fi
U=mlfs_td
test_user "$U"
as() { setpriv --reuid="$U" --regid="$U" --init-groups "$@"; }
chmod 755 "$T"
mount_or_bail "mount with allow_other" -o allow_other

D=$MNT/deployments/mine
check "mkdir models/m/1 as $U" as mkdir -p "$MNT/models/m/1"
check "mkdir a deployment as $U" as mkdir "$D"
as sh -c "printf 'import os\ndef run(d):\n    return os.getuid()\n' > '$D/score.py'"
as sh -c "echo m:1 > '$D/model'"
check "$U deploys" as sh -c "echo deploy > '$D/ctl'"
check "Healthy" wait_for "$D/status" Healthy 20
eq "the server runs as $U" "$(id -u "$U")" \
	"$(curl -s -H "Authorization: Bearer $(cat "$D/key")" -d x "$(cat "$D/scoring_uri")")"
eq "the key belongs to $U" "$U 600" "$(stat -c '%U %a' "$D/key")"
check "$U reads the key" as sh -c "cat '$D/key' >/dev/null"
check "$U deletes" as sh -c "echo delete > '$D/ctl'"
check "Draft" wait_for "$D/status" Draft 20
check "unmount exits 0" unmount_ws
done_testing
