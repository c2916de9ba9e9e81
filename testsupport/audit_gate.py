#!/usr/bin/env python3
"""A gate in front of an audit backend, for tests: forwards every request to
--upstream unchanged, except that while the file --hold exists, event batches
(POST /v1/audit/events) are answered 503 without reaching the upstream.  So a
test can let a session's chain head reach the broker while its events stay in
the local backlog.  Loopback only; standard library only.

    .build/test-tools/venv/bin/python testsupport/audit_gate.py --port 0 \
        --port-file PORTFILE --upstream http://127.0.0.1:PORT --hold FILE \
        [--max-seconds 300]

GET /control/forwarded -> [{"method", "path", "status", "body"}] of every
request forwarded (bodies of checkpoint posts only, as JSON; null otherwise),
and of the held ones with status 503.
"""

import argparse
import json
import os
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serving import respond, serve_until_idle, write_port_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--hold", required=True)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    args = ap.parse_args()
    lock = threading.Lock()
    forwarded = []
    last = [time.monotonic()]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def relay(self, method):
            last[0] = time.monotonic()
            if self.path == "/control/forwarded":
                with lock:
                    respond(self, 200, json.dumps(forwarded).encode())
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            record = {"method": method, "path": self.path, "status": 0,
                      "body": json.loads(body) if body and "/checkpoints" in self.path else None}
            if method == "POST" and self.path == "/v1/audit/events" and os.path.exists(args.hold):
                record["status"] = 503
                with lock:
                    forwarded.append(record)
                respond(self, 503, b'{"error":"temporarily_unavailable"}')
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
            request = urllib.request.Request(args.upstream + self.path, data=body, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status, payload, ctype = answer.status, answer.read(), answer.headers.get("Content-Type", "application/json")
            except urllib.error.HTTPError as error:
                status, payload, ctype = error.code, error.read(), error.headers.get("Content-Type", "application/json")
            record["status"] = status
            with lock:
                forwarded.append(record)
            respond(self, status, payload, ctype)

        def do_GET(self):
            self.relay("GET")

        def do_POST(self):
            self.relay("POST")

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    if args.port_file:
        write_port_file(args.port_file, httpd.server_address[1])
    serve_until_idle(httpd, args.max_seconds, lambda: last[0])


if __name__ == "__main__":
    main()
