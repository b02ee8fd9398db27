#!/usr/bin/env bash
# Working copies keep what a local copy keeps (cp -a): mtimes and atimes to
# the nanosecond (make rebuilds what was edited), folders' times, holes (a
# 2 GiB `truncate` file stays sparse), hard links within the run, symlinks,
# modes; for a run of another user too; and on an ssh host (rsync and tar).
source "$(dirname "$0")/../lib.sh"

SSHD=$T/sshd
trap 'sshd_cut; cleanup' EXIT

mu_users mlfs_ua
check "mount with allow_other" mount_ws -o allow_other

# fill RUNDIR: a built program whose source was edited since, a folder with
# set times, hard links, a symlink, a mode, sparse files (BIGSIZE: the size
# of the empty one)
fill() {
	local r=$1 big=$2
	printf 'a: a.c\n\tcc -o a a.c\n' > "$r/Makefile"
	printf '#include <stdio.h>\nint main(void) { puts("v1"); return 0; }\n' \
		> "$r/a.c"
	make -s -C "$r" >/dev/null || return 1
	printf '#include <stdio.h>\nint main(void) { puts("v2"); return 0; }\n' \
		> "$r/a.c"
	# set apart by a day, so that no clock makes them look the same
	touch -d '2024-05-01 10:00:00.123456789' "$r/Makefile"
	touch -d '2024-05-02 10:00:00.223456789' "$r/a"
	touch -d '2024-05-03 10:00:00.323456789' "$r/a.c"
	mkdir "$r/sub"
	echo data > "$r/sub/data"
	chmod 0751 "$r/sub/data"
	touch -m -d '2023-01-01 01:02:03.000000001' "$r/sub/data"
	touch -a -d '2022-06-06 06:06:06.606060606' "$r/sub/data"
	echo linked > "$r/h1"
	ln "$r/h1" "$r/sub/h2"
	ln -s sub/data "$r/sym"
	truncate -s "$big" "$r/big"
	# data, a hole, data, a hole at the end
	printf head > "$r/holey"
	printf tail | dd of="$r/holey" bs=1 seek=$((32 << 20)) conv=notrunc \
		status=none
	truncate -s $((48 << 20)) "$r/holey"
	chmod 0666 "$r/holey"	# not cut by the daemon's umask
	touch -d '2021-12-31 23:59:59.999999999' "$r/sub"
}

# what the run's command prints of its working copy (before make)
SHOW='stat -c "T %n %y" a.c a Makefile sub sub/data; echo "A $(stat -c %x sub/data)";
echo "M $(stat -c %a sub/data) $(stat -c %a holey)"; echo "L $(stat -c %i h1) $(stat -c %i sub/h2) $(stat -c %h h1)";
echo "S $(readlink sym)"; echo "B $(stat -c %s big) $(du -k big | cut -f1)";
echo "H $(md5sum < holey | cut -c1-32) $(du -k holey | cut -f1)"; echo "U $(stat -c %U a.c)"'

# expect RUNDIR: the "T" lines the working copy must print
expect() { (cd "$1" && stat -c "T %n %y" a.c a Makefile sub sub/data); }

# lv RUNDIR KEY: the rest of the log's line "KEY ..."
lv() { sed -n "s/^$2 //p" "$1/log" | head -1; }

# common RUNDIR WHERE: the checks every working copy passes
common() {
	local r=$1 w=$2 l
	eq "$w: mtimes to the ns (files, a folder after its entries)" \
		"$(cat "$T/expect")" "$(grep '^T ' "$r/log")"
	eq "$w: the edited source is rebuilt (make && ./a)" v2 \
		"$(tail -n1 "$r/log")"
	eq "$w: modes are kept" "751 666" "$(lv "$r" M)"
	eq "$w: a symlink stays a link" sub/data "$(lv "$r" S)"
	read -r -a l <<<"$(lv "$r" L)"
	check "$w: hard links are one inode (${l[*]})" \
		test "${l[0]}" = "${l[1]}" -a "${l[2]}" = 2
	read -r -a l <<<"$(lv "$r" H)"
	eq "$w: a file with holes has the same bytes" \
		"$(md5sum < "$r/holey" | cut -c1-32)" "${l[0]}"
}

# ---- local target, as root -------------------------------------------------

R=$MNT/runs/mk
mkdir "$R"
check "the run's files are made (make, holes, links)" fill "$R" 2G
expect "$R" > "$T/expect"
wr "$R/command" "$SHOW; make -s && ./a"
check "submit" wr "$R/ctl" submit
check "it completes" wait_for "$R/status" Completed 60
common "$R" local
eq "local: atime to the ns" "2022-06-06 06:06:06.606060606 +0000" \
	"$(lv "$R" A | sed 's/ [-+][0-9]*$/ +0000/')"
read -r -a l <<<"$(lv "$R" B)"
eq "local: the 2 GiB truncate file keeps its size" 2147483648 "${l[0]}"
check "local: … and stays sparse (${l[1]} KiB)" test "${l[1]}" -lt 1024
read -r -a l <<<"$(lv "$R" H)"
check "local: holes stay holes (${l[1]} KiB of 48 MiB)" test "${l[1]}" -lt 1024
eq "the run's own files keep their mtimes" "$(cat "$T/expect")" "$(expect "$R")"

# ---- local target, a user's run (the copy is made as the user) ------------

UR=$MNT/runs/ua
check "mlfs_ua makes a run" as mlfs_ua mkdir "$UR"
check "… with the same files" as mlfs_ua bash -c "$(declare -f fill); fill $UR 64M"
expect "$UR" > "$T/expect"
as mlfs_ua sh -c "printf '%s\n' '$SHOW; make -s && ./a' > $UR/command"
check "mlfs_ua submits" as mlfs_ua sh -c "echo submit > $UR/ctl"
check "it completes" wait_for "$UR/status" Completed 60
common "$UR" user
eq "user: the copy is the user's" mlfs_ua "$(lv "$UR" U)"
read -r -a l <<<"$(lv "$UR" B)"
check "user: a truncate file stays sparse (${l[1]} KiB)" test "${l[1]}" -lt 1024

# ---- ssh target: rsync and tar --------------------------------------------

if ! sshd_start; then
	not_ok "cannot start a test sshd"
	done_testing
	exit 1
fi
source "$SSHD/host.env"

# on_host TRANSFER: a run on a target of that transfer
on_host() {
	local b=$MNT/targets/$1 r=$MNT/runs/$1
	mkdir "$b" && wr "$b/type" ssh || return 1
	ssh_config "workdir = $T/work-$1" "transfer = $1" > "$b/config"
	wr "$b/ctl" provision && wait_for "$b/status" Succeeded 20 || return 1
	mkdir "$r" && fill "$r" 16M || return 1
	expect "$r" > "$T/expect"
	wr "$r/command" "$SHOW; make -s && ./a"
	wr "$r/target" "$1"
	wr "$r/ctl" submit && wait_for "$r/status" Completed 60
}

check "an rsync run completes" on_host rsync
common "$MNT/runs/rsync" rsync
read -r -a l <<<"$(lv "$MNT/runs/rsync" B)"
check "rsync: a truncate file stays sparse (${l[1]} KiB)" test "${l[1]}" -lt 1024

# tar through ssh (a host without rsync) keeps the same
check "a tar run completes" on_host tar
common "$MNT/runs/tar" tar
read -r -a l <<<"$(lv "$MNT/runs/tar" B)"
check "tar: a truncate file stays sparse (${l[1]} KiB)" test "${l[1]}" -lt 1024

check "unmount" unmount_ws
done_testing
