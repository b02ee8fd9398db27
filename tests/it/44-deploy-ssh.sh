#!/usr/bin/env bash
# Deployments on an ssh target (issue 5, item 6) against a real, private
# sshd on loopback (scripts/ssh-host.sh): the server runs on the host,
# copied there with the model; scoring_uri uses the target's host; the log
# streams back; replicas share the port; a replica killed on the host is
# restarted (Unhealthy meanwhile) and repeated crashes end in Failed;
# init() raising; a rolling update under a client loop; restart; the
# daemon killed (-9) and remounted: adopted, same URI and key; a server of
# the user's own; delete; and the refusals.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
ENOENT="No such file or directory"
EBUSY="Device or resource busy"

SSHD=$T/sshd
WORK="$T/re mote"		# a blank in the remote path, on purpose

# the daemon first (it would restart what dies), then the host's processes
trap 'keep=${KEEP:-}; KEEP=1 cleanup_deep; host_kill; sshd_cut
[[ -n $keep ]] || rm -rf "$T"' EXIT

if ! sshd_start; then
	echo "Bail out! cannot start a test sshd"
	exit 1
fi
source "$SSHD/host.env"
SSH_HOST=localhost	# a name, so that the URI shows where it comes from

mount_or_bail

B=$MNT/targets/box
mkdir "$B" && wr "$B/type" ssh
ssh_config "workdir = $WORK" "connect_timeout = 3" > "$B/config"
wr "$B/ctl" provision
check "the ssh target attaches" wait_for "$B/status" Succeeded 20

# ---- a model from a run: a tiny linear model in JSON ---------------------------
R=$MNT/runs/train
mkdir "$R"
wr "$R/command" 'echo "{\"w\": [2.0, -1.0], \"b\": 0.5}" > outputs/linear.json'
wr "$R/ctl" submit
check "training run completes" wait_for "$R/status" Completed 30
check "register it as model lin" wr "$R/ctl" "register lin"

# ---- deploy on the ssh target: 2 replicas ---------------------------------------
D=$MNT/deployments/lin
mkdir "$D"
score() {	# score VERSION: the entry script, answering with VERSION
	cat > "$D/score.py" <<PY
import json, os
def init():
    global model
    model = json.load(open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "linear.json")))
    print("loaded model, replica", os.environ["MLFS_REPLICA"],
          os.environ.get("GREETING"), flush=True)
def run(data):
    body = json.loads(data)
    if "x" in body:
        return {"y": body["x"] * model["w"][0], "version": $1}
    rows = body["data"]
    print("scored", len(rows), "rows", flush=True)
    return {"y": [sum(w * x for w, x in zip(model["w"], r)) + model["b"] for r in rows],
            "pid": os.getpid(), "version": $1}
PY
}
score 1
wr "$D/model" lin:1
wr "$D/target" box
wr1 "$D/config" $'replicas = 2\n'
ENVSECRET=env-$RANDOM$RANDOM-secret
# (d and g: names of the wrapper's own variables, harmless)
printf "GREETING=%s\nd=x\ng=y\n" "$ENVSECRET" > "$D/env"
deploy_timed "$D"	# 2 replicas, the first copy
PORT=${URI##*:}
PORT=${PORT%/score}
check "scoring_uri uses the target's host: $URI" \
	eval "[[ '$URI' =~ ^http://localhost:[0-9]+/score$ ]]"
eq "key is mode 0600" 600 "$(stat -c %a "$D/key")"
code() { curl -s -o /dev/null -w '%{http_code}' -m 5 "$@"; }
BODY='{"data": [[1, 2], [3, 1]]}'
ask() { curl -s -m 30 -H "Authorization: Bearer $KEY" -d "${1:-{\"x\": 1\}}" "$URI"; }
nrows() { python3 -c 'import json, sys; print(len(json.load(sys.stdin)["y"]))' 2>/dev/null; }
preds() { ask "$BODY" | python3 -c 'import json, sys; print(json.load(sys.stdin)["y"])'; }
eq "GET / is 200" 200 "$(code "${URI%/score}/")"
eq "POST /score without the key is 401" 401 "$(code -d '{"data": [[1, 2]]}' "$URI")"
eq "POST /score with a wrong key is 401" 401 \
	"$(code -H 'Authorization: Bearer nope' -d '{"data": [[1, 2]]}' "$URI")"
eq "predictions: 2*1-1*2+0.5, 2*3-1*1+0.5" "[0.5, 5.5]" "$(preds)"

# where it runs: on the host, from the folder copied there
P=$(ready_pids "$D")
eq "two replicas ready" 2 "$(wc -w <<< "$P")"
G1=$(ls -d "$WORK"/deploy-*/g1 2>/dev/null | head -1)
check "the generation was copied to the host's workdir" test -d "$G1"
check "… with the model" test -f "$G1/model/linear.json"
check "… and mlfs-serve.py" test -f "$G1/serve/mlfs-serve.py"
eq "… and the key, mode 0600 on the host" 600 "$(stat -c %a "$G1/serve/key" 2>/dev/null)"
runs_in_g1() {
	local p
	for p in $P; do
		[[ $(readlink "/proc/$p/cwd") == "$G1/code" ]] || return 1
	done
}
check "both servers run in the host's copy of the code" runs_in_g1
# (the pattern [k]ey does not match grep's own command line)
check "the key is on no command line on the host" \
	eval "! cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' |
		grep -qE -- '[${KEY:0:1}]${KEY:1}'"
listeners() {
	awk -v h="$(printf ':%04X' "$PORT")" '$4 == "0A" && substr($2, length($2) - 4) == h' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null | wc -l
}
eq "the replicas share the port (SO_REUSEPORT): 2 listeners" 2 "$(listeners)"
served_by() {
	local i
	for ((i = 0; i < 30; i++)); do
		ask "$BODY" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])'
	done | sort -u | wc -l
}
eq "new connections are answered by both replicas" 2 "$(served_by)"

# the log streams back
check "log has both replicas' start" \
	wait_until 5 eval "[[ \$(grep -c 'loaded model, replica' '$D/log') == 2 ]]"
check "log has the server's line" grep -q "serving score.py on 0.0.0.0:$PORT" "$D/log"
check "the env lines reach the servers on the host" \
	eval "[[ \$(grep -c 'loaded model, replica [0-9] $ENVSECRET' '$D/log') == 2 ]]"
eq "… sent in a file, mode 0600 on the host" 600 "$(stat -c %a "$G1/serve/env" 2>/dev/null)"
check "… on no command line on the host" \
	eval "! cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' |
		grep -qE -- '[${ENVSECRET:0:1}]${ENVSECRET:1}'"
eq "a 3-row request is answered" 3 \
	"$(ask '{"data": [[1, 1], [2, 2], [3, 3]]}' | nrows)"
check "a line printed while serving arrives in log" \
	wait_until 10 grep -q 'scored 3 rows' "$D/log"

# ---- refusals while it serves ----------------------------------------------------
expect_err "deprovision of a target serving a deployment" "$EBUSY" wr "$B/ctl" deprovision
check "… error says why" grep -q "serves deployment 'lin'" "$B/error"
check "… one sentence" has_sentence "$B/error"
eq "… still Succeeded" Succeeded "$(cat "$B/status")"
expect_err "rmdir of that target" "$EBUSY" rmdir "$B"

# ---- a replica killed on the host: restarted, Unhealthy meanwhile ------------------
replica_killed "$D" '{"y": 2.0, "version": 1}'

# ---- a rolling update under a client loop: no failed request ------------------------
P2=$(ready_pids "$D")
rolling_update "$D" 2 score 2
eq "the new version answers" 2 "$(json_get <(ask) version)"
check "the old servers are gone from the host" wait_until 30 eval "! kill -0 $P2 2>/dev/null"
check "the new generation has the model too" \
	test -f "$(dirname "$G1")/g2/model/linear.json"
check "the old generation's folder is removed" wait_until 5 test ! -e "$G1"

# ---- restart: new processes, same URI ------------------------------------------------
P3=$(ready_pids "$D")
check "restart" wr "$D/ctl" restart
check "generation 3 serves, Healthy" wait_until 60 serves_gen "$D" 3
check "new processes" eval "[[ '$(ready_pids "$D")' != '$P3' ]]"
check "the old ones are gone" wait_until 30 eval "! kill -0 $P3 2>/dev/null"
eq "same URI after restart" "$URI" "$(cat "$D/scoring_uri")"

# ---- a server of the user's own: command = ./serve.sh, on $PORT ------------------------
C=$MNT/deployments/own
mkdir "$C"
echo hello > "$C/index.html"
printf '#!/bin/sh\necho "own server on $PORT"\nexec python3 -m http.server --bind 0.0.0.0 "$PORT"\n' \
	> "$C/serve.sh"
chmod +x "$C/serve.sh"
wr "$C/model" lin:1
wr "$C/target" box
wr1 "$C/config" $'command = ./serve.sh\n'
check "deploy a command server" wr "$C/ctl" deploy
check "it is Healthy" wait_for "$C/status" Healthy 20
CURI=$(cat "$C/scoring_uri")
eq "it serves its folder on \$PORT" hello "$(curl -s -m 5 "${CURI%/score}/index.html")"
CPORT=${CURI##*:}
check "its log streams back" wait_until 5 grep -q "own server on ${CPORT%/score}" "$C/log"

# ---- the daemon killed (-9) and mounted again: adopted, same URI and key -------------
P4=$(ready_pids "$D")
# 2 replicas of generation 1, 1 restarted, 2 of generation 2, 2 of 3
eq "the log has every replica's start once" 7 "$(grep -c 'loaded model' "$D/log")"
crash_ws
eq "it answers with no daemon" 2 "$(json_get <(ask) version)"
remount_or_bail "mount again after kill -9"
check "Healthy after the remount" wait_for "$D/status" Healthy 20
check "both replicas seen listening" wait_until 10 eval '[[ $(ready_pids "$D" | wc -w) == 2 ]]'
eq "same URI" "$URI" "$(cat "$D/scoring_uri")"
eq "same key" "$KEY" "$(cat "$D/key")"
eq "the same processes were adopted" "$(tr ' ' '\n' <<< "$P4" | sort | paste -sd' ')" \
	"$(ready_pids "$D" | tr ' ' '\n' | sort | paste -sd' ')"
eq "still serving" "[0.5, 5.5]" "$(preds)"
eq "a 4-row request is answered after adoption" 4 \
	"$(ask '{"data": [[9, 9], [9, 9], [9, 9], [9, 9]]}' | nrows)"
check "the log streams on after adoption" wait_until 10 grep -q 'scored 4 rows' "$D/log"
eq "… and still once after the adoption" 7 "$(grep -c 'loaded model' "$D/log")"
check "the first-generation command server is Healthy too" wait_for "$C/status" Healthy 20
eq "… with its picked port: same URI" "$CURI" "$(cat "$C/scoring_uri")"
check "delete it" wr "$C/ctl" delete
check "Draft again" wait_for "$C/status" Draft 20

# ---- liveness: a replica that stops answering on the host is restarted ---------------
RPID=$(ready_pids "$D" | cut -d' ' -f1)
R0=$(ev_count "deployment lin replica [0-9]+ stopped answering its liveness probe")
kill -STOP "$RPID"
check "a stopped replica on the host is restarted (new pid, Healthy)" wait_until 90 \
	eval "[[ \$(ready_pids '$D' | wc -w) == 2 && \$(ready_pids '$D') != *$RPID* && \$(cat '$D/status') == Healthy ]]"
check "events say why" eval "[[ \$(ev_count 'deployment lin replica [0-9]+ stopped answering its liveness probe') -gt $R0 ]]"
check "the stopped process is gone" wait_until 10 eval "[[ ! -e /proc/$RPID ]] || grep -q '^State:.*Z' /proc/$RPID/status"
eq "the new replica serves" "[0.5, 5.5]" "$(preds)"

# ---- init() raises ---------------------------------------------------------------------
F=$MNT/deployments/broken
mkdir "$F"
printf 'def init():\n    raise ValueError("bad weights")\ndef run(d):\n    return d\n' \
	> "$F/score.py"
wr "$F/model" lin:1
wr "$F/target" box
check "deploy a broken entry script" wr "$F/ctl" deploy
check "it is Failed" wait_for "$F/status" Failed 30
check "error has the exception's last line" grep -q "ValueError: bad weights" "$F/error"
check "error is one sentence" has_sentence "$F/error"
check "log has the traceback" grep -q "Traceback" "$F/log"
eq "scoring_uri empty when Failed" "" "$(cat "$F/scoring_uri")"
check "rm -r of the Failed deployment" rm -r "$F"

# ---- a fixed port already taken on the host: Failed with the reason ---------------------
python3 -c 'import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True)
time.sleep(600)' > "$T/taken" &
HOLDER=$!
check "the port holder is listening" wait_until 60 test -s "$T/taken"
X=$MNT/deployments/taken
mkdir "$X" && cp "$D/score.py" "$X/" && wr "$X/model" lin:1 && wr "$X/target" box
wr "$X/config" "port = $(cat "$T/taken")"
check "deploy on a taken port: the write succeeds (no network in a write)" wr "$X/ctl" deploy
check "… then Failed" wait_for "$X/status" Failed 20
check "… error says the port is in use on the host" \
	grep -q "port $(cat "$T/taken") on localhost is already in use" "$X/error"
check "… one sentence" has_sentence "$X/error"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null

# ---- repeated crashes: Failed ---------------------------------------------------------------
crash_loop "$X"

# ---- the refusals of deploy on ssh targets ------------------------------------------------
E=$MNT/deployments/e
mkdir "$E"
echo 'def run(d): return d' > "$E/score.py"
wr "$E/model" lin:1
refused() {	# refused DESC ERRNO-TEXT ERROR-GREP
	expect_err "$1" "$2" wr "$E/ctl" deploy
	check "$1: error says so" grep -qi -- "$3" "$E/error"
	check "$1: error is one sentence" has_sentence "$E/error"
	eq "$1: still Draft" Draft "$(cat "$E/status")"
}
mkdir "$MNT/targets/idle" && wr "$MNT/targets/idle/type" ssh
wr "$E/target" idle
refused "deploy on an ssh target never provisioned" "$EBUSY" "provision it first"
wr "$E/target" box
wr "$E/config" "entry = missing.py"
refused "deploy without the entry script" "$ENOENT" "missing.py"
expect_err "a bad host is refused by its write" "$EINVAL" \
	wr "$E/config" "host = not-an-address"
printf 'host = not-an-address' > "$E/config"	# no newline: checked at deploy
refused "deploy with a bad host" "$EINVAL" "host must be an IP address"
expect_err "too many replicas are refused by the write" "$EINVAL" \
	wr "$E/config" "replicas = 99"
printf 'replicas = 99' > "$E/config"
refused "deploy with too many replicas" "$EINVAL" "replicas"
wr "$E/config" ""

# the host unreachable: Failed with the reason, the serving one unharmed
sshd_cut
check "deploy while the host is unreachable: the write succeeds" wr "$E/ctl" deploy
check "… then Failed" wait_for "$E/status" Failed 30
check "… error says the host is unreachable" grep -q "unreachable" "$E/error"
eq "the deployment already serving still answers" "[0.5, 5.5]" "$(preds)"
eq "… and is still Healthy" Healthy "$(cat "$D/status")"
check "sshd back" sshd_start

# ---- delete: the servers stop, their folder leaves the host --------------------------------
P5=$(ready_pids "$D")
check "delete" wr "$D/ctl" delete
check "back to Draft" wait_for "$D/status" Draft 20
eq "scoring_uri is empty once Draft" "" "$(cat "$D/scoring_uri")"
check "the servers are gone from the host" wait_until 30 eval "! kill -0 $P5 2>/dev/null"
eq "the port is closed" 000 "$(code "${URI%/score}/")"
check "delete the crashed one" wr "$X/ctl" delete
check "… Draft (its servers stopped before the deprovision is allowed)" \
	wait_for "$X/status" Draft 30
check "nothing of the deployments is left on the host" \
	wait_until 10 eval "[[ -z \$(ls -d '$WORK'/deploy-* 2>/dev/null) ]]"
check "deprovision works once nothing is deployed" wr "$B/ctl" deprovision
check "… Draft" wait_for "$B/status" Draft 20

check "unmount exits 0" unmount_ws
done_testing
