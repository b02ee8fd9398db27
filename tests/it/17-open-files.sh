#!/usr/bin/env bash
# Open files behave as on a local disk (issue 14, items 2, 4, 5): a file
# open while it is unlinked or replaced stays usable through its fd; a
# settings file replaced by rename never vanishes for readers; hard links
# show one file through every name at once; an open file keeps the rights
# it was opened with.  Mounted with -o allow_other (another user below).
source "$(dirname "$0")/../lib.sh"

chmod 755 "$T"
mount_or_bail "mount with allow_other" -o allow_other
R=$MNT/runs/of
mkdir "$R"

# py NAME: run the Python snippet on stdin in the run folder; it prints
# "ok" or what went wrong.
py() { (cd "$R" && python3 - 2>&1); }

# ---- open; write; unlink: fstat, pread, write on the fd -----------------------
out=$(py <<'PY'
import os
fd = os.open("gone", os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"hello")
os.unlink("gone")
st = os.fstat(fd)
assert st.st_nlink == 0, "nlink %d" % st.st_nlink
assert st.st_size == 5, "size %d" % st.st_size
assert os.pread(fd, 5, 0) == b"hello", "pread"
assert os.pwrite(fd, b" world", 5) == 6, "pwrite"
# drop the cached pages: the next read must come from the daemon
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
assert os.pread(fd, 64, 0) == b"hello world", "pread after write"
assert os.fstat(fd).st_size == 11, "size after write"
os.fchmod(fd, 0o600)
assert os.fstat(fd).st_mode & 0o777 == 0o600, "fchmod"
os.utime(fd, ns=(1000000000, 2000000000))
assert os.fstat(fd).st_mtime_ns == 2000000000, "futimens"
os.ftruncate(fd, 4)
assert os.fstat(fd).st_size == 4, "ftruncate"
os.fsync(fd)
os.close(fd)
assert not os.path.exists("gone"), "still listed"
print("ok")
PY
)
eq "open; write; unlink: fstat, pread, pwrite, fchmod, futimens, ftruncate on the fd" \
	ok "$out"

out=$(py <<'PY'
import tempfile
with tempfile.TemporaryFile(dir=".") as f:
    f.write(b"x" * 100000)
    f.seek(0)
    assert f.read() == b"x" * 100000, "read back"
print("ok")
PY
)
eq "tempfile.TemporaryFile(dir='.') works in a run folder" ok "$out"

# ---- a reader of a file another process replaces keeps the old bytes ----------
out=$(py <<'PY'
import os
MB = 1 << 20
with open("data", "wb") as f:
    f.write(b"A" * (4 * MB))
with open("data.new", "wb") as f:
    f.write(b"B" * (4 * MB))
fd = os.open("data", os.O_RDONLY)
assert os.pread(fd, 4096, 0) == b"A" * 4096, "first read"
os.replace("data.new", "data")
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
got = os.pread(fd, 4096, 3 * MB)
assert got == b"A" * 4096, "old bytes after replace: %r" % got[:8]
assert os.fstat(fd).st_size == 4 * MB, "fstat after replace"
assert os.fstat(fd).st_nlink == 0, "nlink after replace"
os.close(fd)
with open("data", "rb") as f:
    assert f.read(4) == b"BBBB", "new bytes by name"
print("ok")
PY
)
eq "a reader keeps the old bytes of a file replaced by os.replace" ok "$out"

# ---- rename over a setting: never ENOENT for readers --------------------------
out=$(py <<'PY'
import os, threading
stop = False
errs = []
def reader():
    while not stop:
        try:
            os.stat("command")
            with open("command") as f:
                f.read()
        except OSError as e:
            errs.append("reader: %s" % e)
ts = [threading.Thread(target=reader) for _ in range(3)]
for t in ts:
    t.start()
try:
    for i in range(500):
        with open("t", "w") as f:
            f.write("echo %d\n" % i)
        os.replace("t", "command")
        try:
            os.stat("command")
            with open("command") as f:
                got = f.read()
            if got != "echo %d\n" % i:
                errs.append("content %r after replace %d" % (got, i))
        except OSError as e:
            errs.append("writer: %s" % e)
finally:
    stop = True
    for t in ts:
        t.join()
print("ok" if not errs else "%d failures, first: %s" % (len(errs), errs[0]))
PY
)
# (3 readers: the old order of the setting's drops, pages after name, gave
# 4 stale reads in 5,000 replaces under load; none since)
eq "os.replace onto command: stat and open never fail, new bytes at once" ok "$out"
eq "command holds the last value" "echo 499" "$(cat "$R/command")"
check "the replaced name is gone" test ! -e "$R/t"

# ---- hard links: one file through every name, at once -------------------------
cd "$R" || exit 1
echo one > f
stat f >/dev/null
ln f g
stat f g >/dev/null	# both names' attributes cached
eq "nlink through the first name" 2 "$(stat -c %h f)"
eq "nlink through the second name" 2 "$(stat -c %h g)"
eq "one inode number" "$(stat -c %i f)" "$(stat -c %i g)"
chmod 600 f
eq "chmod through one name, mode through the other" 600 "$(stat -c %a g)"
chown 1234:1234 g
eq "chown through one name, owner through the other" 1234:1234 \
	"$(stat -c %u:%g f)"
cat f g >/dev/null	# both names' pages cached
echo two >> g
eq "append through one name, bytes through the other" "one two" \
	"$(cat f | tr '\n' ' ' | sed 's/ $//')"
printf 'three\n' > f
eq "rewrite through one name, bytes through the other" three "$(cat g)"
out=$(py <<'PY'
import os
fa, fb = os.open("f", os.O_RDWR), os.open("g", os.O_RDONLY)
bad = 0
for i in range(200):
    os.pwrite(fa, b"%05d" % i, 0)
    if os.pread(fb, 5, 0) != b"%05d" % i:
        bad += 1
print("ok" if not bad else "%d stale reads of 200" % bad)
os.ftruncate(fa, 0)
os.pwrite(fa, b"three\n", 0)
PY
)
eq "each write through one name is read through the other at once" ok "$out"
ln g h
eq "a third name: nlink through the first" 3 "$(stat -c %h f)"
rm g
eq "unlink of one name: nlink through the others" 2 "$(stat -c %h f)"
eq "unlink of one name: nlink through the third" 2 "$(stat -c %h h)"
mv h f2
eq "rename of a name keeps the link" 2 "$(stat -c %h f)"
python3 -c 'import os; os.rename("f2", "f")'
eq "rename of a name onto another name of the same file keeps both" \
	"2 three" "$(stat -c %h f2 2>&1) $(cat f)"
out=$(py <<'PY'
import os
fd = os.open("f", os.O_RDWR)
os.unlink("f")
os.unlink("f2")
assert os.fstat(fd).st_nlink == 0, "nlink %d" % os.fstat(fd).st_nlink
assert os.pread(fd, 5, 0) == b"three", "pread"
os.close(fd)
print("ok")
PY
)
eq "a hard-linked file open while both names go" ok "$out"
cd / || exit 1

# ---- an open file keeps the rights it was opened with --------------------------
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
U=$MNT/runs/u
check "another user makes a run" nobody mkdir "$U"
printf 'ro\n' > "$T/ro"
chmod 444 "$T/ro"
check "cp of a read-only file into a run folder (another user)" \
	nobody cp "$T/ro" "$U/ro"
eq "the copy has its bytes and mode" "ro 444" "$(cat "$U/ro") $(stat -c %a "$U/ro")"
out=$(cd "$U" && nobody /usr/bin/python3 - 2>&1 <<'PY'
import os
fd = os.open("m0", os.O_CREAT | os.O_RDWR, 0)
assert os.write(fd, b"abc") == 3, "write to a file made with mode 0"
os.ftruncate(fd, 2)
assert os.pread(fd, 8, 0) == b"ab", "pread of a file made with mode 0"
os.fchmod(fd, 0o600)
os.fchmod(fd, 0)
assert os.pwrite(fd, b"c", 2) == 1, "pwrite after fchmod 0"
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
assert os.pread(fd, 8, 0) == b"abc", "pread after fchmod 0"
os.close(fd)
print("ok")
PY
)
eq "a file made with mode 0 is written, truncated, read through its fd" ok "$out"
# a set-id file another may write loses its bits at that write, as on a
# local disk (the kernel asks for a chmod as the writer, who does not own
# it: pjdfstest chmod/12)
printf 'x' > "$U/suid"
chmod 06777 "$U/suid"
check "a non-owner writes a set-id file of root's" nobody sh -c "printf y >> '$U/suid'"
eq "… which loses its set-id bits, and gets the byte" "777 xy" \
	"$(stat -c %a "$U/suid") $(cat "$U/suid")"
chmod 04755 "$U/suid"
expect_err "one who may not write it cannot clear them either" \
	"Permission denied" nobody sh -c "printf z >> '$U/suid'"
expect_err "… nor by chmod" "Operation not permitted" nobody chmod 0755 "$U/suid"
eq "… and it keeps them" 4755 "$(stat -c %a "$U/suid")"
rm -f "$U/suid"
expect_err "without the right, it is not opened for writing" \
	"Permission denied" nobody sh -c "echo x >> '$R/data'"
expect_err "nor read" "Permission denied" nobody cat "$U/m0"
eq "and nothing changed" "BBBB" "$(head -c 4 "$R/data")"

# ---- nothing left behind -------------------------------------------------------
# the files unlinked while open are let go once the kernel forgets them
held() { ! ls -l "/proc/$DPID/fd" 2>/dev/null | grep -q '(deleted)'; }
check "the daemon holds no deleted file once all are closed" \
	wait_until 10 held
check "unmount exits 0" unmount_ws
left=$(find "$STATE/objects" -path '*/files/*' -printf '%f ' 2>/dev/null)
eq "the run folders hold what the users left in them" "data m0 ro" \
	"$(echo $left | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')"
done_testing
