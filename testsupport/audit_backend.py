#!/usr/bin/env python3
"""Audit backend for tests, speaking the same wire as kontext's broker
(SPEC section 7): batches of audit events, de-duplicated by event id, plus
session records.  Loopback only; can persist across restarts.

    .build/test-tools/venv/bin/python testsupport/audit_backend.py --port 0 \
        --port-file PORTFILE [--store STORE.jsonl] [--fail-first N] \
        [--userinfo-url http://127.0.0.1:PORT/userinfo | --token-env VAR] \
        [--max-seconds 300] [--verbose]

Standard library only.

Every /v1/ request needs `Authorization: Bearer TOKEN`: missing -> 401
{"error":"unauthorized",...}.  With --userinfo-url the token must be accepted
by that userinfo endpoint (results cached 2 s); with --token-env VAR it must
equal the value of that environment variable; otherwise any non-empty
token is accepted.

POST /v1/audit/events   body {"events":[{...,"id":...,"session_id":...},...]}
    -> 200 {"accepted": N, "duplicates": M}; events whose id was already
    received are counted as duplicates and not stored again.  Malformed JSON,
    no "events" list, or an event without a string id and session_id -> 400
    and nothing of that batch is stored.  --fail-first N: the first N event
    POSTs (counted from this start of the server) get 503 before anything
    else is looked at.
POST /v1/sessions       body {session_id, agent, host, cwd, started_at}
    -> 201 the first time, 200 for a repeat (counted; the first body is kept).
POST /v1/sessions/{id}/heartbeat -> 204 (heartbeats counted).
POST /v1/sessions/{id}/end       body {ended_at, exit_code} -> 204.
    Heartbeat/end of an unknown session still answer 204; the session then
    shows "created": null.

GET /control/events -> {"events": [unique events in arrival order],
    "duplicates": total duplicates, "posts": number of event POSTs (failed
    ones included), "failed_posts": of them answered 503 by --fail-first,
    "batch_sizes": [...], "sessions": {id: {"created": body or null,
    "creates": n, "heartbeats": n, "ended": body or null}}}.
    "duplicates", "posts", "failed_posts" and "batch_sizes" count since this
    start; events and sessions include what the store held.

--store PATH: a JSON-lines file, one line appended (and flushed) per unique
event and per session call, read back at start.  Stop the backend and start
it again with the same --store and --port N (the socket uses SO_REUSEADDR)
to test shipping across backend restarts.

Never prints a token; --verbose prints one line per request (method, path,
status) on stderr.  The server exits by itself after --max-seconds (default
300) without a request.
"""

import argparse
import hashlib
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import respond, serve_until_idle, write_port_file  # noqa: E402

SESSION_PATH = re.compile(r"^/v1/sessions/([^/]+)/(heartbeat|end)$")


class State:
    def __init__(self, args, expected_token):
        self.args = args
        self.expected_token = expected_token
        self.lock = threading.Lock()
        self.last_activity = time.monotonic()
        self.events = []
        self.ids = set()
        self.sessions = {}
        self.duplicates = 0
        self.posts = 0
        self.failed_posts = 0
        self.batch_sizes = []
        self.token_cache = {}
        self.store = None
        if args.store:
            self._load(args.store)
            self.store = open(args.store, "a", encoding="utf-8")

    def session(self, sid):
        return self.sessions.setdefault(sid, {"created": None, "creates": 0, "heartbeats": 0,
                                              "ended": None})

    def apply(self, rec):
        kind = rec.get("kind")
        if kind == "event":
            ev = rec["event"]
            if ev["id"] not in self.ids:
                self.ids.add(ev["id"])
                self.events.append(ev)
        elif kind == "session":
            s = self.session(rec["session_id"])
            op = rec["op"]
            if op == "create":
                s["creates"] += 1
                if s["created"] is None:
                    s["created"] = rec.get("body")
            elif op == "heartbeat":
                s["heartbeats"] += 1
            elif op == "end":
                s["ended"] = rec.get("body")

    def record(self, rec):
        """Apply and persist (caller holds the lock)."""
        self.apply(rec)
        if self.store:
            self.store.write(json.dumps(rec) + "\n")
            self.store.flush()
            os.fsync(self.store.fileno())

    def _load(self, path):
        try:
            f = open(path, encoding="utf-8")
        except FileNotFoundError:
            return
        with f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    self.apply(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    pass  # a torn last line after a crash


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-audit-backend/1"

    def log_message(self, fmt, *args):
        pass

    @property
    def st(self):
        return self.server.state

    def _send(self, status, obj=None):
        body = json.dumps(obj).encode() if obj is not None else b""
        respond(self, status, body, headers={"WWW-Authenticate": 'Bearer realm="audit"'} if status == 401 else None)
        if self.st.args.verbose:
            sys.stderr.write("audit_backend: %s %s %d\n" % (self.command, urlsplit(self.path).path, status))

    def _authorized(self):
        st = self.st
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token:
            return False
        if st.expected_token is not None:
            return secrets.compare_digest(token, st.expected_token)
        if not st.args.userinfo_url:
            return True
        h = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with st.lock:
            cached = st.token_cache.get(h)
        if cached and now - cached[1] < 2.0:
            return cached[0]
        req = urllib.request.Request(st.args.userinfo_url, headers={"Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                ok = resp.status == 200
        except (urllib.error.URLError, OSError):
            ok = False
        with st.lock:
            st.token_cache[h] = (ok, now)
        return ok

    def do_GET(self):
        st = self.st
        st.last_activity = time.monotonic()
        if urlsplit(self.path).path == "/control/events":
            with st.lock:
                snap = {"events": list(st.events), "duplicates": st.duplicates, "posts": st.posts,
                        "failed_posts": st.failed_posts, "batch_sizes": list(st.batch_sizes),
                        "sessions": json.loads(json.dumps(st.sessions))}
            return self._send(200, snap)
        self._send(404, {"error": "not_found"})

    def do_POST(self):
        st = self.st
        st.last_activity = time.monotonic()
        path = urlsplit(self.path).path
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if path == "/v1/audit/events":
            with st.lock:
                st.posts += 1
                fail = st.posts <= st.args.fail_first
                if fail:
                    st.failed_posts += 1
            if fail:
                return self._send(503, {"error": "unavailable", "message": "scripted failure (--fail-first)"})
        if not path.startswith("/v1/"):
            return self._send(404, {"error": "not_found"})
        if not self._authorized():
            return self._send(401, {"error": "unauthorized", "message": "missing or invalid bearer token"})
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._send(400, {"error": "invalid_json", "message": "body is not JSON"})
        if path == "/v1/audit/events":
            return self._events(body)
        if path == "/v1/sessions":
            if not isinstance(body, dict) or not isinstance(body.get("session_id"), str) or not body["session_id"]:
                return self._send(400, {"error": "invalid_session", "message": "session_id is required"})
            with st.lock:
                repeat = body["session_id"] in st.sessions and st.sessions[body["session_id"]]["creates"] > 0
                st.record({"kind": "session", "op": "create", "session_id": body["session_id"], "body": body})
            return self._send(200 if repeat else 201, {"session_id": body["session_id"]})
        m = SESSION_PATH.match(path)
        if m:
            sid, op = m.group(1), m.group(2)
            rec = {"kind": "session", "op": op, "session_id": sid}
            if op == "end":
                rec["body"] = body if isinstance(body, dict) else {}
            with st.lock:
                st.record(rec)
            return self._send(204)
        self._send(404, {"error": "not_found"})

    def _events(self, body):
        st = self.st
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list):
            return self._send(400, {"error": "invalid_batch", "message": 'expected {"events":[...]}'})
        for i, ev in enumerate(events):
            if not (isinstance(ev, dict) and isinstance(ev.get("id"), str) and ev["id"]
                    and isinstance(ev.get("session_id"), str) and ev["session_id"]):
                return self._send(400, {"error": "invalid_event",
                                        "message": "event %d has no string id and session_id" % i})
        accepted = duplicates = 0
        with st.lock:
            st.batch_sizes.append(len(events))
            for ev in events:
                if ev["id"] in st.ids:
                    duplicates += 1
                else:
                    accepted += 1
                    st.record({"kind": "event", "event": ev})
            st.duplicates += duplicates
        self._send(200, {"accepted": accepted, "duplicates": duplicates})


class Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--max-seconds", type=float, default=300.0,
                    help="exit after this many seconds without a request (default 300)")
    ap.add_argument("--store", help="JSON-lines file to persist to and reload from")
    ap.add_argument("--fail-first", type=int, default=0, help="answer the first N event POSTs with 503")
    auth = ap.add_mutually_exclusive_group()
    auth.add_argument("--userinfo-url", help="validate bearer tokens against this userinfo endpoint")
    auth.add_argument("--token-env", metavar="VAR", help="the bearer token must equal this variable's value")
    ap.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    args = ap.parse_args()

    expected = None
    if args.token_env:
        expected = os.environ.get(args.token_env)
        if not expected:
            ap.error("environment variable %s is empty" % args.token_env)

    state = State(args, expected)
    httpd = Server(("127.0.0.1", args.port), Handler)
    httpd.state = state
    port = httpd.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    if args.verbose:
        print("audit_backend: listening on http://127.0.0.1:%d (%d events loaded)" % (port, len(state.events)),
              file=sys.stderr, flush=True)

    cleanup = state.store.close if state.store else None
    serve_until_idle(httpd, args.max_seconds, lambda: state.last_activity, cleanup=cleanup)


if __name__ == "__main__":
    main()
