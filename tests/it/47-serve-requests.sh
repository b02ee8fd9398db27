#!/usr/bin/env bash
# The scoring server as Azure ML's users expect it (issue 16, item 4):
# logging from score.py in `log`, a body that is not UTF-8 given as bytes,
# raw = yes and raw = request (method, path, query, headers, body; status
# and headers of run()'s own), Azure ML's @rawhttp and AMLResponse without
# azureml installed, and a deployment's `env` (0600, its owner's only;
# bad lines refused with a sentence that does not repeat them; new values
# at the next deploy; never in info.json or events; the same for a user's
# deployment started through setpriv, and for a server of the user's own).
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
EACCES="Permission denied"

if [[ $(id -u) -ne 0 ]]; then
	echo "ok 1 # SKIP needs root (to be several users)"
	exit 0
fi
U=mlfs_td
V=mlfs_te
for u in "$U" "$V"; do
	test_user "$u"
done
as() { local who=$1; shift; setpriv --reuid="$who" --regid="$who" --init-groups "$@"; }
chmod 755 "$T"
mount_or_bail "mount with allow_other" -o allow_other

mkdir -p "$MNT/models/m/1"
echo '{"w": 2}' > "$MNT/models/m/1/model.json"
# a module on PYTHONPATH (an env line): the env acts from the start
mkdir -p "$T/pylib"
echo 'WORD = "from-pythonpath"' > "$T/pylib/extra_mod.py"
chmod -R a+rX "$T/pylib"

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# jget JSON KEY: one value of a JSON object (Python's repr for lists)
jget() {
	python3 -c 'import json, sys
v = json.loads(sys.argv[1]).get(sys.argv[2])
print("" if v is None else v)' "$1" "$2" 2>/dev/null
}

# ---- logging, bytes, env -----------------------------------------------------------
D=$MNT/deployments/req
mkdir "$D"
cat > "$D/score.py" <<'PY'
import logging, os
def init():
    logging.info("init ready, model in %s", sorted(os.listdir(os.environ["AZUREML_MODEL_DIR"])))
    logging.debug("a debug line is not shown")
    logging.getLogger("score.detail").warning("a warning of a named logger")
    print("printed by init")
def run(data):
    import extra_mod
    logging.info("scoring a %s of %d", type(data).__name__, len(data))
    return {"type": type(data).__name__, "len": len(data),
            "greeting": os.environ.get("GREETING"), "word": extra_mod.WORD,
            "path": os.environ.get("PATH"), "secret": os.environ.get("API_TOKEN")}
PY
wr "$D/model" m:1
SECRET=tok-$RANDOM$RANDOM-secret
printf 'GREETING=hello  world\nPYTHONPATH=%s\nAPI_TOKEN=%s\n# a comment\n' \
	"$T/pylib" "$SECRET" > "$D/env"
eq "env is mode 0600, root's" "600 root" "$(stat -c '%a %U' "$D/env")"
expect_err "another user cannot read a deployment's env" "$EACCES" \
	as "$V" cat "$D/env"

# bad lines: EINVAL, one sentence, nothing lost
GOOD=$(cat "$D/env")
expect_err "a line without '=' is EINVAL" "$EINVAL" wr "$D/env" "sk_live_$SECRET"
check "the write's errno came with a sentence in error" test -s "$D/error"
check "error says which line" grep -q "env line 1 has no '='" "$D/error"
check "... and does not repeat it (a secret)" eval "! grep -q '$SECRET' '$D/error'"
expect_err "an MLFS_ name is EINVAL" "$EINVAL" wr "$D/env" "MLFS_KEY=x"
check "error says reserved" grep -q "reserved" "$D/error"
expect_err "PORT (the daemon's) is EINVAL" "$EINVAL" wr "$D/env" "PORT=1"
check "error says mlfs sets it" grep -q "PORT is set by mlfs" "$D/error"
expect_err "a bad name is EINVAL" "$EINVAL" wr "$D/env" "A-B=1"
check "no refused line was stored" eval "! grep -qE 'sk_live|MLFS_|PORT|A-B' '$D/env'"
printf '%s\n' "$GOOD" > "$D/env"	# (`>` truncated it at open)

deploy_timed "$D" 30
URI=$(cat "$D/scoring_uri")
KEY=$(cat "$D/key")
post() { curl -s -H "Authorization: Bearer $KEY" "$@"; }
OUT=$(post -d '{"x": "été"}' "$URI")
eq "a UTF-8 body is text (str)" str "$(jget "$OUT" type)"
eq "env: a value with blanks, verbatim" "hello  world" "$(jget "$OUT" greeting)"
eq "env: PYTHONPATH acts (the interpreter starts with it)" from-pythonpath \
	"$(jget "$OUT" word)"
eq "env: the secret reaches score.py" "$SECRET" "$(jget "$OUT" secret)"
eq "env: PATH stays the default one" /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	"$(jget "$OUT" path)"
OUT=$(printf '\xff\xfe\x00\x80' | post --data-binary @- "$URI")
eq "a body that is not UTF-8 is bytes" bytes "$(jget "$OUT" type)"
eq "... all of it" 4 "$(jget "$OUT" len)"
check "logging.info of init() is in log" \
	wait_until 10 grep -q "INFO root\[[0-9]*\]: init ready, model in \[.model.json.\]" "$D/log"
check "logging.info of run() is in log" \
	wait_until 10 grep -q "INFO root\[[0-9]*\]: scoring a bytes of 4" "$D/log"
check "a named logger's warning, with its name" \
	grep -q "WARNING score.detail\[[0-9]*\]: a warning of a named logger" "$D/log"
check "log lines start with an ISO time (UTC)" \
	grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z INFO root" "$D/log"
check "DEBUG is not shown (INFO and above)" eval "! grep -q 'a debug line' '$D/log'"
check "print() is in log" grep -q "printed by init" "$D/log"
check "the secret is not in info.json" eval "! grep -q '$SECRET' '$D/info.json'"
check "the secret is not in events" eval "! grep -q '$SECRET' '$MNT/events'"
check "the secret is not in the daemon's stderr" eval "! grep -q '$SECRET' '$DAEMON_ERR'"

# env changes take effect at the next deploy (a rolling update)
printf 'GREETING=second\nPYTHONPATH=%s\n' "$T/pylib" > "$D/env"
eq "a changed env does not touch the serving replicas" "hello  world" \
	"$(jget "$(post -d x "$URI")" greeting)"
check "deploy again" wr "$D/ctl" deploy
check "Healthy again" wait_for "$D/status" Healthy 30
eq "the new generation has the new env" second "$(jget "$(post -d x "$URI")" greeting)"
eq "... and not the line removed" "" "$(jget "$(post -d x "$URI")" secret)"
check "restart keeps the generation's env" wr "$D/ctl" restart
check "Healthy after restart" wait_for "$D/status" Healthy 30
eq "restart: same env" second "$(jget "$(post -d x "$URI")" greeting)"

# raw = yes: always bytes
wr "$D/config" "raw = yes"
check "deploy with raw = yes" wr "$D/ctl" deploy
check "Healthy (raw = yes)" wait_for "$D/status" Healthy 30
eq "raw = yes: a UTF-8 body is bytes too" bytes "$(jget "$(post -d '{"a": 1}' "$URI")" type)"
expect_err "raw = maybe is EINVAL" "$EINVAL" wr "$D/config" "raw = maybe"
check "error names the values" grep -q "raw must be no, yes" "$D/error"
expect_err "raw with command is EINVAL" "$EINVAL" \
	wr "$D/config" $'raw = request\ncommand = sleep 9'
check "delete" wr "$D/ctl" delete
check "Draft" wait_for "$D/status" Draft 30

# ---- raw = request: the whole request in, status and headers out --------------------
Q=$MNT/deployments/rawreq
mkdir "$Q"
cat > "$Q/score.py" <<'PY'
import json
def run(request):
    if request.args.get("fail") == "header":
        return "x", 200, {"X-Bad": "a\r\nInjected: 1"}
    if request.method == "GET":
        return request.full_path, 200, {"Content-Type": "text/plain"}
    up = request.files.get("blob")
    return json.dumps({
        "method": request.method, "path": request.path,
        "query": request.query_string, "q": request.args.getlist("q"),
        "header": request.headers.get("x-custom"),
        "HEADER": request.headers["X-CUSTOM"] if "X-Custom" in request.headers else None,
        "len": len(request.body), "body_hex": request.body[:4].hex(),
        "json": request.get_json(silent=True),
        "form": dict(request.form),
        "file": [up.filename, up.read().hex()] if up else None,
    }), 201, [("X-Mlfs", "yes"), ("Content-Type", "application/json"),
              ("Content-Length", "1")]
PY
wr "$Q/model" m:1
wr "$Q/config" "raw = request"
deploy_timed "$Q" 30
URI=$(cat "$Q/scoring_uri")
KEY=$(cat "$Q/key")
HDR=$T/hdr
OUT=$(curl -s -D "$HDR" -H "Authorization: Bearer $KEY" -H 'X-Custom: abc' \
	-H 'Content-Type: application/json' -d '{"n": 1}' "$URI?q=1&q=two&r=")
eq "raw: run()'s status" 201 "$(head -1 "$HDR" | cut -d' ' -f2)"
check "raw: run()'s header" grep -qi '^X-Mlfs: yes' "$HDR"
check "raw: run()'s Content-Type" grep -qi '^Content-Type: application/json' "$HDR"
check "raw: Content-Length is the server's, not run()'s" \
	grep -qi "^Content-Length: ${#OUT}" "$HDR"
eq "raw: method" POST "$(jget "$OUT" method)"
eq "raw: path without the query" /score "$(jget "$OUT" path)"
eq "raw: query string" "q=1&q=two&r=" "$(jget "$OUT" query)"
eq "raw: every value of a repeated parameter" "['1', 'two']" "$(jget "$OUT" q)"
eq "raw: a header by its name in any case" "abc abc" \
	"$(jget "$OUT" header) $(jget "$OUT" HEADER)"
eq "raw: get_json()" "{'n': 1}" "$(jget "$OUT" json)"
OUT=$(printf '\x00\xff\x01\x02rest' | curl -s -H "Authorization: Bearer $KEY" \
	-X PUT --data-binary @- "$URI")
eq "raw: PUT reaches run()" PUT "$(jget "$OUT" method)"
eq "raw: the body as bytes, exact" "00ff0102 8" "$(jget "$OUT" body_hex) $(jget "$OUT" len)"
printf '\x00\r\n\xffbin' > "$T/blob.bin"
OUT=$(curl -s -H "Authorization: Bearer $KEY" -F "blob=@$T/blob.bin" -F 'name=bob' "$URI")
eq "raw: a multipart file, byte for byte" "['blob.bin', '000d0aff62696e']" \
	"$(jget "$OUT" file)"
eq "raw: a multipart field" "{'name': 'bob'}" "$(jget "$OUT" form)"
eq "raw: GET /score reaches run() too" "/score?a=1" \
	"$(curl -s -H "Authorization: Bearer $KEY" "$URI?a=1")"
eq "raw: GET /score without the key is 401" 401 "$(code "$URI")"
eq "raw: DELETE without the key is 401" 401 "$(code -X DELETE "$URI")"
eq "raw: a header with CR LF from run() is a 500" 500 \
	"$(code -H "Authorization: Bearer $KEY" "$URI?fail=header")"
check "... and nothing was injected" eval "! curl -s -i -H 'Authorization: Bearer $KEY' \
	'$URI?fail=header' | grep -qi '^Injected'"
eq "raw: HEAD /score is 405" 405 "$(code -I -H "Authorization: Bearer $KEY" "$URI")"
check "delete rawreq" wr "$Q/ctl" delete
check "rawreq Draft" wait_for "$Q/status" Draft 30

# ---- an Azure ML script: @rawhttp and AMLResponse, no config ---------------------
A=$MNT/deployments/aml
mkdir "$A"
cat > "$A/score.py" <<'PY'
import json, logging
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse
def init():
    logging.info("aml init")
@rawhttp
def run(request):
    if request.method == "GET":
        return AMLResponse({"azEnvironment": "mlfs"}, 200, json_str=True)
    if request.method == "POST":
        data = request.get_data(as_text=True)
        return AMLResponse(data[::-1], 202, {"X-Reversed": "1"})
    return AMLResponse("bad request", 500)
PY
wr "$A/model" m:1
deploy_timed "$A" 30
URI=$(cat "$A/scoring_uri")
KEY=$(cat "$A/key")
OUT=$(curl -s -D "$HDR" -H "Authorization: Bearer $KEY" -d 'abc' "$URI")
eq "@rawhttp: run() got the request, AMLResponse's body" cba "$OUT"
eq "@rawhttp: AMLResponse's status" 202 "$(head -1 "$HDR" | cut -d' ' -f2)"
check "@rawhttp: AMLResponse's header" grep -qi '^X-Reversed: 1' "$HDR"
eq "@rawhttp: json_str" '{"azEnvironment": "mlfs"}' \
	"$(curl -s -H "Authorization: Bearer $KEY" "$URI")"
eq "@rawhttp: another method" 500 "$(code -X OPTIONS -H "Authorization: Bearer $KEY" "$URI")"
check "the log says run() gets the request" grep -q "run() gets the request" "$A/log"
check "delete aml" wr "$A/ctl" delete
check "aml Draft" wait_for "$A/status" Draft 30

# ---- a user's deployment: env through setpriv; another user cannot read it ---------
W=$MNT/deployments/theirs
check "mkdir a deployment as $U" as "$U" mkdir "$W"
as "$U" sh -c "printf 'import os\ndef run(d):\n    return [os.getuid(), os.environ.get(\"TOKEN\")]\n' > '$W/score.py'"
as "$U" sh -c "echo m:1 > '$W/model'"
as "$U" sh -c "printf 'TOKEN=%s\n' '$SECRET' > '$W/env'"
eq "the env is $U's, 0600" "600 $U" "$(stat -c '%a %U' "$W/env")"
check "$U reads their env" as "$U" cat "$W/env"
expect_err "$V cannot read $U's env" "$EACCES" as "$V" cat "$W/env"
expect_err "$V cannot write $U's env" "$EACCES" as "$V" sh -c "echo X=1 > '$W/env'"
check "$U deploys" as "$U" sh -c "echo deploy > '$W/ctl'"
check "Healthy ($U)" wait_for "$W/status" Healthy 30
eq "the server runs as $U with the env" "[$(id -u "$U"), \"$SECRET\"]" \
	"$(curl -s -H "Authorization: Bearer $(cat "$W/key")" -d x "$(cat "$W/scoring_uri")")"
check "$U deletes" as "$U" sh -c "echo delete > '$W/ctl'"
check "Draft ($U)" wait_for "$W/status" Draft 30

# ---- a server of the user's own (command) gets the env too --------------------------
C=$MNT/deployments/cmd
mkdir "$C"
wr "$C/model" m:1
printf 'GREETING=from env\n' > "$C/env"
wr1 "$C/config" $'command = echo "cmd sees $GREETING"; exec python3 -m http.server --bind 127.0.0.1 "$PORT"\n'
deploy_timed "$C" 30
check "the command saw the env line" wait_until 10 grep -q "cmd sees from env" "$C/log"
check "delete cmd" wr "$C/ctl" delete
check "cmd Draft" wait_for "$C/status" Draft 30

check "unmount exits 0" unmount_ws
done_testing
