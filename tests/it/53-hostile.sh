#!/usr/bin/env bash
# Hostile input through the tree (issue 6): every bad input gets a defined
# errno and harms nothing else; afterwards the object still works (a good
# command is submitted and Completes, or status reads back), the daemon
# answers, its memory stays bounded, every `error` stays one printable
# sentence (valid UTF-8, no control bytes) and every info.json valid JSON.
#   ctl and settings: 10 MiB writes, NUL bytes, invalid UTF-8, 1 MiB
#   lines, 100,000 env lines; names of 63/64 characters; reserved names
#   inside a run; symlinks pointing outside; hard links; mv of objects;
#   a 200-level tree; writes racing a submit.
source "$(dirname "$0")/../lib.sh"

declare -A BAD	# bad inputs tried, by kind
bad() { BAD[$1]=$((${BAD[$1]:-0} + 1)); }

# printable FILE: at most one line, valid UTF-8, no NUL or control byte.
printable() {
	[[ $(wc -l < "$1") -le 1 ]] || return 1
	iconv -f UTF-8 -t UTF-8 "$1" >/dev/null 2>&1 || return 1
	tr -d '\000' < "$1" | cmp -s - "$1" || return 1
	! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$1"
}
# all_printable FILE: every line valid UTF-8 without control bytes
all_printable() {
	iconv -f UTF-8 -t UTF-8 "$1" >/dev/null 2>&1 &&
		tr -d '\000' < "$1" | cmp -s - "$1" &&
		! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$1"
}
# events_new_printable: the events lines since the last call are printable
EVOFF=0
events_new_printable() {
	tail -c +$((EVOFF + 1)) "$MNT/events" > "$T/ev.new"
	EVOFF=$(stat -c %s "$MNT/events")
	all_printable "$T/ev.new"
}
alive() { kill -0 "$DPID" 2>/dev/null && timeout 30 cat "$MNT/targets/local/status" >/dev/null; }
# after LABEL OBJDIR: the daemon answers, OBJDIR's error is printable and
# its info.json valid
after() {
	check "$1: the daemon is alive and answers" alive
	check "$1: error is one printable sentence" printable "$2/error"
	check "$1: info.json is valid JSON" json_ok "$2/info.json"
}
# good RUN: a good command is submitted and Completes
good() {
	printf 'echo good\n' > "$MNT/runs/$1/command" && : > "$MNT/runs/$1/env" &&
		: > "$MNT/runs/$1/resources" && : > "$MNT/runs/$1/target" &&
		wr "$MNT/runs/$1/ctl" submit && wait_for "$MNT/runs/$1/status" Completed 10 &&
		[[ $(cat "$MNT/runs/$1/log") == good ]]
}
# put FILE: stdin to FILE with one write(2) (no O_TRUNC with notrunc)
put() { dd of="$1" bs=16M iflag=fullblock status=none "${@:2}" 2>&1; }
obj_id() {
	sqlite3 -readonly "$STATE/workspace.db" \
		"select id from objects where kind = $1 and name = '$2'" 2>/dev/null
}

mount_or_bail
R=$MNT/runs

# ---- 10 MiB into ctl ----------------------------------------------------------
mkdir "$R/big"
wr "$R/big/command" 'echo good'
head -c 10M /dev/zero > "$T/zero10m"
yes 'submit' | head -c 10M > "$T/submit10m"
rss0=$(vm_rss_kb "$DPID")
bad ctl
expect_err "10 MiB in one write(2) to ctl: EFBIG" "File too large" \
	dd if="$T/zero10m" of="$R/big/ctl" bs=10M status=none
bad ctl
expect_err "cat of 10 MiB of 'submit' lines into ctl fails (EFBIG)" "File too large" \
	sh -c "cat '$T/submit10m' > '$R/big/ctl'"
bad ctl
out=$(sh -c "yes submit | head -c 10M > '$R/big/ctl'" 2>&1)
check "10 MiB of 'submit' lines in small writes into ctl is refused (got: ${out:0:80})" \
	eval '[[ $out == *"Invalid argument"* || $out == *"File too large"* ]]'
eq "ctl: the run was not submitted by the refused writes" Draft "$(cat "$R/big/status")"
for i in 1 2 3; do dd if="$T/zero10m" of="$R/big/ctl" bs=10M status=none 2>/dev/null; done
rss1=$(vm_rss_kb "$DPID")
echo "# RSS before ${rss0} KiB, after 5 x 10 MiB into ctl ${rss1} KiB"
check "ctl: daemon RSS grew < 20 MiB ($rss0 -> $rss1 KiB)" test $((rss1 - rss0)) -lt 20480
after "ctl 10 MiB" "$R/big"
check "ctl 10 MiB: a good submit afterwards Completes" good big

# ---- 10 MiB into a setting ----------------------------------------------------
mkdir "$R/bigset"
wr "$R/bigset/env" "KEEP=1"
rss0=$(vm_rss_kb "$DPID")
bad setting
expect_err "10 MiB into env with > (O_TRUNC): EFBIG" "File too large" \
	dd if="$T/zero10m" of="$R/bigset/env" bs=10M status=none
sz=$(stat -c %s "$R/bigset/env")
check "env holds less than 1020 KiB after it ($sz bytes)" test "$sz" -le 1044480
wr "$R/bigset/env" "KEEP=1"
bad setting
expect_err "10 MiB into env in one write(2), no O_TRUNC: EFBIG" "File too large" \
	dd if="$T/zero10m" of="$R/bigset/env" bs=10M conv=notrunc status=none
# DESIGN: a refusal is explained, "loses nothing": a refused write must not
# have changed the setting
check "env keeps its old content after the refused write (no O_TRUNC; now $(stat -c %s "$R/bigset/env") bytes)" \
	cmp -s <(printf 'KEEP=1\n') "$R/bigset/env"
wr "$R/bigset/env" "KEEP=1"
bad setting
expect_err "a write straddling the 1020 KiB limit: EFBIG" "File too large" \
	sh -c "head -c 100 /dev/zero | dd of='$R/bigset/env' bs=100 seek=$((1044480 - 10)) oflag=seek_bytes conv=notrunc status=none"
check "env unchanged after the refused straddling write (now $(stat -c %s "$R/bigset/env") bytes)" \
	cmp -s <(printf 'KEEP=1\n') "$R/bigset/env"
bad setting
expect_err "10 MiB into command: EFBIG" "File too large" \
	dd if="$T/zero10m" of="$R/bigset/command" bs=10M status=none
for i in 1 2 3; do dd if="$T/zero10m" of="$R/bigset/resources" bs=10M status=none 2>/dev/null; done
rss1=$(vm_rss_kb "$DPID")
check "settings: daemon RSS grew < 20 MiB ($rss0 -> $rss1 KiB)" test $((rss1 - rss0)) -lt 20480
after "setting 10 MiB" "$R/bigset"
check "setting 10 MiB: a good submit afterwards Completes" good bigset

# ---- NUL bytes and invalid UTF-8 -----------------------------------------------
events_new_printable >/dev/null
mkdir "$R/nul"
wr "$R/nul/command" 'echo good'
for v in 'sub\0mit\n' 'submit\0\n' '\0' '\377\376\n' 'submit \377\n' '\033[2J\033]0;x\007\n' \
	'submit\rcancel\n' "$(printf 'submit\\n%.0s' {1..17})" 'submit a b c d e\n'; do
	bad ctl
	out=$(printf "$v" | put "$R/nul/ctl")
	rc=$?
	check "ctl '${v:0:24}': refused with EINVAL (got: ${out:0:70})" \
		eval '((rc != 0)) && [[ $out == *"Invalid argument"* ]]'
	check "ctl '${v:0:24}': error is one printable sentence" printable "$R/nul/error"
done
eq "ctl: still Draft after the bad commands" Draft "$(cat "$R/nul/status")"
check "events lines since the ctl tests are printable UTF-8" events_new_printable
after "ctl NUL/UTF-8" "$R/nul"

# settings with a NUL byte: submit refuses with EINVAL
setting_case() {	# setting_case FILE PRINTF-FORMAT DESCRIPTION
	local d=$R/set-$RANDOM out rc st= file=$1
	mkdir "$d"
	wr "$d/command" 'echo ok'
	out=$(printf "$2" | put "$d/$1")
	rc=$?
	bad "$1"
	# refused by the write itself, or else by submit
	((rc != 0)) || { out=$(printf 'submit\n' | put "$d/ctl"); rc=$?; }
	if ((rc == 0)); then
		wait_final "$d" 10
		st=$(cat "$d/status")
		echo "# $1 $3: submit accepted, the run is $st"
	else
		echo "# $1 $3: submit refused: ${out:0:90} / $(cat "$d/error")"
	fi
	# (an unknown target is ENOENT)
	check "$1 $3: submit refused with EINVAL or a clean run (rc $rc, ${st:-refused})" \
		eval '[[ ($rc != 0 && $out == *"Invalid argument"*) || $st == Completed || $st == Failed ||
			($file == target && $out == *"No such file or directory"*) ]]'
	check "$1 $3: events lines printable UTF-8" events_new_printable
	after "$1 $3" "$d"
	LASTSTATE=$(cat "$d/status")
	if [[ $LASTSTATE == Draft ]]; then
		check "$1 $3: a good submit afterwards Completes" good "$(basename "$d")"
	fi
	LAST=$d
}
setting_case command 'echo a\0b\n' "with a NUL byte"
eq "command with a NUL byte: refused, left Draft" Draft "$LASTSTATE"
setting_case command 'echo \377\376 bad\n' "with invalid UTF-8"
setting_case command 'echo \033]0;pwned\007 esc\n' "with terminal escapes"
setting_case env 'A=1\0\nB=2\n' "with a NUL byte"
eq "env with a NUL byte: refused, left Draft" Draft "$LASTSTATE"
setting_case env 'A=\377\376\n' "with an invalid UTF-8 value"
setting_case env '\377=1\n' "with an invalid UTF-8 key"
setting_case env 'A=1\033[2J\n' "with an escape in a value"
setting_case resources 'cpus = 1\0\n' "with a NUL byte"
eq "resources with a NUL byte: refused, left Draft" Draft "$LASTSTATE"
setting_case resources 'cpus = \377\n' "with invalid UTF-8"
setting_case target 'loc\0al\n' "with a NUL byte"
eq "target with a NUL byte: refused, left Draft" Draft "$LASTSTATE"
setting_case target '\377\376\n' "with invalid UTF-8"
eq "target with invalid UTF-8: refused, left Draft" Draft "$LASTSTATE"

# target type and config
target_case() {	# target_case FILE PRINTF-FORMAT DESCRIPTION
	local d=$MNT/targets/t-$RANDOM out rc
	mkdir "$d"
	wr "$d/type" local
	out=$(printf "$2" | put "$d/$1")
	rc=$?
	bad "$1"
	# refused by the write itself, or else by provision
	((rc != 0)) || { out=$(printf 'provision\n' | put "$d/ctl"); rc=$?; }
	check "$1 $3: provision refused with EINVAL (rc $rc: ${out:0:60})" \
		eval '((rc != 0)) && [[ $out == *"Invalid argument"* ]]'
	after "$1 $3" "$d"
	check "$1 $3: events lines printable UTF-8" events_new_printable
	wr "$d/type" local
	: > "$d/config"
	check "$1 $3: a good provision afterwards Succeeds" \
		eval "wr '$d/ctl' provision && wait_for '$d/status' Succeeded 10"
}
target_case config 'max_concurrent = 2\0\n' "with a NUL byte"
target_case config 'max_concurrent = \377\n' "with an invalid UTF-8 value"
target_case config '\377\376 = 1\n' "with an invalid UTF-8 key"
target_case type 'lo\0cal\n' "with a NUL byte"
target_case type '\377\376\n' "with invalid UTF-8"

# names
for n in $'\377\376' $'a\nb' $'a\033b' 'a/b' '.hidden' '-x' "$(printf 'a%.0s' {1..64})" \
	"$(printf 'a%.0s' {1..255})"; do
	bad name
	out=$(mkdir -- "$R/$n" 2>&1)
	check "mkdir of a bad name $(printf %q "${n:0:12}") is refused (${out##*: })" \
		eval '[[ $out == *"Invalid argument"* || $out == *"File name too long"* || $out == *"No such file"* ]]'
done
bad name
out=$(mkdir "$R/$(printf 'a%.0s' {1..256})" 2>&1)
check "mkdir of a 256-character name: EINVAL or ENAMETOOLONG (${out##*: })" \
	eval '[[ $out == *"Invalid argument"* || $out == *"File name too long"* ]]'
check "events lines since the bad names are printable UTF-8" events_new_printable

# ---- 1 MiB lines ----------------------------------------------------------------
mkdir "$R/longline"
wr "$R/longline/command" 'echo ${#A}'
{ printf 'A='; head -c $((1044480 - 100)) /dev/zero | tr '\0' x; echo; } > "$T/env1m"
bad env
check "a ~1 MiB env line can be written (below the 1020 KiB limit)" put "$R/longline/env" < "$T/env1m"
out=$(printf 'submit\n' | put "$R/longline/ctl")
rc=$?
if ((rc == 0)); then
	check "1 MiB env line: the run ends (within 15 s)" wait_final "$R/longline" 15
	st=$(cat "$R/longline/status")
	echo "# 1 MiB env line: the run is $st: $(cat "$R/longline/error") / log $(head -c 80 "$R/longline/log")"
	check "1 MiB env line: Completed, or Failed with a sentence in error" \
		eval '[[ $st == Completed ]] || has_sentence "$R/longline/error"'
else
	echo "# 1 MiB env line: submit refused: $out"
	check "1 MiB env line: refused with EINVAL" eval '[[ $out == *"Invalid argument"* ]]'
fi
after "1 MiB env line" "$R/longline"
mkdir "$MNT/targets/tlong"
wr "$MNT/targets/tlong/type" local
{ printf 'max_concurrent = 1\nlabel = '; head -c $((1044480 - 100)) /dev/zero | tr '\0' y; echo; } > "$T/cfg1m"
bad config
check "a 1 MiB config line can be written" put "$MNT/targets/tlong/config" < "$T/cfg1m"
out=$(printf 'provision\n' | put "$MNT/targets/tlong/ctl")
check "1 MiB config line (unknown key): provision refused with EINVAL" \
	eval '[[ $out == *"Invalid argument"* ]]'
after "1 MiB config line" "$MNT/targets/tlong"

# ---- 100,000 env lines ------------------------------------------------------------
seq 1 100000 | awk '{print "E" $1 "=1"}' > "$T/env100k"	# ~0.9 MiB
seq 1 100000 | awk '{print "VARIABLE_" $1 "=value"}' > "$T/env100k-big"	# ~2 MiB
echo "# 100,000 env lines: $(stat -c %s "$T/env100k") and $(stat -c %s "$T/env100k-big") bytes"
mkdir "$R/manyenv"
wr "$R/manyenv/command" 'echo $E1 $E100000'
bad env
expect_err "100,000 env lines over 1 MiB: EFBIG" "File too large" \
	sh -c "cat '$T/env100k-big' > '$R/manyenv/env'"
bad env
check "100,000 env lines under 1 MiB can be written" \
	eval "cat '$T/env100k' > '$R/manyenv/env'"
# the daemon answers while it parses them: a probe every 0.2 s
( while :; do
	t0=$(now_ms)
	timeout 30 cat "$MNT/targets/local/status" >/dev/null || echo timeout >> "$T/probe"
	echo $(($(now_ms) - t0)) >> "$T/probe"
	sleep 0.2
done ) &
probe=$!
t0=$(now_ms)
out=$(printf 'submit\n' | timeout 300 dd of="$R/manyenv/ctl" status=none 2>&1)
rc=$?
ms=$(($(now_ms) - t0))
if ((rc == 0)); then
	wait_final "$R/manyenv" 20
fi
kill "$probe"
wait "$probe" 2>/dev/null
st=$(cat "$R/manyenv/status")
echo "# 100,000 env lines: submit rc $rc in $ms ms (${out:0:60}), run $st: $(cat "$R/manyenv/error") log: $(head -c 40 "$R/manyenv/log")"
check "100,000 env lines: the submit answers (rc $rc, $ms ms)" test "$rc" -ne 124
check "100,000 env lines: a defined outcome (EINVAL, or the run ends)" \
	eval '[[ ($rc != 0 && $out == *"Invalid argument"*) || $st == Completed || $st == Failed ]]'
if [[ $st == Completed ]]; then
	eq "100,000 env lines: the run saw them" "1 1" "$(cat "$R/manyenv/log")"
fi
maxp=$(grep -v timeout "$T/probe" | sort -n | tail -1)
check "100,000 env lines: the daemon answered every probe, none hung 30 s (max ${maxp:-?} ms)" \
	eval '! grep -q timeout "$T/probe"'
after "100,000 env lines" "$R/manyenv"

# ---- names of 63 and 64 characters ------------------------------------------------
n63=$(printf 'n%.0s' {1..63})
check "mkdir of a 63-character run name works" mkdir "$R/$n63"
wr "$R/$n63/command" 'echo $MLFS_RUN'
wr "$R/$n63/ctl" submit
check "the 63-character run Completes" wait_for "$R/$n63/status" Completed 10
eq "it sees its name" "$n63" "$(cat "$R/$n63/log")"
check "events names it" grep -q "run $n63 Completed" "$MNT/events"
bad name
expect_err "mkdir of a 64-character run name: EINVAL" "Invalid argument" mkdir "$R/${n63}x"
bad name
expect_err "mkdir of a 64-character target name: EINVAL" "Invalid argument" \
	mkdir "$MNT/targets/${n63}x"
bad name
expect_err "rename of a run to 64 characters: EINVAL" "Invalid argument" \
	python3 -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' "$R/$n63" "$R/${n63}x"
check "the 63-character run is still there" test -d "$R/$n63"

# ---- reserved names inside a run -------------------------------------------------
mkdir "$R/res"
wr "$R/res/command" 'echo res'
echo user > "$R/res/u"
echo junk > "$T/junk"
for f in status exit_code log metrics error info.json; do
	bad reserved
	check "cp x runs/r/$f fails" eval "! cp '$T/junk' '$R/res/$f' 2>/dev/null"
	bad reserved
	check "echo x > runs/r/$f fails" eval "! sh -c 'echo x > \"$R/res/$f\"' 2>/dev/null"
done
for f in ctl status outputs command log; do
	bad reserved
	expect_err "mkdir runs/r/$f: EEXIST" "File exists" mkdir "$R/res/$f"
done
bad reserved
check "ln -s /etc/passwd runs/r/log fails" eval "! ln -s /etc/passwd '$R/res/log' 2>/dev/null"
bad reserved
check "ln runs/r/u runs/r/error fails" eval "! ln '$R/res/u' '$R/res/error' 2>/dev/null"
bad reserved
check "mv runs/r/u runs/r/exit_code fails" \
	eval "! python3 -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' '$R/res/u' '$R/res/exit_code' 2>/dev/null"
bad reserved
check "mv runs/r/status runs/r/s2 fails" \
	eval "! python3 -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' '$R/res/status' '$R/res/s2' 2>/dev/null"
eq "nothing overwritten: status" Draft "$(cat "$R/res/status")"
eq "nothing overwritten: exit_code" "" "$(cat "$R/res/exit_code")"
eq "nothing overwritten: log" "" "$(cat "$R/res/log")"
eq "nothing overwritten: the user file u" user "$(cat "$R/res/u")"
eq "no name listed twice in the run folder" "" "$(ls -A "$R/res" | sort | uniq -d | paste -sd' ')"
check "json of the run is valid" json_ok "$R/res/info.json"
check "reserved names: a good submit afterwards Completes" good res

# ---- symlinks pointing outside ---------------------------------------------------
mkdir "$R/links"
ln -s /etc/passwd "$R/links/p"
ln -s ../../.. "$R/links/up"
ln -s /etc "$R/links/etc"
ln -s loop "$R/links/loop"
wr "$R/links/command" 'for f in p up etc loop; do if [ -L $f ]; then echo "$f -> $(readlink $f)"; else echo "$f is not a link"; fi; done'
bad symlink; bad symlink; bad symlink; bad symlink
eq "readlink through the mount" "/etc/passwd ../../.. /etc loop" \
	"$(for f in p up etc loop; do readlink "$R/links/$f"; done | paste -sd' ')"
wr "$R/links/ctl" submit
check "the run with outside links Completes" wait_for "$R/links/status" Completed 10
eq "the run sees symlinks, not copies" \
	"p -> /etc/passwd"$'\n'"up -> ../../.."$'\n'"etc -> /etc"$'\n'"loop -> loop" \
	"$(cat "$R/links/log")"
id=$(obj_id 2 links)
W=$STATE/objects/$id/work
check "working copy: p is a symlink" test -L "$W/p"
check "working copy: no copy of /etc/passwd" \
	eval "[[ -z \$(find '$W' -type f -exec cmp -s /etc/passwd {} \; -print 2>/dev/null) ]]"
n=$(find "$W" | wc -l)
check "working copy: the links were not followed out ($n entries)" test "$n" -lt 10
check "after submit the links still read back" test "$(readlink "$R/links/up")" == ../../..

# ---- hard links within a run ---------------------------------------------------------
mkdir "$R/hard" "$R/hard2"
echo one > "$R/hard/a"
bad hardlink
check "ln within a run folder works" ln "$R/hard/a" "$R/hard/b"
eq "the link count of the first name is 2" 2 "$(stat -c %h "$R/hard/a")"
eq "the link count of the second name is 2" 2 "$(stat -c %h "$R/hard/b")"
eq "both names are the same inode" "$(stat -c %i "$R/hard/a")" "$(stat -c %i "$R/hard/b")"
echo two >> "$R/hard/b"
eq "a write through one name shows through the other" $'one\ntwo' "$(cat "$R/hard/a")"
bad hardlink
expect_err "ln across runs: EXDEV" "Invalid cross-device link" ln "$R/hard/a" "$R/hard2/a"
bad hardlink
check "ln of a control file fails" eval "! ln '$R/hard/status' '$R/hard/st' 2>/dev/null"
bad hardlink
check "ln from outside the mount fails" eval "! ln '$T/junk' '$R/hard/j' 2>/dev/null"
wr "$R/hard/command" 'cat a b'
wr "$R/hard/ctl" submit
check "the run with hard links Completes" wait_for "$R/hard/status" Completed 10
eq "it sees both names" $'one\ntwo\none\ntwo' "$(cat "$R/hard/log")"

# ---- mv of objects -----------------------------------------------------------------
pyrename() { python3 -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' "$1" "$2"; }
mkdir "$R/mvd"
echo data > "$R/mvd/f"
wr "$R/mvd/env" "X=1"
wr "$R/mvd/command" 'cat f; echo $X'
check "mv of a Draft run works" mv "$R/mvd" "$R/mvd2"
check "the old name is gone" test ! -e "$R/mvd"
eq "the renamed Draft keeps its files" data "$(cat "$R/mvd2/f")"
eq "the renamed Draft keeps its env" "X=1" "$(cat "$R/mvd2/env")"
eq "the renamed Draft is Draft" Draft "$(cat "$R/mvd2/status")"
wr "$R/mvd2/ctl" submit
check "the renamed run Completes" wait_for "$R/mvd2/status" Completed 10
eq "its log" $'data\n1' "$(cat "$R/mvd2/log")"
eq "info.json has the new name" mvd2 "$(json_get "$R/mvd2/info.json" name)"
check "mv of a finished run works" mv "$R/mvd2" "$R/mvd3"
eq "the renamed finished run keeps status" Completed "$(cat "$R/mvd3/status")"
eq "... exit code" 0 "$(cat "$R/mvd3/exit_code")"
eq "... log" $'data\n1' "$(cat "$R/mvd3/log")"
mkdir "$R/act"
wr "$R/act/command" "while [ ! -e $T/go-act ]; do sleep 0.05; done"
wr "$R/act/ctl" submit
wait_for "$R/act/status" Running 5
bad mv
expect_err "mv of an active run: EBUSY" "Device or resource busy" pyrename "$R/act" "$R/act2"
eq "the active run keeps its name" Running "$(cat "$R/act/status")"
bad mv
out=$(pyrename "$R/mvd3" "$MNT/targets/mvd3" 2>&1)
check "mv runs/x targets/x: EXDEV or EINVAL (${out##*] })" \
	eval '[[ $out == *"Invalid cross-device link"* || $out == *"Invalid argument"* ]]'
check "... the run is intact" test "$(cat "$R/mvd3/status")" == Completed
check "... no target appeared" test ! -e "$MNT/targets/mvd3"
bad mv
out=$(pyrename "$R/mvd3" "$R/res" 2>&1)
check "mv onto an existing run fails (${out##*] })" \
	eval '[[ -n $out ]] && [[ $(cat "$R/mvd3/status") == Completed && $(cat "$R/res/status") == Completed ]]'
bad mv
check "mv of the local target fails" eval "! pyrename '$MNT/targets/local' '$MNT/targets/loc2' 2>/dev/null"
check "... local is still Succeeded" test "$(cat "$MNT/targets/local/status")" == Succeeded
bad mv
check "mv of a run into a run folder fails" eval "! pyrename '$R/mvd3' '$R/hard2/mvd3' 2>/dev/null"
wr "$R/act/ctl" cancel
check "the active run can still be canceled" wait_for "$R/act/status" Canceled 15

# ---- deep trees ---------------------------------------------------------------------
mkdir "$R/deep"
deep=$(printf 'd/%.0s' {1..200})
check "mkdir -p of a 200-level tree in a run folder" mkdir -p "$R/deep/$deep"
echo leaf > "$R/deep/${deep}leaf"
wr "$R/deep/command" 'find . -name leaf | wc -l; cat $(find . -name leaf)'
wr "$R/deep/ctl" submit
check "the 200-level run Completes" wait_for "$R/deep/status" Completed 20
eq "it finds the leaf" $'1\nleaf' "$(cat "$R/deep/log")"
check "cp -r of the run folder out of the mount" cp -r "$R/deep" "$T/deepcopy"
eq "the copy has the leaf" leaf "$(cat "$T/deepcopy/${deep}leaf" 2>&1)"
mkdir "$R/deeper"
long=$(printf 'abcdefghijklmnopqrstuvwxyz0123/%.0s' {1..150})	# ~4650 bytes
out=$(mkdir -p "$R/deeper/$long" 2>&1)
rc=$?
echo "# a tree deeper than PATH_MAX: mkdir -p rc $rc ${out##*: }"
check "a tree deeper than PATH_MAX: created or ENAMETOOLONG (${out##*: })" \
	eval '((rc == 0)) || [[ $out == *"File name too long"* ]]'
check "... the daemon is alive" alive
check "... rm -r of that run works" timeout 20 rm -rf "$R/deeper"
check "... it is gone" test ! -e "$R/deeper"

# ---- writes racing a submit ---------------------------------------------------------
mkdir -p "$T/ver" "$R/race"
for i in $(seq 1 20); do
	yes "A-$i" | head -c 65536 > "$T/ver/A.$i"
	yes "B-$i" | head -c 65536 > "$T/ver/B.$i"
done
cp "$T/ver/A.1" "$R/race/A"
cp "$T/ver/B.1" "$R/race/B"
wr "$R/race/command" 'cat A > outputs/A.seen; cat B > outputs/B.seen'
: > "$T/wlog"
writer() {
	local i=0 v out rc
	while [[ ! -e $T/wstop ]]; do
		i=$((i + 1))
		v=$((i % 20 + 1))
		t=$EPOCHREALTIME
		out=$(dd if="$T/ver/A.$v" of="$R/race/A" bs=64K conv=notrunc status=none 2>&1)
		echo "$t A $? ${out##*: }" >> "$T/wlog"
		t=$EPOCHREALTIME
		out=$( { cp "$T/ver/B.$v" "$R/race/.B" && mv "$R/race/.B" "$R/race/B"; } 2>&1)
		echo "$t B $? ${out##*: }" >> "$T/wlog"
	done
}
writer &
wpid=$!
oks() { awk -v t="$1" '$1 > t && $3 == 0' "$T/wlog" | wc -l; }
wait_until 30 eval '(( $(oks 0) >= 4 ))'
wr "$R/race/ctl" submit
subrc=$?
tsub=$EPOCHREALTIME
# let the writer try again after the submit, a few times
wait_until 30 eval '(( $(awk -v t="$tsub" '"'"'$1 > t'"'"' "$T/wlog" | wc -l) >= 4 ))'
touch "$T/wstop"
wait "$wpid"
bad race
eq "racing writes: the submit succeeded" 0 "$subrc"
nok=$(awk -v t="$tsub" '$1 < t && $3 == 0' "$T/wlog" | wc -l)
check "racing writes: writes succeeded before the submit ($nok)" test "$nok" -gt 0
late=$(awk -v t="$tsub" '$1 > t && $3 == 0' "$T/wlog" | head -3)
eq "racing writes: no write that started after the submit succeeded" "" "$late"
lateerr=$(awk -v t="$tsub" '$1 > t && $3 != 0 {$1 = $2 = $3 = ""; print}' "$T/wlog" | sort -u | head -3)
check "racing writes: they fail with EROFS (${lateerr//$'\n'/ / })" \
	eval '[[ -n $lateerr && $(grep -vc "Read-only file system" <<< "$lateerr") == 0 ]]'
check "racing writes: the run Completes" wait_for "$R/race/status" Completed 10
isver() {	# isver FILE LETTER: FILE is one complete version
	local i
	for i in $(seq 1 20); do cmp -s "$1" "$T/ver/$2.$i" && return 0; done
	return 1
}
check "racing writes: the run saw a complete version of A" isver "$R/race/outputs/A.seen" A
check "racing writes: the run saw a complete version of B" isver "$R/race/outputs/B.seen" B
check "racing writes: the frozen A is what the run saw" cmp "$R/race/A" "$R/race/outputs/A.seen"
check "racing writes: the frozen B is what the run saw" cmp "$R/race/B" "$R/race/outputs/B.seen"

# ---- at the end ------------------------------------------------------------------------
badj=()
for d in "$R"/*/ "$MNT"/targets/*/; do
	json_ok "$d/info.json" || badj+=("$(basename "$d")")
done
eq "every info.json is valid JSON" "" "${badj[*]:0:6}"
check "events is printable UTF-8 throughout" all_printable "$MNT/events"
tot=0
s=
for k in "${!BAD[@]}"; do
	tot=$((tot + BAD[$k]))
	s+=" $k=${BAD[$k]}"
done
echo "# bad inputs tried: $tot ($s )"
echo "# daemon RSS at the end: $(vm_rss_kb "$DPID") KiB"
check "unmount exits 0" unmount_ws
done_testing
