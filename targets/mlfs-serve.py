#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mlfs-serve - the scoring server of one replica of an mlfs deployment.

    python3 mlfs-serve.py --entry score.py --host 127.0.0.1 --port 8080

Started by the mlfs daemon in the deployment's code snapshot (the working
directory), with AZUREML_MODEL_DIR (the model version's folder), MLFS_KEY
(the bearer key) and MLFS_ERROR_FILE (where a start-up failure is told in
one line) in its environment.  Python 3's standard library only.

It imports the entry script, calls its init() once, and only then listens
(SO_REUSEPORT, so that several replicas share the port and a new one can
join before an old one leaves).  HTTP/1.1 with keep-alive:

    GET  /        liveness: 200, no key needed
    POST /score   the body (text) goes to run(); the result comes back as
                  JSON; an exception is a 500 with its message (and the
                  traceback in the log).  Needs "Authorization: Bearer KEY",
                  else 401.

SIGTERM drains: the listening socket is emptied and closed, each open
connection gets its next answer with "Connection: close", idle ones are
closed after DRAIN_IDLE seconds, and the process exits when none is left.
"""
import argparse
import asyncio
import hmac
import importlib.util
import json
import os
import signal
import socket
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
DRAIN_IDLE = 1.0	# seconds an idle connection may stay open in a drain
DRAIN_MAX = 30.0	# a drain never lasts longer than this

REASONS = {
	100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
	404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
	413: "Payload Too Large", 431: "Request Header Fields Too Large",
	500: "Internal Server Error",
}


def log(msg):
	sys.stderr.write("mlfs-serve[%d]: %s\n" % (os.getpid(), msg))
	sys.stderr.flush()


def fail_start(what, code=3):
	"""Log the traceback, tell its last line in MLFS_ERROR_FILE, exit."""
	tb = traceback.format_exc()
	sys.stderr.write(tb)
	last = [l for l in tb.strip().splitlines() if l.strip()]
	line = "%s: %s" % (what, last[-1].strip() if last else "unknown error")
	log(line)
	path = os.environ.get("MLFS_ERROR_FILE")
	if path:
		try:
			with open(path + ".tmp", "w") as f:
				f.write(line[:400] + "\n")
			os.replace(path + ".tmp", path)
		except OSError:
			pass
	sys.exit(code)


def load_entry(entry):
	path = os.path.abspath(entry)
	name = os.path.splitext(os.path.basename(entry))[0] or "score"
	sys.path.insert(0, os.path.dirname(path))
	try:
		spec = importlib.util.spec_from_file_location(name, path)
		mod = importlib.util.module_from_spec(spec)
		sys.modules[name] = mod
		spec.loader.exec_module(mod)
	except BaseException:
		fail_start("cannot import %s" % entry)
	if not callable(getattr(mod, "run", None)):
		try:
			raise AttributeError("%s defines no run() function" % entry)
		except AttributeError:
			fail_start("cannot use %s" % entry)
	init = getattr(mod, "init", None)
	if callable(init):
		try:
			init()
		except BaseException:
			fail_start("init() failed")
	return mod.run


def listen(host, port):
	try:
		info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
					  flags=socket.AI_PASSIVE)[0]
		s = socket.socket(info[0], socket.SOCK_STREAM)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
		s.bind(info[4])
		s.listen(1024)
	except OSError:
		fail_start("cannot listen on %s:%d" % (host, port), 4)
	s.setblocking(False)
	return s


def response(status, body, ctype="application/json", close=False,
	     extra=""):
	head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" \
	       "%s%s\r\n" % (status, REASONS.get(status, "Error"), ctype,
			     len(body), extra,
			     "Connection: close\r\n" if close else "")
	return head.encode("latin-1") + body


def error_body(msg):
	return (json.dumps({"error": msg}) + "\n").encode()


class Request:
	__slots__ = ("method", "path", "headers", "body", "keep")


class Server:
	def __init__(self, run, key, sock, threads):
		self.run = run
		self.key = key.encode()
		self.sock = sock
		self.pool = ThreadPoolExecutor(max_workers=threads)
		self.conns = set()
		self.draining = False
		self.loop = None

	# ---- accepting ---------------------------------------------------

	def on_accept(self):
		while True:
			try:
				c, _ = self.sock.accept()
			except (BlockingIOError, InterruptedError):
				return
			except OSError as e:
				log("accept: %s" % e)
				return
			c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
			self.loop.create_task(self.loop.connect_accepted_socket(
				lambda: Conn(self), c))

	def drain(self):
		"""SIGTERM: stop listening without dropping queued connections."""
		if self.draining:
			return
		self.draining = True
		log("draining (SIGTERM)")
		self.loop.remove_reader(self.sock.fileno())
		self.on_accept()	# take what waits in the accept queue
		self.sock.close()
		for c in list(self.conns):
			c.drain()
		self.loop.call_later(DRAIN_MAX, self.loop.stop)
		self.maybe_exit()

	def maybe_exit(self):
		if self.draining and not self.conns:
			self.loop.call_soon(self.loop.stop)

	def serve(self):
		self.loop = asyncio.new_event_loop()
		self.loop.add_reader(self.sock.fileno(), self.on_accept)
		for sig in (signal.SIGTERM, signal.SIGINT):
			self.loop.add_signal_handler(sig, self.drain)
		try:
			self.loop.run_forever()
		finally:
			self.pool.shutdown(wait=False)
		log("stopped")

	# ---- answering ---------------------------------------------------

	def authorized(self, headers):
		auth = headers.get("authorization", "")
		if not auth.lower().startswith("bearer "):
			return False
		return hmac.compare_digest(auth[7:].strip().encode(), self.key)

	def score(self, body):
		"""Worker thread: run() and its JSON, or a 500."""
		try:
			data = body.decode("utf-8", errors="replace")
			result = self.run(data)
		except BaseException as e:
			msg = "%s: %s" % (type(e).__name__, e)
			log("run() raised %s" % msg)
			traceback.print_exc()
			sys.stderr.flush()
			return 500, error_body(msg)
		try:
			return 200, (json.dumps(result) + "\n").encode()
		except (TypeError, ValueError) as e:
			msg = "run() returned a value JSON cannot encode: %s" % e
			log(msg)
			return 500, error_body(msg)


class Conn(asyncio.Protocol):
	"""One client connection: requests answered in order."""

	def __init__(self, srv):
		self.srv = srv
		self.buf = bytearray()
		self.busy = False
		self.closing = False
		self.idle_timer = None
		self.continued = False
		self.t = None

	def connection_made(self, transport):
		self.t = transport
		self.srv.conns.add(self)
		if self.srv.draining:
			self.drain()

	def connection_lost(self, exc):
		self.closing = True
		self.srv.conns.discard(self)
		if self.idle_timer:
			self.idle_timer.cancel()
		self.srv.maybe_exit()

	def drain(self):
		if not self.busy and not self.buf:
			self.idle_timer = self.srv.loop.call_later(
				DRAIN_IDLE, self.close)

	def close(self):
		if not self.closing:
			self.closing = True
			self.t.close()

	def data_received(self, data):
		self.buf += data
		if self.idle_timer:
			self.idle_timer.cancel()
			self.idle_timer = None
		if not self.busy:
			self.next()

	def send(self, status, body, keep, extra=""):
		close = not keep or self.srv.draining
		self.t.write(response(status, body, close=close, extra=extra))
		if close:
			self.close()
		return not close

	def next(self):
		"""Parse and answer the requests waiting in buf, one at a time."""
		while not self.closing and not self.busy:
			req = self.parse()
			if req is None:
				break
			if not self.dispatch(req):
				break
		if self.srv.draining and not self.busy and not self.closing:
			self.drain()

	def parse(self):
		end = self.buf.find(b"\r\n\r\n")
		if end < 0:
			if len(self.buf) > MAX_HEAD:
				self.send(431, error_body("headers too large"), False)
			return None
		try:
			lines = self.buf[:end].decode("latin-1").split("\r\n")
			method, path, version = lines[0].split(" ", 2)
		except ValueError:
			self.send(400, error_body("malformed request line"), False)
			return None
		h = {}
		for line in lines[1:]:
			k, sep, v = line.partition(":")
			if not sep:
				self.send(400, error_body("malformed header"), False)
				return None
			h[k.strip().lower()] = v.strip()
		req = Request()
		req.method, req.path, req.headers = method, path, h
		conn = h.get("connection", "").lower()
		req.keep = conn != "close" if version == "HTTP/1.1" else \
			conn == "keep-alive"
		return self.read_body(req, end + 4)

	def read_body(self, req, start):
		h = req.headers
		if "chunked" in h.get("transfer-encoding", "").lower():
			return self.read_chunked(req, start)
		try:
			n = int(h.get("content-length", "0"))
		except ValueError:
			n = -1
		if n < 0 or n > MAX_BODY:
			self.send(413 if n > 0 else 400,
				  error_body("bad Content-Length"), False)
			return None
		if len(self.buf) - start < n:
			self.expect_continue(req, start)
			return None
		req.body = bytes(self.buf[start:start + n])
		del self.buf[:start + n]
		return req

	def read_chunked(self, req, pos):
		body = bytearray()
		while True:
			eol = self.buf.find(b"\r\n", pos)
			if eol < 0:
				return self.expect_continue(req, pos)
			try:
				size = int(bytes(self.buf[pos:eol]).split(b";")[0], 16)
			except ValueError:
				self.send(400, error_body("bad chunk"), False)
				return None
			if size == 0:	# then optional trailers, then an empty line
				if self.buf[eol + 2:eol + 4] == b"\r\n":
					end = eol + 4
				else:
					end = self.buf.find(b"\r\n\r\n", eol)
					if end < 0:
						return None
					end += 4
				req.body = bytes(body)
				del self.buf[:end]
				return req
			if len(body) + size > MAX_BODY:
				self.send(413, error_body("body too large"), False)
				return None
			if len(self.buf) < eol + 2 + size + 2:
				return self.expect_continue(req, pos)
			body += self.buf[eol + 2:eol + 2 + size]
			pos = eol + 2 + size + 2

	def expect_continue(self, req, start):
		"""The body is still coming: refuse early or say 100 Continue."""
		if req.headers.get("expect", "").lower() != "100-continue":
			return None
		if req.path.split("?")[0] == "/score" and \
		   not self.srv.authorized(req.headers):
			self.unauthorized(False)
			return None
		if not self.continued:
			self.continued = True
			self.t.write(b"HTTP/1.1 100 Continue\r\n\r\n")
		return None

	def unauthorized(self, keep):
		return self.send(401, error_body("missing or wrong key: send"
						 " Authorization: Bearer KEY"),
				 keep, 'WWW-Authenticate: Bearer realm="mlfs"\r\n')

	def dispatch(self, req):
		"""Answer @req; False when the connection cannot go on now."""
		self.continued = False
		path = req.path.split("?")[0]
		if path == "/" and req.method in ("GET", "HEAD"):
			return self.send(200, b'{"status": "alive"}\n', req.keep)
		if path != "/score":
			return self.send(404, error_body("no such path: use POST"
							 " /score"), req.keep)
		if req.method != "POST":
			return self.send(405, error_body("use POST /score"),
					 req.keep, "Allow: POST\r\n")
		if not self.srv.authorized(req.headers):
			return self.unauthorized(req.keep)
		self.busy = True
		fut = self.srv.loop.run_in_executor(self.srv.pool,
						    self.srv.score, req.body)
		fut.add_done_callback(lambda f: self.scored(f, req.keep))
		return False

	def scored(self, fut, keep):
		self.busy = False
		if self.closing:
			return
		status, body = fut.result()
		if self.send(status, body, keep):
			self.next()


def main():
	ap = argparse.ArgumentParser(description="mlfs scoring server")
	ap.add_argument("--entry", required=True)
	ap.add_argument("--host", default="127.0.0.1")
	ap.add_argument("--port", type=int, required=True)
	ap.add_argument("--threads", type=int, default=1)
	a = ap.parse_args()
	key = os.environ.pop("MLFS_KEY", "")
	if not key:
		try:
			raise RuntimeError("MLFS_KEY is not set")
		except RuntimeError:
			fail_start("cannot start", 2)
	sys.path.insert(0, os.getcwd())
	run = load_entry(a.entry)
	sock = listen(a.host, a.port)
	log("serving %s on %s:%d" % (a.entry, a.host, a.port))
	Server(run, key, sock, max(1, a.threads)).serve()


if __name__ == "__main__":
	main()
