#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A client loop for the deployment tests: POST /score over keep-alive
connections until STOPFILE exists, then print "REQUESTS FAILED VERSIONS"
(VERSIONS: the "version" fields seen, in order, each change once).
Tells its progress in files beside STOPFILE: STOPFILE.ready once a first
answer came, STOPFILE.seen gets a line per new version seen.

    score-client.py HOST PORT KEY STOPFILE [fresh]

fresh: a new connection for each request (the server's listening sockets
are met as often as can be), closed after its answer.
"""
import http.client
import json
import os
import sys
import time

host, port, key, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
fresh = sys.argv[5:] == ["fresh"]
n = fails = 0
seen = []
conn = None
while not os.path.exists(stop):
    try:
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.request("POST", "/score", body='{"x": 1}',
                     headers={"Authorization": "Bearer " + key})
        r = conn.getresponse()
        body = r.read()
        n += 1
        if r.status != 200:
            fails += 1
            print(time.strftime("%T"), "request", n, "status", r.status,
                  body, file=sys.stderr)
        else:
            v = json.loads(body)["version"]
            if not seen or seen[-1] != v:
                seen.append(v)
                with open(stop + ".seen", "a") as f:
                    f.write("%s\n" % v)
            if n == 1:
                open(stop + ".ready", "w").close()
        if fresh or r.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = None
    except Exception as e:
        fails += 1
        print(time.strftime("%T"), "request", n + 1, "error", repr(e),
              file=sys.stderr)
        conn = None
print(n, fails, ",".join(map(str, seen)))
