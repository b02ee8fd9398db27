#!/usr/bin/env bash
# Run folders as a local disk, the smaller operations (issue 14, items 3
# and 8): the caller's umask, FIFOs and sockets among user files (device
# nodes refused), fallocate, files made where only folders belong, settings
# refused inside the write, and paths as long as PATH_MAX below a run
# folder.  Good and bad input for each.
source "$(dirname "$0")/../lib.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "# needs root (mknod, another user); skipped"
	done_testing
	exit
fi
UA=mlfs_ta
test_user "$UA"
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups \
	env HOME="$(getent passwd "$u" | cut -d: -f6)" "$@"; }
chmod 755 "$T"

# the daemon's own umask must not mask users' files: start it with a
# strict one
umask 077
check "mount with allow_other (daemon umask 077)" mount_ws -o allow_other
umask 022
R=$MNT/runs/r
mkdir "$R"

# ---- umask ------------------------------------------------------------------
modes() { stat -c %a "$@" | tr '\n' ' '; }
(cd "$R" && umask 000 && touch f0 && mkdir d0 && mkfifo p0)
eq "umask 000: 666 file, 777 folder, 666 fifo" "666 777 666 " \
	"$(modes "$R/f0" "$R/d0" "$R/p0")"
(cd "$R" && umask 027 && touch f1 && mkdir d1 && mkfifo p1)
eq "umask 027: 640 / 750 / 640" "640 750 640 " \
	"$(modes "$R/f1" "$R/d1" "$R/p1")"
(cd "$R" && umask 000 && python3 -c 'import os; os.close(os.open("f2", os.O_CREAT | os.O_WRONLY, 0o751))')
eq "open(O_CREAT, 0751) under umask 000 keeps the mode" 751 \
	"$(stat -c %a "$R/f2")"
RU=$MNT/runs/u
as $UA mkdir "$RU"
as $UA sh -c "cd $RU && umask 000 && touch fu && mkdir du && mkfifo pu"
eq "another user's umask 000: 666 / 777 / 666" "666 777 666 " \
	"$(modes "$RU/fu" "$RU/du" "$RU/pu")"
eq "and the entries are that user's" "$UA $UA $UA" \
	"$(stat -c %U "$RU/fu" "$RU/du" "$RU/pu" | xargs)"
as $UA sh -c "cd $RU && umask 077 && touch fv && mkdir dv"
eq "another user's umask 077: 600 / 700" "600 700 " \
	"$(modes "$RU/fv" "$RU/dv")"
expect_err "another user cannot mkfifo in root's run" "Permission denied" \
	as $UA mkfifo "$R/pv"
expect_err "nor mknod a device in a run of theirs" "Operation not permitted" \
	as $UA mknod "$RU/null" c 1 3
mkdir "$MNT/runs/later"
eq "the daemon's own folders stay private to it" "" \
	"$(find "$STATE" -maxdepth 2 -perm -o+w ! -type l)"

# ---- FIFOs, sockets, device nodes ------------------------------------------
check "mkfifo makes a FIFO" mkfifo "$R/fifo"
check "it is a FIFO" test -p "$R/fifo"
out=$(test -p "$R/fifo" &&
	timeout 20 sh -c "echo through > '$R/fifo' & cat '$R/fifo'; wait")
eq "bytes pass through it" through "$out"
check "mknod p makes a FIFO" mknod "$R/fifo2" p
check "a socket can be bound" python3 -c \
	"import socket; s = socket.socket(socket.AF_UNIX); s.bind('$R/sock')"
check "it is a socket" test -S "$R/sock"
out=$(cd "$R" && timeout 20 python3 -c '
import os, socket
s = socket.socket(socket.AF_UNIX); s.bind("sock2"); s.listen(1)
c = socket.socket(socket.AF_UNIX); c.connect("sock2")
a, _ = s.accept(); c.send(b"hello"); print(a.recv(5).decode())')
eq "a socket in a run folder connects" hello "$out"
check "a FIFO is listed" sh -c "ls -l '$R' | grep -q '^p.* fifo\$'"
expect_err "a character device is refused" "Operation not permitted" \
	mknod "$R/null" c 1 3
expect_err "a block device is refused" "Operation not permitted" \
	mknod "$R/blk" b 7 0
check "no device node was left" test ! -e "$R/null" -a ! -e "$R/blk"
expect_err "mkfifo over a control file name" "File exists" \
	mkfifo "$R/status"
expect_err "mkfifo in runs/" "Operation not permitted" mkfifo "$MNT/runs/p"
expect_err "mkfifo at the root" "Operation not permitted" mkfifo "$MNT/p"
expect_err "mkfifo in outputs/ of a Draft run" "Read-only file system" \
	mkfifo "$R/outputs/p"
check "mknod of a regular file" python3 -c \
	"import os, stat; os.mknod('$R/regular', stat.S_IFREG | 0o644)"
check "it is an empty regular file" test -f "$R/regular" -a ! -s "$R/regular"
expect_err "a FIFO renamed over a setting" "Invalid argument" timeout 20 \
	python3 -c "import os; os.rename('$R/fifo2', '$R/command')"
check "rm of a FIFO" rm "$R/fifo2"
check "rm of a socket" rm "$R/sock2"

# ---- fallocate --------------------------------------------------------------
check "fallocate -l 10M" fallocate -l 10M "$R/fa"
eq "the file is 10 MiB" 10485760 "$(stat -c %s "$R/fa")"
check "and has its blocks" test "$(stat -c %b "$R/fa")" -ge 20000
check "fallocate --keep-size" fallocate -n -l 20M "$R/fa"
eq "the size is kept" 10485760 "$(stat -c %s "$R/fa")"
head -c 1M /dev/urandom > "$R/ph"
tail_sum=$(tail -c 512K "$R/ph" | md5sum)
check "fallocate --punch-hole" fallocate -p -o 0 -l 512K "$R/ph"
eq "the hole reads as zeros" 0 \
	"$(head -c 512K "$R/ph" | tr -d '\0' | wc -c)"
eq "the rest is kept" "$tail_sum" "$(tail -c 512K "$R/ph" | md5sum)"
eq "the size is kept" 1048576 "$(stat -c %s "$R/ph")"
check "fallocate --zero-range" fallocate -z -o 512K -l 4K "$R/ph"
expect_err "fallocate --collapse-range is not supported" "Operation not supported" \
	fallocate -c -o 0 -l 4K "$R/ph"
expect_err "fallocate of a setting" "Operation not supported" \
	fallocate -l 1M "$R/command"

# ---- files where only folders belong -----------------------------------------
expect_err "touch runs/x" "Operation not permitted" touch "$MNT/runs/x"
expect_err "touch at the root" "Operation not permitted" touch "$MNT/x"
expect_err "touch targets/x" "Operation not permitted" touch "$MNT/targets/x"
expect_err "touch models/x" "Operation not permitted" touch "$MNT/models/x"
expect_err "ln -s into deployments/" "Operation not permitted" \
	ln -s x "$MNT/deployments/x"
mkdir "$MNT/targets/t"
expect_err "touch in a target's folder" "Operation not permitted" \
	touch "$MNT/targets/t/x"
check "with a sentence in its error" has_sentence "$MNT/targets/t/error"
check "which names the target" grep -q "'t'" "$MNT/targets/t/error"
check "touch in a run folder still works" touch "$R/ok"

# ---- settings refused inside the write ----------------------------------------
# refused WRITE FILE TEXT: the write fails with EINVAL, FILE does not take
# TEXT and keeps what it held (the shell's O_TRUNC came first: the daemon
# puts the old text back), error holds one sentence naming FILE
refused() {
	local d=$1 f=$2 text=$3 before
	before=$(cat "$f")
	expect_err "$d: EINVAL" "Invalid argument" \
		bash -c "printf '%s\n' '$text' > '$f'"
	eq "$d: the value is not taken, the old one stays" "$before" \
		"$(cat "$f")"
	check "$d: error explains" has_sentence "$(dirname "$f")/error"
	check "$d: error names $(basename "$f")" \
		grep -q "$(basename "$f")" "$(dirname "$f")/error"
}
echo 'cpus = 2' > "$R/resources"
refused "resources cpus = x" "$R/resources" 'cpus = x'
refused "resources unknown key" "$R/resources" 'cores = 2'
refused "resources memory = lots" "$R/resources" 'memory = lots'
refused "env without =" "$R/env" 'FOO'
refused "env MLFS_ key" "$R/env" 'MLFS_RUN=x'
refused "run target of two words" "$R/target" 'a b'
refused "run target bad name" "$R/target" 'a/b'
expect_err "command with a NUL byte" "Invalid argument" \
	bash -c "printf 'echo a\0b\n' > '$R/command'"
mkdir "$MNT/deployments/d"
refused "deployment model without :" "$MNT/deployments/d/model" 'iris'
refused "deployment config port" "$MNT/deployments/d/config" 'port = x'
refused "deployment config key" "$MNT/deployments/d/config" 'colour = red'
refused "deployment target" "$MNT/deployments/d/target" '../x'
refused "target type" "$MNT/targets/t/type" 'nosuch'
refused "target config line" "$MNT/targets/t/config" 'no equals sign'
check "a good resources write" sh -c "echo 'cpus = 2' > '$R/resources'"
check "a good env write" sh -c "printf 'A=1\nB=2\n' > '$R/env'"
check "a good target type" sh -c "echo ssh > '$MNT/targets/t/type'"
check "a good deployment config" sh -c \
	"echo 'port = 0' > '$MNT/deployments/d/config'"
check "a good model" sh -c "echo iris:1 > '$MNT/deployments/d/model'"
check "a line written in two writes" sh -c \
	"{ printf 'memory '; printf '= 1G\n'; } > '$R/resources'"
eq "is kept whole" "memory = 1G" "$(cat "$R/resources")"
check "appending a good line" sh -c "echo 'cpus = 1' >> '$R/resources'"
expect_err "appending a bad line" "Invalid argument" \
	bash -c "echo 'gpus = -1' >> '$R/resources'"
eq "keeps the good lines" "memory = 1G
cpus = 1" "$(cat "$R/resources")"
printf 'cpus = x' > "$R/res"
expect_err "a bad file renamed over resources" "Invalid argument" \
	python3 -c "import os; os.rename('$R/res', '$R/resources')"
rm -f "$R/res"
# a line without its newline may still be growing: it is checked at use
check "an unterminated bad line is taken" sh -c "printf 'cpus = y' > '$R/resources'"
wr "$R/command" 'test -e fifo && echo fifo; test -e sock && echo sock; echo done'
expect_err "and refused at submit" "Invalid argument" wr "$R/ctl" submit
check "which explains it" grep -q "cpus" "$R/error"
echo 'cpus = 1' > "$R/resources"

# ---- a run with FIFOs and sockets among its files -----------------------------
check "submit with a FIFO and a socket in the folder" wr "$R/ctl" submit
check "the run completes" wait_final "$R" 60
eq "it completed" Completed "$(cat "$R/status")"
eq "FIFOs and sockets are not in the working copy" done "$(cat "$R/log")"
expect_err "mkfifo in a submitted run" "Read-only file system" mkfifo "$R/p9"
expect_err "fallocate in a submitted run" "Read-only file system" \
	fallocate -l 1M "$R/fa"

# ---- paths as long as PATH_MAX below a run folder ------------------------------
R2=$MNT/runs/deep
mkdir "$R2"
cat > "$T/deep.py" <<'PY'
import os, sys
os.chdir(sys.argv[1])
comp = "d" * 250
path = comp
while len(path) + 251 <= 4095 - 20:
    path += "/" + comp
p = ""
for c in path.split("/"):
    p = p + "/" + c if p else c
    os.mkdir(p)
n = 4095 - len(path) - 1	# a relative path of 4095 bytes, PATH_MAX - 1
f, g = path + "/" + "f" * n, path + "/" + "g" * n
with open(f, "w") as fh:
    fh.write("deep\n")
assert open(f).read() == "deep\n"
os.rename(f, g); os.rename(g, f)
os.chmod(f, 0o600); os.truncate(f, 5); os.utime(f, (1, 1))
assert os.stat(f).st_mode & 0o777 == 0o600 and os.stat(f).st_mtime == 1
os.symlink("x", g); assert os.readlink(g) == "x"; os.unlink(g)
os.link(f, g); assert os.stat(f).st_nlink == 2; os.unlink(g)
os.mkfifo(g); os.unlink(g)
os.mkdir(g); os.rmdir(g)
assert sorted(os.listdir(path)) == ["f" * n]
print(len(f))
PY
eq "a 4095-byte relative path works as on a local disk" 4095 \
	"$(python3 "$T/deep.py" "$R2" 2>&1 | tail -1)"
eq "it is found by find" 1 "$(find "$R2" -name 'fff*' | wc -l)"
wr "$R2/command" 'find . -name "fff*" | wc -l'
check "submit the deep tree" wr "$R2/ctl" submit
check "the run completes" wait_final "$R2" 60
eq "the run sees the deep file" 1 "$(cat "$R2/log")"
check "rm -r of the deep run" rm -r "$R2"

check "unmount exits 0" unmount_ws
done_testing
