#!/usr/bin/env bash
# Endpoints (issue 16): one URI and two keys in front of two deployments
# on the local target, through the real proxy (HAProxy): weights counted
# within a tolerance from the number of requests, no failed request in a
# client loop across five traffic changes, the pinning header, the mirror,
# keys (wrong key refused before any replica, regenerate, 0600, absent from
# events/log/info.json, unreadable by another user), bad traffic and
# mirror lines, a deployment out of the rotation and back, the proxy
# killed and restarted, the daemon killed and the proxy adopted, a
# deployment deleted under a client loop (out of the proxy first, traffic
# re-normalised, the mirror cleared, no failed request), rmdir.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
EACCES="Permission denied"

[[ -x /usr/sbin/haproxy ]] || { echo "1..0 # SKIP no haproxy"; exit 0; }
# the daemon first (it would start them again), then the proxies
trap 'keep=${KEEP:-}; KEEP=1 cleanup_deep; ep_stop_proxies
[[ -n $keep ]] || rm -rf "$T"' EXIT
# other users reach the mount (as a shared workspace's daemon does)
mount_or_bail "mount with allow_other" -o allow_other

R=$MNT/runs/r
mkdir "$R"
wr "$R/command" 'echo "{}" > outputs/m.json'
wr "$R/ctl" submit
check "run completes" wait_for "$R/status" Completed 30
check "register model m" wr "$R/ctl" "register m"

# A deployment answering its name; the mirror's copies are counted in a
# file of its own (run() appends a line: the replica's pid).
make_dep() {
	local d=$MNT/deployments/$1
	mkdir "$d"
	cat > "$d/score.py" <<PY
import json, os
def init():
    pass
def run(data):
    with open("$T/seen.$1", "a") as f:
        f.write("%d\\n" % os.getpid())
    return {"version": "$1"}
PY
	wr "$d/model" m:1
	deploy_timed "$d" 30
}
make_dep blue
BLUE_URI=$URI BLUE_KEY=$KEY
make_dep green
GREEN_PORT=${URI##*:} GREEN_PORT=${GREEN_PORT%%/*}

E=$MNT/endpoints/fraud
check "mkdir endpoints/fraud" mkdir "$E"
eq "Draft" Draft "$(cat "$E/status")"
eq "keys/primary is 0600" 600 "$(stat -c %a "$E/keys/primary")"
eq "keys/secondary is 0600" 600 "$(stat -c %a "$E/keys/secondary")"
K1=$(cat "$E/keys/primary")
K2=$(cat "$E/keys/secondary")
check "two different long keys" eval "[[ \${#K1} -ge 32 && '$K1' != '$K2' ]]"
expect_err "keys/ is written by mlfs only" "Read-only file system" \
	bash -c "echo x > '$E/keys/primary'"
expect_err "no new file in keys/" "Read-only file system" touch "$E/keys/third"
expect_err "no key removed" "Read-only file system" rm -f "$E/keys/secondary"

# ---- bad input --------------------------------------------------------------------
expect_err "traffic summing to 110" "$EINVAL" \
	bash -c "printf 'blue 80\ngreen 30\n' > '$E/traffic'"
check "error says the sum" grep -q "sum to 110" "$E/error"
expect_err "traffic naming no deployment" "$EINVAL" \
	bash -c "printf 'nosuch 100\n' > '$E/traffic'"
expect_err "traffic weight not a number" "$EINVAL" \
	bash -c "printf 'blue x\n' > '$E/traffic'"
expect_err "mirror over 100 %" "$EINVAL" bash -c "echo 'green 101' > '$E/mirror'"
expect_err "config with an unknown key" "$EINVAL" \
	bash -c "echo 'colour = red' > '$E/config'"
expect_err "joining no endpoint" "$EINVAL" \
	bash -c "echo nosuch > '$MNT/deployments/blue/endpoint'"
expect_err "unknown ctl command" "$EINVAL" bash -c "echo fly > '$E/ctl'"
expect_err "regenerate what" "$EINVAL" bash -c "echo 'regenerate third' > '$E/ctl'"

# ---- start ---------------------------------------------------------------------
check "traffic blue 100" sh -c "printf 'blue 100\ngreen 0\n' > '$E/traffic'"
check "blue joins" wr "$MNT/deployments/blue/endpoint" fraud
check "green joins" wr "$MNT/deployments/green/endpoint" fraud
check "start" wr "$E/ctl" start
check "Healthy" wait_for "$E/status" Healthy 30
EURI=$(cat "$E/scoring_uri")
check "scoring_uri http://127.0.0.1:PORT/score" \
	eval "[[ '$EURI' =~ ^http://127\.0\.0\.1:[0-9]+/score$ ]]"

post() { curl -s -m 10 -H "Authorization: Bearer $1" -d '{"x": 1}' "${@:2}" "$EURI"; }
code() { curl -s -m 10 -o /dev/null -w '%{http_code}' "$@"; }
# both deployments in the proxy (the worker reloads once they joined)
check "blue answers through the endpoint" wait_until 20 \
	sh -c "curl -s -m 5 -H 'Authorization: Bearer $K1' -d '{}' '$EURI' | grep -q blue"
check "green is behind it (pinned)" wait_until 20 \
	sh -c "curl -s -m 5 -H 'Authorization: Bearer $K1' -H 'azureml-model-deployment: green' -d '{}' '$EURI' | grep -q green"
eq "the secondary key works too" '{"version": "blue"}' "$(post "$K2")"
: > "$T/seen.blue"; : > "$T/seen.green"
eq "a wrong key is 401" 401 "$(code -H 'Authorization: Bearer nope' -d '{}' "$EURI")"
eq "no key is 401" 401 "$(code -d '{}' "$EURI")"
eq "the deployment's own key is refused" 401 \
	"$(code -H "Authorization: Bearer $BLUE_KEY" -d '{}' "$EURI")"
check "no replica saw the refused requests" \
	eval "[[ ! -s '$T/seen.blue' && ! -s '$T/seen.green' ]]"

# ---- weights -------------------------------------------------------------------
check "traffic blue 70 green 30" sh -c "printf 'blue 70\ngreen 30\n' > '$E/traffic'"
nb=0
for _ in $(seq 200); do
	[[ $(post "$K1") == *blue* ]] && nb=$((nb + 1))
done
# 200 requests at p = 0.7: mean 140, sd 6.5; 5 sd either way
check "blue took 70 % of 200 within 5 sd ($nb)" eval "((nb >= 108 && nb <= 172))"

# The proxy's own counters (its runtime API, as root): requests drawn for
# a deployment go straight to its backend, the second hop (frontend in_D,
# the fallback while a deployment is down) sees none of them.
ep_stat() {	# ep_stat PROXY SERVER FIELD
	ep_stats "$3" | awk -v p="$1" -v s="$2" \
		'$1 == p && $2 == s {print $3; f = 1} END {if (!f) print "none"}'
}
eq "one hop: no request took the second hop (in_blue, in_green)" "0 0" \
	"$(ep_stat in_blue FRONTEND stot) $(ep_stat in_green FRONTEND stot)"
check "… and blue's backend counted its requests" \
	eval "(($(ep_stat dep_blue BACKEND stot) >= nb))"

# ---- no failed request across five traffic changes --------------------------------
client_start "$EURI" "$K1"
check "the client gets answers" wait_until 20 test -e "$T/stop.ready"
for w in 0 100 50 20 90; do
	printf 'blue %d\ngreen %d\n' "$w" $((100 - w)) > "$E/traffic" ||
		not_ok "traffic $w"
	sleep 0.3	# spacing the changes, not a proof: the client counts
done
client_stop
check "$NREQ requests, 0 failed across five traffic changes" \
	eval "((NREQ > 0 && NFAIL == 0))"

# ---- new replicas: blue stays in the rotation, the proxy is not reloaded ---------
# HAProxy sees a deployment's service address, not its replicas (they share
# its port): a rolling update to 2 replicas keeps the proxy's master and
# its one worker, and a client loop across it sees no failed request.
printf 'blue 100\ngreen 0\n' > "$E/traffic"
MPID=$(cat "$STATE/endpoints/"*/haproxy.pid)
workers() { ps -o pid= --ppid "$MPID" | tr -d ' ' | tr '\n' ' '; }
# (a worker of an earlier reload leaves once its connections closed)
check "one worker" wait_until 30 eval '[[ $(workers) =~ ^[0-9]+\ $ ]]'
WPID=$(workers)
B=$MNT/deployments/blue
client_start "$EURI" "$K1"
check "the client gets answers" wait_until 20 test -e "$T/stop.ready"
check "blue: replicas = 2" wr "$B/config" "replicas = 2"
check "blue rolls out generation 2" wr "$B/ctl" deploy
check "… 2 replicas ready, Healthy" wait_until 60 \
	eval "serves_gen '$B' 2 && [[ \$(head -1 '$B/replicas') == 'ready 2' ]]"
client_stop
check "$NREQ requests, 0 failed across blue's rolling update" \
	eval "((NREQ > 0 && NFAIL == 0))"
eq "the proxy not reloaded: the same master" "$MPID" \
	"$(cat "$STATE/endpoints/"*/haproxy.pid)"
eq "… and the same one worker" "$WPID" "$(workers)"

# ---- each request to the next replica --------------------------------------------
# The proxy knows each replica (its direct port): 20 requests one after the
# other on one keep-alive connection go 10 and 10.  Through the shared port
# alone they would all reach the replica that connection hashed to.
balanced() {
	local i urls=()
	: > "$T/seen.blue"
	for i in $(seq 20); do urls+=("$EURI"); done
	curl -s -m 10 -H "Authorization: Bearer $K1" -d '{}' "${urls[@]}" \
		>/dev/null
	sort "$T/seen.blue" | uniq -c | awk '$1 >= 8 {n++} END {exit n != 2}'
}
check "20 requests on one connection: both replicas, 8+ each" \
	wait_until 30 balanced
# … over kept connections: each replica's server keeps its idle ones
reps_reuse() {
	ep_stats stot connect status | awk '$1 == "dep_blue" && $2 ~ /^r/ &&
		$5 != "MAINT" {
		n++; print "# " $2 ": " $3 " requests, " $4 " connections"
		if ($3 < 5 || $4 * 4 > $3) bad = 1 }
		END {exit bad || n != 2}'
}
check "… over connections kept: each replica's server opened ≤ 1 in 4" \
	reps_reuse

# ---- rolling updates behind it: the replicas' slots follow, nothing restarts -------
# Each replica's server is a fixed slot pointed at its direct port at run
# time (HAProxy 2.6 crashed deleting servers added at run time under such a
# loop: 503s while its master was started again).
client_start "$EURI" "$K1"
check "the client gets answers" wait_until 20 test -e "$T/stop.ready"
for g in 3 4 5 6; do
	check "blue rolls out generation $g" wr "$B/ctl" deploy
	check "… generation $g serves, 2 replicas ready" wait_until 60 \
		eval "serves_gen '$B' $g && [[ \$(head -1 '$B/replicas') == 'ready 2' ]]"
done
client_stop
check "$NREQ requests, 0 failed across 4 rolling updates" \
	eval "((NREQ > 0 && NFAIL == 0))"
eq "the proxy's master and worker: the same (no crash, no reload)" \
	"$MPID $WPID" "$(cat "$STATE/endpoints/"*/haproxy.pid) $(workers)"
slots_live() {
	ep_stats status | awk '$1 == "dep_blue" && $2 ~ /^r[0-9]+$/ &&
		$3 != "MAINT" {n++} END {exit n != 2}'
}
check "2 of blue's 48 slots in use, the rest in maintenance" \
	wait_until 30 slots_live
check "20 requests on one connection: both replicas, 8+ each" \
	wait_until 30 balanced
eq "… the replicas of generation 6" \
	"$(tr ' ' '\n' <<< "$(ready_pids "$B")" | sort | xargs)" \
	"$(sort -u "$T/seen.blue" | xargs)"

# ---- a replica's word for its direct port is checked ------------------------------
# The liar's replica says (in its stats file, which mlfs-serve can no longer
# write: a folder in the way of its temporary file) that green's service is
# its direct port.  Believed, the proxy would send liar's requests, with
# liar's key, to green (401 there).
L=$MNT/deployments/liar
mkdir "$L"
cat > "$L/score.py" <<PY
import os
def init():
    p = os.environ["MLFS_STATS_FILE"]
    os.mkdir(p + ".tmp")
    with open(p + ".lie", "w") as f:
        f.write("in_flight 0\\ndirect_port $GREEN_PORT\\n")
    os.replace(p + ".lie", p)
def run(data):
    return {"version": "liar"}
PY
wr "$L/model" m:1
deploy_timed "$L" 30
check "liar joins fraud" wr "$L/endpoint" fraud
check "liar answers pinned through the endpoint" wait_until 20 \
	sh -c "curl -s -m 5 -H 'Authorization: Bearer $K1' -H 'azureml-model-deployment: liar' -d '{}' '$EURI' | grep -q liar"
liar_ok=1
for _ in $(seq 30); do	# three of the endpoint's ticks, and more
	[[ $(curl -s -m 5 -H "Authorization: Bearer $K1" \
		-H 'azureml-model-deployment: liar' -d '{}' "$EURI") == \
		'{"version": "liar"}' ]] || liar_ok=0
	sleep 0.1
done
check "30 requests over 3 s: every one answered by liar" eval "((liar_ok))"
check "delete liar" wr "$L/ctl" delete
check "liar Draft" wait_for "$L/status" Draft 30

# ---- the mirror ---------------------------------------------------------------
printf 'blue 100\ngreen 0\n' > "$E/traffic"
: > "$T/seen.green"
check "mirror green 100" wr "$E/mirror" "green 100"
for _ in $(seq 20); do post "$K1" >/dev/null; done
check "green got copies" wait_until 10 test -s "$T/seen.green"
eq "clients still get blue" '{"version": "blue"}' "$(post "$K1")"
# weights under 100 are lines still to come (bash's printf writes a line
# at a time): stored, not applied
check "a split summing to 90 is let through" wr "$E/traffic" "green 90"
eq "the proxy keeps blue 100" '{"version": "blue"}' "$(post "$K1")"

# ---- keys -----------------------------------------------------------------------
check "regenerate primary" wr "$E/ctl" "regenerate primary"
# the kernel's copy of the file is dropped by the notifier, just after
check "keys/primary shows the new key" wait_until 10 \
	sh -c "[ \"\$(cat '$E/keys/primary')\" != '$K1' ]"
K1N=$(cat "$E/keys/primary")
check "a new primary" eval "[[ '$K1N' != '$K1' && \${#K1N} -ge 32 ]]"
eq "the new primary works" '{"version": "blue"}' "$(post "$K1N")"
eq "the old primary is refused" 401 \
	"$(code -H "Authorization: Bearer $K1" -d '{}' "$EURI")"
eq "the secondary stays valid" '{"version": "blue"}' "$(post "$K2")"
eq "keys/primary still 0600" 600 "$(stat -c %a "$E/keys/primary")"
for k in "$K1" "$K1N" "$K2"; do
	check "a key is in none of events, log, info.json, stats" \
		eval "! grep -qF '$k' '$MNT/events' '$E/log' '$E/info.json' '$E/stats'"
done
check "log has access lines" grep -qE '^[0-9T:-]+Z blue 200 [0-9]+$' "$E/log"
check "stats has a line per deployment" \
	eval "grep -q '^blue ' '$E/stats' && grep -q '^green ' '$E/stats'"

mu_users mlfs_ep_other
expect_err "another user cannot read keys/primary" "$EACCES" \
	as mlfs_ep_other cat "$E/keys/primary"
expect_err "another user cannot read keys/secondary" "$EACCES" \
	as mlfs_ep_other cat "$E/keys/secondary"
check "another user makes a deployment" \
	as mlfs_ep_other mkdir "$MNT/deployments/theirs"
expect_err "it cannot join fraud (another user's endpoint)" "$EINVAL" \
	as mlfs_ep_other bash -c "echo fraud > '$MNT/deployments/theirs/endpoint'"
check "the error says whose" grep -q "another user" \
	"$MNT/deployments/theirs/error"

# ---- a deployment out of the rotation and back ----------------------------------
printf 'blue 50\ngreen 50\n' > "$E/traffic"
wr "$E/mirror" ""
GPIDS=$(ready_pids "$MNT/deployments/green")
kill -STOP $GPIDS
check "Unhealthy when green stops answering" wait_for "$E/status" Unhealthy 30
check "error names green" grep -q green "$E/error"
# green's own supervision may replace its stopped replica meanwhile: the
# point is that no request fails
ok_all=1
for _ in $(seq 10); do [[ $(post "$K1N") == *version* ]] || ok_all=0; done
check "requests are answered while green is out" eval "((ok_all))"
kill -CONT $GPIDS
check "Healthy again once green answers" wait_for "$E/status" Healthy 30

# ---- stop and start: the same URI ------------------------------------------------
check "stop" wr "$E/ctl" stop
check "Draft once stopped" wait_for "$E/status" Draft 30
check "start again" wr "$E/ctl" start
check "Healthy again" wait_for "$E/status" Healthy 30
eq "the same URI" "$EURI" "$(cat "$E/scoring_uri")"
check "it answers" wait_until 20 \
	sh -c "curl -s -m 5 -H 'Authorization: Bearer $K2' -d '{}' '$EURI' | grep -q version"

# ---- the proxy killed -----------------------------------------------------------
P1=$(json_get "$E/info.json" scoring_uri)
PID=$(cat "$STATE/endpoints/"*/haproxy.pid)
kill -9 "$PID"
check "the proxy is started again" wait_until 30 \
	sh -c "[ \"\$(cat '$STATE/endpoints/'*/haproxy.pid)\" != '$PID' ] && curl -s -m 5 -H 'Authorization: Bearer $K2' -d '{}' '$EURI' | grep -q version"
check "events says so" grep -q "endpoint fraud the proxy exited" "$MNT/events"
eq "same URI" "$EURI" "$(cat "$E/scoring_uri")"

# ---- the daemon killed: the proxy adopted ---------------------------------------
PID=$(cat "$STATE/endpoints/"*/haproxy.pid)
crash_ws
check "the proxy outlives the daemon" kill -0 "$PID"
remount_or_bail remount -o allow_other
check "Healthy after the remount" wait_for "$E/status" Healthy 30
eq "same proxy (adopted)" "$PID" "$(cat "$STATE/endpoints/"*/haproxy.pid)"
eq "same URI" "$EURI" "$(cat "$E/scoring_uri")"
eq "same key" "$K1N" "$(cat "$E/keys/primary")"
eq "it answers" '{"version": "blue"}' \
	"$(post "$K1N" -H 'azureml-model-deployment: blue')"

# ---- a deployment deleted while in traffic: out of the proxy first ----------------
# The write of `delete` takes green out of the proxy's routing (weight 0,
# its pin and mirror off) before its replicas are told to stop; a client
# loop running across it sees no failed request; the proxy drops green at
# its next reload.
printf 'blue 50\ngreen 50\n' > "$E/traffic"
wr "$E/mirror" "green 10"
G=$MNT/deployments/green
client_start "$EURI" "$K1N"
check "the client gets answers" wait_until 20 test -e "$T/stop.ready"
check "… some of them from green" wait_until 20 grep -qx green "$T/stop.seen"
c0=$(ev_count "endpoint fraud deployment 'green' deleted")
check "delete green while it takes half the traffic" wr "$G/ctl" delete
eq "traffic no longer lists green: blue took its weight" "blue 100" \
	"$(cat "$E/traffic")"
eq "the mirror that named green is cleared" "" "$(cat "$E/mirror")"
check "events say what became of traffic and the mirror" \
	eval "[[ \$(ev_count \"endpoint fraud deployment 'green' deleted: out of traffic, now blue 100\") -gt 0 &&
		\$(ev_count \"endpoint fraud deployment 'green' deleted: the mirror to it is cleared\") -gt 0 ]]"
eq "… two lines" $((c0 + 2)) "$(ev_count "endpoint fraud deployment 'green' deleted")"
eq "a request pinned to green is 404 at once" 404 \
	"$(code -H "Authorization: Bearer $K1N" -H 'azureml-model-deployment: green' -d '{}' "$EURI")"
check "green's replicas stop: Draft" wait_for "$G/status" Draft 30
check "the proxy dropped green (reloaded): stats has no line of it" \
	wait_until 20 eval "! grep -q '^green ' '$E/stats' && grep -q '^blue ' '$E/stats'"
client_stop
check "$NREQ requests, 0 failed across the delete" \
	eval "((NREQ > 0 && NFAIL == 0))"
eq "blue answers" '{"version": "blue"}' "$(post "$K1N")"
eq "the endpoint is Healthy" Healthy "$(cat "$E/status")"
eq "green's endpoint file still names fraud (deployed again: weight 0)" \
	fraud "$(cat "$G/endpoint")"

# ---- rmdir: the proxy stops, the deployments keep serving ------------------------
check "rmdir of a started endpoint" rmdir "$E"
check "its proxy stops" wait_until 30 sh -c "! kill -0 $PID 2>/dev/null"
eq "blue still serves on its own URI" '{"version": "blue"}' \
	"$(curl -s -m 10 -H "Authorization: Bearer $BLUE_KEY" -d '{}' "$BLUE_URI")"

done_testing
