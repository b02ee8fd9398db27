#!/usr/bin/env bash
# Managed clusters (type = cluster) on test hosts with their own addresses
# (scripts/cluster-hosts.sh: network namespaces, an sshd each): bad configs
# and hosts (one without slurmd, one that does not see the state folder)
# end Failed with a sentence; provision of 3 hosts with min_nodes = 0; a
# 2-node run waits Queued while mlfs starts two nodes, then completes on
# them; nodes power down after
# idle_seconds; `resize 1 3` keeps one up; a host cut off while powered
# down ends `down` with the reason and its run goes to another host;
# slurmctld killed is started again and runs go on; a user's run in an
# environment (podman on the node) sees a file only the image has, runs
# as that user and completes; kill -9 of the daemon and a remount lose
# nothing and run nothing twice; deprovision is EBUSY while a run is
# active, then leaves no process on any host; provision again; rmdir.
source "$(dirname "$0")/../lib.sh"

chmod 755 "$T"
HOSTS=$T/hosts
trap '"$ROOT/scripts/cluster-hosts.sh" stop "$HOSTS" >/dev/null 2>&1; cleanup' EXIT
# hosts 1-3 make the cluster; host 4 is a machine without Slurm or munge
if ! { "$ROOT/scripts/cluster-hosts.sh" start "$HOSTS" 4 &&
	"$ROOT/scripts/cluster-hosts.sh" fresh "$HOSTS" 4; } >"$T/hosts.log" 2>&1; then
	not_ok "the test hosts start"
	sed 's/^/# /' "$T/hosts.log" | tail -20
	done_testing
	exit 1
fi
source "$HOSTS/hosts.env"
read -r -a H <<<"$CLUSTER_HOSTS"
G=$MNT/targets/gpu

check "mount" mount_ws -o allow_other

# An environment for the run in a container below, built while the
# cluster comes up: busybox and a file only the image has.  The hosts
# share this machine's root podman store (cluster-hosts.sh: only
# /run/mlfs-cluster is theirs), so the job finds the image there.
ENV_OK=
if command -v podman >/dev/null && [[ -x /bin/busybox ]]; then
	busybox_marked "$T/marked.tar"
	mkdir "$MNT/environments/marked" &&
		wr "$MNT/environments/marked/config" "rootfs = $T/marked.tar" &&
		wr "$MNT/environments/marked/ctl" build && mu_users mlfs_ua && ENV_OK=1
fi

# provision NAME CONFIG: a cluster target; returns once it left Creating.
provision() {
	[[ -d $MNT/targets/$1 ]] || mkdir "$MNT/targets/$1" || return 1
	wr "$MNT/targets/$1/type" cluster &&
		printf '%s\n' "$2" >"$MNT/targets/$1/config" &&
		wr "$MNT/targets/$1/ctl" provision || return 1
	wait_until 120 not_creating "$1"
}
not_creating() { [[ $(cat "$MNT/targets/$1/status") != Creating ]]; }
status_is() { [[ $(cat "$MNT/targets/$1/status") == "$2" ]]; }
error_has() { [[ $(cat "$1/error") == *"$2"* ]]; }
node_state() { awk -v n="$1" '$1 == n { print $2 }' "$G/nodes"; }
node_is() { [[ $(node_state "$1") == "$2" ]]; }
all_off() { [[ $(awk '$2 != "powered_down"' "$G/nodes" | wc -l) == 0 && -s $G/nodes ]]; }
count_state() { awk -v s="$1" '$2 == s' "$G/nodes" | wc -l; }
ctl_pid() { cat "$STATE/objects/$GID/cluster/$1.pid" 2>/dev/null; }
alive() { [[ -n $1 && -e /proc/$1 ]]; }
# this cluster's folder under /run (others may run beside this test)
run_dir() { sed -n 's|^AuthInfo=socket=\(.*\)/munge/munge.socket.*|\1|p' \
	"$STATE/objects/$GID/cluster/slurm.conf"; }
SC() { SLURM_CONF=$(run_dir)/slurm.conf "$@"; }

# run NAME COMMAND [RESOURCES]: a run on the cluster, submitted.
run() {
	mkdir "$MNT/runs/$1" && wr "$MNT/runs/$1/command" "$2" &&
		wr "$MNT/runs/$1/target" gpu || return 1
	[[ -z ${3:-} ]] || printf '%s\n' "$3" >"$MNT/runs/$1/resources"
	wr "$MNT/runs/$1/ctl" submit
}
gated() { echo "while [ ! -e $T/gate-$1 ]; do sleep 0.2; done; echo released $1"; }
run_is() { [[ $(cat "$MNT/runs/$1/status") == "$2" ]]; }
# completes NAME SECONDS: the run ends (any final state) and Completed.
completes() { wait_final "$MNT/runs/$1" "$2" && run_is "$1" Completed; }

BASE="identity_file = $CLUSTER_IDENTITY
connect_timeout = 3"

# ---- bad configs: refused inside the write, or Failed with a sentence ----
mkdir "$MNT/targets/bad" && wr "$MNT/targets/bad/type" cluster
printf 'hosts = %s %s\n%s\n' "${H[0]}" "${H[0]}" "$BASE" >"$MNT/targets/bad/config"
expect_err "a host listed twice: EINVAL" "Invalid argument" wr "$MNT/targets/bad/ctl" provision
check "... and error names the host" error_has "$MNT/targets/bad" "host ${H[0]} is listed twice"
printf 'hosts = %s %s\nmin_nodes = 2\nmax_nodes = 1\n%s\n' "${H[0]}" "${H[1]}" "$BASE" \
	>"$MNT/targets/bad/config"
expect_err "min_nodes > max_nodes: EINVAL" "Invalid argument" wr "$MNT/targets/bad/ctl" provision
check "... and error says so" error_has "$MNT/targets/bad" "min_nodes = 2 is larger than max_nodes = 1"
printf 'hosts = %s\nmax_nodes = 2\n%s\n' "${H[0]}" "$BASE" >"$MNT/targets/bad/config"
expect_err "max_nodes above the hosts: EINVAL" "Invalid argument" wr "$MNT/targets/bad/ctl" provision
eq "a refused provision leaves it Draft" Draft "$(cat "$MNT/targets/bad/status")"

provision bad "hosts = nosuch.invalid
$BASE"
check "an unknown host: Failed" status_is bad Failed
check "... with a sentence naming it" error_has "$MNT/targets/bad" "nosuch.invalid"
check "... one line" has_sentence "$MNT/targets/bad/error"
wr "$MNT/targets/bad/ctl" deprovision
wait_until 30 status_is bad Draft

printf 'hosts = %s\nidentity_file = %s\n' "${H[0]}" "$T/no-such-key" >"$MNT/targets/bad/config"
expect_err "no ssh key: ENOENT inside the write" "No such file" wr "$MNT/targets/bad/ctl" provision
check "... the sentence names identity_file" error_has "$MNT/targets/bad" "identity_file"
eq "... still Draft" Draft "$(cat "$MNT/targets/bad/status")"

ssh-keygen -q -t ed25519 -N '' -f "$T/other-key"
provision bad "hosts = ${H[0]}
identity_file = $T/other-key
connect_timeout = 3"
check "a key the host refuses: Failed" status_is bad Failed
check "... the sentence names the host" error_has "$MNT/targets/bad" "${H[0]}"
wr "$MNT/targets/bad/ctl" deprovision
wait_until 30 status_is bad Draft

provision bad "hosts = ${H[0]} ${H[3]}
install = no
$BASE"
check "a host without slurmd (install = no): Failed" status_is bad Failed
check "... the sentence names the host and the command" \
	error_has "$MNT/targets/bad" "host ${H[3]} has no slurmd: run \`apt-get install slurmd munge\`"
wr "$MNT/targets/bad/ctl" deprovision
wait_until 30 status_is bad Draft

# the same host with install = yes (the default): slurmd and munge are
# installed there with apt, and a run works on it
provision inst "hosts = ${H[3]}
$BASE"
eq "a host without slurmd (install = yes): Succeeded" Succeeded "$(cat "$MNT/targets/inst/status")"
cat "$MNT/targets/inst/error" | sed 's/^/# error: /'
check "... slurmd and munged are installed there" \
	"$ROOT/scripts/cluster-hosts.sh" exec "$HOSTS" 4 sh -c 'slurmd -V && command -v munged'
mkdir "$MNT/runs/inst" && wr "$MNT/runs/inst/command" 'echo "on $(hostname -I)"' &&
	wr "$MNT/runs/inst/target" inst && wr "$MNT/runs/inst/ctl" submit
check "... a run on it completes" completes inst 180
check "... on that host" grep -q "on ${H[3]}" "$MNT/runs/inst/log"
wr "$MNT/targets/inst/ctl" deprovision
check "... deprovision: Draft" wait_until 120 status_is inst Draft
eq "... no process of the cluster left there" "" \
	"$("$ROOT/scripts/cluster-hosts.sh" procs "$HOSTS" 4 | xargs)"
rmdir "$MNT/targets/inst"

# a login that is not root: with passwordless sudo the cluster works
# through `sudo -n`; without, provision fails with the sentence.  The users
# exist on host 4 only (its /etc is its own).
HX() { "$ROOT/scripts/cluster-hosts.sh" exec "$HOSTS" 4 "$@"; }
HX sh -c 'for u in mlfsop mlfsnop; do
	useradd -M -d / -s /bin/sh "$u" && usermod -p "*" "$u"; done
	echo "mlfsop ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/mlfsop
	chmod 440 /etc/sudoers.d/mlfsop'
provision nop "hosts = ${H[3]}
user = mlfsnop
$BASE"
check "a login without root or sudo: Failed" status_is nop Failed
check "... the sentence says so" \
	error_has "$MNT/targets/nop" "user mlfsnop is not root and cannot run sudo -n"
wr "$MNT/targets/nop/ctl" deprovision
wait_until 30 status_is nop Draft
rmdir "$MNT/targets/nop"
provision op "hosts = ${H[3]}
user = mlfsop
$BASE"
eq "a login with passwordless sudo: Succeeded" Succeeded "$(cat "$MNT/targets/op/status")"
cat "$MNT/targets/op/error" | sed 's/^/# error: /'
mkdir "$MNT/runs/op" && wr "$MNT/runs/op/command" 'echo "as sudo on $(hostname -I)"' &&
	wr "$MNT/runs/op/target" op && wr "$MNT/runs/op/ctl" submit
check "... a run on it completes (slurmd started through sudo)" completes op 180
check "... on that host" grep -q "as sudo on ${H[3]}" "$MNT/runs/op/log"
wr "$MNT/targets/op/ctl" deprovision
check "... deprovision: Draft" wait_until 120 status_is op Draft
eq "... no process of the cluster left there" "" \
	"$("$ROOT/scripts/cluster-hosts.sh" procs "$HOSTS" 4 | xargs)"
rmdir "$MNT/targets/op"

# GPUs: host 4 gets two test GPUs (device files of its own and an
# nvidia-smi that lists them: cluster-hosts.sh gpus); Slurm schedules them
# as real ones, through the gres.conf that the helper sends with slurm.conf
"$ROOT/scripts/cluster-hosts.sh" gpus "$HOSTS" 4 2
provision gg "hosts = ${H[3]}
$BASE"
eq "a host with two GPUs: Succeeded" Succeeded "$(cat "$MNT/targets/gg/status")"
check "... nodes says 2 GPUs" grep -qE "^node1 [a-z_]+ [0-9]+ [0-9]+M 2 ${H[3]}\$" "$MNT/targets/gg/nodes"
mkdir "$MNT/runs/gg" "$MNT/runs/gg3"
wr "$MNT/runs/gg3/command" true && wr "$MNT/runs/gg3/target" gg &&
	wr "$MNT/runs/gg3/resources" "gpus = 3"
expect_err "... a run asking for 3 GPUs: EINVAL at submit" "Invalid argument" \
	wr "$MNT/runs/gg3/ctl" submit
wr "$MNT/runs/gg/command" 'echo "gpus $CUDA_VISIBLE_DEVICES"' &&
	wr "$MNT/runs/gg/target" gg && wr "$MNT/runs/gg/resources" "gpus = 2" &&
	wr "$MNT/runs/gg/ctl" submit
check "... a run with gpus = 2 completes" completes gg 180
check "... with both devices (CUDA_VISIBLE_DEVICES=0,1 set by Slurm)" \
	grep -q "gpus 0,1" "$MNT/runs/gg/log"
sed 's/^/# log: /' "$MNT/runs/gg/log" | tail -3
wr "$MNT/targets/gg/ctl" deprovision
check "... deprovision: Draft" wait_until 120 status_is gg Draft
rmdir "$MNT/targets/gg"

# host 3 without the state folder: a tmpfs over it in that host's own
# mount namespace (its sshd's), as a host that does not share it
SSHD3=$(cat "$HOSTS/sshd-3.pid")
nsenter -t "$SSHD3" -m mount -t tmpfs -o size=1m tmpfs "$STATE"
provision bad "hosts = ${H[2]}
$BASE"
check "a host that does not see the state folder: Failed" status_is bad Failed
check "... the sentence names the host and the folder" \
	error_has "$MNT/targets/bad" "host ${H[2]} does not see the state folder $STATE at the same path"
nsenter -t "$SSHD3" -m umount "$STATE"
wr "$MNT/targets/bad/ctl" deprovision
wait_until 30 status_is bad Draft
rmdir "$MNT/targets/bad"
check "rmdir of the bad target" test ! -e "$MNT/targets/bad"

# ---- provision 3 hosts, min_nodes = 0 --------------------------------------
provision gpu "hosts = ${H[0]} ${H[1]}
host = ${H[2]}
min_nodes = 0
idle_seconds = 8
resume_seconds = 90
$BASE"
eq "provision of 3 hosts: Succeeded" Succeeded "$(cat "$G/status")"
cat "$G/error" | sed 's/^/# error: /'
GID=$(json_get "$G/info.json" id 2>/dev/null || true)
[[ -n $GID ]] || GID=$(basename "$(dirname "$(ls -d "$STATE"/objects/*/cluster | head -1)")")
eq "nodes: one line a host" "node1 node2 node3" "$(awk '{ print $1 }' "$G/nodes" | xargs)"
check "nodes: NAME STATE CPUS MEMORY GPUS ADDRESS" \
	grep -qE "^node1 powered_down [0-9]+ [0-9]+M [0-9]+ ${H[0]}\$" "$G/nodes"
check "all nodes powered_down (min_nodes = 0)" all_off
eq "the munge key is 0400" 400 "$(stat -c %a "$STATE/objects/$GID/cluster/munge.key")"
eq "the cluster's folder is 0700" 700 "$(stat -c %a "$STATE/objects/$GID/cluster")"
check "slurmctld runs" alive "$(ctl_pid slurmctld)"
check "slurmrestd runs" alive "$(ctl_pid slurmrestd)"
SOCK=$(run_dir)/munge/munge.socket
check "another user of this machine cannot use the cluster's munge socket" \
	bash -c "! setpriv --reuid=nobody --regid=nogroup --clear-groups munge -n -S '$SOCK' >/dev/null 2>&1"
check "... root can" bash -c "munge -n -S '$SOCK' >/dev/null"

# ---- runs too large for the cluster: refused at submit -------------------
mkdir "$MNT/runs/big" && wr "$MNT/runs/big/command" true && wr "$MNT/runs/big/target" gpu
wr "$MNT/runs/big/resources" "nodes = 4"
expect_err "4 nodes on 3 hosts: EINVAL at submit" "Invalid argument" wr "$MNT/runs/big/ctl" submit
check "... the sentence says why" error_has "$MNT/runs/big" "nodes = 4"
wr "$MNT/runs/big/resources" "cpus = 4096"
expect_err "more CPUs than a host has: EINVAL" "Invalid argument" wr "$MNT/runs/big/ctl" submit
eq "... the run stays Draft" Draft "$(cat "$MNT/runs/big/status")"

# ---- a 2-node run scales two nodes up and completes -----------------------
# held Running until the test sees its nodes allocated (a quick run could
# come and go between two refreshes of nodes)
run two "$(gated 0); "'echo "on $(hostname -I | tr -d " ")"; echo "$MLFS_RUN done"; echo out > "$MLFS_OUTPUTS/o-$(hostname -I | tr -d " ")"' "nodes = 2"
check "the 2-node run Running" wait_until 180 run_is two Running
two_busy() { (($(count_state allocated) + $(count_state mixed) == 2)); }
check "... its two nodes allocated" wait_until 60 two_busy
touch "$T/gate-0"
check "the 2-node run completes" completes two 180
cat "$MNT/runs/two/error" | sed 's/^/# error: /'
eq "... on two hosts (node prefixes in log)" 2 \
	"$(grep -oE '^node[0-9]+' "$MNT/runs/two/log" | sort -u | wc -l)"
check "... each line from its host's own address" grep -qE "on 10\.[0-9.]+" "$MNT/runs/two/log"
eq "... outputs/ has what each node wrote" 2 "$(ls "$MNT/runs/two/outputs" | grep -c '^o-10\.')"
check "events: two nodes powering_up" test "$(ev_count 'target gpu node node[0-9] powering_up')" -ge 2
check "events: nodes allocated or mixed" test "$(ev_count 'target gpu node node[0-9] (allocated|mixed)')" -ge 2
check "the run waited in Queued while mlfs started its nodes (events)" \
	test "$(ev_count ' run two error: waiting for 2 nodes of gpu to start')" -eq 1

# ---- idle nodes power down after idle_seconds ------------------------------
check "all nodes powered_down after idle_seconds" wait_until 90 all_off
check "events: node ... powered_down" test "$(ev_count 'target gpu node node[0-9] powered_down')" -ge 2
# Slurm says powered_down SuspendTimeout (5 s) after it asked for the stop;
# the helper's ssh may still be stopping slurmd then on a loaded machine
no_procs() { [[ -z "$("$ROOT/scripts/cluster-hosts.sh" procs "$HOSTS" 1)$("$ROOT/scripts/cluster-hosts.sh" procs "$HOSTS" 2)" ]]; }
check "no slurmd left on the hosts" wait_until 30 no_procs

# ---- resize 1 3: one node kept up ------------------------------------------
wr "$G/ctl" "resize 1 3"
check "resize: back to Succeeded" wait_until 60 status_is gpu Succeeded
check "config says min_nodes = 1" grep -qE '^min_nodes = 1$' "$G/config"
check "config says max_nodes = 3" grep -qE '^max_nodes = 3$' "$G/config"
eq "info.json shows min_nodes (one character)" 1 \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["min_nodes"])' "$G/info.json" 2>&1)"
check "ctl lists resize" grep -qx 'resize MIN MAX' "$G/ctl"
one_up() { [[ $(count_state idle) == 1 && $(count_state powered_down) == 2 ]]; }
check "one node comes up and idles" wait_until 120 one_up
sleep 20	# twice idle_seconds + the suspend time: it must not go down
check "... and stays up past idle_seconds" one_up
expect_err "resize 3 1: EINVAL" "Invalid argument" wr "$G/ctl" "resize 3 1"
expect_err "resize 0 4 (3 hosts): EINVAL" "Invalid argument" wr "$G/ctl" "resize 0 4"
check "... the sentence" error_has "$G" "max_nodes = 4 but the cluster has 3 hosts"
check "... the config is unchanged" grep -qE '^max_nodes = 3$' "$G/config"

# ---- a host cut off while powered down ---------------------------------------
wr "$G/ctl" "resize 0 3"
wait_until 60 status_is gpu Succeeded
check "back to 0 nodes" wait_until 90 all_off
"$ROOT/scripts/cluster-hosts.sh" link "$HOSTS" 1 down
# Three runs, each a whole host's CPUs, held until the test releases them:
# together they need all three nodes, so Slurm must try the cut one (a
# single run could be placed on another node and prove nothing).
CPN=$(awk '$1 == "node1" { print $3 }' "$G/nodes")
for c in a b c; do
	run "cut$c" "$(gated 4); echo \"ran on \$(hostname -I)\"" "cpus = $CPN"
done
node1_down() { node_is node1 down; }
if wait_until 180 node1_down; then
	ok "the cut host's node ends down"
else
	not_ok "the cut host's node ends down"
	sed 's/^/# nodes: /' "$G/nodes"
	grep ' node ' "$MNT/events" | tail -12 | sed 's/^/# events: /'
	SC squeue -o '%i %j %T %R' 2>&1 | sed 's/^/# squeue: /'
fi
check "... with the reason in nodes" grep -qE "^node1 down .* ${H[0]} .*(cannot|unreachable|reach)" "$G/nodes"
check "... and in events" test "$(ev_count 'target gpu node node1 down')" -ge 1
two_running() { (($(for c in a b c; do run_is "cut$c" Running && echo; done | wc -l) == 2)); }
check "two of the runs are Running on the other hosts" wait_until 180 two_running
touch "$T/gate-4"
for c in a b c; do
	check "run cut$c ends Completed (the third on another host)" completes "cut$c" 240
	check "... not on the cut host" bash -c "! grep -q '${H[0]}' '$MNT/runs/cut$c/log'"
done
"$ROOT/scripts/cluster-hosts.sh" link "$HOSTS" 1 up
# from here on a node is kept up: the runs below need no scale-up
wr "$G/ctl" "resize 1 3"
wait_until 60 status_is gpu Succeeded
some_idle() { (($(count_state idle) >= 1)); }
check "min_nodes = 1 again: a node idles" wait_until 120 some_idle

# ---- a run in an environment: the node's podman, as the run's creator ------
if [[ -n $ENV_OK ]] && [[ $(env_settled marked 120) == Ready ]]; then
	chmod go+x "$G"
	as mlfs_ua mkdir "$MNT/runs/inimage"
	as mlfs_ua sh -c "echo 'cat /etc/mlfs-marker; id -u' > '$MNT/runs/inimage/command'
		echo gpu > '$MNT/runs/inimage/target'
		echo marked > '$MNT/runs/inimage/environment'
		echo submit > '$MNT/runs/inimage/ctl'"
	check "a user's run in an environment on the cluster completes" completes inimage 180
	[[ $(cat "$MNT/runs/inimage/status") == Completed ]] ||
		sed 's/^/# /' "$MNT/runs/inimage/log" "$MNT/runs/inimage/error"
	eq "... in the image (a file only it has), as its creator inside" \
		"inside-the-image $$ $(id -u mlfs_ua)" \
		"$(sed 's/^node[0-9]*: //' "$MNT/runs/inimage/log" | grep -v '^mlfs: ' | tr '\n' ' ' | sed 's/ $//')"
	check "... the image staged in the cluster's cache (the state folder the hosts share)" \
		test -f "$STATE/objects/$GID/images/$(sed 's/^sha256://' "$MNT/environments/marked/image")-0.tar"
	podman rmi -f "$(cat "$MNT/environments/marked/image")" >/dev/null 2>&1
else
	ok "a run in an environment on the cluster # SKIP no podman, busybox or image here"
fi

# ---- slurmctld killed: started again, runs go on ---------------------------
run gate1 "$(gated 1)"
check "a run Running" wait_until 180 run_is gate1 Running
# `after` on a cluster is Slurm's own dependency, as on an attached Slurm,
# and it outlives the controller's restart below
job_of() { sed -n 's/.*"backend_id":[[:space:]]*"slurm \([0-9]*\)".*/\1/p' "$MNT/runs/$1/info.json"; }
dep_of() { SC scontrol -o show job "$(job_of "$1")" | tr ' ' '\n' | sed -n 's|^Dependency=||p'; }
mkdir "$MNT/runs/aft1" && wr "$MNT/runs/aft1/command" "echo after gate1" &&
	wr "$MNT/runs/aft1/target" gpu && wr "$MNT/runs/aft1/after" gate1 &&
	wr "$MNT/runs/aft1/ctl" submit
check "after on a cluster: held by Slurm while gate1 runs" wait_until 60 eval '[[ -n $(job_of aft1) ]]'
check "... its job depends on gate1's (afterok)" eval '[[ $(dep_of aft1) == "afterok:$(job_of gate1)"* ]]'
eq "... Queued" Queued "$(cat "$MNT/runs/aft1/status")"
# slurmctld writes its state now and then: a job it never wrote is lost to
# a kill -9 (Slurm's own limit); kill it once the running job is written
touch "$T/running-1"
JS=$STATE/objects/$GID/cluster/ctld/job_state
saved() { grep -qa gate1 "$JS" && [[ $JS -nt $T/running-1 ]]; }
check "slurmctld wrote the running job" wait_until 60 saved
old=$(ctl_pid slurmctld)
kill -KILL "$old"
restarted() { alive "$(ctl_pid slurmctld)" && [[ $(ctl_pid slurmctld) != "$old" ]]; }
check "slurmctld killed: started again by the daemon" wait_until 60 restarted
# (slurmctld writes its pid file before the daemon's line reaches events)
said() { (($(ev_count "$1") >= 1)); }
check "... said in events" wait_until 30 said 'target gpu controller: slurmctld was started again'
touch "$T/gate-1"
check "... the run completes" completes gate1 120
check "... its log is whole" grep -q "released 1" "$MNT/runs/gate1/log"
check "... the run after it completes" completes aft1 120
check "... its log" grep -q "after gate1" "$MNT/runs/aft1/log"

# ---- cancel ------------------------------------------------------------------
run gate3 "$(gated 3)"
check "a run to cancel Running" wait_until 180 run_is gate3 Running
wr "$MNT/runs/gate3/ctl" cancel
check "cancel: Canceled" wait_until 60 run_is gate3 Canceled
touch "$T/gate-3"

# ---- kill -9 of the daemon, remount ------------------------------------------
run gate2 "$(gated 2)"
check "a run Running before the crash" wait_until 180 run_is gate2 Running
expect_err "deprovision with an active run: EBUSY" "busy" wr "$G/ctl" deprovision
crash_ws
remount_or_bail "remount after kill -9" -o allow_other
check "the controller was adopted, not started again" alive "$(ctl_pid slurmctld)"
touch "$T/gate-2"
check "the run completes after the remount" completes gate2 120
check "... its log is whole" grep -q "released 2" "$MNT/runs/gate2/log"
eq "... one job, not two" 1 "$(SC scontrol -o show jobs 2>/dev/null | grep -c ' JobName=gate2 ')"

# ---- a reboot: /run emptied, the controller gone ---------------------------
RUNDIR=$(run_dir)
crash_ws
for p in $(ctl_pid slurmrestd) $(ctl_pid slurmctld) $(ctl_pid munged); do
	kill -KILL "$p" 2>/dev/null
done
rm -rf "$RUNDIR"
remount_or_bail "remount after a reboot (the cluster's /run folder gone)" -o allow_other
check "the cluster's files under /run are made again" wait_until 60 test -s "$RUNDIR/slurm.conf"
# (its pid file read at each look: the killed one's stays until the new
# controller writes its own, a moment after the files above)
ctl_alive() { alive "$(ctl_pid slurmctld)"; }
check "... its controller runs again" wait_until 60 ctl_alive
check "... said in events" wait_until 30 said 'target gpu controller: .*slurmctld.* started again'
run after 'echo "after the reboot"'
check "... a run completes on it" completes after 180
check "... its log" grep -q "after the reboot" "$MNT/runs/after/log"

# ---- deprovision: nothing left on any host ---------------------------------
pids="$(ctl_pid munged) $(ctl_pid slurmctld) $(ctl_pid slurmrestd)"
wr "$G/ctl" deprovision
check "deprovision: Draft" wait_until 120 status_is gpu Draft
for i in 1 2 3; do
	eq "no process of the cluster left on host $i" "" \
		"$("$ROOT/scripts/cluster-hosts.sh" procs "$HOSTS" "$i" | xargs)"
done
all_gone() { local p; for p in $pids; do alive "$p" && return 1; done; return 0; }
check "the controller's processes are gone" wait_until 20 all_gone
for p in $pids; do alive "$p" && echo "# still there: $(ps -o pid=,stat=,args= -p "$p")"; done
check "the munge key is removed" test ! -e "$STATE/objects/$GID/cluster/munge.key"
check "the JWT key is removed" test ! -e "$STATE/objects/$GID/cluster/jwt.key"
check "the run folder is removed" test ! -e "$RUNDIR"
eq "nodes is empty" "" "$(cat "$G/nodes")"

# ---- provision again, then rmdir -------------------------------------------
wr "$G/ctl" provision
check "provision again: Succeeded" wait_until 120 not_creating gpu
eq "... Succeeded" Succeeded "$(cat "$G/status")"
wr "$G/ctl" deprovision
check "deprovision again: Draft" wait_until 120 status_is gpu Draft
rmdir "$G" 2>/dev/null || rm -r "$G"
check "rmdir after deprovision" test ! -e "$G"
check "the target's folder is gone" test ! -e "$STATE/objects/$GID"

unmount_ws
done_testing
