#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile HTTP clients for tests/it/63-serve-register.sh, over raw sockets.

    serve-attack.py HOST PORT KEY raw HEX       one request (bytes as hex);
                                                prints "STATUS closed|open"
    serve-attack.py HOST PORT KEY wrongkey N MIB PID
                                                N connections announcing MIB
                                                MiB with a wrong key, each
                                                sending its body; prints
                                                "STATUSES MAX_RSS_KIB SECONDS"
    serve-attack.py HOST PORT KEY slow N SECONDS
                                                N slowloris connections (heads
                                                byte by byte, bodies that
                                                stall) while a good client
                                                asks; prints "GOOD SLOWEST_S
                                                CLOSED_BY_SERVER"
Every wait is bounded; a status of 0 means no answer.
"""
import socket
import sys
import threading
import time

HOST, PORT, KEY = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def connect(timeout=10):
	s = socket.create_connection((HOST, PORT), timeout=timeout)
	s.settimeout(timeout)
	return s


def read_answer(s):
	"""The status of the first answer, and whether the server then closed."""
	data = b""
	try:
		while b"\r\n\r\n" not in data:
			b = s.recv(65536)
			if not b:
				break
			data += b
		status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") \
			else 0
	except (OSError, ValueError, IndexError):
		return 0, True
	closed = False
	try:
		# a refusal closes at once; an idle close (read_timeout) is later
		s.settimeout(1.5)
		while True:	# the rest of the answer, then EOF if closed
			b = s.recv(65536)
			if not b:
				closed = True
				break
	except socket.timeout:
		pass
	except OSError:
		closed = True
	return status, closed


def cmd_raw(hexdata):
	s = connect()
	s.sendall(bytes.fromhex(hexdata))
	status, closed = read_answer(s)
	s.close()
	print(status, "closed" if closed else "open")


def good_request(timeout=10):
	"""A keyed POST /score; True when answered 200."""
	try:
		s = connect(timeout)
		s.sendall(("POST /score HTTP/1.1\r\nHost: t\r\nAuthorization:"
			   " Bearer %s\r\nContent-Length: 2\r\nConnection: close"
			   "\r\n\r\nhi" % KEY).encode())
		status, _ = read_answer(s)
		s.close()
		return status == 200
	except OSError:
		return False


def rss_kib(pid):
	try:
		for line in open("/proc/%d/status" % pid):
			if line.startswith("VmRSS:"):
				return int(line.split()[1])
	except OSError:
		pass
	return 0


def cmd_wrongkey(n, mib, pid):
	statuses = [0] * n
	stop = threading.Event()
	peak = [rss_kib(pid)]

	def one(i):
		try:
			s = connect()
			s.sendall(("POST /score HTTP/1.1\r\nHost: t\r\n"
				   "Authorization: Bearer wrong-%s\r\n"
				   "Content-Length: %d\r\n\r\n" %
				   (KEY[:4], mib << 20)).encode())
			sender = threading.Thread(target=push, args=(s, mib),
						  daemon=True)
			sender.start()
			statuses[i] = read_answer(s)[0]
			s.close()
		except OSError:
			pass

	def push(s, mib):
		chunk = b"x" * (1 << 20)
		try:
			for _ in range(mib):
				if stop.is_set():
					return
				s.sendall(chunk)
		except OSError:
			return

	t0 = time.time()
	ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
	for t in ts:
		t.start()
	while any(t.is_alive() for t in ts) and time.time() - t0 < 60:
		peak[0] = max(peak[0], rss_kib(pid))
		time.sleep(0.05)
	stop.set()
	peak[0] = max(peak[0], rss_kib(pid))
	print(",".join(map(str, statuses)), peak[0], round(time.time() - t0, 1))


def cmd_slow(n, secs):
	socks, closed = [], [0]
	lock = threading.Lock()

	def slow_head(i):
		try:
			s = connect(secs + 30)
			socks.append(s)
			head = b"POST /score HTTP/1.1\r\nHost: t\r\nX-Pad: " + \
				b"a" * 4000 + b"\r\n\r\n"
			for b in head:
				s.send(bytes([b]))
				time.sleep(0.2)
		except OSError:
			with lock:
				closed[0] += 1

	def stalled_body(i):
		try:
			s = connect(secs + 30)
			socks.append(s)
			s.sendall(("POST /score HTTP/1.1\r\nHost: t\r\n"
				   "Authorization: Bearer %s\r\n"
				   "Content-Length: 1000\r\n\r\nabc" % KEY).encode())
			if read_answer(s)[0] in (0, 408):
				with lock:
					closed[0] += 1
		except OSError:
			with lock:
				closed[0] += 1

	ts = [threading.Thread(target=slow_head if i % 2 else stalled_body,
			       args=(i,), daemon=True) for i in range(n)]
	for t in ts:
		t.start()
	time.sleep(1)
	good, slowest, t_end = 0, 0.0, time.time() + secs
	while time.time() < t_end:
		t0 = time.time()
		good += good_request()
		slowest = max(slowest, time.time() - t0)
		time.sleep(0.1)
	for t in ts:
		t.join(timeout=60)
	print(good, round(slowest, 2), closed[0])


def cmd_cap(n):
	held = [connect() for _ in range(n)]
	time.sleep(0.5)	# accepted by the server's loop
	s = connect()
	status, _ = read_answer(s)
	s.close()
	for h in held:
		h.close()
	time.sleep(0.5)
	print(status, "answered" if good_request() else "unanswered")


def main():
	what = sys.argv[4]
	if what == "raw":
		cmd_raw(sys.argv[5])
	elif what == "wrongkey":
		cmd_wrongkey(int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
	elif what == "cap":
		cmd_cap(int(sys.argv[5]))
	elif what == "slow":
		cmd_slow(int(sys.argv[5]), float(sys.argv[6]))


if __name__ == "__main__":
	main()
