#!/usr/bin/env bash
# Stress (issue 6): 8 shells for STRESS_SECONDS (default 30) do random
# mkdir / cp / settings writes / submit / cancel / cat / ls / mv / rm -r on
# OVERLAPPING names (12 names shared by all shells); runs are short
# commands.  Races may fail an operation with EEXIST, ENOENT, EBUSY, EROFS,
# EINVAL or ENOTEMPTY; any other error fails the test.  Every operation
# runs under `timeout 30` (the deadlock watchdog): one that times out fails
# the test.  Then: the daemon is alive and mounted, `ls runs` and the store
# agree, every run folder has a readable status, every run reaches a final
# or Draft state, the unmount is clean.  Prints "# ops: N".
source "$(dirname "$0")/../lib.sh"

SECS=${STRESS_SECONDS:-30}
SHELLS=${STRESS_SHELLS:-8}
POOL=(s00 s01 s02 s03 s04 s05 s06 s07 s08 s09 s10 s11)
EXPECTED='File exists|No such file or directory|Device or resource busy|Read-only file system|Invalid argument|Directory not empty'
head -c 50000 /dev/urandom > "$T/src"

# op K WHAT COMMAND...: COMMAND under a 30 s watchdog.  A time-out goes to
# $T/timeouts, an unexpected error to $T/unexpected.  $EXTRA: an ERE of
# more errors that are races for this one command.
op() {
	local k=$1 what=$2 out rc
	shift 2
	out=$(timeout -k 1 30 "$@" 2>&1 >/dev/null)
	rc=$?
	OPS=$((OPS + 1))
	if ((rc == 124 || rc == 137)); then
		echo "shell $k: $what: hung for 30 s" >> "$T/timeouts"
	elif ((rc != 0)) && ! [[ $out =~ $EXPECTED ]] &&
		! [[ -n ${EXTRA:-} && $out =~ $EXTRA ]]; then
		echo "shell $k: $what: rc $rc: ${out//$'\n'/ | }" >> "$T/unexpected"
	fi
	return $rc
}
# put K WHAT FILE TEXT: TEXT and a newline with one write(2)
put() { op "$1" "$2" dd of="$3" status=none <<< "$4"; }

shell() {
	local k=$1 end=$((SECONDS + SECS)) n m d cmds=(true 'sleep 0.2' 'echo hi')
	RANDOM=$((k * 7919 + $$))
	OPS=0
	while ((SECONDS < end)); do
		n=${POOL[RANDOM % ${#POOL[@]}]}
		d=$MNT/runs/$n
		case $((RANDOM % 20)) in
		0 | 1 | 2) op "$k" "mkdir $n" mkdir "$d" ;;
		3) op "$k" "cp into $n" cp "$T/src" "$d/data$((RANDOM % 3))" ;;
		4) op "$k" "mkdir -p + cp into $n/sub" sh -c \
			'mkdir -p "$1/sub" && cp "$2" "$1/sub/x"' _ "$d" "$T/src" ;;
		5 | 6) put "$k" "command of $n" "$d/command" "${cmds[RANDOM % 3]}" ;;
		7) put "$k" "env of $n" "$d/env" "A=$RANDOM" ;;
		8) put "$k" "resources of $n" "$d/resources" "cpus = 1" ;;
		9 | 10) put "$k" "submit $n" "$d/ctl" submit ;;
		11) put "$k" "cancel $n" "$d/ctl" cancel ;;
		12) op "$k" "cat status of $n" cat "$d/status" ;;
		13) op "$k" "cat log, exit_code, info.json of $n" \
			cat "$d/log" "$d/exit_code" "$d/info.json" ;;
		14) op "$k" "ls -la $n" ls -la "$d" ;;
		15) op "$k" "ls -l runs" ls -l "$MNT/runs" ;;
		# rm's own lstat races with a mkdir of the same name: it then
		# unlinks a folder (EISDIR), as on any file system
		16 | 17) EXTRA='Is a directory' op "$k" "rm -r $n" rm -rf "$d" ;;
		18) op "$k" "rmdir $n" rmdir "$d" ;;
		19)
			# mv's rename says EEXIST, then its lstat of the target
			# (removed meanwhile by an rm -r) says ENOENT, and mv
			# reports that as "cannot overwrite non-directory"
			# (strace shows exactly these two calls), as on any
			# file system
			m=${POOL[RANDOM % ${#POOL[@]}]}
			[[ $m == "$n" ]] || EXTRA='cannot overwrite non-directory' \
				op "$k" "mv -T $n $m" mv -T "$d" "$MNT/runs/$m"
			;;
		esac
	done
	echo "$OPS" > "$T/ops.$k"
}

mount_or_bail
: > "$T/timeouts"
: > "$T/unexpected"
pids=()
for ((k = 1; k <= SHELLS; k++)); do
	shell "$k" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
ops=$(cat "$T"/ops.* 2>/dev/null | awk '{s += $1} END {print s + 0}')
echo "# ops: ${ops:-0} ($SHELLS shells, $SECS s)"
check "every shell finished and counted its operations" \
	test "$(ls "$T"/ops.* 2>/dev/null | wc -l)" -eq "$SHELLS"
eq "no operation hung for 30 s (deadlock watchdog)" "" "$(head -5 "$T/timeouts")"
eq "no unexpected error" "" "$(sort "$T/unexpected" | head -8)"
echo "# $(wc -l < "$T/timeouts") timeouts, $(wc -l < "$T/unexpected") unexpected errors"

check "the daemon is alive" kill -0 "$DPID"
check "the workspace is still mounted and answers" \
	eval "timeout 30 ls '$MNT/runs' >/dev/null"

# every run folder has a readable status
bad=()
for d in "$MNT"/runs/*/; do
	[[ -d $d ]] || continue
	s=$(timeout 30 cat "$d/status" 2>&1)
	case $s in Draft | Queued | Starting | Running | Completed | Failed | Canceled) ;;
	*) bad+=("$(basename "$d"):$s") ;;
	esac
done
eq "every folder in runs/ has a readable status" "" "${bad[*]:0:6}"

# every run reaches a final or Draft state
settled() {
	local d s
	for d in "$MNT"/runs/*/; do
		[[ -d $d ]] || continue
		s=$(timeout 30 cat "$d/status" 2>&1)
		case $s in Draft | Completed | Failed | Canceled) ;; *) return 1 ;; esac
	done
	return 0
}
check "every run reaches a final or Draft state" wait_until 30 settled
for d in "$MNT"/runs/*/; do
	[[ -d $d ]] || continue
	s=$(cat "$d/status" 2>&1)
	case $s in Draft | Completed | Failed | Canceled) ;;
	*) echo "# $(basename "$d") is still $s" ;;
	esac
done

# ls runs and the store agree
db_runs() {
	sqlite3 -readonly "$STATE/workspace.db" \
		'select name from objects where kind = 2 order by name' 2>&1
}
# (runs/index.html is the runs page, not a run)
fs_runs=$(ls "$MNT/runs" 2>&1 | grep -vx index.html | sort)
eq "ls runs and the store agree (mounted)" "$(db_runs | sort)" "$fs_runs"
# the kernel's cached listing against a fresh one: stat every name the
# store has, and every name ls shows
bad=()
while read -r n; do
	[[ -z $n ]] && continue
	[[ -e $MNT/runs/$n/status ]] || bad+=("store-only:$n")
done < <(db_runs)
while read -r n; do
	[[ -z $n ]] && continue
	db_runs | grep -qx "$n" || bad+=("ls-only:$n")
done <<< "$fs_runs"
eq "every run the store has can be looked up, every listed one is stored" "" "${bad[*]:0:6}"
# no object folder on disk without a row, no row without a folder
ids_db=$(sqlite3 -readonly "$STATE/workspace.db" 'select id from objects order by id' | sort -n)
have_folders() {
	local i
	for i in $ids_db; do
		[[ -d $STATE/objects/$i ]] || { echo "# object $i has no folder"; return 1; }
	done
}
check "every object in the store has its folder on disk" have_folders
orphans=$(comm -13 <(echo "$ids_db" | sort) <(ls "$STATE/objects" | sort) | paste -sd' ')
eq "no object folder on disk without a row in the store" "" "$orphans"
check "events is not empty and has one line per change" test -s "$MNT/events"
check "unmount exits 0" unmount_ws
fs_runs2=$(sqlite3 -readonly "$STATE/workspace.db" \
	'select name from objects where kind = 2 order by name' | sort)
eq "the store after the unmount has the same runs as ls showed" "$fs_runs" "$fs_runs2"
done_testing
