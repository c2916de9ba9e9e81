#!/usr/bin/env python3
"""Scripted RFC 8693 token-exchange endpoint (a "third-party STS") for tests.

    KONTEXT_TEST_CREDS='{"github":"...","linear/team-a":"..."}' \
    .build/test-tools/venv/bin/python testsupport/sts_server.py --port 0 \
        --port-file PORTFILE --credentials-env KONTEXT_TEST_CREDS \
        [--userinfo-url http://127.0.0.1:PORT/userinfo] [--cache-seconds 2] \
        [--client-secret-env VAR [--client-id ID]] [--slow-seconds 30] \
        [--max-seconds 300] [--verbose]

Standard library only.

POST /token (application/x-www-form-urlencoded):
  - grant_type must be urn:ietf:params:oauth:grant-type:token-exchange
    (else 400 unsupported_grant_type); subject_token and subject_token_type
    are required (else 400 invalid_request).
  - Client authentication: with --client-secret-env VAR, HTTP Basic
    (client_secret_basic) with the secret from that environment variable is
    required, and with --client-id also that client_id; otherwise
    401 invalid_client.  Without it any client (client_id in the form, or
    Basic with any secret) is accepted.
  - The subject token is checked by calling --userinfo-url with it as a
    Bearer token (200 = valid; results cached --cache-seconds, default 2,
    keyed by its hash).  Rejected, or marked by /control/expire-subjects ->
    400 {"error":"invalid_grant","error_description":"subject token expired or
    invalid"}.  Issuer unreachable -> 503 temporarily_unavailable.  Without
    --userinfo-url every subject token is accepted (unless expired by
    /control/expire-subjects).
  - Target: resource (e.g. "linear/team-a") or else audience; the service is
    the audience, or the part of the target before "/".  The credential is
    looked up as the full target, then the audience, then the service.
  - Credentials: a JSON object {"service" or "service/resource": value} read
    from the environment variable named by --credentials-env (never from a
    file or argv).  Success -> 200 {"access_token": value, "issued_token_type":
    "urn:ietf:params:oauth:token-type:access_token", "token_type": "N_A",
    "expires_in": 900} (--expires-in N; with --serial the value gets "-N", N
    counting issues, so renewals are told apart).
  - Scripted services: "unconnected" -> 400 provider_not_connected with
    connect_url https://example.test/connect/unconnected; "boom" -> 500 with
    an HTML body; "garbage" -> 200 with a non-JSON body; "slow" -> sleeps
    --slow-seconds (default 30) then answers like an unknown service; any
    other service without a credential -> 400 invalid_target.

For tests:
  POST /control/expire-subjects -> every subject token seen so far is from
      now on answered invalid_grant (as if it had expired although the
      issuer still accepts it), so the client must refresh and retry.
  --tls-cert/--tls-key: HTTPS instead of HTTP (for KONTEXT_CA_BUNDLE tests;
      the control endpoints are then HTTPS too).
  GET /control/requests -> JSON list, one object per POST /token:
      target, audience, resource, service, subject_token_type,
      requested_token_type, client_id, basic_auth (bool), outcome (an error
      code or "ok"), status, subject_sha256 (first 12 hex chars), time.

Never prints or stores a token or credential value; --verbose prints one line
per request (method, path, status, outcome) on stderr.  The server exits by
itself after --max-seconds (default 300) without a request.
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import respond, serve_until_idle, write_port_file  # noqa: E402

EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def sha12(value):
    return hashlib.sha256(value.encode()).hexdigest()[:12]


class State:
    def __init__(self, args, credentials, client_secret):
        self.args = args
        self.credentials = credentials
        self.client_secret = client_secret
        self.lock = threading.Lock()
        self.last_activity = time.monotonic()
        self.requests = []
        self.seen = set()      # full sha256 of subject tokens seen
        self.expired = set()   # full sha256 of subject tokens expired by control
        self.cache = {}        # full sha256 -> (valid, checked_at)
        self.issued = 0        # credentials issued, for --serial


class Reply(Exception):
    def __init__(self, status, body, outcome, ctype="application/json", headers=None):
        super().__init__(outcome)
        self.status, self.body, self.outcome = status, body, outcome
        self.ctype, self.headers = ctype, headers or {}


def oauth_error(status, error, description=None, headers=None, **extra):
    body = {"error": error}
    if description:
        body["error_description"] = description
    body.update(extra)
    return Reply(status, json.dumps(body).encode(), error, headers=headers)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-sts/1"

    def log_message(self, fmt, *args):
        pass

    @property
    def st(self):
        return self.server.state

    def _send(self, status, body, ctype="application/json", headers=None, outcome=""):
        respond(self, status, body, ctype, headers)
        if self.st.args.verbose:
            sys.stderr.write("sts_server: %s %s %d %s\n" % (self.command, urlsplit(self.path).path,
                                                           status, outcome))

    def _read(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        st = self.st
        st.last_activity = time.monotonic()
        path = urlsplit(self.path).path
        if path == "/control/requests":
            with st.lock:
                data = json.dumps(st.requests).encode()
            return self._send(200, data)
        self._send(404, b'{"error":"not_found"}')

    def do_POST(self):
        st = self.st
        st.last_activity = time.monotonic()
        path = urlsplit(self.path).path
        raw = self._read()
        if path == "/token":
            return self._token(raw)
        if path == "/control/expire-subjects":
            with st.lock:
                st.expired |= st.seen
                n = len(st.expired)
            return self._send(200, json.dumps({"expired": n}).encode())
        self._send(404, b'{"error":"not_found"}')

    # -- token exchange --------------------------------------------------
    def _token(self, raw):
        st = self.st
        rec = {"time": time.time(), "target": None, "audience": None, "resource": None,
               "service": None, "subject_token_type": None, "requested_token_type": None,
               "client_id": None, "basic_auth": False, "subject_sha256": None}
        try:
            self._exchange(raw, rec)
        except Reply as r:
            rec["outcome"], rec["status"] = r.outcome, r.status
            with st.lock:
                st.requests.append(rec)
            self._send(r.status, r.body, r.ctype, r.headers, r.outcome)

    def _exchange(self, raw, rec):
        st = self.st
        try:
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            raise oauth_error(400, "invalid_request", "body is not UTF-8")

        # client authentication
        client_id = form.get("client_id")
        auth = self.headers.get("Authorization") or ""
        secret = None
        if auth[:6].lower() == "basic ":
            rec["basic_auth"] = True
            try:
                cid, _, secret = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
                client_id, secret = unquote_plus(cid), unquote_plus(secret)
            except Exception:
                client_id, secret = None, None
        rec["client_id"] = client_id
        if st.client_secret is not None:
            ok = (secret is not None and secrets.compare_digest(secret, st.client_secret)
                  and (st.args.client_id is None or client_id == st.args.client_id))
            if not ok:
                raise oauth_error(401, "invalid_client", "client authentication failed",
                                  {"WWW-Authenticate": 'Basic realm="sts_server"'})

        grant = form.get("grant_type")
        audience, resource = form.get("audience"), form.get("resource")
        target = resource or audience
        service = audience or (target.split("/", 1)[0] if target else None)
        rec.update(audience=audience, resource=resource, target=target, service=service,
                   subject_token_type=form.get("subject_token_type"),
                   requested_token_type=form.get("requested_token_type"))
        if grant != EXCHANGE_GRANT:
            raise oauth_error(400, "unsupported_grant_type")
        subject = form.get("subject_token")
        if subject:
            rec["subject_sha256"] = sha12(subject)
        if not subject or not form.get("subject_token_type"):
            raise oauth_error(400, "invalid_request", "subject_token and subject_token_type are required")
        if not target:
            raise oauth_error(400, "invalid_request", "audience or resource is required")

        self._validate_subject(subject)

        if service == "unconnected":
            raise oauth_error(400, "provider_not_connected",
                              "the user has not connected the provider 'unconnected'",
                              connect_url="https://example.test/connect/unconnected")
        if service == "boom":
            raise Reply(500, b"<html><body><h1>500 Internal Server Error</h1></body></html>",
                        "boom", "text/html; charset=utf-8")
        if service == "garbage":
            raise Reply(200, b"this is not JSON {", "garbage", "application/json")
        if service == "slow":
            time.sleep(st.args.slow_seconds)
        for key in (target, audience, service):
            if key and key in st.credentials:
                value = st.credentials[key]
                if st.args.serial:
                    with st.lock:
                        st.issued += 1
                        value = "%s-%d" % (value, st.issued)
                body = {"access_token": value, "issued_token_type": ACCESS_TOKEN_TYPE,
                        "token_type": "N_A", "expires_in": st.args.expires_in}
                raise Reply(200, json.dumps(body).encode(), "ok")
        raise oauth_error(400, "invalid_target", "unknown service %r" % target)

    def _validate_subject(self, subject):
        st = self.st
        h = hashlib.sha256(subject.encode()).hexdigest()
        with st.lock:
            st.seen.add(h)
            if h in st.expired:
                raise oauth_error(400, "invalid_grant", "subject token expired or invalid")
            cached = st.cache.get(h)
        url = st.args.userinfo_url
        if not url:
            return
        now = time.monotonic()
        if cached and now - cached[1] < st.args.cache_seconds:
            valid = cached[0]
        else:
            req = urllib.request.Request(url, headers={"Authorization": "Bearer " + subject})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    valid = resp.status == 200
            except urllib.error.HTTPError:
                valid = False
            except (urllib.error.URLError, OSError):
                raise oauth_error(503, "temporarily_unavailable", "cannot reach the issuer")
            with st.lock:
                st.cache[h] = (valid, now)
        if not valid:
            raise oauth_error(400, "invalid_grant", "subject token expired or invalid")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--max-seconds", type=float, default=300.0,
                    help="exit after this many seconds without a request (default 300)")
    ap.add_argument("--credentials-env", metavar="VAR",
                    help="environment variable holding the JSON object of credentials")
    ap.add_argument("--userinfo-url", help="validate subject tokens against this userinfo endpoint")
    ap.add_argument("--cache-seconds", type=float, default=2.0,
                    help="how long a userinfo result is reused (default 2)")
    ap.add_argument("--client-secret-env", metavar="VAR",
                    help="require client_secret_basic with the secret in this environment variable")
    ap.add_argument("--client-id", help="with --client-secret-env: the required client_id")
    ap.add_argument("--slow-seconds", type=float, default=30.0,
                    help="how long the 'slow' service sleeps (default 30)")
    ap.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain (with --tls-key)")
    ap.add_argument("--tls-key", help="the certificate's PEM private key")
    ap.add_argument("--expires-in", type=int, default=900, help="expires_in of issued credentials (default 900)")
    ap.add_argument("--serial", action="store_true",
                    help="issue VALUE-N, N counting issues from 1, so each exchange's credential differs")
    args = ap.parse_args()

    credentials = {}
    if args.credentials_env:
        raw = os.environ.get(args.credentials_env)
        if raw is None:
            ap.error("environment variable %s is not set" % args.credentials_env)
        try:
            credentials = json.loads(raw)
        except ValueError:
            ap.error("environment variable %s is not JSON" % args.credentials_env)
        if not isinstance(credentials, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in credentials.items()):
            ap.error("environment variable %s must hold a JSON object of strings" % args.credentials_env)
    client_secret = None
    if args.client_secret_env:
        client_secret = os.environ.get(args.client_secret_env)
        if not client_secret:
            ap.error("environment variable %s is empty" % args.client_secret_env)

    state = State(args, credentials, client_secret)
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    httpd.state = state
    port = httpd.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    if args.verbose:
        print("sts_server: listening on http://127.0.0.1:%d (%d credentials)" % (port, len(credentials)),
              file=sys.stderr, flush=True)

    serve_until_idle(httpd, args.max_seconds, lambda: state.last_activity)


if __name__ == "__main__":
    main()
