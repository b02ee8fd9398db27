#!/usr/bin/env bash
# Models from runs: `register NAME [PATH]` on a Completed run makes the next
# integer version from outputs/, info.json records the run, and a version
# a deployment serves is immutable (EROFS) and cannot be removed (EBUSY).
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
ENOENT="No such file or directory"
EBUSY="Device or resource busy"
EROFS="Read-only file system"

mount_or_bail

R=$MNT/runs/t
mkdir "$R"
cat > "$R/train.sh" <<'SH'
mkdir -p "$MLFS_OUTPUTS/tok"
echo weights > "$MLFS_OUTPUTS/model.bin"
echo vocab > "$MLFS_OUTPUTS/tok/vocab.txt"
SH
wr "$R/command" 'sh train.sh'
expect_err "register on a Draft run" "$EBUSY" wr "$R/ctl" "register m"
check "the sentence says why" grep -q "Completed" "$R/error"
wr "$R/ctl" submit
check "the run completes" wait_for "$R/status" Completed 30
check "cat ctl lists register" grep -qx "register NAME \[PATH\]" "$R/ctl"

# the whole of outputs/, then one file, then one folder: versions 1, 2, 3
eq "models/ is empty" "" "$(ls "$MNT/models")"
check "register m" wr "$R/ctl" "register m"
eq "ls models shows m at once" m "$(ls "$MNT/models")"
eq "version 1" 1 "$(ls "$MNT/models/m")"
eq "version 1 holds all of outputs/" "info.json model.bin tok tok/vocab.txt" \
	"$(cd "$MNT/models/m/1" && find . -mindepth 1 | sed 's|^\./||' | sort | paste -sd' ')"
eq "content copied" weights "$(cat "$MNT/models/m/1/model.bin")"
eq "no second copy of the bytes: the output's own inode" \
	"$(stat -c %i "$R/outputs/model.bin")" "$(stat -c %i "$MNT/models/m/1/model.bin")"
eq "info.json: run" t "$(json_get "$MNT/models/m/1/info.json" run)"
eq "info.json: path" outputs "$(json_get "$MNT/models/m/1/info.json" run_path)"
eq "info.json: model" m "$(json_get "$MNT/models/m/1/info.json" model)"
eq "info.json: status" Ready "$(json_get "$MNT/models/m/1/info.json" status)"
check "register m model.bin" wr "$R/ctl" "register m model.bin"
eq "version 2 holds the file" "info.json model.bin" "$(ls "$MNT/models/m/2" | paste -sd' ')"
eq "info.json: path of version 2" outputs/model.bin \
	"$(json_get "$MNT/models/m/2/info.json" run_path)"
check "register m tok/" wr "$R/ctl" "register m tok/"
eq "version 3 holds the folder" vocab "$(cat "$MNT/models/m/3/tok/vocab.txt")"
eq "ls models/m" "1 2 3" "$(ls "$MNT/models/m" | paste -sd' ')"
check "events has the registrations" eval "[[ \$(ev_count 'model m:[0-9] registered from run t') == 3 ]]"
check "a version made by hand is not counted" mkdir "$MNT/models/m/best"
check "register m again" wr "$R/ctl" "register m"
eq "the next integer is 4" "1 2 3 4 best" "$(ls "$MNT/models/m" | sort | paste -sd' ')"
check "the run's outputs are untouched" test -f "$R/outputs/model.bin"
check "a registered version is editable while unused" \
	sh -c "echo more >> '$MNT/models/m/4/model.bin'"
check "and the run's copy is not" eval "[[ \$(cat '$R/outputs/model.bin') == weights ]]"
check "the edited version's file is now a file of its own" \
	test "$(stat -c %i "$R/outputs/model.bin")" != "$(stat -c %i "$MNT/models/m/4/model.bin")"
check "truncating a still-shared version file leaves the run's alone" \
	truncate -s 0 "$MNT/models/m/1/model.bin"
eq "the run's output after the truncate" weights "$(cat "$R/outputs/model.bin")"
check "chmod of a version file leaves the run's mode alone" chmod 600 "$MNT/models/m/1/tok/vocab.txt"
eq "the run's vocab.txt mode" 644 "$(stat -c %a "$R/outputs/tok/vocab.txt")"

# refusals
expect_err "register without a name" "$EINVAL" wr "$R/ctl" register
expect_err "register a bad name" "$EINVAL" wr "$R/ctl" "register .bad"
expect_err "register a path outside outputs/" "$EINVAL" wr "$R/ctl" "register m ../train.sh"
expect_err "register an absolute path" "$EINVAL" wr "$R/ctl" "register m /etc/passwd"
expect_err "register a missing path" "$ENOENT" wr "$R/ctl" "register m nope.bin"
expect_err "register with too many words" "$EINVAL" wr "$R/ctl" "register m a b"
check "refusals leave a sentence" has_sentence "$R/error"
R2=$MNT/runs/empty
mkdir "$R2"
wr "$R2/command" true
wr "$R2/ctl" submit
check "an empty run completes" wait_for "$R2/status" Completed 30
expect_err "register a run with empty outputs/" "$ENOENT" wr "$R2/ctl" "register m"
eq "no version was made by refusals" "1 2 3 4 best" "$(ls "$MNT/models/m" | sort | paste -sd' ')"

# a version in use is frozen
D=$MNT/deployments/d
mkdir "$D"
echo 'def run(d): return d' > "$D/score.py"
wr "$D/model" m:2
check "deploy m:2" wr "$D/ctl" deploy
check "Healthy" wait_for "$D/status" Healthy 20
V=$MNT/models/m/2
eq "m:2 is InUse" InUse "$(json_get "$V/info.json" status)"
eq "info.json lists the deployment" "['d']" "$(json_get "$V/info.json" deployments)"
expect_err "write to a file of m:2" "$EROFS" bash -c "echo x >> '$V/model.bin'"
expect_err "truncate it" "$EROFS" truncate -s 0 "$V/model.bin"
expect_err "create a file in m:2" "$EROFS" touch "$V/new"
expect_err "mkdir in m:2" "$EROFS" mkdir "$V/sub"
expect_err "rename in m:2" "$EROFS" mv "$V/model.bin" "$V/x.bin"
expect_err "rm a file of m:2" "$EROFS" rm "$V/model.bin"
expect_err "rm -r m:2" "$EBUSY" rm -r "$V"
eq "m:2 is intact" weights "$(cat "$V/model.bin")"
check "other versions stay editable" sh -c "echo x > '$MNT/models/m/3/extra'"
expect_err "rm -r models/m stops at the version in use" "$EBUSY" rm -r "$MNT/models/m"
eq "only m:2 is left" 2 "$(ls "$MNT/models/m" | paste -sd' ')"
eq "its files are intact" "info.json model.bin" "$(ls "$V" | paste -sd' ')"
check "delete the deployment" wr "$D/ctl" delete
check "Draft" wait_for "$D/status" Draft 20
eq "m:2 is Ready again" Ready "$(json_get "$V/info.json" status)"
check "editable again" sh -c "echo x >> '$V/model.bin'"
check "rm -r models/m works now" rm -r "$MNT/models/m"
eq "models/ is empty" "" "$(ls "$MNT/models")"

# a name looked up while missing is there as soon as register returns (its
# absence is not cached: the kernel would keep it until the notifier
# dropped it, a moment later)
bad=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	[[ -e $MNT/models/late$i || -e $MNT/models/lv/$i ]] && bad=1
	wr "$R/ctl" "register late$i model.bin" &&
		wr "$R/ctl" "register lv model.bin" || bad=1
	[[ -e $MNT/models/late$i/1/model.bin && -e $MNT/models/lv/$i/model.bin ]] ||
		bad=1
done
eq "a model and a version seen missing just before register are there at once" 0 "$bad"
check "they go" rm -r "$MNT/models"/late* "$MNT/models/lv"
eq "models/ is empty again" "" "$(ls "$MNT/models")"

check "unmount exits 0" unmount_ws
done_testing
