#!/usr/bin/env python3
"""status-hammer.py MNT RUNS [READERS]: submit RUNS trivial runs one after
the other while READERS threads read the current run's status file in a
tight loop (open, read, close); print "READS JUNK" where JUNK counts the
reads that were not one whole word (a state and its newline), and the first
few of them on stderr.  The kernel caches a file's size and pages apart: a
read racing a transition must still get the old word or the new one."""
import os
import sys
import threading

WORDS = {b"Draft\n", b"Queued\n", b"Starting\n", b"Running\n",
         b"Completed\n", b"Failed\n", b"Canceled\n"}


def main():
    mnt, runs = sys.argv[1], int(sys.argv[2])
    readers = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    cur = [None]
    done = [False]
    counts = []
    lock = threading.Lock()

    def reader():
        reads = junk = 0
        while not done[0]:
            path = cur[0]
            if path is None:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
                data = os.read(fd, 4096)
                os.close(fd)
            except OSError:
                continue
            reads += 1
            if data not in WORDS:
                junk += 1
                if junk <= 3:
                    print("junk: %r" % data, file=sys.stderr)
        with lock:
            counts.append((reads, junk))

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    for t in threads:
        t.start()
    try:
        for i in range(runs):
            d = os.path.join(mnt, "runs", "hammer%d" % i)
            os.mkdir(d)
            with open(os.path.join(d, "command"), "w") as f:
                f.write("true\n")
            cur[0] = os.path.join(d, "status")
            with open(os.path.join(d, "ctl"), "w") as f:
                f.write("submit\n")
            while True:
                with open(cur[0], "rb") as f:
                    if f.read().strip() in (b"Completed", b"Failed"):
                        break
    finally:
        done[0] = True
        for t in threads:
            t.join()
    print(sum(c[0] for c in counts), sum(c[1] for c in counts))


if __name__ == "__main__":
    main()
