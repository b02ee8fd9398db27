#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mlfs-serve - the scoring server of one replica of an mlfs deployment.

    python3 mlfs-serve.py --entry score.py --host 127.0.0.1 --port 8080 \
        [--max-body BYTES] [--read-timeout SECONDS] [--max-conns N] \
        [--direct-host ADDRESS]

Started by the mlfs daemon in the deployment's code snapshot (the working
directory), with AZUREML_MODEL_DIR (the model version's folder), MLFS_KEY
(the bearer key) and MLFS_ERROR_FILE (where a start-up failure is told in
one line) in its environment.  Python 3's standard library only.

It imports the entry script, calls its init() once, and only then listens
(SO_REUSEPORT, so that several replicas share the port and a new one can
join before an old one leaves).  HTTP/1.1 with keep-alive:

    GET  /        liveness: 200, no key needed
    POST /score   the body goes to run(): text (str) when it is UTF-8,
                  else bytes (--raw yes: always bytes); the result comes
                  back as JSON; an exception is a 500 with its message
                  (and the traceback in the log).  Needs "Authorization:
                  Bearer KEY", else 401.

Raw requests (--raw request, or a run() decorated with Azure ML's
@rawhttp): every method on /score (key needed) calls run(request), with
request.method, .path, .query_string, .args (first values; .getlist),
.headers (any case), .body (bytes; .data, .get_data(), .get_json(),
.form, .files) - Flask's names, as Azure ML's AMLRequest has them.  run()
returns a body (bytes, str, or anything JSON encodes), a tuple (body,
status) or (body, status, headers), or an AMLResponse.  When azureml is
not installed, `from azureml.contrib.services.aml_request import rawhttp`
and `...aml_response import AMLResponse` find this file's own (see
AzuremlShim), so Azure ML entry scripts run unchanged.

Logging: the root logger is at INFO with a handler on stderr (the
deployment's log), lines "TIME LEVEL LOGGER[PID]: MESSAGE"; print() goes
to stdout, the same log.  init() may change the level
(logging.getLogger().setLevel(logging.DEBUG)).

Environment: the deployment's env lines come as MLFS_ENV_KEY=VALUE (so
that they never act in the root processes that start this one); the
first thing done is to exec this program again with them as KEY=VALUE.
--exec-env -- ARGV does the same for a user's command.

Hostile clients (issue 11): the key is checked as soon as the head is in,
before any byte of the body is kept (401; the connection closes when a body
was announced); a body over --max-body is 413 before it is read; framing is
strict (Content-Length digits only and once, Transfer-Encoding exactly
"chunked" and never with Content-Length, chunk sizes 1-16 hex digits): 400
or 501, then close; a head must arrive within --read-timeout of its first
byte and a body may not pause longer (408, close); past --max-conns open
connections new ones get 503.  Each replica also listens on 127.0.0.1 port
0, its own: the daemon's liveness probe reaches this replica there, where
the shared port would reach any of them.  And on a third socket, its direct
port (--direct-host, 127.0.0.1 by default; port 0): the whole service as
on the shared port, counted in --max-conns, for an endpoint's proxy that
balances each request over the replicas (the shared port balances
connections, by a hash: a few keep-alive connections can all land on one
replica).  A replica on an ssh host has it on the service's address,
where the endpoint's proxy on the daemon's machine reaches it.

Load (issue 16): the requests in flight - from the moment a request for
/score is read whole until its answer is written - are counted, and the
count is written to MLFS_STATS_FILE (when set) as "in_flight N", with a
line "direct_port P", replaced atomically at most every STATS_EVERY
seconds while it changes.  The
daemon reads it on its poll and scales the deployment's replicas by it.

SIGTERM drains: the listening socket is emptied and closed, each open
connection gets its next answer with "Connection: close", idle ones are
closed after DRAIN_IDLE seconds, and the process exits when none is left.
"""
import argparse
import asyncio
import email.parser
import email.policy
import hmac
import http
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import logging
import os
import signal
import socket
import sys
import time
import traceback
import types
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

MAX_HEAD = 64 * 1024
MAX_BODY = 100 * 1024 * 1024	# default of config max_body
READ_TIMEOUT = 30.0	# default of config read_timeout: a head, a body's pauses
MAX_CONNS = 512		# open connections; more are closed at once
LIVE_CONNS = 16		# on the liveness port; more push out the oldest
LIVE_TIMEOUT = 2.0	# the liveness port's read timeout
LINGER = 2.0		# seconds unread bytes are discarded before a close
DRAIN_IDLE = 1.0	# seconds an idle connection may stay open in a drain
DRAIN_MAX = 30.0	# a drain never lasts longer than this
STATS_EVERY = 0.05	# s between two writes of MLFS_STATS_FILE

ENV_USER = b"MLFS_ENV_"	# the deployment's env lines, see exec_env()
LOG_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s[%(process)d]:" \
	     " %(message)s"
RAW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# headers run() may not set: the framing is the server's
FRAMING = ("content-length", "transfer-encoding", "connection")


def reason(status):
	try:
		return http.HTTPStatus(status).phrase
	except ValueError:
		return "Status %d" % status


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


def listen(host, port, shared):
	"""The service's socket (@shared: SO_REUSEPORT, replicas share it), or
	the replica's own liveness socket (port 0: the daemon finds it among
	this process's sockets and probes this replica, not any of them)."""
	try:
		info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
					  flags=socket.AI_PASSIVE)[0]
		s = socket.socket(info[0], socket.SOCK_STREAM)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		if shared:
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
	       "%s%s\r\n" % (status, reason(status), ctype,
			     len(body), extra,
			     "Connection: close\r\n" if close else "")
	return head.encode("latin-1") + body


def error_body(msg):
	return (json.dumps({"error": msg}) + "\n").encode()


# ---- start: environment, logging ------------------------------------------


def user_env():
	"""The environment with the deployment's env lines (MLFS_ENV_KEY=VALUE,
	made so by the daemon) as KEY=VALUE, bytes as given; None when there
	are none."""
	env = os.environb
	if not any(k.startswith(ENV_USER) for k in env):
		return None
	out = {k: v for k, v in env.items() if not k.startswith(ENV_USER)}
	for k, v in env.items():
		if k.startswith(ENV_USER) and len(k) > len(ENV_USER):
			out[k[len(ENV_USER):]] = v
	return out


def exec_env(argv):
	"""Run @argv (--exec-env -- ARGV: a user's command) or this program
	again with the env lines in place: PYTHONPATH & co act from the start
	of the interpreter.  Returns when there is nothing to do."""
	env = user_env()
	if env is None and argv is None:
		return
	if argv is None:
		argv = [sys.executable or "/usr/bin/python3"] + sys.argv
	try:
		os.execve(argv[0], argv, os.environb if env is None else env)
	except OSError:
		fail_start("cannot start %s" % argv[0], 127)


def setup_logging():
	"""score.py's logging at INFO and above reaches the log, as Azure ML
	shows it; a handler of its own on the root logger (init() may change
	the level, or add handlers)."""
	h = logging.StreamHandler(sys.stderr)
	f = logging.Formatter(LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
	f.converter = time.gmtime
	h.setFormatter(f)
	root = logging.getLogger()
	root.addHandler(h)
	root.setLevel(logging.INFO)


# ---- raw requests: what run(request) gets, what it may return ----------------


class MultiDict(dict):
	"""name -> first value, as Flask's request.args; getlist() has all."""

	def __init__(self, pairs=()):
		super().__init__()
		self.lists = {}
		for k, v in pairs:
			self.add(k, v)

	def add(self, k, v):
		self.lists.setdefault(k, []).append(v)
		self.setdefault(k, v)

	def getlist(self, k):
		return list(self.lists.get(k, []))


class Headers(dict):
	"""The request's headers, names in any case."""

	def __getitem__(self, k):
		return super().__getitem__(k.lower())

	def __contains__(self, k):
		return super().__contains__(k.lower())

	def get(self, k, default=None):
		return super().get(k.lower(), default)


class Upload(io.BytesIO):
	"""A file of a multipart/form-data body (request.files[name])."""

	def __init__(self, data, filename, content_type):
		super().__init__(data)
		self.filename = filename
		self.content_type = content_type
		self.stream = self

	def save(self, path):
		with open(path, "wb") as f:
			f.write(self.getvalue())


class ScoreRequest:
	"""run(request) with raw = request or @rawhttp: the names of Flask's
	Request that Azure ML's AMLRequest scripts use."""

	def __init__(self, method, target, headers, body):
		self.method = method
		self.path, _, self.query_string = target.partition("?")
		self.full_path = self.path + "?" + self.query_string
		self.args = MultiDict(urllib.parse.parse_qsl(
			self.query_string, keep_blank_values=True))
		self.query = self.args
		self.headers = Headers(headers)
		self.body = body
		self.data = body
		self.content_type = self.headers.get("content-type", "")
		self.mimetype = self.content_type.split(";")[0].strip().lower()
		self._form = None

	def get_data(self, cache=True, as_text=False, parse_form_data=False):
		return self.body.decode("utf-8", "replace") if as_text else \
		       self.body

	def get_json(self, force=False, silent=False, cache=True):
		if not force and not self.mimetype.endswith("json"):
			return None
		try:
			return json.loads(self.body)
		except ValueError:
			if silent:
				return None
			raise

	@property
	def json(self):
		return self.get_json()

	@property
	def form(self):
		return self.parse_form()[0]

	@property
	def files(self):
		return self.parse_form()[1]

	def parse_form(self):
		if self._form is None:
			self._form = (MultiDict(), MultiDict())
			if self.mimetype == "application/x-www-form-urlencoded":
				for k, v in urllib.parse.parse_qsl(
				    self.body.decode("utf-8", "replace"),
				    keep_blank_values=True):
					self._form[0].add(k, v)
			elif self.mimetype == "multipart/form-data":
				self.parse_multipart()
		return self._form

	def parse_multipart(self):
		head = b"Content-Type: " + \
		       self.content_type.encode("latin-1") + b"\r\n\r\n"
		msg = email.parser.BytesParser(policy=email.policy.HTTP) \
			.parsebytes(head + self.body)
		if not msg.is_multipart():
			return
		for part in msg.iter_parts():
			name = part.get_param("name",
					      header="content-disposition")
			data = part.get_payload(decode=True) or b""
			if name is None:
				continue
			if part.get_filename() is None:
				self._form[0].add(name, data.decode(
					part.get_content_charset() or "utf-8",
					"replace"))
			else:
				self._form[1].add(name, Upload(
					data, part.get_filename(),
					part.get_content_type()))


class AMLResponse:
	"""What run() may return: Azure ML's AMLResponse(message, status_code,
	response_headers, json_str); message is bytes, str, or (json_str, or
	not text) encoded as JSON."""

	def __init__(self, message, status_code=200, response_headers=None,
		     json_str=False):
		self.status_code = status_code
		self.headers = dict(response_headers or {})
		if json_str:
			message = json.dumps(message)
		self.message = message

	def get_data(self):
		return self.message


def body_of(value):
	"""A run() result as (bytes, Content-Type)."""
	if isinstance(value, (bytes, bytearray, memoryview)):
		return bytes(value), "application/octet-stream"
	if isinstance(value, str):
		return value.encode("utf-8"), "text/plain; charset=utf-8"
	return (json.dumps(value) + "\n").encode(), "application/json"


def header_lines(headers):
	"""run()'s headers (a dict or (name, value) pairs) as head lines, and
	the Content-Type among them (or None).  ValueError when a name or a
	value could split the head (CR, LF, ':' in a name ...)."""
	items = headers.items() if hasattr(headers, "items") else headers
	lines, ctype = [], None
	for k, v in items:
		k, v = str(k), str(v)
		if not k or any(c in k for c in " \t\r\n:") or \
		   any(c in v for c in "\r\n\0"):
			raise ValueError("run() returned a bad header %r" %
					 k[:64])
		if k.lower() == "content-type":
			ctype = v
		elif k.lower() not in FRAMING:
			lines.append("%s: %s\r\n" % (k, v))
	return "".join(lines), ctype


def raw_result(result):
	"""A raw run()'s result as (status, body, Content-Type, extra head)."""
	if hasattr(result, "status_code") and hasattr(result, "get_data"):
		value, status = result.get_data(), result.status_code
		headers = getattr(result, "headers", {})
	elif isinstance(result, tuple) and len(result) in (2, 3):
		value, status = result[0], result[1]
		headers = result[2] if len(result) == 3 else {}
	else:
		value, status, headers = result, 200, {}
	if not isinstance(status, int) or isinstance(status, bool) or \
	   not 200 <= status <= 599:
		raise ValueError("run() returned status %r (200-599)" %
				 (status,))
	body, ctype = body_of(value)
	extra, given = header_lines(headers or {})
	return status, body, given or ctype, extra


# ---- the azureml names, when azureml is not installed --------------------


class AzuremlShim(importlib.abc.MetaPathFinder, importlib.abc.Loader):
	"""azureml.contrib.services.aml_request (rawhttp, AMLRequest) and
	.aml_response (AMLResponse), last on sys.meta_path: an installed
	azureml is found first and wins; else these, so that Azure ML entry
	scripts run unchanged."""

	PACKAGES = ("azureml", "azureml.contrib", "azureml.contrib.services")
	PREFIX = "azureml.contrib.services."

	def find_spec(self, name, path=None, target=None):
		if name in self.PACKAGES:
			return importlib.machinery.ModuleSpec(name, self,
							      is_package=True)
		if name in (self.PREFIX + "aml_request",
			    self.PREFIX + "aml_response"):
			return importlib.machinery.ModuleSpec(name, self)
		return None

	def create_module(self, spec):
		return None

	def exec_module(self, mod):
		if mod.__name__ in self.PACKAGES:
			mod.__path__ = []
		elif mod.__name__.endswith("aml_request"):
			mod.rawhttp = rawhttp
			mod.AMLRequest = ScoreRequest
			mod._rawHttpRequested = False
		else:
			mod.AMLResponse = AMLResponse


def rawhttp(func):
	"""@rawhttp: run() gets the request (see ScoreRequest)."""
	func.__mlfs_rawhttp__ = True
	mod = sys.modules.get(AzuremlShim.PREFIX + "aml_request")
	if mod is not None:
		mod._rawHttpRequested = True
	return func


def wants_request(run):
	"""Was run() decorated with @rawhttp (ours, or Azure ML's own, which
	sets its module's _rawHttpRequested)?"""
	if getattr(run, "__mlfs_rawhttp__", False):
		return True
	mod = sys.modules.get(AzuremlShim.PREFIX + "aml_request")
	return bool(getattr(mod, "_rawHttpRequested", False))


class Request:
	__slots__ = ("method", "path", "headers", "body", "keep")


def run_raw(a, run):
	"""--raw no|yes|request, or request when run() is @rawhttp."""
	return "request" if wants_request(run) else a.raw


class Server:
	def __init__(self, run, key, socks, a):
		self.run = run
		self.raw = run_raw(a, run)	# no, yes, request
		self.key = key.encode()
		self.socks = socks	# the service's, the liveness one, the
					# direct one
		self.pool = ThreadPoolExecutor(max_workers=max(1, a.threads))
		self.max_body = a.max_body
		self.read_timeout = a.read_timeout
		self.max_conns = a.max_conns
		self.conns = set()
		self.nconn = 0		# accepted on the service's port, not lost
		self.live = []		# connections on the liveness port, oldest first
		self.draining = False
		self.loop = None
		self.in_flight = 0	# /score requests read, not yet answered
		self.stats_path = os.environ.get("MLFS_STATS_FILE", "")
		self.direct_port = socks[2].getsockname()[1]
		self.stats_due = False

	# ---- accepting ---------------------------------------------------

	def on_accept(self, sock):
		while True:
			try:
				c, _ = sock.accept()
			except (BlockingIOError, InterruptedError):
				return
			except OSError as e:
				log("accept: %s" % e)
				return
			live = sock is self.socks[1]
			if not live and self.nconn >= self.max_conns:
				self.refuse(c)
				continue
			if live and len(self.live) >= LIVE_CONNS:
				self.live.pop(0).close()	# a full cap never
							# starves the probe
			conn = Conn(self, live)
			if live:
				self.live.append(conn)
			else:
				self.nconn += 1
			# counted from here: the transport is made by a task
			# that runs later, and a drain must wait for it
			self.conns.add(conn)
			c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
			task = self.loop.create_task(
				self.loop.connect_accepted_socket(
					lambda conn=conn: conn, c))
			task.add_done_callback(
				lambda tk, conn=conn, c=c: self.made(tk, conn, c))

	def made(self, task, conn, c):
		"""The transport of an accepted connection could not be made:
		it is forgotten as connection_lost would."""
		if task.cancelled() or task.exception() is not None:
			c.close()
			conn.connection_lost(None)

	def refuse(self, c):
		"""Over the connection cap: a 503 if it fits, then close."""
		try:
			c.setblocking(False)
			c.send(response(503, error_body("too many connections"),
					close=True))
		except OSError:
			pass
		c.close()

	def drain(self):
		"""SIGTERM: stop listening without dropping queued connections."""
		if self.draining:
			return
		self.draining = True
		log("draining (SIGTERM)")
		for s in self.socks:
			self.loop.remove_reader(s.fileno())
			self.on_accept(s)	# take what waits in the queue
			s.close()
		for c in list(self.conns):
			c.drain()
		self.loop.call_later(DRAIN_MAX, self.loop.stop)
		self.maybe_exit()

	def maybe_exit(self):
		if self.draining and not self.conns:
			self.loop.call_soon(self.loop.stop)

	def serve(self):
		self.loop = asyncio.new_event_loop()
		self.write_stats()	# 0: the daemon knows the file from now
		for s in self.socks:
			self.loop.add_reader(s.fileno(), self.on_accept, s)
		for sig in (signal.SIGTERM, signal.SIGINT):
			self.loop.add_signal_handler(sig, self.drain)
		try:
			self.loop.run_forever()
		finally:
			self.pool.shutdown(wait=False)
		log("stopped")

	# ---- load ------------------------------------------------------------

	def flight(self, n):
		"""One more (n 1) or one less (n -1) request in flight; the
		file follows within STATS_EVERY, one write for a burst."""
		self.in_flight += n
		if self.stats_path and not self.stats_due:
			self.stats_due = True
			self.loop.call_later(STATS_EVERY, self.write_stats)

	def write_stats(self):
		self.stats_due = False
		if not self.stats_path:
			return
		tmp = self.stats_path + ".tmp"
		try:
			fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC |
				     os.O_NOFOLLOW, 0o644)
			with os.fdopen(fd, "w") as f:
				f.write("in_flight %d\ndirect_port %d\n" % (
					self.in_flight, self.direct_port))
			os.replace(tmp, self.stats_path)
		except OSError as e:
			log("cannot write %s: %s" % (self.stats_path, e))
			self.stats_path = ""	# once: the log is not flooded

	# ---- answering ---------------------------------------------------

	def authorized(self, headers):
		auth = headers.get("authorization", "")
		if not auth.lower().startswith("bearer "):
			return False
		return hmac.compare_digest(auth[7:].strip().encode(), self.key)

	def call_run(self, req):
		"""run() with what the mode gives it (see the top)."""
		if self.raw == "request":
			return self.run(ScoreRequest(req.method, req.path,
						     req.headers, req.body))
		if self.raw == "yes":
			return self.run(req.body)
		try:
			data = req.body.decode("utf-8")
		except UnicodeDecodeError:
			data = req.body		# not text: as it came
		return self.run(data)

	def score(self, req):
		"""Worker thread: run() and its answer (status, body,
		Content-Type, extra head), or a 500."""
		try:
			result = self.call_run(req)
		except BaseException as e:
			msg = "%s: %s" % (type(e).__name__, e)
			log("run() raised %s" % msg)
			traceback.print_exc()
			sys.stderr.flush()
			return 500, error_body(msg), "application/json", ""
		try:
			if self.raw == "request" or (
			   hasattr(result, "status_code") and
			   hasattr(result, "get_data")):	# an AMLResponse
				return raw_result(result)
			return 200, (json.dumps(result) + "\n").encode(), \
			       "application/json", ""
		except (TypeError, ValueError) as e:
			msg = "run() returned a value that cannot be sent: %s" \
			      % e
			log(msg)
			return 500, error_body(msg), "application/json", ""


class Conn(asyncio.Protocol):
	"""One client connection: requests answered in order.

	A request is read in steps: the head (bounded, within read_timeout of
	its first byte), then the key is checked and the body announced is
	judged (max_body) before a byte of it is kept, then the body, each
	chunk size parsed strictly.  Anything malformed is answered 4xx with
	"Connection: close": what follows on the stream cannot be trusted.
	"""

	def __init__(self, srv, live=False):
		self.srv = srv
		self.live = live	# on the liveness port: GET / only
		self.timeout = LIVE_TIMEOUT if live else srv.read_timeout
		self.buf = bytearray()
		self.busy = False
		self.closing = False
		self.idle_timer = None
		self.t = None
		self.req = None		# the request whose body is being read
		self.body = None
		self.need = 0		# body bytes still to come (Content-Length)
		self.chunk = None	# chunked: "size", "data", "crlf", "trailer"
		self.timer = None	# read timeout of the request at hand
		self.paused = False
		self.lingering = False

	def connection_made(self, transport):
		self.t = transport
		if self.closing:	# pushed out before it was made
			transport.close()
			return
		self.srv.conns.add(self)
		self.arm(self.timeout, "idle")
		if self.srv.draining:
			self.drain()

	def connection_lost(self, exc):
		if self not in self.srv.conns:
			return		# forgotten already
		self.closing = True
		self.srv.conns.discard(self)
		if not self.live:
			self.srv.nconn -= 1
		elif self in self.srv.live:
			self.srv.live.remove(self)
		for tm in (self.idle_timer, self.timer):
			if tm:
				tm.cancel()
		self.srv.maybe_exit()

	# ---- timeouts ------------------------------------------------------

	def arm(self, secs, what):
		"""(Re)start the read timeout: @what says which phase."""
		if self.timer:
			self.timer.cancel()
		self.timer = self.srv.loop.call_later(secs, self.timed_out, what)

	def timed_out(self, what):
		self.timer = None
		if self.closing or self.busy:
			return
		if what == "idle" and not self.buf:
			self.close()
			return
		log("closing a connection: its request took longer than %g s"
		    " (%s)" % (self.timeout, what))
		self.send(408, error_body("request not received within %g s" %
					  self.timeout), False)

	def drain(self):
		if self.idle_timer:
			self.idle_timer.cancel()
			self.idle_timer = None
		if not self.busy and not self.buf and self.req is None:
			self.idle_timer = self.srv.loop.call_later(
				DRAIN_IDLE, self.close)

	def close(self):
		if not self.closing:
			self.closing = True
			if self.t:
				self.t.close()

	def linger(self):
		"""Close after an answer sent while a body was still coming: the
		write side first, unread bytes discarded for LINGER seconds, so
		that the client reads the answer rather than a reset."""
		if self.closing:
			return
		self.closing = self.lingering = True
		self.buf = bytearray()
		if self.timer:
			self.timer.cancel()
		if self.t.can_write_eof():
			self.t.write_eof()
		self.srv.loop.call_later(LINGER, self.t.close)

	def eof_received(self):
		if self.lingering:
			self.t.close()
		return None

	def data_received(self, data):
		if self.closing:
			return
		if not self.buf and self.req is None and not self.busy:
			self.arm(self.timeout, "head")
		self.buf += data
		if self.idle_timer:
			self.idle_timer.cancel()
			self.idle_timer = None
		if self.busy and len(self.buf) > MAX_HEAD + 65536 and \
		   not self.paused:
			self.paused = True	# pipelining: wait for the answer
			self.t.pause_reading()
		if not self.busy:
			self.next()

	def send(self, status, body, keep, extra="", ctype="application/json"):
		close = not keep or self.srv.draining
		self.t.write(response(status, body, ctype, close, extra))
		if close:
			self.linger()
		return not close

	def bad(self, status, msg):
		"""A request that cannot be read: answer, then close."""
		self.send(status, error_body(msg), False)
		return None

	def next(self):
		"""Parse and answer the requests waiting in buf, one at a time."""
		while not self.closing and not self.busy:
			req = self.parse()
			if req is None:
				break
			if not self.dispatch(req):
				break
			self.arm(self.timeout, "idle")
		if self.srv.draining and not self.busy and not self.closing:
			self.drain()

	# ---- reading a request ----------------------------------------------

	def parse(self):
		if self.req is None and not self.parse_head():
			return None
		if self.chunk is not None:
			return self.read_chunked()
		return self.read_length()

	def parse_head(self):
		"""The head of the next request: self.req set (True) or not yet."""
		end = self.buf.find(b"\r\n\r\n")
		if end < 0:
			if len(self.buf) > MAX_HEAD:
				self.bad(431, "headers too large")
			return False
		if end > MAX_HEAD:
			return self.bad(431, "headers too large")
		try:
			lines = self.buf[:end].decode("latin-1").split("\r\n")
			method, path, version = lines[0].split(" ", 2)
		except ValueError:
			return self.bad(400, "malformed request line")
		del self.buf[:end + 4]
		h, seen = {}, {}
		for line in lines[1:]:
			k, sep, v = line.partition(":")
			k = k.lower()
			if not sep or not k or k != k.strip():
				return self.bad(400, "malformed header")
			h[k] = v.strip(" \t")
			seen[k] = seen.get(k, 0) + 1
		req = Request()
		req.method, req.path, req.headers = method, path, h
		conn = h.get("connection", "").lower()
		req.keep = conn != "close" if version == "HTTP/1.1" else \
			conn == "keep-alive"
		return self.framing(req, seen)

	def framing(self, req, seen):
		"""How the body is framed (RFC 9112 6.3, strictly), then the key
		and the size are judged before a byte of the body is kept."""
		h = req.headers
		if seen.get("content-length", 0) > 1 or \
		   seen.get("transfer-encoding", 0) > 1:
			return self.bad(400, "duplicate Content-Length or"
					" Transfer-Encoding header")
		te, cl = h.get("transfer-encoding"), h.get("content-length")
		if te is not None and cl is not None:
			return self.bad(400, "both Transfer-Encoding and"
					" Content-Length")
		if te is not None and te.lower() != "chunked":
			return self.bad(501, "Transfer-Encoding must be chunked")
		if cl is not None and (not cl or len(cl) > 19 or
				       not all(c in "0123456789" for c in cl)):
			return self.bad(400, "bad Content-Length")
		n = int(cl) if cl is not None else 0
		announced = te is not None or n > 0
		if not self.admit(req, announced):
			return False
		if n > self.srv.max_body:
			return self.bad(413, "body larger than %d bytes" %
					self.srv.max_body)
		self.req, self.body = req, bytearray()
		self.need, self.chunk = n, "size" if te is not None else None
		self.arm(self.timeout, "body")
		if announced and h.get("expect", "").lower() == "100-continue":
			self.t.write(b"HTTP/1.1 100 Continue\r\n\r\n")
		return True

	def admit(self, req, announced):
		"""Refuse a request for /score without the key, before its body:
		the connection closes when a body was announced (unread)."""
		if req.path.split("?")[0] != "/score" or \
		   (req.method != "POST" and self.srv.raw != "request") or \
		   self.srv.authorized(req.headers):
			return True
		self.unauthorized(req.keep and not announced)
		return False

	def done(self):
		req, self.req = self.req, None
		req.body, self.body = bytes(self.body), None
		return req

	def read_length(self):
		take = min(self.need, len(self.buf))
		if take:
			self.body += self.buf[:take]
			del self.buf[:take]
			self.need -= take
			self.arm(self.timeout, "body")
		return self.done() if self.need == 0 else None

	def read_chunked(self):
		while not self.closing:
			step = getattr(self, "chunk_" + self.chunk)()
			if step is None:
				return None	# more bytes needed, or refused
			if step == "end":
				return self.done()

	def chunk_size(self):
		eol = self.buf.find(b"\r\n", 0, 4096)
		if eol < 0:
			if len(self.buf) >= 4096:
				return self.bad(400, "bad chunk size line")
			return None
		size = bytes(self.buf[:eol]).split(b";")[0].strip(b" \t")
		del self.buf[:eol + 2]
		if not size or len(size) > 16 or \
		   size.strip(b"0123456789abcdefABCDEF"):
			return self.bad(400, "bad chunk size %r" %
					size[:32].decode("latin-1"))
		self.need = int(size, 16)
		if len(self.body) + self.need > self.srv.max_body:
			return self.bad(413, "body larger than %d bytes" %
					self.srv.max_body)
		self.chunk = "data" if self.need else "trailer"
		return "more"

	def chunk_data(self):
		take = min(self.need, len(self.buf))
		if not take:
			return None
		self.body += self.buf[:take]
		del self.buf[:take]
		self.need -= take
		self.arm(self.timeout, "body")
		if not self.need:
			self.chunk = "crlf"
		return "more"

	def chunk_crlf(self):
		if len(self.buf) < 2:
			return None
		if self.buf[:2] != b"\r\n":
			return self.bad(400, "chunk data not followed by CRLF")
		del self.buf[:2]
		self.chunk = "size"
		return "more"

	def chunk_trailer(self):
		"""Trailer lines (ignored) up to an empty line."""
		eol = self.buf.find(b"\r\n", 0, MAX_HEAD)
		if eol < 0:
			if len(self.buf) >= MAX_HEAD:
				return self.bad(431, "trailers too large")
			return None
		del self.buf[:eol + 2]
		if eol:
			return "more"
		self.chunk = None
		return "end"

	def unauthorized(self, keep):
		return self.send(401, error_body("missing or wrong key: send"
						 " Authorization: Bearer KEY"),
				 keep, 'WWW-Authenticate: Bearer realm="mlfs"\r\n')

	def dispatch(self, req):
		"""Answer @req; False when the connection cannot go on now."""
		path = req.path.split("?")[0]
		if path == "/" and req.method in ("GET", "HEAD"):
			return self.send(200, b'{"status": "alive"}\n', req.keep)
		if self.live:
			return self.send(404, error_body("the liveness port answers"
							 " GET / only"), False)
		if path != "/score":
			return self.send(404, error_body("no such path: use POST"
							 " /score"), req.keep)
		if self.srv.raw == "request" and req.method not in RAW_METHODS:
			methods = ", ".join(RAW_METHODS)
			return self.send(405, error_body("/score takes %s" %
							 methods), req.keep,
					 "Allow: %s\r\n" % methods)
		if req.method != "POST" and self.srv.raw != "request":
			return self.send(405, error_body("use POST /score"),
					 req.keep, "Allow: POST\r\n")
		self.busy = True
		self.srv.flight(1)
		fut = self.srv.loop.run_in_executor(self.srv.pool,
						    self.srv.score, req)
		fut.add_done_callback(lambda f: self.scored(f, req.keep))
		return False

	def scored(self, fut, keep):
		self.busy = False
		self.srv.flight(-1)
		if self.paused:
			self.paused = False
			self.t.resume_reading()
		if self.closing:
			return
		status, body, ctype, extra = fut.result()
		if self.send(status, body, keep, extra, ctype):
			self.arm(self.timeout, "idle")
			self.next()


def main():
	if sys.argv[1:3] == ["--exec-env", "--"] and len(sys.argv) > 3:
		exec_env(sys.argv[3:])
	exec_env(None)
	ap = argparse.ArgumentParser(description="mlfs scoring server")
	ap.add_argument("--entry", required=True)
	ap.add_argument("--host", default="127.0.0.1")
	ap.add_argument("--port", type=int, required=True)
	ap.add_argument("--direct-host", default="127.0.0.1")
	ap.add_argument("--threads", type=int, default=1)
	ap.add_argument("--max-body", type=int, default=MAX_BODY)
	ap.add_argument("--read-timeout", type=float, default=READ_TIMEOUT)
	ap.add_argument("--max-conns", type=int, default=MAX_CONNS)
	ap.add_argument("--raw", choices=("no", "yes", "request"),
			default="no")
	a = ap.parse_args()
	key = os.environ.pop("MLFS_KEY", "")
	if not key:
		try:
			raise RuntimeError("MLFS_KEY is not set")
		except RuntimeError:
			fail_start("cannot start", 2)
	sys.path.insert(0, os.getcwd())
	setup_logging()
	sys.meta_path.append(AzuremlShim())
	run = load_entry(a.entry)
	socks = [listen(a.host, a.port, True), listen("127.0.0.1", 0, False),
		 listen(a.direct_host, 0, False)]
	log("serving %s on %s:%d (liveness on 127.0.0.1:%d, direct on"
	    " %s:%d)%s" % (
		a.entry, a.host, a.port, socks[1].getsockname()[1],
		a.direct_host, socks[2].getsockname()[1],
		"" if run_raw(a, run) == "no" else
		", run() gets %s" % ("the request" if run_raw(a, run) ==
				     "request" else "bytes")))
	Server(run, key, socks, a).serve()


if __name__ == "__main__":
	main()
