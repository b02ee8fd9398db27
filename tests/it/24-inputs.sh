#!/usr/bin/env bash
# `inputs` (issue 15 item 4): a run reads a folder of the daemon's machine,
# another run's outputs or a model version by reference -- never copied
# through the mount -- as $MLFS_INPUT_NAME, read-only for the run (the
# daemon is root here).  Bad lines refused inside the write; an input of
# another run's outputs waits for that run; attacks: a path the run's user
# cannot reach (directly, through a link of theirs) is refused, not opened
# with the root supervisor's rights.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
mu_users mlfs_ua mlfs_ub
UA=mlfs_ua
U=$T/u				# the user's own data
mkdir -p "$U/data/sub" && echo alpha > "$U/data/a.txt" &&
	echo beta > "$U/data/sub/b.txt" && chown -R "$UA:" "$U"
VAULT=$T/vault			# root's: not traversable by users
mkdir -p "$VAULT" && chmod 700 "$VAULT"
echo "vault $RANDOM$RANDOM" > "$VAULT/pub" && chmod 644 "$VAULT/pub"
decoy "$VAULT/secret"

mount_or_bail "mount as root with allow_other" -o allow_other

ua() { as "$UA" "$@"; }
# mk NAME COMMAND: a Draft run of the user's
mk() {
	ua mkdir "$MNT/runs/$1" &&
		ua sh -c 'printf "%s\n" "$1" > "$2"' sh "$2" "$MNT/runs/$1/command"
}
# put RUN TEXT FILE: one write (bash: dash's printf says "I/O error" for
# any failed write)
put() { ua bash -c 'printf "%s\n" "$1" > "$2"' sh "$2" "$MNT/runs/$1/$3"; }
submit() { ua sh -c "echo submit > '$MNT/runs/$1/ctl'"; }
st() { cat "$MNT/runs/$1/status"; }
final() { wait_final "$MNT/runs/$1" 60; }

# ---- refused inside the write --------------------------------------------
mk bad true
put bad "data $U/data" inputs
eq "an absolute path accepted" "data $U/data" "$(cat "$MNT/runs/bad/inputs")"
for line in "1x $U/data" "a-b $U/data" "data" "data rel/path" \
	"data runs/nosuch/outputs" "data runs/bad/work" "data models/nosuch/1" \
	"data runs/bad/outputs/../../files" $'data /a\nDATA /b\ndata /c'; do
	expect_err "refused: ${line//$'\n'/ | }" "$EINVAL" put bad "$line" inputs
done
put bad "1x /tmp" inputs 2>/dev/null
check "error: not an input name" grep -q "not an input name" "$MNT/runs/bad/error"
put bad "d runs/nosuch/outputs" inputs 2>/dev/null
check "error: the unknown run" grep -q "no run 'nosuch'" "$MNT/runs/bad/error"
put bad "d some/where" inputs 2>/dev/null
check "error: the shapes a path may take" grep -q \
	"runs/RUN/outputs" "$MNT/runs/bad/error"
put bad "d models/nosuch/1" inputs 2>/dev/null
check "error: the unknown model" grep -q "no model 'nosuch'" "$MNT/runs/bad/error"
expect_err "a run reading its own outputs refused" "$EINVAL" \
	put bad "me runs/bad/outputs" inputs
mk cyc true
put cyc bad after
expect_err "a cycle through after refused" "$EINVAL" \
	put bad "x runs/cyc/outputs" inputs
check "the cycle is explained" grep -q cycle "$MNT/runs/bad/error"

# ---- an absolute path: read, never written --------------------------------
mk p 'cat "$MLFS_INPUT_data/a.txt" "$MLFS_INPUT_data/sub/b.txt" > "$MLFS_OUTPUTS/got"
echo "$MLFS_INPUT_data" > "$MLFS_OUTPUTS/where"
{ echo x > "$MLFS_INPUT_data/new"; } 2> "$MLFS_OUTPUTS/werr"
{ rm -f "$MLFS_INPUT_data/a.txt"; } 2> "$MLFS_OUTPUTS/rmerr"
touch "$MLFS_OUTPUTS/done"'
put p "data $U/data" inputs
check "info.json shows inputs" grep -q '"inputs"' "$MNT/runs/p/info.json"
submit p
check "the run ends" final p
eq "it completed" Completed "$(st p)"
eq "it read the input's files" $'alpha\nbeta' "$(cat "$MNT/runs/p/outputs/got")"
eq "MLFS_INPUT_data is the folder itself (no copy)" "$U/data" \
	"$(cat "$MNT/runs/p/outputs/where")"
check "a write into the input failed: read-only" grep -q "Read-only file system" \
	"$MNT/runs/p/outputs/werr"
check "a removal in the input failed: read-only" grep -q "Read-only file system" \
	"$MNT/runs/p/outputs/rmerr"
check "no file was made in the input" test ! -e "$U/data/new"
check "no file was removed from the input" test -e "$U/data/a.txt"
check "the user's folder stays writable outside the run" ua touch "$U/data/after"

# ---- another run's outputs: waits for it, then reads them -----------------
mk a "while [ ! -e $T/go-a ]; do sleep 0.05; done; echo from-a > \"\$MLFS_OUTPUTS/o.txt\""
mk b 'cat "$MLFS_INPUT_prev/o.txt" > "$MLFS_OUTPUTS/got"
{ echo y > "$MLFS_INPUT_prev/o.txt"; } 2> "$MLFS_OUTPUTS/werr" || true'
put b "prev runs/a/outputs" inputs
submit b
submit a
check "b waits for a, which it reads" wait_until 30 \
	grep -q "waiting for a" "$MNT/runs/b/error"
eq "b is Queued meanwhile" Queued "$(st b)"
touch "$T/go-a"
check "b ends" final b
eq "b completed" Completed "$(st b)"
eq "b read a's output" from-a "$(cat "$MNT/runs/b/outputs/got")"
check "b could not write into a's outputs" grep -q "Read-only" \
	"$MNT/runs/b/outputs/werr"
eq "a's output is intact" from-a "$(cat "$MNT/runs/a/outputs/o.txt")"

mk f "exit 3"
mk g 'ls "$MLFS_INPUT_x"'
put g "x runs/f/outputs" inputs
submit g
submit f
check "g ends" final g
eq "g canceled: what it reads failed" Canceled "$(st g)"
check "the sentence names f" grep -q "run 'f'" "$MNT/runs/g/error"

# ---- a model version --------------------------------------------------------
mk reg 'echo w1 > "$MLFS_OUTPUTS/weights.bin"'
submit reg
check "reg completes" final reg
ua sh -c "echo 'register m' > '$MNT/runs/reg/ctl'"
mk m 'cat "$MLFS_INPUT_model/weights.bin" > "$MLFS_OUTPUTS/got"
cat "$MLFS_INPUT_one" >> "$MLFS_OUTPUTS/got"'
put m $'model models/m/1\none models/m/1/weights.bin' inputs
submit m
check "m ends" final m
eq "m read the version (folder and file)" $'w1\nw1' "$(cat "$MNT/runs/m/outputs/got")"

# ---- attacks: paths the user cannot reach ------------------------------------
mk v1 'cat "$MLFS_INPUT_v" > "$MLFS_OUTPUTS/got"'
put v1 "v $VAULT/pub" inputs
submit v1
check "v1 ends" final v1
eq "a path in a folder the user cannot enter: the run fails" Failed "$(st v1)"
check "the log says the input could not be opened" grep -q \
	"input $VAULT/pub: cannot open it: Permission denied" "$MNT/runs/v1/log"
check "nothing of it reached outputs" sh -c "! grep -rq vault '$MNT/runs/v1/outputs'"
ua ln -s "$VAULT" "$U/link"
mk v2 'cat "$MLFS_INPUT_v/pub" "$MLFS_INPUT_v/secret" > "$MLFS_OUTPUTS/got"'
put v2 "v $U/link" inputs
submit v2
check "v2 ends" final v2
eq "through the user's own link: the run fails" Failed "$(st v2)"
check "nothing of it reached outputs" sh -c "! grep -rq vault '$MNT/runs/v2/outputs'"
check "the decoy is intact" decoy_intact "$VAULT/secret"
mk v3 'cat "$MLFS_INPUT_v" > "$MLFS_OUTPUTS/got"'
put v3 "v $VAULT/secret" inputs
submit v3
check "v3 ends" final v3
eq "a root-only file: the run fails" Failed "$(st v3)"
check "no secret in outputs" sh -c "! grep -rq 'root secret' '$MNT/runs/v3/outputs'"

# an input holding the run's own working folder would make it read-only
mk w 'touch "$MLFS_OUTPUTS/x"'
put w "all $T" inputs
submit w
check "w ends" final w
eq "an input holding the working folder: the run fails" Failed "$(st w)"
check "the log says why" grep -q "working directory" "$MNT/runs/w/log"

done_testing
