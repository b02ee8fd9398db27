#!/usr/bin/env bash
# The models/ and deployments/ trees: folders, files, control files.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
EEXIST="File exists"

mount_or_bail

# ---- models ---------------------------------------------------------------------
check "models/ exists" test -d "$MNT/models"
eq "models/ starts empty" "" "$(ls "$MNT/models")"
check "mkdir models/m1" mkdir "$MNT/models/m1"
check "mkdir models/m1/1" mkdir "$MNT/models/m1/1"
check "mkdir models/m1/2" mkdir "$MNT/models/m1/2"
eq "ls models" m1 "$(ls "$MNT/models")"
eq "ls models/m1 lists the versions" "1 2" "$(ls "$MNT/models/m1" | paste -sd' ')"
expect_err "mkdir an existing version" "$EEXIST" mkdir "$MNT/models/m1/1"
expect_err "mkdir an invalid version name" "$EINVAL" mkdir -- "$MNT/models/m1/-x"
head -c 100000 /dev/urandom > "$T/weights.bin"
echo '{"lr": 0.1}' > "$T/params.json"
V=$MNT/models/m1/1
check "cp a file into a version" cp "$T/weights.bin" "$V/weights.bin"
check "cp a second file" cp "$T/params.json" "$V/params.json"
check "read it back identical" cmp "$T/weights.bin" "$V/weights.bin"
eq "small file read back" '{"lr": 0.1}' "$(cat "$V/params.json")"
eq "stat size" 100000 "$(stat -c %s "$V/weights.bin")"
ls_v=$(ls "$V" | paste -sd' ')
check "ls the version shows both files ($ls_v)" \
	eval "[[ ' $ls_v ' == *' weights.bin '* && ' $ls_v ' == *' params.json '* ]]"
check "a subfolder in a version" mkdir "$V/tok"
check "a file in it" cp "$T/params.json" "$V/tok/p.json"
eq "find in the version" "params.json tok tok/p.json weights.bin" \
	"$(cd "$V" && find . -mindepth 1 | sed 's|^\./||' | grep -v '^info.json$' | sort | paste -sd' ')"
check "grep -r finds text in a model" grep -rq '"lr"' "$MNT/models/m1"
check "version has info.json" test -f "$V/info.json"
check "version info.json is valid JSON" json_ok "$V/info.json"
eq "version 2 is empty (but for generated files)" "" \
	"$(ls "$MNT/models/m1/2" | grep -v '^info.json$')"
check "files of one version are not in the other" test ! -e "$MNT/models/m1/2/weights.bin"
check "mv a file within a version" mv "$V/params.json" "$V/hparams.json"
eq "moved file content" '{"lr": 0.1}' "$(cat "$V/hparams.json")"
check "rm a file in a version" rm "$V/tok/p.json"
check "rmdir an empty subfolder" rmdir "$V/tok"
check "rm -r an unused version" rm -r "$MNT/models/m1/2"
eq "ls models/m1 after removing 2" 1 "$(ls "$MNT/models/m1" | paste -sd' ')"
check "a second model" mkdir "$MNT/models/m2"
eq "ls models" "m1 m2" "$(ls "$MNT/models" | paste -sd' ')"
check "files survive in the state dir, not the database" \
	eval "find '$STATE/objects' -name weights.bin | grep -q ."

# ---- deployments ------------------------------------------------------------------
D=$MNT/deployments/d1
check "deployments/ exists" test -d "$MNT/deployments"
check "mkdir deployments/d1" mkdir "$D"
eq "ls deployments" d1 "$(ls "$MNT/deployments")"
for f in model target config ctl status scoring_uri key log error info.json; do
	check "d1 has $f" test -e "$D/$f"
done
eq "d1 is Draft" Draft "$(cat "$D/status")"
eq "d1 scoring_uri empty while Draft" "" "$(cat "$D/scoring_uri")"
eq "d1 error empty" "" "$(cat "$D/error")"
eq "d1 key is mode 0600" 600 "$(stat -c %a "$D/key")"
check "d1 info.json is valid JSON" json_ok "$D/info.json"
eq "d1 info.json status" Draft "$(json_get "$D/info.json" status)"
check "cat ctl of a Draft deployment lists deploy" grep -qx deploy "$D/ctl"
check "write model" wr "$D/model" "m1:1"
eq "read model back" "m1:1" "$(cat "$D/model")"
check "write config" wr "$D/config" "entry = score.py"
eq "read config back" "entry = score.py" "$(cat "$D/config")"
check "copy score.py into the deployment" \
	eval "printf 'def run(x):\n    return x\n' > '$D/score.py'"
eq "score.py read back" "def run(x):" "$(head -1 "$D/score.py")"
ls_d=$(ls "$D" | paste -sd' ')
check "ls d1 shows the control files and score.py ($ls_d)" \
	eval "[[ ' $ls_d ' == *' score.py '* && ' $ls_d ' == *' scoring_uri '* && ' $ls_d ' == *' ctl '* ]]"
expect_err "mkdir an invalid deployment name" "$EINVAL" mkdir -- "$MNT/deployments/.d"
check "rmdir a Draft deployment" rm -r "$D"
check "d1 gone" test ! -e "$D"

check "unmount exits 0" unmount_ws
done_testing
