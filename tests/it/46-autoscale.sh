#!/usr/bin/env bash
# Replica autoscale on the local target (issue 16, item 2).  The load is
# held by the test, not by timing: each request's run() blocks until a
# file the test creates exists, so "requests in flight" is what the test
# says.  It scales out to ceil(in flight / target_in_flight), never beyond
# max_replicas, back in to min_replicas once the load has been lower for
# the cool-down (the drained replicas answer what they hold), no request
# fails, each change is an events line; bad configs are refused; behind an
# endpoint, its load scales the replicas and its proxy's servers follow
# them (one per replica, at run time).  Then
# the same, shorter, on an ssh target (a private sshd on loopback): the
# load comes from the host's replicas, read by the poll round.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"

SSHD=$T/sshd
WORK=$T/remote
# the daemon first (it would restart what dies), then the host's processes
trap 'keep=${KEEP:-}; KEEP=1 cleanup_deep; host_kill; sshd_cut
[[ -n $keep ]] || rm -rf "$T"' EXIT

mount_or_bail

R=$MNT/runs/r
mkdir "$R"
wr "$R/command" 'echo "{}" > outputs/m.json'
wr "$R/ctl" submit
check "run completes" wait_for "$R/status" Completed 30
check "register" wr "$R/ctl" "register as m.json"

# run() waits for the file named in the request (bounded: a test that
# dies leaves no replica blocked for ever), then says which replica
# answered; it tells that it started in WAIT.started.PID.N.
entry() {
	cat > "$1/score.py" <<'PY'
import json, os, time
def run(data):
    w = json.loads(data).get("wait")
    if w:
        open("%s.started.%d.%d" % (w, os.getpid(), time.monotonic_ns()), "w").close()
        end = time.monotonic() + 300
        while not os.path.exists(w) and time.monotonic() < end:
            time.sleep(0.01)
    return {"pid": os.getpid()}
PY
}

# ---- bad configs: refused inside the deploy write -----------------------------
B=$MNT/deployments/bad
mkdir "$B"
entry "$B"
wr "$B/model" as:1
wr1 "$B/config" $'max_replicas = 2\n'
refused() {	# refused CONFIG WORDS: the write fails EINVAL, error says WORDS
	expect_err "refused: ${1//$'\n'/ }" "$EINVAL" wr1 "$B/config" "$1"
	check "  its error is a sentence naming it ($2)" \
		eval "has_sentence '$B/error' && grep -q '$2' '$B/error'"
}
refused $'min_replicas = 3\nmax_replicas = 2\n' "more than max_replicas"
refused $'max_replicas = 0\n' "max_replicas must be"
refused $'max_replicas = 17\n' "max_replicas must be"
refused $'min_replicas = 0\nmax_replicas = 2\n' "min_replicas must be"
refused $'max_replicas = 2\nreplicas = 3\n' "must lie between"
refused $'max_replicas = 2\ntarget_in_flight = 0\n' "target_in_flight must be"
refused $'max_replicas = 2\nscale_in_cooldown = soon\n' "scale_in_cooldown must be"
eq "nothing was deployed" Draft "$(cat "$B/status")"
# bash's printf writes a line at a time: max_replicas may come after the
# other keys; without it, deploy refuses them
check "printf of autoscale keys, max_replicas last" \
	eval "printf 'min_replicas = 2\ntarget_in_flight = 3\nmax_replicas = 4\n' > '$B/config'"
check "min_replicas alone: the write takes it (max may follow)" \
	wr1 "$B/config" $'min_replicas = 2\n'
expect_err "deploy with min_replicas and no max_replicas: refused" \
	"$EINVAL" wr "$B/ctl" deploy
check "  error names it" grep -q "needs max_replicas" "$B/error"
eq "still Draft" Draft "$(cat "$B/status")"
check "remove the refused one" rm -r "$B"

# ---- the autoscaled deployment ------------------------------------------------
D=$MNT/deployments/auto
mkdir "$D"
entry "$D"
wr "$D/model" as:1
wr1 "$D/config" $'min_replicas = 1\nmax_replicas = 3\ntarget_in_flight = 2\nscale_out_cooldown = 0\nscale_in_cooldown = 2\n'
deploy_timed "$D"
eq "one replica to start with (min_replicas)" $'ready 1\ndesired 1' "$(cat "$D/replicas")"
eq "info.json replicas_desired" 1 "$(json_get "$D/info.json" replicas_desired)"

cat > "$T/load.py" <<'PY'
# load.py HOST PORT KEY WAITFILE N OUT: N threads, each one POST on its
# own connection whose run() waits for WAITFILE; "OK FAILED" into OUT.
import http.client, json, sys, threading
host, port, key, wait, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
res = []
def one():
    try:
        c = http.client.HTTPConnection(host, port, timeout=600)
        c.request("POST", "/score", body=json.dumps({"wait": wait}),
                  headers={"Authorization": "Bearer " + key})
        r = c.getresponse()
        r.read()
        res.append(r.status == 200)
    except Exception as e:
        sys.stderr.write("request failed: %s\n" % e)
        res.append(False)
th = [threading.Thread(target=one) for _ in range(n)]
for t in th:
    t.start()
for t in th:
    t.join()
open(out, "w").write("%d %d\n" % (res.count(True), res.count(False)))
PY
HP=${URI#http://}
HP=${HP%/score}
LOADS=()
load() {	# load NAME N [HOST:PORT KEY]: N requests held until $T/go-NAME exists
	local hp=${3:-$HP} key=${4:-$KEY}
	rm -f "$T/go-$1" "$T/load-$1.out"
	python3 "$T/load.py" "${hp%:*}" "${hp##*:}" "$key" "$T/go-$1" "$2" \
		"$T/load-$1.out" 2> "$T/load-$1.err" &
	LOADS+=("$!")
}
started() { ls "$T"/go-"$1".started.* 2>/dev/null | wc -l; }
# inflight: what the replicas wrote to MLFS_STATS_FILE, summed (one
# replica runs one run() at a time: the others wait, in flight too)
inflight() {
	cat "$STATE"/objects/*/replicas/g*-*/stats 2>/dev/null |
		awk '$1 == "in_flight" { n += $2 } END { print n + 0 }'
}
release() { touch "$T/go-$1"; }
load_result() {	# load_result NAME N: all N answered 200
	check "load $1: finished" wait_until 30 test -s "$T/load-$1.out"
	eq "load $1: $2 answered 200, none failed" "$2 0" "$(cat "$T/load-$1.out")"
}
scaled() { ev_count "deployment auto autoscale: $1 -> $2 replicas"; }
counts() { [[ $(cat "$D/replicas") == $'ready '"$1"$'\ndesired '"$1" ]]; }

# 3 in flight, 2 per replica: 2 replicas
load a 3
check "3 requests in flight (the replicas' stats files)" wait_until 20 eval '[[ $(inflight) == 3 ]]'
check "scales out 1 -> 2 (events)" wait_until 20 eval '[[ $(scaled 1 2) == 1 ]]'
check "  the line names the measure" \
	grep -q "autoscale: 1 -> 2 replicas (3 requests in flight, target 2 per replica)" "$MNT/events"
check "2 replicas ready" wait_until 30 counts 2
eq "info.json replicas_ready" 2 "$(json_get "$D/info.json" replicas_ready)"
eq "2 ready replicas in info.json" 2 "$(ready_pids "$D" | wc -w)"

# 8 in flight would want 4: max_replicas is 3
load b 5
check "8 requests in flight" wait_until 20 eval '[[ $(inflight) == 8 ]]'
check "scales out 2 -> 3" wait_until 20 eval '[[ $(scaled 2 3) == 1 ]]'
check "3 replicas ready" wait_until 30 counts 3
# two requests more on the 3 replicas (they may land on any)
load c 2
check "10 requests in flight" wait_until 20 eval '[[ $(inflight) == 10 ]]'
eq "never beyond max_replicas (no change to 4 or more)" 0 \
	"$(ev_count 'deployment auto autoscale: [0-9]+ -> ([4-9]|1[0-9]) replicas')"
eq "still 3 desired" 3 "$(json_get "$D/info.json" replicas_desired)"
P3=$(ready_pids "$D")

# a and b answered: 2 in flight want 1; after the cool-down it scales in,
# draining replicas that may hold one of c's requests
release a
release b
load_result a 3
load_result b 5
check "scales back in to min after the cool-down" \
	wait_until 30 eval '[[ $(ev_count "deployment auto autoscale: [23] -> 1 replicas") -ge 1 ]]'
CPIDS=$(ls "$T"/go-c.started.* 2>/dev/null | sed 's/.*started\.\([0-9]*\)\..*/\1/' | sort -u)
KEEP=$(ready_pids "$D")
echo "# c's requests are held by pids $(echo $CPIDS), the replica kept is $KEEP"
release c
load_result c 2
check "1 replica ready, 1 desired" wait_until 30 counts 1
for p in $P3; do
	[[ " $KEEP " == *" $p "* ]] && continue
	check "drained replica $p exited" wait_until 30 eval "! kill -0 $p 2>/dev/null"
done
eq "one ready replica in info.json" 1 "$(ready_pids "$D" | wc -w)"
eq "status stayed Healthy" Healthy "$(cat "$D/status")"
eq "no Unhealthy on the way" 0 "$(ev_count 'deployment auto Unhealthy')"

# quiet: no change without load (the cool-down does not flap)
N_EV=$(ev_count 'deployment auto autoscale')
load d 1
check "1 request in run()" wait_until 20 eval '[[ $(started d) == 1 ]]'
release d
load_result d 1
eq "1 in flight wants 1: no change" "$N_EV" "$(ev_count 'deployment auto autoscale')"

# kill -9 of the daemon at 2 replicas: adopted with the count it had (kept
# in the generation's spec), the held requests answered all the same
load e 4
check "scales out 1 -> 2 again" wait_until 20 eval '[[ $(scaled 1 2) == 2 ]]'
check "2 replicas ready again" wait_until 30 counts 2
P2=$(ready_pids "$D" | tr ' ' '\n' | sort | xargs)
crash_ws
check "remount after kill -9 of the daemon" mount_ws
check "both adopted: 2 ready, 2 desired" wait_until 30 counts 2
eq "the same processes" "$P2" "$(ready_pids "$D" | tr ' ' '\n' | sort | xargs)"
release e
load_result e 4
check "then back in to 1" wait_until 30 counts 1

# ---- behind an endpoint: its load scales the replicas, its proxy follows ---------
# The proxy has a server per replica (its direct port), added and deleted
# at run time as autoscale starts and stops replicas.
E=$MNT/endpoints/front
check "mkdir endpoints/front" mkdir "$E"
check "auto joins front" wr "$D/endpoint" front
check "all of front's traffic to auto" wr "$E/traffic" "auto 100"
check "start front" wr "$E/ctl" start
check "front Healthy" wait_for "$E/status" Healthy 30
EHP=$(cat "$E/scoring_uri")
EHP=${EHP#http://}
EHP=${EHP%/score}
EKEY=$(cat "$E/keys/primary")
# the replicas' servers of the proxy (show stat on its API socket)
rep_servers() {
	ep_stats status |
		awk '$1 == "dep_auto" && $2 ~ /^r/ && $3 ~ /^UP/ {n++} END {print n + 0}'
}
check "the proxy has the one replica's server" wait_until 30 \
	eval '[[ $(rep_servers) == 1 ]]'
load f 5 "$EHP" "$EKEY"
check "5 requests in flight through the endpoint" wait_until 20 \
	eval '[[ $(inflight) == 5 ]]'
check "scales out to 3" wait_until 30 counts 3
check "the proxy has the 3 replicas' servers (no reload)" wait_until 30 \
	eval '[[ $(rep_servers) == 3 ]]'
# 3 more: the proxy sends each to the next replica, one each; the first
# replica's waits behind f's there, the 2 new ones run theirs at once
FPID=$(ls "$T"/go-f.started.* | sed 's/.*started\.\([0-9]*\)\..*/\1/' | sort -u)
load g 3 "$EHP" "$EKEY"
if wait_until 20 eval '[[ $(started g) == 2 ]]'; then
	ok "2 of 3 requests more in run() at once"
else
	not_ok "2 of 3 requests more in run() at once ($(started g))"
	# what the proxy did with them: its replicas' servers in use
	ep_stats status addr scur stot | awk '$1 == "dep_auto" &&
		$3 != "MAINT"' | sed 's/^/# /'
	json_get "$D/info.json" replicas | sed 's/^/# /'
fi
GPIDS=$(ls "$T"/go-g.started.* | sed 's/.*started\.\([0-9]*\)\..*/\1/' | sort -u | xargs)
echo "# f's requests on pid $FPID, g's running on $GPIDS"
check "… on the 2 new replicas, one each" \
	eval "[[ \$(wc -w <<< '$GPIDS') == 2 && ' $GPIDS ' != *' $FPID '* ]]"
release f
release g
load_result f 5
load_result g 3
check "back in to 1" wait_until 30 counts 1
check "the proxy's servers follow: 1" wait_until 30 \
	eval '[[ $(rep_servers) == 1 ]]'
check "rmdir front" rmdir "$E"

check "delete" wr "$D/ctl" delete
check "Draft" wait_for "$D/status" Draft 30
eq "replicas of a Draft" $'ready 0\ndesired 0' "$(cat "$D/replicas")"
for p in "${LOADS[@]}"; do wait "$p" 2>/dev/null; done

# ---- the same on an ssh target: the host's replicas tell their load ------------
if ! sshd_start; then
	not_ok "cannot start a test sshd"
else
	source "$SSHD/host.env"
	X=$MNT/targets/box
	mkdir "$X" && wr "$X/type" ssh
	ssh_config "workdir = $WORK" "connect_timeout = 3" > "$X/config"
	wr "$X/ctl" provision
	check "the ssh target attaches" wait_for "$X/status" Succeeded 20
	D=$MNT/deployments/far
	mkdir "$D"
	entry "$D"
	wr "$D/model" as:1
	wr "$D/target" box
	wr1 "$D/config" $'max_replicas = 2\ntarget_in_flight = 1\nscale_out_cooldown = 0\nscale_in_cooldown = 1\n'
	deploy_timed "$D"
	HP=${URI#http://}
	HP=${HP%/score}
	host_inflight() {
		cat "$WORK"/deploy-*/g*/r*/stats 2>/dev/null |
			awk '$1 == "in_flight" { n += $2 } END { print n + 0 }'
	}
	load s 2
	check "ssh: 2 requests in flight (the host's stats files)" \
		wait_until 20 eval '[[ $(host_inflight) == 2 ]]'
	check "ssh: scales out 1 -> 2" wait_until 30 eval \
		'[[ $(ev_count "deployment far autoscale: 1 -> 2 replicas \(2 requests in flight") == 1 ]]'
	check "ssh: 2 replicas ready" wait_until 30 counts 2
	release s
	load_result s 2
	check "ssh: back in to 1 after the cool-down" wait_until 30 eval \
		'[[ $(ev_count "deployment far autoscale: 2 -> 1 replicas") == 1 ]]'
	check "ssh: 1 replica ready, 1 desired" wait_until 30 counts 1
	check "ssh: delete" wr "$D/ctl" delete
	check "ssh: Draft" wait_for "$D/status" Draft 30
fi

check "unmount exits 0" unmount_ws
done_testing
