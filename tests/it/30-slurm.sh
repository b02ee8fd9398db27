#!/usr/bin/env bash
# The slurm target against a real private cluster (scripts/slurm-cluster.sh):
# provisioning (good and bad configs), runs that complete, fail, get
# canceled, span two nodes; `after` held by Slurm (afterok, afterany, a
# failed dependency, mixed cases); params and metrics.svg; slurmrestd
# stopped mid-run; the daemon killed mid-run, also between a POST and the
# store (nothing submitted twice), and with a run held by Slurm; arrays
# (one job array: %M, per-task logs, a failed index, cancel, adoption).
source "$(dirname "$0")/../lib.sh"

slurm_start
TOKEN=$(cat "$SLURM_TOKEN_FILE")

# provision NAME CONFIG: a slurm target, returns once it left Creating.
provision() {
	mkdir "$MNT/targets/$1" && wr "$MNT/targets/$1/type" slurm &&
		printf '%s\n' "$2" >"$MNT/targets/$1/config" &&
		wr "$MNT/targets/$1/ctl" provision || return 1
	wait_until 20 not_creating "$1"
}
not_creating() { [[ $(cat "$MNT/targets/$1/status") != Creating ]]; }

# run NAME COMMAND [RESOURCES]: a run on target sl, submitted.
run() {
	mkdir "$MNT/runs/$1" && wr "$MNT/runs/$1/command" "$2" &&
		wr "$MNT/runs/$1/target" sl || return 1
	[[ -z ${3:-} ]] || printf '%s\n' "$3" >"$MNT/runs/$1/resources"
	wr "$MNT/runs/$1/ctl" submit
}
job_of() { sed -n 's/.*"backend_id":[[:space:]]*"slurm \([0-9]*\)".*/\1/p' "$MNT/runs/$1/info.json"; }
has_job() { [[ -n $(job_of "$1") ]]; }
job_field() { scontrol -o show job "$1" | tr ' ' '\n' | sed -n "s|^$2=||p"; }
job_is() { [[ $(job_field "$1" JobState) == "$2" ]]; }
jobs_named() { scontrol -o show jobs | grep -c " JobName=$1 " || true; }
log_has() { grep -q -- "$2" "$MNT/runs/$1/log" 2>/dev/null; }
error_has() { [[ $(cat "$MNT/runs/$1/error") == *"$2"* ]]; }

check "mount" mount_ws

# ---- provision -----------------------------------------------------------
provision sl "url = $SLURM_URL
user = $SLURM_USER
token_file = $SLURM_TOKEN_FILE
partition = $SLURM_PARTITION
poll_seconds = 0.5"
eq "good config: Succeeded" Succeeded "$(cat "$MNT/targets/sl/status")"
eq "nodes lists the partition's nodes" "node1 node2" \
	"$(awk '{ print $1 }' "$MNT/targets/sl/nodes" | xargs)"
check "nodes: name state cpus memory gpus" grep -qE '^node1 idle 2 [0-9]+M 2$' \
	"$MNT/targets/sl/nodes"

dead_port=$((${SLURM_URL##*:} + 1))
provision badurl "url = http://127.0.0.1:$dead_port"
eq "wrong url: Failed" Failed "$(cat "$MNT/targets/badurl/status")"
check "wrong url: the reason" grep -q "connection refused at http://127.0.0.1:$dead_port" \
	"$MNT/targets/badurl/error"
provision badtok "url = $SLURM_URL
token = not.a.jwt"
eq "bad token: Failed" Failed "$(cat "$MNT/targets/badtok/status")"
check "bad token: says check token" grep -q "check token" "$MNT/targets/badtok/error"
provision notok "url = $SLURM_URL"
check "missing token: 401 ... check token" grep -q "401 from slurmrestd: check token" \
	"$MNT/targets/notok/error"
provision badpart "url = $SLURM_URL
token_file = $SLURM_TOKEN_FILE
partition = nope"
eq "unknown partition: Failed" Failed "$(cat "$MNT/targets/badpart/status")"
check "unknown partition: the reason" grep -q "no partition nope" \
	"$MNT/targets/badpart/error"
mkdir "$MNT/targets/badcfg" && wr "$MNT/targets/badcfg/type" slurm
wr "$MNT/targets/badcfg/config" "url = ftp://x"
expect_err "url with a bad scheme refused at provision" "Invalid argument" \
	wr "$MNT/targets/badcfg/ctl" provision

check "config with a token is 0600/0400" bash -c \
	"[[ \$(stat -c %a '$MNT/targets/badtok/config') == [46]00 ]]"
check "info.json hides the token" bash -c \
	"grep -q '\"token\":.*(hidden)' '$MNT/targets/badtok/info.json' && ! grep -q not.a.jwt '$MNT/targets/badtok/info.json'"

# ---- runs ----------------------------------------------------------------
R=$MNT/runs
mkdir "$R/ok" && cat >"$R/ok/train.sh" <<'SH'
echo "hello $MLFS_RUN from $(pwd)"
echo "to stderr" >&2
echo "loss 0.5 1" >> "$MLFS_METRICS"
echo weights > "$MLFS_OUTPUTS/model.txt"
SH
wr "$R/ok/command" 'sh train.sh'
wr "$R/ok/target" sl
wr "$R/ok/env" 'GREETING=hi'
check "submit a run to the slurm target" wr "$R/ok/ctl" submit
# inputs: ok's outputs, by their path on the shared file system
mkdir "$R/inp" && wr "$R/inp/command" 'cat "$MLFS_INPUT_w/model.txt" > "$MLFS_OUTPUTS/got"' &&
	wr "$R/inp/target" sl && wr "$R/inp/inputs" "w runs/ok/outputs"
check "submit a run reading ok's outputs" wr "$R/inp/ctl" submit
run fail 'echo failing; exit 3'
run long 'echo started; sleep 300'
run res 'echo cpus $SLURM_CPUS_PER_TASK' 'cpus = 2
gpus = 1
memory = 100M
time = 5'
run two 'echo "rank $MLFS_NODE_RANK of $MLFS_NUM_NODES at $MASTER_ADDR:$MASTER_PORT"' \
	'nodes = 2'
expect_err "nodes = 3 refused (the target has 2)" "Invalid argument" \
	run big 'true' 'nodes = 3'

check "ok completes" wait_for "$R/ok/status" Completed 30
eq "ok: exit code 0" 0 "$(cat "$R/ok/exit_code")"
check "ok: stdout in log" log_has ok "hello ok from $STATE/objects/"
check "ok: stderr in log" log_has ok "to stderr"
eq "ok: outputs appear" weights "$(cat "$R/ok/outputs/model.txt" 2>/dev/null)"
check "inp completes after ok" wait_for "$R/inp/status" Completed 30
eq "inp read ok's outputs (inputs)" weights "$(cat "$R/inp/outputs/got" 2>/dev/null)"
check "ok: metrics" grep -q '^loss 0.5 1 ' "$R/ok/metrics"
J=$(job_of ok)
check "ok: Slurm job id in info.json" test -n "$J"
eq "scontrol shows the job under the run's name" ok "$(job_field "$J" JobName)"
check "the job carries mlfs's comment" bash -c \
	"scontrol -o show job $J | grep -q 'Comment=mlfs:$STATE:'"

check "fail ends Failed" wait_for "$R/fail/status" Failed 30
eq "fail: exit code 3" 3 "$(cat "$R/fail/exit_code")"
check "fail: the reason" error_has fail "exited with code 3"

check "two completes" wait_for "$R/two/status" Completed 30
check "two: node1's line with rank 0" log_has two "^node1: rank 0 of 2 at [0-9.]*:[0-9]*$"
check "two: node2's line with rank 1" log_has two "^node2: rank 1 of 2 at "

check "res completes" wait_for "$R/res/status" Completed 30
J=$(job_of res)
eq "res: cpus -> cpus_per_task" 2 "$(job_field "$J" CPUs/Task)"
eq "res: time -> time_limit" 00:05:00 "$(job_field "$J" TimeLimit)"
eq "res: memory -> per node" 100M "$(job_field "$J" MinMemoryNode)"
check "res: gpus -> gres gpu:1" bash -c "scontrol -o show job $J | grep -q 'gpu:1'"

check "long is Running" wait_for "$R/long/status" Running 30
check "long: its log is live" wait_until 10 log_has long started
J=$(job_of long)
eq "squeue shows it running under the run's name" "long R" \
	"$(squeue -h -j "$J" -o '%j %t')"
check "cancel" wr "$R/long/ctl" cancel
check "long ends Canceled" wait_for "$R/long/status" Canceled 15
eq "Slurm cancelled the job" CANCELLED "$(job_field "$J" JobState)"

# ---- a shared workdir elsewhere: outputs come back ---------------------
mkdir -m 755 "$T/shared"
provision sl2 "url = $SLURM_URL
token_file = $SLURM_TOKEN_FILE
workdir = $T/shared
poll_seconds = 0.5"
mkdir "$R/wd" && wr "$R/wd/command" 'pwd; echo w2 > "$MLFS_OUTPUTS/out.txt"'
wr "$R/wd/target" sl2
wr "$R/wd/ctl" submit
check "workdir: the run completes" wait_for "$R/wd/status" Completed 30
check "workdir: it ran there" log_has wd "^$T/shared/mlfs-[0-9a-f]*/[0-9]*-wd$"
eq "workdir: outputs copied back" w2 "$(cat "$R/wd/outputs/out.txt" 2>/dev/null)"
check "workdir: the working copy is gone" bash -c "! ls -d '$T'/shared/mlfs-*/*-wd 2>/dev/null"
# a link in place of the daemon's folder there (the workdir is users'
# too): the working copy is never made through it, as root
MH=$(cd "$T/shared" && ls -d mlfs-* | head -1)
mkdir -m 755 "$T/linked"
rm -rf "${T:?}/shared/$MH" && ln -s "$T/linked" "$T/shared/$MH"
mkdir "$R/wdl" && wr "$R/wdl/command" true
wr "$R/wdl/target" sl2
wr "$R/wdl/ctl" submit
check "workdir through a link: the run ends" wait_final "$R/wdl" 30
eq "… Failed" Failed "$(cat "$R/wdl/status")"
check "… saying the folder is not the daemon's" \
	grep -q "shared/$MH is not the daemon's own folder" "$R/wdl/error"
eq "… nothing made where the link points" "" "$(ls -A "$T/linked")"
rm -f "$T/shared/$MH"
# the folder swapped for a link while a run works there: at its end the
# daemon (root) removes the working copy; through the link it would remove
# a folder of the same name wherever the link points
mkdir -m 1777 "$T/gate"
mkdir "$R/wd2" && wr "$R/wd2/command" \
	"while [ ! -e $T/gate/go ]; do sleep 0.2; done; echo o > \"\$MLFS_OUTPUTS/o.txt\""
wr "$R/wd2/target" sl2
wr "$R/wd2/ctl" submit
check "workdir swap: the run runs" wait_for "$R/wd2/status" Running 30
WC=$(cd "$T/shared/$MH" && ls -d *-wd2)
mkdir -p "$T/victim/$WC" && echo precious > "$T/victim/$WC/file"
mv "$T/shared/$MH" "$T/shared/$MH.moved" && ln -s "$T/victim" "$T/shared/$MH"
touch "$T/gate/go"
check "… the run ends" wait_final "$R/wd2" 30
eq "… the folder the link points at is intact" precious \
	"$(cat "$T/victim/$WC/file" 2>/dev/null)"
rm -f "$T/shared/$MH" && mv "$T/shared/$MH.moved" "$T/shared/$MH"

# ---- after: Slurm's own dependency -------------------------------------------
# A run whose runs are all started on the same target goes to Slurm at once,
# held there with afterok (afterany for `any`); runs wait for a flag file.
F=$T/flags
mkdir -m 1777 "$F"
hold() { echo "while [ ! -e $F/$1 ]; do sleep 0.2; done; $2"; }
dep_of() { job_field "$(job_of "$1")" Dependency; }
run_after() { # run_after NAME AFTER COMMAND
	mkdir "$R/$1" && wr "$R/$1/command" "$3" && wr "$R/$1/target" sl &&
		wr "$R/$1/after" "$2" && wr "$R/$1/ctl" submit
}
err_is() { [[ $(cat "$R/$1/error") == "$2" ]]; }
run pa "$(hold pa 'echo pa done > '"$F"'/pa-done')"
check "pa has its job" wait_until 20 has_job pa
run_after pb pa "test -e $F/pa-done && echo after pa"
check "pb goes to Slurm while pa runs" wait_until 20 has_job pb
eq "pa has not ended" "" "$(ls "$F"/pa-done 2>/dev/null)"
check "pb's job depends on pa's (afterok)" eval 	'[[ $(dep_of pb) == "afterok:$(job_of pa)"* ]]'
eq "pb is Queued" Queued "$(cat "$R/pb/status")"
check "pb: error says Slurm holds it" wait_until 10 	err_is pb "waiting for pa (Slurm dependency)"
check "Slurm keeps pb pending (Dependency)" eval 	'[[ $(job_field "$(job_of pb)" Reason) == Dependency ]]'
touch "$F/pa"
check "pb completes after pa" wait_for "$R/pb/status" Completed 30
check "pb ran after pa ended" log_has pb "after pa"
eq "pa Completed" Completed "$(cat "$R/pa/status")"
eq "pb: the note is gone" "" "$(cat "$R/pb/error")"

# a dependency that fails: the afterok one Canceled, the `any` one runs
run pf "$(hold pf 'exit 3')"
check "pf has its job" wait_until 20 has_job pf
run_after pg pf "echo pg"
run_after ph "pf any" "echo ph ran"
check "pg and ph go to Slurm while pf runs" wait_until 20 eval 	'has_job pg && has_job ph'
check "ph's job: afterany" eval '[[ $(dep_of ph) == "afterany:$(job_of pf)"* ]]'
touch "$F/pf"
check "pf Failed" wait_for "$R/pf/status" Failed 30
check "pg Canceled" wait_for "$R/pg/status" Canceled 30
eq "pg: the sentence of after" "canceled: run 'pf' ended Failed, and this run waited for it to complete (write 'pf any' in after to run anyway)" \
	"$(cat "$R/pg/error")"
eq "pg: no Slurm job left behind" CANCELLED "$(job_field "$(job_of pg)" JobState)"
check "ph (pf any) Completed" wait_for "$R/ph/status" Completed 30
check "ph ran" log_has ph "ph ran"

# a run elsewhere, or not submitted yet: the daemon waits, as before
mkdir "$R/lo" && wr "$R/lo/command" "$(hold lo true)" && wr "$R/lo/ctl" submit
run_after pl lo "echo pl"
mkdir "$R/dr" && wr "$R/dr/command" true
run_after pd dr "echo pd"
check "after a local run: the daemon waits" wait_until 10 err_is pl "waiting for lo"
check "after a Draft: the daemon waits" wait_until 10 err_is pd "waiting for dr"
check "neither is in Slurm yet" eval '! has_job pl && ! has_job pd'
touch "$F/lo"
check "pl completes after the local run" wait_for "$R/pl/status" Completed 30
wr "$R/dr/target" sl
wr "$R/dr/ctl" submit
check "pd completes after dr" wait_for "$R/pd/status" Completed 30

# user cancel of a held run: the job goes, the note too
run pc "$(hold pc true)"
run pw "$(hold pw true)"
check "pc and pw have their jobs" wait_until 20 eval 'has_job pc && has_job pw'
run_after pz $'pc\npw any' "echo pz"
check "pz held by Slurm" wait_until 20 has_job pz
check "pz's job: afterok and afterany" eval \
	'[[ $(dep_of pz) == "afterok:$(job_of pc)"*",afterany:$(job_of pw)"* ]]'
wr "$R/pz/ctl" cancel
check "pz Canceled" wait_for "$R/pz/status" Canceled 30
eq "pz: no note left" "" "$(cat "$R/pz/error")"
eq "pz: its job cancelled" CANCELLED "$(job_field "$(job_of pz)" JobState)"
touch "$F/pc" "$F/pw"
check "pc completes" wait_for "$R/pc/status" Completed 30

# ---- params and plots on Slurm ---------------------------------------------
run pp 'python3 -c "import mlfs
for i in range(5): mlfs.log(\"loss\", 1.0 / (1 + i), step=i)
mlfs.log(\"acc\", 0.9, step=4)
mlfs.param(\"kernel\", \"linear\")"
echo "lr 0.1" >> "$MLFS_PARAMS"'
check "pp completes" wait_for "$R/pp/status" Completed 30
check "pp: mlfs.param in params" grep -qx "kernel linear" "$R/pp/params"
check "pp: MLFS_PARAMS in params" grep -qx "lr 0.1" "$R/pp/params"
check "pp: metrics" grep -q "^loss 0.2 4 " "$R/pp/metrics"
check "pp: metrics.svg parses, both metrics in it" python3 -c '
import sys, xml.etree.ElementTree as E
t = "".join(E.parse(sys.argv[1]).getroot().itertext())
sys.exit(not ("loss" in t and "acc" in t))' "$R/pp/metrics.svg"

# ---- arrays: one Slurm job array -------------------------------------------
# Each task runs task.sh: it says it started, waits for a go file of the
# test, prints its index, writes outputs/I, says it ended.
AF=$T/af
mkdir -m 1777 "$AF"
# arr NAME ARRAY [LINE]: an array run of task.sh (LINE runs at its end).
arr() {
	mkdir "$R/$1" && cat >"$R/$1/task.sh" <<SH
i=\$MLFS_ARRAY_INDEX
touch $AF/$1-started-\$i
while [ ! -e $AF/$1-go-\$i ]; do sleep 0.1; done
echo "task \$i of \$MLFS_ARRAY_COUNT (SLURM_ARRAY_TASK_ID \$SLURM_ARRAY_TASK_ID)"
echo \$i > "\$MLFS_OUTPUTS/\$i"
touch $AF/$1-ended-\$i
${3:-}
SH
	wr "$R/$1/command" 'sh task.sh' && wr "$R/$1/target" sl &&
		wr "$R/$1/resources" "array = $2" && wr "$R/$1/ctl" submit
}
marks() { ls "$AF" | grep -c "^$1-$2-" || true; }	# marks NAME started|ended
go() { local i; for i in "${@:2}"; do touch "$AF/$1-go-$i"; done; }
# tstat NAME: the tasks' statuses, "I:STATUS" in index order
tstat() {
	local i out=
	for i in $(ls "$R/$1/tasks" | sort -n); do
		out+="$i:$(cat "$R/$1/tasks/$i/status") "
	done
	echo "${out% }"
}
n_running() { grep -lx Running "$R/$1"/tasks/*/status 2>/dev/null | wc -l; }
all_final() { ! grep -qxE 'Queued|Running' "$R/$1"/tasks/*/status; }

arr A 0-5%2
check "A: an array goes to Slurm" wait_until 20 has_job A
J=$(job_of A)
eq "A: one Slurm job array, 2 tasks at once (%2)" "ArrayJobId=$J ArrayTaskThrottle=2" \
	"$(scontrol -o show job "$J" | grep -oE 'Array(JobId|TaskThrottle)=[0-9]*' |
		sort -u | paste -sd' ')"
eq "A: tasks/ lists the 6 indices" "0 1 2 3 4 5" \
	"$(ls "$R/A/tasks" | sort -n | paste -sd' ')"
eq "A: a task folder holds status, exit_code, log" "exit_code log status" \
	"$(ls "$R/A/tasks/0" | paste -sd' ')"
check "A: 2 tasks started" wait_until 30 eval '[[ $(marks A started) == 2 ]]'
check "A: their tasks/I/status say Running" \
	wait_until 10 eval '[[ $(n_running A) == 2 ]]'
eq "A Running" Running "$(cat "$R/A/status")"
expect_err "A: a task's status cannot be written" "" \
	wr "$R/A/tasks/0/status" Completed
bad=0
for i in 0 1 2 3 4 5; do
	go A $i
	want=$((i + 3 > 6 ? 6 : i + 3))
	wait_until 30 eval '[[ $(marks A ended) -ge $((i + 1)) &&
		$(marks A started) -ge $want ]]' || bad=1
	(($(n_running A) > 2)) && bad=1
	(($(marks A started) - $(marks A ended) > 2)) && bad=1
done
eq "A: every task ran, never more than 2 Running at once" 0 "$bad"
check "A Completed when all are" wait_for "$R/A/status" Completed 30
eq "A: exit_code 0" 0 "$(cat "$R/A/exit_code")"
eq "A: every task Completed" \
	"0:Completed 1:Completed 2:Completed 3:Completed 4:Completed 5:Completed" \
	"$(tstat A)"
eq "A: every task's exit_code 0" "0 0 0 0 0 0" \
	"$(cat "$R"/A/tasks/{0..5}/exit_code | paste -sd' ')"
for i in 0 3 5; do
	eq "A: task $i's log holds its own line (SLURM_ARRAY_TASK_ID too)" \
		"task $i of 6 (SLURM_ARRAY_TASK_ID $i)" "$(cat "$R/A/tasks/$i/log")"
done
eq "A: outputs holds the 6 tasks' files" "0 1 2 3 4 5" \
	"$(ls "$R/A/outputs" | sort -n | paste -sd' ')"
check "A: the run's log says when task 4 started" \
	grep -qx "mlfs: task 4 started" "$R/A/log"
check "A: and when it ended" grep -qx "mlfs: task 4 ended (exit 0)" "$R/A/log"
eq "A: error empty" "" "$(cat "$R/A/error")"

# tasks that run between two of the daemon's looks (seen only once ended):
# the log still says each started, then ended
go Q 0 1 2 3	# before they start: each ends at once
arr Q 0-3
check "Q (instant tasks) Completed" wait_for "$R/Q/status" Completed 60
q_lines() {
	local i
	for i in 0 1 2 3; do
		grep -xE "mlfs: task $i (started|ended \(exit 0\))" "$R/Q/log" |
			paste -sd' '
	done
}
eq "Q: the log says each task started, then ended" \
	"$(for i in 0 1 2 3; do echo "mlfs: task $i started mlfs: task $i ended (exit 0)"; done)" \
	"$(q_lines)"

# one index fails: Failed, that index in error
arr AF1 0-3 '[ $i != 2 ] || exit 3'
go AF1 0 1 2 3
check "AF1 Failed" wait_for "$R/AF1/status" Failed 60
eq "AF1: the failed index in error" "task 2 failed (exit 3)" \
	"$(cat "$R/AF1/error")"
eq "AF1: exit_code, the failed task's" 3 "$(cat "$R/AF1/exit_code")"
eq "AF1: task 2 Failed, the others Completed" \
	"0:Completed 1:Completed 2:Failed 3:Completed" "$(tstat AF1)"
eq "AF1: task 2's exit_code" 3 "$(cat "$R/AF1/tasks/2/exit_code")"

# cancel of a running array: one cancel of the whole job array
arr AC 0-5%2
check "AC: 2 tasks started" wait_until 30 eval '[[ $(marks AC started) == 2 ]]'
check "AC Running" wait_for "$R/AC/status" Running 20
wr "$R/AC/ctl" cancel
check "AC Canceled" wait_for "$R/AC/status" Canceled 30
check "AC: every task final" all_final AC
eq "AC: every task Canceled" \
	"0:Canceled 1:Canceled 2:Canceled 3:Canceled 4:Canceled 5:Canceled" \
	"$(tstat AC)"
eq "AC: no task ran to its end, no other started" "0 2" \
	"$(marks AC ended) $(marks AC started)"
eq "AC: Slurm cancelled every task" CANCELLED \
	"$(scontrol -o show job "$(job_of AC)" | grep -o 'JobState=[A-Z]*' |
		sort -u | sed 's/JobState=//' | paste -sd' ')"

# an index above what Slurm takes (MaxArraySize, 1001 by default: 0 to
# 1000): Slurm's refusal in error, no task folder left behind
mkdir "$R/AB" && wr "$R/AB/command" true && wr "$R/AB/target" sl &&
	wr "$R/AB/resources" "array = 0,5000"
wr "$R/AB/ctl" submit 2>/dev/null
check "AB (0,5000) Failed" wait_for "$R/AB/status" Failed 30
check "AB: Slurm's refusal in error" grep -q "^Slurm refused the job: " \
	"$R/AB/error"
eq "AB: tasks/ is empty" "" "$(ls "$R/AB/tasks")"

# kill -9 + remount while tasks run: Slurm goes on, the array is adopted
arr AK 0-3%2
check "AK: 2 tasks started" wait_until 30 eval '[[ $(marks AK started) == 2 ]]'
check "AK: they say Running" wait_until 10 eval '[[ $(n_running AK) == 2 ]]'
crash_ws
go AK 0
check "AK: with the daemon gone, Slurm starts task 2" \
	wait_until 30 eval '[[ -e $AF/AK-started-2 ]]'
check "AK: remount after kill -9" mount_ws
check "AK: adopted, task 0 seen Completed" \
	wait_until 20 eval '[[ $(cat "$R/AK/tasks/0/status") == Completed ]]'
eq "AK still Running" Running "$(cat "$R/AK/status")"
go AK 1 2 3
check "AK Completed" wait_for "$R/AK/status" Completed 30
eq "AK: every task Completed" \
	"0:Completed 1:Completed 2:Completed 3:Completed" "$(tstat AK)"
eq "AK: one job array, not submitted again" 1 \
	"$(scontrol -o show jobs | grep " JobName=AK " |
		grep -o 'ArrayJobId=[0-9]*' | sort -u | wc -l)"

# ---- slurmrestd away mid-run ---------------------------------------------
run away 'sleep 3; echo back'
check "away is Running" wait_for "$R/away/status" Running 30
"$ROOT/scripts/slurm-cluster.sh" stop-rest "$T/slurm" >/dev/null
check "outage: error says unreachable" wait_until 10 error_has away unreachable
eq "outage: the run keeps its state" Running "$(cat "$R/away/status")"
check "outage: events say unreachable" grep -q "run away error: slurmrestd is unreachable" \
	"$MNT/events"
check "outage: the job ends meanwhile" wait_until 15 job_is "$(job_of away)" COMPLETED
eq "outage: still the last known state" Running "$(cat "$R/away/status")"
"$ROOT/scripts/slurm-cluster.sh" start-rest "$T/slurm" >/dev/null
check "back: the run completes" wait_for "$R/away/status" Completed 20
eq "back: the note is gone" "" "$(cat "$R/away/error")"

# ---- the daemon killed mid-run ----------------------------------------------
run k9 "$(hold k9 'echo after the crash')"	# Running until the test says
run dup 'sleep 3; echo once'
run ka "$(hold ka true)"
check "ka has its job" wait_until 20 has_job ka
run_after kb ka "echo kb"
check "kb held by Slurm" wait_until 20 has_job kb
check "k9 is Running" wait_for "$R/k9/status" Running 30
check "dup has its job" wait_until 10 has_job dup
crash_ws
# Pretend the crash came between dup's POST and the store keeping its id.
sqlite3 "$STATE/workspace.db" "UPDATE objects SET state = 'Queued',
	backend_id = '', ddata = 'submit' WHERE kind = 2 AND name = 'dup'"
check "remount after kill -9" mount_ws
touch "$F/k9"
check "k9 is adopted and completes" wait_for "$R/k9/status" Completed 30
check "k9: its log" log_has k9 "after the crash"
eq "k9: one job" 1 "$(jobs_named k9)"
check "dup completes" wait_for "$R/dup/status" Completed 30
eq "dup: found by its comment, not submitted twice" 1 "$(jobs_named dup)"
check "dup: its job id is back" has_job dup
eq "kb still Queued after the restart" Queued "$(cat "$R/kb/status")"
check "kb: still held by Slurm" wait_until 10 \
	err_is kb "waiting for ka (Slurm dependency)"
touch "$F/ka"
check "kb completes after ka" wait_for "$R/kb/status" Completed 30
eq "kb: one job" 1 "$(jobs_named kb)"

check "the token is in no log nor events" bash -c \
	"! grep -qF '$TOKEN' '$DAEMON_ERR' '$MNT/events' '$STATE/mlfs.log' 2>/dev/null"
check "unmount exits 0" unmount_ws
done_testing
