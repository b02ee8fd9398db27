#!/usr/bin/env bash
# A deployment's life on the local target: a replica killed is restarted
# (Unhealthy meanwhile), repeated crashes end in Failed, a rolling update
# under a client loop loses no request, restart, and a daemon restart
# (clean or kill -9) brings it back with the same URI and key.
source "$(dirname "$0")/../lib.sh"

mount_or_bail

# a model registered straight from a run
R=$MNT/runs/r
mkdir "$R"
wr "$R/command" 'echo "{\"scale\": 3}" > outputs/m.json'
wr "$R/ctl" submit
check "run completes" wait_for "$R/status" Completed 30
check "register" wr "$R/ctl" "register scale m.json"

D=$MNT/deployments/svc
mkdir "$D"
score() {	# score VERSION: an entry script answering x * scale and VERSION
	cat > "$D/score.py" <<PY
import json, os
def init():
    global scale
    scale = json.load(open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "m.json")))["scale"]
def run(data):
    return {"y": json.loads(data)["x"] * scale, "version": $1}
PY
}
score 1
wr "$D/model" scale:1
wr1 "$D/config" $'replicas = 2\n'
check "deploy 2 replicas" wr "$D/ctl" deploy
check "Healthy" wait_for "$D/status" Healthy 20
URI=$(cat "$D/scoring_uri")
KEY=$(cat "$D/key")
ask() { curl -s -m 5 -H "Authorization: Bearer $KEY" -d "{\"x\": ${1:-2}}" "$URI"; }
eq "it answers" '{"y": 6, "version": 1}' "$(ask)"
pids() { python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["replicas"]
print(" ".join(str(x["pid"]) for x in r if x["state"] == "ready"))' "$D/info.json"; }
P=$(pids)
eq "two replicas ready" 2 "$(wc -w <<< "$P")"

# ---- a replica dies: restarted, Unhealthy meanwhile -------------------------------
VICTIM=${P%% *}
kill -9 "$VICTIM"
check "Unhealthy after a replica died" \
	wait_until 10 grep -q "deployment svc Unhealthy" "$MNT/events"
check "the error names the crash" wait_until 5 grep -q "killed by signal 9" "$D/error"
check "Healthy again" wait_for "$D/status" Healthy 20
P2=$(pids)
check "a new process replaced it ($P -> $P2)" eval "[[ ' $P2 ' != *' $VICTIM '* && \$(wc -w <<< '$P2') == 2 ]]"
eq "it still answers" '{"y": 6, "version": 1}' "$(ask)"
eq "error is empty once Healthy" "" "$(cat "$D/error")"

# ---- rolling update under a client loop: no failed request ----------------------------
cat > "$T/client.py" <<'PY'
import http.client, json, os, sys, time
host, port, key, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
n = fails = 0
seen = []
conn = None
while not os.path.exists(stop):
    try:
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.request("POST", "/score", body='{"x": 1}',
                     headers={"Authorization": "Bearer " + key})
        r = conn.getresponse()
        body = r.read()
        n += 1
        if r.status != 200:
            fails += 1
            print("status", r.status, body, file=sys.stderr)
        else:
            v = json.loads(body)["version"]
            if not seen or seen[-1] != v:
                seen.append(v)
        if r.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = None
    except Exception as e:
        fails += 1
        print("error", repr(e), file=sys.stderr)
        conn = None
print(n, fails, ",".join(map(str, seen)))
PY
HP=${URI#http://}
HP=${HP%/score}
python3 "$T/client.py" "${HP%:*}" "${HP##*:}" "$KEY" "$T/stop" > "$T/client.out" 2> "$T/client.err" &
CLIENT=$!
sleep 0.5
score 2
check "deploy again after changing score.py" wr "$D/ctl" deploy
eq "Transitioning during the update" Transitioning "$(cat "$D/status")"
check "Healthy after the update" wait_for "$D/status" Healthy 30
sleep 0.5
touch "$T/stop"
wait "$CLIENT"
read -r NREQ NFAIL SEEN < "$T/client.out"
echo "# client: $NREQ requests, $NFAIL failed, versions seen $SEEN"
check "the client made many requests ($NREQ)" eval "[[ ${NREQ:-0} -gt 50 ]]"
eq "no failed request during the rolling update" 0 "$NFAIL"
eq "the client saw version 1 then 2" "1,2" "$SEEN"
eq "same scoring URI" "$URI" "$(cat "$D/scoring_uri")"
eq "the new version answers" '{"y": 6, "version": 2}' "$(ask)"
check "the old replicas are gone" eval "! kill -0 $P2 2>/dev/null"
eq "generation 2 serves" 2 "$(json_get "$D/info.json" generation)"

# ---- an update whose init() fails: the old generation keeps serving ---------------
cp "$D/score.py" "$T/score.good"
printf 'def init():\n    raise KeyError("weights")\ndef run(d):\n    return d\n' > "$D/score.py"
check "deploy a broken update" wr "$D/ctl" deploy
check "back to Healthy" wait_for "$D/status" Healthy 30
check "error tells the update failed" grep -q "update failed.*KeyError: 'weights'" "$D/error"
eq "the previous version still answers" '{"y": 6, "version": 2}' "$(ask)"
eq "still generation 2" 2 "$(json_get "$D/info.json" generation)"
cp "$T/score.good" "$D/score.py"

# ---- restart: new processes, same code -----------------------------------------------
P3=$(pids)
check "restart" wr "$D/ctl" restart
check "Healthy after restart" wait_for "$D/status" Healthy 30
check "new processes" eval "[[ '$(pids)' != '$P3' ]] && ! kill -0 $P3 2>/dev/null"
eq "same answers" '{"y": 6, "version": 2}' "$(ask)"

# ---- the daemon restarts: adopted, same URI and key -------------------------------------
P4=$(pids)
check "unmount (the deployment keeps serving)" unmount_ws
eq "it answers with no daemon" '{"y": 6, "version": 2}' "$(ask)"
check "mount again" mount_ws
check "Healthy after the remount" wait_for "$D/status" Healthy 20
check "both replicas seen listening" wait_until 10 eval '[[ $(pids | wc -w) == 2 ]]'
eq "same URI" "$URI" "$(cat "$D/scoring_uri")"
eq "same key" "$KEY" "$(cat "$D/key")"
eq "the same processes were adopted" "$(tr ' ' '\n' <<< "$P4" | sort | paste -sd' ')" \
	"$(pids | tr ' ' '\n' | sort | paste -sd' ')"
U0=$(ev_count 'svc Unhealthy')
crash_ws
eq "it answers after kill -9 of the daemon" '{"y": 6, "version": 2}' "$(ask)"
stop_replicas
check "mount after a crash, with the replicas gone too" mount_ws
check "it answers again (replicas restarted)" \
	wait_until 20 eval "[[ \$(ask) == '{\"y\": 6, \"version\": 2}' ]]"
check "Unhealthy meanwhile" eval "[[ \$(ev_count 'svc Unhealthy') -gt $U0 ]]"
check "Healthy again" wait_for "$D/status" Healthy 20
eq "same URI after the restart" "$URI" "$(cat "$D/scoring_uri")"

# ---- repeated crashes: Failed ---------------------------------------------------------------
# init() succeeds once, then fails: every restart after a kill crashes again
cat > "$D/score.py" <<PY
import os
def init():
    if os.path.exists("$T/inited"):
        raise RuntimeError("cannot load twice")
    open("$T/inited", "w").close()
def run(data):
    return data
PY
wr1 "$D/config" $'replicas = 1\n'
check "deploy the fragile version" wr "$D/ctl" deploy
check "Healthy" wait_for "$D/status" Healthy 20
kill -9 $(pids)
check "Failed after repeated crashes" wait_for "$D/status" Failed 30
check "error tells the crashes" grep -q "crashed 6 times" "$D/error"
check "error has the last reason" grep -q "cannot load twice" "$D/error"
eq "scoring_uri empty" "" "$(cat "$D/scoring_uri")"
check "restarts were logged in events" \
	eval "[[ \$(ev_count 'deployment svc replica 1 .*restarting') -ge 5 ]]"
check "rmdir of the Failed deployment" rm -r "$D"
eq "the model version is free again" Ready "$(json_get "$MNT/models/scale/1/info.json" status)"

check "unmount exits 0" unmount_ws
done_testing
