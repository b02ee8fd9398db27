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
pids() { ready_pids "$D"; }
P=$(pids)
eq "two replicas ready" 2 "$(wc -w <<< "$P")"

# ---- a replica dies: restarted, Unhealthy meanwhile -------------------------------
replica_killed "$D" '{"y": 6, "version": 1}'

# ---- rolling update under a client loop: no failed request ----------------------------
P2=$(pids)
rolling_update "$D" 2 score 2
eq "the new version answers" '{"y": 6, "version": 2}' "$(ask)"
check "the old replicas are gone" wait_until 30 eval "! kill -0 $P2 2>/dev/null"

# ---- … and under a client that connects for each request ------------------------------
# The old replicas close their listening sockets on the shared port as they
# drain: a connection still being made to one of them was reset, unless the
# kernel hands it to another (net.ipv4.tcp_migrate_req, which the daemon
# turns on as root).
if ((EUID == 0)); then
	eq "net.ipv4.tcp_migrate_req is on" 1 \
		"$(cat /proc/sys/net/ipv4/tcp_migrate_req)"
fi
P2=$(pids)
CLIENT_FRESH=1 rolling_update "$D" 3 score 3
check "the old replicas are gone" wait_until 30 eval "! kill -0 $P2 2>/dev/null"

# ---- a drain answers what waits in its listening queue ----------------------------
# The server alone: stopped, it lets 5 connections wait in its queue with
# their requests, then gets TERM: it takes them as it stops listening and
# answers each before it exits (it once exited before the tasks that make
# their transports had run: each was reset).
mkdir "$T/drain"
printf 'def run(d):\n    return 1\n' > "$T/drain/score.py"
DPORT=$((20000 + RANDOM % 20000))
(cd "$T/drain" && MLFS_KEY=dk exec /usr/bin/python3 "$ROOT/targets/mlfs-serve.py" \
	--entry score.py --port $DPORT 2> "$T/drain/log") &
SPID=$!
drain_up() { curl -s -m 2 "http://127.0.0.1:$DPORT/" >/dev/null; }
queued() { [[ $(ss -Hltn "sport = :$DPORT" | awk '{print $2}') == 5 ]]; }
if check "the server alone starts" wait_until 30 drain_up; then
	kill -STOP $SPID
	CURLS=()
	for i in 1 2 3 4 5; do
		curl -s -m 60 -o /dev/null -w '%{http_code}\n' -H 'Authorization: Bearer dk' \
			-d '{"x": 1}' "http://127.0.0.1:$DPORT/score" > "$T/drain/c$i" &
		CURLS+=($!)
	done
	check "5 connections wait in its queue" wait_until 30 queued
	kill -TERM $SPID
	kill -CONT $SPID
	wait "${CURLS[@]}"
	eq "each is answered" "200 200 200 200 200" "$(cat "$T"/drain/c? | xargs)"
fi
kill -CONT $SPID 2>/dev/null
check "the server exits once they are" wait_until 30 eval "! kill -0 $SPID 2>/dev/null"
check "... with nothing left behind in its log" eval "! grep -q 'Task was destroyed' '$T/drain/log'"

# ---- an update whose init() fails: the old generation keeps serving ---------------
cp "$D/score.py" "$T/score.good"
printf 'def init():\n    raise KeyError("weights")\ndef run(d):\n    return d\n' > "$D/score.py"
check "deploy a broken update" wr "$D/ctl" deploy
check "back to Healthy" wait_for "$D/status" Healthy 30
check "error tells the update failed" grep -q "update failed.*KeyError: 'weights'" "$D/error"
eq "the previous version still answers" '{"y": 6, "version": 3}' "$(ask)"
eq "still generation 3" 3 "$(json_get "$D/info.json" generation)"
cp "$T/score.good" "$D/score.py"

# ---- restart: new processes, same code -----------------------------------------------
P3=$(pids)
check "restart" wr "$D/ctl" restart
check "Healthy after restart" wait_for "$D/status" Healthy 30
check "new processes" eval "[[ '$(pids)' != '$P3' ]]"
check "the old ones are gone" wait_until 30 eval "! kill -0 $P3 2>/dev/null"
eq "same answers" '{"y": 6, "version": 3}' "$(ask)"

# ---- the daemon restarts: adopted, same URI and key -------------------------------------
P4=$(pids)
check "unmount (the deployment keeps serving)" unmount_ws
eq "it answers with no daemon" '{"y": 6, "version": 3}' "$(ask)"
check "mount again" mount_ws
check "Healthy after the remount" wait_for "$D/status" Healthy 20
check "both replicas seen listening" wait_until 10 eval '[[ $(pids | wc -w) == 2 ]]'
eq "same URI" "$URI" "$(cat "$D/scoring_uri")"
eq "same key" "$KEY" "$(cat "$D/key")"
eq "the same processes were adopted" "$(tr ' ' '\n' <<< "$P4" | sort | paste -sd' ')" \
	"$(pids | tr ' ' '\n' | sort | paste -sd' ')"
U0=$(ev_count 'svc Unhealthy')
crash_ws
eq "it answers after kill -9 of the daemon" '{"y": 6, "version": 3}' "$(ask)"
stop_replicas
check "mount after a crash, with the replicas gone too" mount_ws
check "it answers again (replicas restarted)" \
	wait_until 20 eval "[[ \$(ask) == '{\"y\": 6, \"version\": 3}' ]]"
check "Unhealthy meanwhile" eval "[[ \$(ev_count 'svc Unhealthy') -gt $U0 ]]"
check "Healthy again" wait_for "$D/status" Healthy 20
eq "same URI after the restart" "$URI" "$(cat "$D/scoring_uri")"

# ---- repeated crashes: Failed ---------------------------------------------------------------
crash_loop "$D"
check "rmdir of the Failed deployment" rm -r "$D"
eq "the model version is free again" Ready "$(json_get "$MNT/models/scale/1/info.json" status)"

check "unmount exits 0" unmount_ws
done_testing
