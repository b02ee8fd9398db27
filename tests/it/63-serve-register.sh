#!/usr/bin/env bash
# Issue 11, classes 4 and 10 (and three of 11), as a hostile user would try
# them on a shared mount (daemon as root, -o allow_other):
#   register   never follows a symlink (in outputs/, in PATH, outputs/ itself),
#              never links or chowns a file that is not the run owner's,
#              strips set-id bits, leaves nothing behind when it fails, and
#              its error text is one clean sentence;
#   the scoring server checks the key before reading a body, bounds the
#              body (max_body, 413), parses Content-Length and chunked sizes
#              strictly (400), is not blocked by slow clients, and a replica
#              that stops answering its liveness probe is restarted.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
EACCES="Permission denied"
SENT="is a symbolic link: register copies only regular files and folders"

mu_users
UA=mlfs_ua
mount_or_bail "mount as root with allow_other" -o allow_other

# ---- helpers -----------------------------------------------------------------

# run_as USER NAME SCRIPT: a run of USER whose command is SCRIPT (sh), run
# to Completed.
run_as() {
	local r=$MNT/runs/$2
	as "$1" mkdir "$r" || return 1
	as "$1" sh -c "cat > '$r/job-$2.sh'" <<< "$3"
	as "$1" sh -c "echo 'sh job-$2.sh' > '$r/command'"
	as "$1" sh -c "echo submit > '$r/ctl'" || return 1
	wait_for "$r/status" Completed 30
}

# backing NAME: the run's working copy in the state dir.
backing() { dirname "$(ls -d "$STATE"/objects/*/work/"job-$1.sh")"; }

# reg_as USER RUN ARGS: write "register ARGS" to the run's ctl as USER.
reg_as() { as "$1" bash -c "echo 'register $3' > '$MNT/runs/$2/ctl'" || { cat "$MNT/runs/$2/error" >&2; return 1; }; }

no_model() { [[ ! -e $MNT/models/$1 ]] && ! ls "$MNT/models" | grep -qx "$1"; }

# ---- register: symlinks ------------------------------------------------------

mkdir -p "$T/rootdir"
chmod 700 "$T/rootdir"
decoy "$T/rootdir/secret"
decoy "$T/decoy"
run_as $UA a1 "mkdir -p outputs/sub
echo good > outputs/ok.bin
echo deep > outputs/sub/w.bin
ln -s $T/rootdir outputs/e
ln -s $T/decoy outputs/f
ln -s $T/decoy outputs/sub/g"
check "run a1 completes" test "$(cat "$MNT/runs/a1/status")" = Completed

expect_err "register a symlink to a root folder" "$EINVAL" reg_as $UA a1 "m1 e"
eq "the sentence names it" "outputs/e $SENT" "$(cat "$MNT/runs/a1/error")"
expect_err "register a symlink to a root file" "$EINVAL" reg_as $UA a1 "m1 f"
eq "the sentence names it" "outputs/f $SENT" "$(cat "$MNT/runs/a1/error")"
expect_err "register through a symlinked component" "$EINVAL" \
	reg_as $UA a1 "m1 e/secret"
eq "the sentence names the component" "outputs/e $SENT" \
	"$(cat "$MNT/runs/a1/error")"
expect_err "register a folder holding a symlink" "$EINVAL" reg_as $UA a1 "m1 sub"
eq "the sentence names the nested link" "outputs/sub/g $SENT" \
	"$(cat "$MNT/runs/a1/error")"
expect_err "register the whole outputs/ (links in it)" "$EINVAL" reg_as $UA a1 m1
check "the sentence names one of them" grep -qE "^outputs/(e|f|sub/g) $SENT\$" \
	"$MNT/runs/a1/error"
check "no model m1 was left behind" no_model m1
check "the root file is intact (root's, 0600, 1 link, same bytes)" \
	decoy_intact "$T/rootdir/secret"
check "the other root file is intact" decoy_intact "$T/decoy"
check "a plain file still registers" reg_as $UA a1 "m1 ok.bin"
eq "version 1 holds it" good "$(cat "$MNT/models/m1/1/ok.bin")"
eq "it belongs to the run's owner" "$UA" \
	"$(stat -c %U "$MNT/models/m1/1/ok.bin")"

# outputs/ itself a symlink to a root folder
run_as $UA a2 "rm -rf outputs; ln -s $T/rootdir outputs"
expect_err "register when outputs/ is a symlink" "$EINVAL" reg_as $UA a2 m2
eq "the sentence names outputs" "outputs $SENT" "$(cat "$MNT/runs/a2/error")"
expect_err "register a PATH under a symlinked outputs/" "$EINVAL" \
	reg_as $UA a2 "m2 secret"
eq "the sentence names outputs" "outputs $SENT" "$(cat "$MNT/runs/a2/error")"
check "no model m2 was left behind" no_model m2
check "the root file is intact" decoy_intact "$T/rootdir/secret"

# ---- register: files that are not the owner's, set-id bits ---------------------

# A root file given a name in a run's outputs (what fs.protected_hardlinks=0
# lets a user do, or root's own file left there): never linked, never
# chowned.
decoy "$T/decoy2"
run_as $UA a3 "mkdir -p outputs/d; echo mine > outputs/d/mine.bin
cp /bin/true outputs/tool"
# set-id bits as the user may set them on their own files (the daemon's
# chown of a working copy clears them, so set here, in the backing folder)
chmod 4755 "$(backing a3)/outputs/tool"
chmod 2755 "$(backing a3)/outputs/d"
ln "$T/decoy2" "$(backing a3)/outputs/d/root.bin"
expect_err "register a folder holding a root file" "$EACCES" reg_as $UA a3 "m3 d"
check "the sentence names the file" grep -q "outputs/d/root.bin" \
	"$MNT/runs/a3/error"
check "the root file is still root's, 0600, 2 names" eval \
	"[[ \$(stat -c '%U %G %a %h' '$T/decoy2') == 'root root 600 2' ]]"
check "no model m3 was left behind" no_model m3
rm -f "$(backing a3)/outputs/d/root.bin"
check "register a set-id file" reg_as $UA a3 "m3 tool"
eq "the version's copy has no set-id bit" 755 \
	"$(stat -c %a "$MNT/models/m3/1/tool")"
eq "and belongs to the run's owner" "$UA" "$(stat -c %U "$MNT/models/m3/1/tool")"
check "register a setgid folder" reg_as $UA a3 "m3 d"
eq "the version's folder has no set-id bit" 755 \
	"$(stat -c %a "$MNT/models/m3/2/d")"
eq "the run's own file keeps its mode (a copy, not a link)" 4755 \
	"$(stat -c %a "$(backing a3)/outputs/tool")"

# ---- register: a bounded race, a folder swapped for a symlink -------------------

# The strongest attacker: one who can rename in the run's backing folder
# while register walks it.  Every register either makes a clean version or
# fails and leaves nothing; the root file is never reached.
run_as $UA a4 "mkdir -p outputs/w; for i in 1 2 3 4 5 6 7 8; do
echo \$i > outputs/w/f\$i; done"
B4=$(backing a4)/outputs
(
	end=$((SECONDS + 8))
	while ((SECONDS < end)); do
		mv -T "$B4/w" "$B4/w.x" 2>/dev/null
		ln -s "$T/rootdir" "$B4/w" 2>/dev/null
		rm -f "$B4/w"
		mv -T "$B4/w.x" "$B4/w" 2>/dev/null
	done
) &
SWAP=$!
RACES=0
RFAIL=0
while kill -0 $SWAP 2>/dev/null; do
	RACES=$((RACES + 1))
	reg_as $UA a4 "m4 w" 2>/dev/null || RFAIL=$((RFAIL + 1))
done
wait $SWAP
echo "# register race: $RACES attempts, $RFAIL refused"
check "the race ran ($RACES registers)" eval "[[ $RACES -gt 5 ]]"
check "the root file is intact after the race" decoy_intact "$T/rootdir/secret"
check "no version holds a symlink or the secret" eval \
	"[[ -z \$(find '$MNT/models' \( -type l -o -name secret \) -print -quit) ]]"
whole_versions() {
	local v
	for v in "$MNT"/models/m4/*/; do
		[[ -d $v ]] || continue
		[[ $(ls "$v/w" 2>/dev/null | wc -l) == 8 ]] || return 1
	done
}
check "every version made in the race is whole" whole_versions
check "the daemon still answers" test -d "$MNT/models"

# ---- the scoring server: hostile clients ---------------------------------------

PY=python3
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3
ATTACK="$ROOT/tests/serve-attack.py"
D=$MNT/deployments/s1
as $UA mkdir "$D"
as $UA sh -c "printf 'def run(d):\n    return len(d)\n' > '$D/score.py'"
as $UA sh -c "echo m1:1 > '$D/model'"
for bad in "max_body = 0" "max_body = 1_0" "read_timeout = -1"; do
	expect_err "config '$bad' is refused by its write" "$EINVAL" \
		as $UA bash -c "echo '$bad' > '$D/config'"
	check "... with a sentence naming the key" grep -q "${bad%% *}" "$D/error"
	# without its newline, the line is checked at deploy
	as $UA sh -c "printf '%s' '$bad' > '$D/config'"
	expect_err "config '$bad' is refused at deploy" "$EINVAL" \
		as $UA bash -c "echo deploy > '$D/ctl'"
	check "... with a sentence naming the key" grep -q "${bad%% *}" "$D/error"
done
as $UA sh -c "printf 'max_body = 1048576\nread_timeout = 3\n' > '$D/config'"
check "$UA deploys s1" as $UA bash -c "echo deploy > '$D/ctl'"
check "s1 is Healthy" wait_for "$D/status" Healthy 30
URI=$(cat "$D/scoring_uri")
KEY=$(cat "$D/key")
HP=${URI#http://}
HP=${HP%/score}
SHOST=${HP%:*}
SPORT=${HP##*:}

# raw NAME BYTES: send BYTES (printf format) as one request; "STATUS closed|open"
raw() {
	$PY "$ATTACK" "$SHOST" "$SPORT" "$KEY" raw \
		"$(printf "$1" | od -An -v -tx1 | tr -d ' \n')"
}
score_ok() {
	[[ $(curl -s -m 10 -H "Authorization: Bearer $KEY" -d hello "$URI") == 5 ]]
}
AUTH="Authorization: Bearer $KEY\r\n"
POST="POST /score HTTP/1.1\r\nHost: t\r\n$AUTH"

check "a good request is answered" score_ok
eq "a negative chunk size: 400, closed" "400 closed" \
	"$(raw "${POST}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n")"
check "and the server still serves others" score_ok
eq "a non-hex chunk size: 400, closed" "400 closed" \
	"$(raw "${POST}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")"
eq "an overflowing chunk size: 400, closed" "400 closed" \
	"$(raw "${POST}Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nhi\r\n0\r\n\r\n")"
eq "a chunk size over max_body: 413, closed" "413 closed" \
	"$(raw "${POST}Transfer-Encoding: chunked\r\n\r\nfffffff\r\nhi\r\n")"
eq "a well-formed chunked body is scored" "200 closed" \
	"$(raw "${POST}Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")"
for cl in "1_0" "+10" " 10x" "-1" "0x10" "1e3"; do
	eq "Content-Length: '$cl' is 400" "400 closed" \
		"$(raw "${POST}Content-Length: $cl\r\n\r\n0123456789")"
done
eq "two Content-Length headers: 400" "400 closed" \
	"$(raw "${POST}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello")"
eq "Transfer-Encoding: xchunked is refused (501)" "501 closed" \
	"$(raw "${POST}Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")"
eq "Transfer-Encoding and Content-Length together: 400" "400 closed" \
	"$(raw "${POST}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n")"
eq "a body over max_body: 413 before it is sent" "413 closed" \
	"$(raw "${POST}Content-Length: 2097152\r\n\r\n")"
eq "a wrong key with a body announced: 401 before it is sent, closed" \
	"401 closed" "$(raw "POST /score HTTP/1.1\r\nContent-Length: 100\r\n\r\n")"
eq "a wrong key without a body keeps the connection" "401 open" \
	"$(raw "POST /score HTTP/1.1\r\nAuthorization: Bearer nope\r\nContent-Length: 0\r\n\r\n")"
check "the server still serves" score_ok

RPID=$(ready_pids "$D")
RSS0=$(vm_rss_kb "$RPID")
read -r ST PEAK SECS <<< "$($PY "$ATTACK" "$SHOST" "$SPORT" "$KEY" wrongkey 12 62 "$RPID")"
echo "# 12 x 62 MiB with a wrong key: statuses $ST, replica RSS ${RSS0} -> peak ${PEAK} KiB, ${SECS} s"
eq "12 connections announcing 62 MiB with a wrong key: all 401" \
	"401,401,401,401,401,401,401,401,401,401,401,401" "$ST"
check "the replica's memory stayed small (peak ${PEAK} KiB, +<32 MiB)" \
	eval "[[ ${PEAK:-999999999} -lt $((RSS0 + 32768)) ]]"
check "the server still serves" score_ok

read -r GOOD SLOWEST CLOSED <<< "$($PY "$ATTACK" "$SHOST" "$SPORT" "$KEY" slow 8 8)"
echo "# slowloris: $GOOD good answers, slowest ${SLOWEST} s, $CLOSED of 8 slow connections closed by the server"
check "a good client is answered while 8 slow clients hang ($GOOD answers)" \
	eval "[[ ${GOOD:-0} -ge 10 ]]"
check "each good answer came in under 5 s (slowest $SLOWEST s)" \
	eval "[[ \$(echo '${SLOWEST:-99} < 5' | bc) == 1 ]]"
eq "every slow connection was closed by the server (read_timeout = 3)" 8 "$CLOSED"
check "the server still serves" score_ok

# ---- liveness: a replica that stops answering is restarted ------------------------

RPID=$(ready_pids "$D")
R0=$(ev_count "deployment s1 replica 1 stopped answering its liveness probe")
kill -STOP "$RPID"
check "a stopped replica is restarted (new pid, Healthy)" wait_until 90 \
	eval "[[ -n \$(ready_pids '$D') && \$(ready_pids '$D') != '$RPID' && \$(cat '$D/status') == Healthy ]]"
check "events say why" eval "[[ \$(ev_count 'deployment s1 replica 1 stopped answering its liveness probe') -gt $R0 ]]"
check "the stopped process is gone" wait_until 10 eval "[[ ! -e /proc/$RPID ]] || grep -q '^State:.*Z' /proc/$RPID/status"
check "the new replica serves" score_ok
check "$UA deletes s1" as $UA bash -c "echo delete > '$D/ctl'"
check "s1 is Draft" wait_for "$D/status" Draft 30

# ---- the connection cap (the server alone, --max-conns 4) ---------------------------

mkdir "$T/cap"
printf 'def run(d):\n    return 1\n' > "$T/cap/score.py"
CAPPORT=$((20000 + RANDOM % 20000))
(cd "$T/cap" && MLFS_KEY=capkey exec $PY "$ROOT/targets/mlfs-serve.py" \
	--entry score.py --port $CAPPORT --max-conns 4 2> "$T/cap/log") &
CAPPID=$!
cap_up() { curl -s -m 2 "http://127.0.0.1:$CAPPORT/" >/dev/null; }
if wait_until 30 cap_up; then
	eq "past the cap a new connection gets 503, and the server goes on" \
		"503 answered" "$($PY "$ATTACK" 127.0.0.1 $CAPPORT capkey cap 4)"
else
	not_ok "the server with --max-conns 4 did not start: $(tail -1 "$T/cap/log")"
fi
kill $CAPPID 2>/dev/null
wait $CAPPID 2>/dev/null

done_testing
