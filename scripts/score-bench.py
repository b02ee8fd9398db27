#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""score-bench - a keep-alive load client for a deployment's /score.

    score-bench.py URL KEY [-c CONNECTIONS] [-d SECONDS] [-b BODY]
                   [-H 'NAME: VALUE']...

CONNECTIONS client threads, each with one keep-alive connection, POST BODY
back to back for SECONDS.  Prints "requests/s p50_ms p99_ms errors".
Raw sockets and a minimal parser, so that the client costs less CPU than
the server it measures (both share the machine).
"""
import argparse
import socket
import threading
import time
import urllib.parse


def one_conn(host, port, req, until, lat, errs):
	s = None
	buf = b""
	while time.perf_counter() < until:
		try:
			if s is None:
				s = socket.create_connection((host, port), timeout=5)
				s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
				buf = b""
			t0 = time.perf_counter()
			s.sendall(req)
			while b"\r\n\r\n" not in buf:
				d = s.recv(65536)
				if not d:
					raise ConnectionError("closed")
				buf += d
			head, _, rest = buf.partition(b"\r\n\r\n")
			n = 0
			for line in head.split(b"\r\n")[1:]:
				k, _, v = line.partition(b":")
				if k.strip().lower() == b"content-length":
					n = int(v)
			while len(rest) < n:
				d = s.recv(65536)
				if not d:
					raise ConnectionError("closed")
				rest += d
			buf = rest[n:]
			lat.append(time.perf_counter() - t0)
			if not head.startswith(b"HTTP/1.1 200"):
				errs.append(head.split(b"\r\n")[0])
			if b"connection: close" in head.lower():
				s.close()
				s = None
		except (OSError, ValueError) as e:
			errs.append(str(e))
			if s:
				s.close()
			s = None


def main():
	ap = argparse.ArgumentParser()
	ap.add_argument("url")
	ap.add_argument("key")
	ap.add_argument("-c", type=int, default=4)
	ap.add_argument("-d", type=float, default=5)
	ap.add_argument("-b", default='{"x": 1}')
	ap.add_argument("-H", action="append", default=[],
			help="one more request header, 'NAME: VALUE'")
	a = ap.parse_args()
	u = urllib.parse.urlsplit(a.url)
	body = a.b.encode()
	req = ("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
	       "Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
	       % (u.path or "/score", u.netloc, a.key, len(body),
		  "".join(h + "\r\n" for h in a.H))).encode() + body
	lats, errs, ths = [], [], []
	start = time.perf_counter()
	until = start + a.d
	for _ in range(a.c):
		l = []
		lats.append(l)
		t = threading.Thread(target=one_conn,
				     args=(u.hostname, u.port, req, until, l, errs))
		t.start()
		ths.append(t)
	for t in ths:
		t.join()
	took = time.perf_counter() - start
	all_l = sorted(x for l in lats for x in l)
	if not all_l:
		print("0 0 0 %d" % len(errs))
		return
	p = lambda q: all_l[min(len(all_l) - 1, int(q * len(all_l)))] * 1000
	print("%.0f %.2f %.2f %d" % (len(all_l) / took, p(0.5), p(0.99),
				      len(errs)))


if __name__ == "__main__":
	main()
