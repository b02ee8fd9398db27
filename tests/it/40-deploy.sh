#!/usr/bin/env bash
# Deployments on the local target: a model registered from a run, served
# over real HTTP (key, predictions, errors), init failure, every refusal of
# `deploy` (issue 5, item 5), delete, rmdir, a server of the user's own.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
ENOENT="No such file or directory"
EBUSY="Device or resource busy"
ENOTSUP="Operation not supported"
EADDRINUSE="Address already in use"

mount_or_bail

# ---- a model from a run: a tiny linear model in JSON --------------------------
R=$MNT/runs/train
mkdir "$R"
cat > "$R/train.py" <<'PY'
import json, os
out = os.environ["MLFS_OUTPUTS"]
json.dump({"w": [2.0, -1.0], "b": 0.5}, open(os.path.join(out, "linear.json"), "w"))
PY
wr "$R/command" 'python3 train.py'
wr "$R/ctl" submit
check "training run completes" wait_for "$R/status" Completed 30
check "register the run's outputs as model lin" wr "$R/ctl" "register lin"
eq "models/lin/1 exists" "1" "$(ls "$MNT/models/lin")"

# ---- the deployment ------------------------------------------------------------
D=$MNT/deployments/lin
mkdir "$D"
cat > "$D/score.py" <<'PY'
import json, os
def init():
    global model
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "linear.json")
    model = json.load(open(path))
def run(data):
    rows = json.loads(data)["data"]
    if rows == "boom":
        raise ValueError("no rows to score")
    return [sum(w * x for w, x in zip(model["w"], r)) + model["b"] for r in rows]
PY
wr "$D/model" lin:1
deploy_timed "$D" 20
check "scoring_uri is http://127.0.0.1:PORT/score" \
	eval "[[ '$URI' =~ ^http://127\.0\.0\.1:[0-9]+/score$ ]]"
eq "key is mode 0600" 600 "$(stat -c %a "$D/key")"
check "key is long and random" eval "[[ \${#KEY} -ge 32 ]]"
check "the key is not in info.json" eval "! grep -q '$KEY' '$D/info.json'"
eq "info.json status" Healthy "$(json_get "$D/info.json" status)"
eq "info.json scoring_uri" "$URI" "$(json_get "$D/info.json" scoring_uri)"
eq "model version is InUse" InUse "$(json_get "$MNT/models/lin/1/info.json" status)"

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
BASE=${URI%/score}
eq "GET / (liveness) is 200" 200 "$(code "$BASE/")"
eq "POST /score without the key is 401" 401 "$(code -d '{"data": [[1, 2]]}' "$URI")"
eq "POST /score with a wrong key is 401" 401 \
	"$(code -H 'Authorization: Bearer nope' -d '{"data": [[1, 2]]}' "$URI")"
eq "predictions: 2*1-1*2+0.5, 2*3-1*1+0.5" "[0.5, 5.5]" \
	"$(curl -s -H "Authorization: Bearer $KEY" -d '{"data": [[1, 2], [3, 1]]}' "$URI")"
eq "an exception in run() is a 500" 500 \
	"$(code -H "Authorization: Bearer $KEY" -d '{"data": "boom"}' "$URI")"
check "the 500 carries the message" eval "curl -s -H 'Authorization: Bearer $KEY' \
	-d '{\"data\": \"boom\"}' '$URI' | grep -q 'ValueError: no rows to score'"
check "the traceback is in log" wait_until 5 grep -q "raise ValueError" "$D/log"
eq "keep-alive: two requests, one connection" 1 \
	"$(curl -sv -H "Authorization: Bearer $KEY" -d '{"data": [[0, 0]]}' "$URI" \
		-H "Authorization: Bearer $KEY" -d '{"data": [[0, 0]]}' "$URI" 2>&1 |
		grep -c 'Connected to')"

# ---- refusals while serving ------------------------------------------------------
expect_err "rmdir of a Healthy deployment" "$EBUSY" rmdir "$D"
expect_err "rm -r of the model version in use" "$EBUSY" rm -r "$MNT/models/lin/1"
expect_err "a file of a version in use is read-only" "Read-only file system" \
	sh -c "echo x > '$MNT/models/lin/1/linear.json'"
eq "the model file is intact" 0.5 "$(json_get "$MNT/models/lin/1/linear.json" b)"

# ---- delete ---------------------------------------------------------------------
PIDS=$(cat "$STATE"/objects/*/replicas/*.pid | awk '{print $1}')
check "delete" wr "$D/ctl" delete
check "back to Draft" wait_for "$D/status" Draft 20
eq "scoring_uri is empty once Draft" "" "$(cat "$D/scoring_uri")"
check "the server process is gone" wait_until 30 eval "! kill -0 $PIDS 2>/dev/null"
eq "the port is closed" 000 "$(code "$BASE/")"
eq "the version is Ready again" Ready "$(json_get "$MNT/models/lin/1/info.json" status)"
expect_err "delete a Draft deployment" "$EBUSY" wr "$D/ctl" delete
expect_err "restart a Draft deployment" "$EBUSY" wr "$D/ctl" restart

# ---- init() raises ------------------------------------------------------------------
B=$MNT/deployments/broken
mkdir "$B"
printf 'def init():\n    raise ValueError("bad weights")\ndef run(d):\n    return d\n' \
	> "$B/score.py"
wr "$B/model" lin:1
check "deploy a broken entry script" wr "$B/ctl" deploy
check "it is Failed" wait_for "$B/status" Failed 20
check "error has the exception's last line" grep -q "ValueError: bad weights" "$B/error"
check "error is one sentence" has_sentence "$B/error"
check "log has the traceback" grep -q "Traceback" "$B/log"
eq "scoring_uri empty when Failed" "" "$(cat "$B/scoring_uri")"
check "rmdir of a Failed deployment" rm -r "$B"

# ---- delete while Transitioning: the starting server is stopped ------------------
S=$MNT/deployments/slow
mkdir "$S"
printf 'import time\ndef init():\n    time.sleep(60)\ndef run(d):\n    return d\n' \
	> "$S/score.py"
wr "$S/model" lin:1
check "deploy a slow starter" wr "$S/ctl" deploy
expect_err "deploy again while Transitioning" "$EBUSY" wr "$S/ctl" deploy
eq "cat ctl while Transitioning" delete "$(cat "$S/ctl")"
check "its server process starts" wait_until 10 eval "ls '$STATE'/objects/*/replicas/*.pid >/dev/null 2>&1"
SPID=$(cat "$STATE"/objects/*/replicas/*.pid | awk '{print $1}')
check "delete while Transitioning" wr "$S/ctl" delete
check "Draft" wait_for "$S/status" Draft 20
check "the starting server was stopped" eval "! kill -0 $SPID 2>/dev/null"
check "rmdir it" rm -r "$S"

# ---- every refusal of deploy: errno + one sentence in error ---------------------------
E=$MNT/deployments/e
mkdir "$E"
refused() {	# refused DESC ERRNO-TEXT ERROR-GREP
	expect_err "$1" "$2" wr "$E/ctl" deploy
	check "$1: error says so" grep -qi -- "$3" "$E/error"
	check "$1: error is one sentence" has_sentence "$E/error"
	eq "$1: still Draft" Draft "$(cat "$E/status")"
}
echo 'def run(d): return d' > "$E/score.py"
refused "deploy without model" "$EINVAL" "model is empty"
wr "$E/model" "nosuch:1"
refused "deploy an unknown model" "$ENOENT" "no model 'nosuch'"
wr "$E/model" "lin:7"
refused "deploy an unknown version" "$ENOENT" "no version '7'"
# a model without a version is refused by the write itself, which
# leaves the model as it was
expect_err "a model without a version" "$EINVAL" wr "$E/model" "lin"
check "a model without a version: error says so" \
	grep -qi -- "NAME:VERSION" "$E/error"
eq "a model without a version: the model stays" "lin:7" "$(cat "$E/model")"
wr "$E/model" "lin:1"
wr "$E/config" "entry = missing.py"
refused "deploy without the entry script" "$ENOENT" "missing.py"
for bad in "port = 70000" "port = http" "replicas = 0" "replicas = 99" \
	"host = not-an-address" "colour = blue" "ready_timeout = 0" "no equals sign"; do
	expect_err "invalid config '$bad': refused by its write" "$EINVAL" \
		wr "$E/config" "$bad"
	printf '%s' "$bad" > "$E/config"	# no newline: checked at deploy
	refused "invalid config '$bad'" "$EINVAL" "."
done
wr "$E/config" ""
mkdir "$MNT/targets/hpc"
wr "$MNT/targets/hpc/type" slurm
wr "$E/target" hpc
refused "deploy on a target that cannot host (slurm)" "$ENOTSUP" "cannot host"
wr "$E/target" nowhere
refused "deploy on an unknown target" "$ENOENT" "unknown target"
wr "$E/target" local
python3 -c 'import socket, time, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True)
time.sleep(600)' > "$T/taken" &
HOLDER=$!
check "the port holder is listening" wait_until 60 test -s "$T/taken"
wr "$E/config" "port = $(cat "$T/taken")"
refused "deploy on a port already taken" "$EADDRINUSE" "already in use"
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null
expect_err "an unknown verb" "$EINVAL" wr "$E/ctl" launch
expect_err "deploy with an argument" "$EINVAL" wr "$E/ctl" "deploy now"
check "events tell the refusals" eval "[[ \$(ev_count 'deployment e error:') -ge 10 ]]"

# ---- a server of the user's own: command = … -------------------------------------------
C=$MNT/deployments/own
mkdir "$C"
echo hello > "$C/index.html"
wr "$C/model" lin:1
wr1 "$C/config" $'command = exec python3 -m http.server --bind 127.0.0.1 "$PORT"\nport = 0\n'
check "deploy a command server" wr "$C/ctl" deploy
check "it is Healthy" wait_for "$C/status" Healthy 20
eq "it serves its folder on \$PORT" hello "$(curl -s "$(dirname "$(cat "$C/scoring_uri")")/index.html")"
check "delete it" wr "$C/ctl" delete
check "Draft again" wait_for "$C/status" Draft 20

check "unmount exits 0" unmount_ws
done_testing
