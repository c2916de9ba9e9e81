#!/usr/bin/env python3
"""Scripted OpenID Connect issuer for tests: device authorization grant
(RFC 8628), refresh-token rotation, revocation (RFC 7009), userinfo and an
RS256-signed ID token.  Loopback only, state in memory.

    .build/test-tools/venv/bin/python testsupport/oidc_issuer.py --port 0 \
        --port-file PORTFILE [--interval 1] [--device-expires 600] \
        [--slow-down-step 5] [--access-lifetime 3600] \
        [--auto-approve SUB [--auto-email EMAIL] [--auto-after 2] | --auto-deny |
         --auto-expire] [--auto-slow-down] [--rfc8414-only] [--no-revocation] \
        [--client-secret-env VAR] [--verification-suffix TEXT] [--max-seconds 300] [--verbose]

Needs `cryptography` (in the test-tools venv, a dependency of
oidc-provider-mock); everything else is the standard library.

Issuer URL: http://127.0.0.1:PORT (no trailing slash), whatever Host header
the client sends.

Discovery: GET /.well-known/openid-configuration and
/.well-known/oauth-authorization-server give the same metadata: issuer,
token_endpoint (/token), device_authorization_endpoint (/device_authorization),
revocation_endpoint (/revoke), jwks_uri (/jwks), userinfo_endpoint
(/userinfo), grant_types_supported, ...  There is no authorization_endpoint
(use oidc-provider-mock for the authorization-code flow).
--advertise-token-endpoint URL: the metadata names URL as token_endpoint
(for clients that must refuse what a discovery document says).
--rfc8414-only: /.well-known/openid-configuration answers 404, only the
RFC 8414 document is served.  --no-revocation: no revocation_endpoint in the
metadata and POST /revoke answers 404.

Client authentication (device_authorization, token, revoke): a public client
sends client_id in the form; a client may instead use HTTP Basic
(client_secret_basic), whose secret is accepted as is unless
--client-secret-env VAR is given: then Basic auth with the secret held in
that environment variable is required (401 invalid_client otherwise).

Device flow: POST /device_authorization (client_id, scope) ->
{device_code, user_code, verification_uri, verification_uri_complete,
expires_in, interval}.  POST /token with
grant_type=urn:ietf:params:oauth:grant-type:device_code, device_code,
client_id answers, until the user acts, 400 authorization_pending; a poll
that comes less than the current interval (minus a 0.1 s allowance) after the
previous poll of that device code gets slow_down and the interval grows by
--slow-down-step seconds for all later polls; after expires_in,
expired_token; after a denial, access_denied; after approval, the tokens
(once: the device code is then spent, and later polls get invalid_grant).
The "user" acts with
    POST /device/approve  user_code=...&sub=...[&email=...]   -> 200
    POST /device/deny     user_code=...                       -> 200
(GET /device shows a tiny page; unknown user_code -> 404).
Scripted outcomes, no second client needed:
    --auto-approve SUB   the Nth poll (--auto-after N, default 2) that is not
                         answered slow_down is approved as SUB and returns
                         the tokens (email --auto-email, default SUB or
                         SUB@example.test);
    --auto-deny          the Nth such poll gets access_denied;
    --auto-expire        every poll gets expired_token;
    --auto-slow-down     the first poll of each device code gets slow_down
                         (combines with the others).

Tokens: access and refresh tokens are opaque random strings (with
--jwt-access-tokens, access tokens are RS256 JWTs signed like the ID token).  Access tokens
live --access-lifetime seconds (the expires_in).  Refresh tokens do not
expire but are rotated: POST /token grant_type=refresh_token returns a new
access token, refresh token and ID token, and the old refresh token is from
then on invalid_grant (as is one of another client_id).  The ID token is an
RS256 JWT with a kid header, claims iss, sub, aud (= client_id), iat, exp
(= iat + access lifetime), email; the key is generated at start, the public
half is at /jwks.  Every token response also has token_type Bearer and scope.

Revocation: POST /revoke token=...[&token_type_hint=...] -> 200 always;
a revoked access token gets 401 from userinfo, a revoked refresh token
invalid_grant.  Revoking a refresh token also revokes the access tokens
issued with it.

GET /userinfo (or POST) with Authorization: Bearer ACCESS -> {sub, email};
missing, unknown, expired or revoked -> 401 with WWW-Authenticate.

For tests:
    GET  /control/state   -> JSON: token requests per grant type and their
         outcomes, device codes with their poll times (time.monotonic()
         seconds, plus "now") and outcomes, revocations (count, by kind and
         by hint), valid refresh / access tokens per sub, discovery requests
         per path, Basic-auth count.  Never any token value.
    POST /control/expire-access  -> every access token issued so far is
         expired from now on (the client must refresh).

Secrets are never printed or written anywhere; --verbose prints one line per
request (method, path, status) on stderr.  The server exits by itself after
--max-seconds (default 300) without a request.
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import respond, serve_until_idle, write_port_file  # noqa: E402

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_ALLOWANCE = 0.1


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """RS256 signing key with its JWK (kid = RFC 7638 thumbprint)."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = self.key.public_key().public_numbers()
        n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
        e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
        self.jwk = {"kty": "RSA", "n": b64url(n), "e": b64url(e)}
        canonical = json.dumps({"e": self.jwk["e"], "kty": "RSA", "n": self.jwk["n"]},
                               separators=(",", ":"), sort_keys=True)
        self.kid = b64url(hashlib.sha256(canonical.encode()).digest())
        self.jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})

    def sign(self, claims):
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.last_activity = time.monotonic()
        self.signer = Signer()
        self.issuer = None  # set once the port is known
        self.required_secret = None
        if args.client_secret_env:
            self.required_secret = os.environ.get(args.client_secret_env)
            if not self.required_secret:
                sys.exit("oidc_issuer: environment variable %s is empty" % args.client_secret_env)
        self.devices = {}       # device_code -> dict
        self.device_order = []  # dicts, in creation order (for /control/state)
        self.access = {}        # token -> {sub, email, client_id, exp, revoked, refresh}
        self.refresh = {}       # token -> {sub, email, client_id, scope, valid}
        self.token_requests = {}
        self.token_outcomes = {}
        self.revocations = {"count": 0, "by_kind": {"access": 0, "refresh": 0, "unknown": 0},
                            "by_hint": {}}
        self.discovery = {}
        self.basic_auth = 0

    # -- token issuing -------------------------------------------------
    def issue(self, sub, email, client_id, scope):
        now = int(time.time())
        lifetime = int(self.args.access_lifetime)
        refresh = secrets.token_urlsafe(32)
        access = secrets.token_urlsafe(32)
        if self.args.jwt_access_tokens:
            # A JWT access token (RS256, aud = client_id, a unique jti), as many issuers give:
            # a broker trusting this issuer verifies it against /jwks.
            access = self.signer.sign({"iss": self.issuer, "sub": sub, "aud": client_id, "iat": now,
                                       "exp": now + lifetime, "jti": secrets.token_hex(8),
                                       **({"email": email} if email else {})})
        self.refresh[refresh] = {"sub": sub, "email": email, "client_id": client_id,
                                 "scope": scope, "valid": True}
        self.access[access] = {"sub": sub, "email": email, "client_id": client_id,
                               "exp": time.monotonic() + lifetime, "revoked": False,
                               "refresh": refresh}
        claims = {"iss": self.issuer, "sub": sub, "aud": client_id, "iat": now,
                  "exp": now + lifetime}
        if email:
            claims["email"] = email
        return {"access_token": access, "token_type": "Bearer", "expires_in": lifetime,
                "refresh_token": refresh, "id_token": self.signer.sign(claims),
                "scope": scope}

    def count(self, grant, outcome):
        self.token_requests[grant] = self.token_requests.get(grant, 0) + 1
        per = self.token_outcomes.setdefault(grant, {})
        per[outcome] = per.get(outcome, 0) + 1

    def snapshot(self):
        now = time.monotonic()
        refresh_per_sub, access_per_sub = {}, {}
        for r in self.refresh.values():
            if r["valid"]:
                refresh_per_sub[r["sub"]] = refresh_per_sub.get(r["sub"], 0) + 1
        for a in self.access.values():
            if not a["revoked"] and a["exp"] > now:
                access_per_sub[a["sub"]] = access_per_sub.get(a["sub"], 0) + 1
        devices = [{"label": d["label"], "user_code": d["user_code"], "client_id": d["client_id"],
                    "scope": d["scope"], "status": d["status"], "interval": d["interval"],
                    "created": d["created"], "expires_at": d["expires_at"],
                    "polls": list(d["polls"]), "outcomes": list(d["outcomes"]),
                    "sub": d.get("sub")}
                   for d in self.device_order]
        return {"now": now, "issuer": self.issuer,
                "token_requests": dict(self.token_requests),
                "token_outcomes": {k: dict(v) for k, v in self.token_outcomes.items()},
                "devices": devices,
                "revocations": json.loads(json.dumps(self.revocations)),
                "valid_refresh_tokens": refresh_per_sub,
                "valid_access_tokens": access_per_sub,
                "discovery_requests": dict(self.discovery),
                "basic_auth_requests": self.basic_auth}


class OAuthError(Exception):
    def __init__(self, status, error, description=None, headers=None):
        super().__init__(error)
        self.status, self.error, self.description = status, error, description
        self.headers = headers or {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-oidc-issuer/1"

    def log_message(self, fmt, *args):
        pass  # replaced by _trace (no query strings, no bodies)

    @property
    def st(self):
        return self.server.state

    def _trace(self, status):
        if self.st.args.verbose:
            sys.stderr.write("oidc_issuer: %s %s %d\n" % (self.command, urlsplit(self.path).path, status))

    def _send(self, status, body=b"", ctype="application/json", headers=None):
        respond(self, status, body, ctype, headers)
        self._trace(status)

    def _json(self, status, obj, headers=None):
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _error(self, e):
        body = {"error": e.error}
        if e.description:
            body["error_description"] = e.description
        self._json(e.status, body, e.headers)

    def _form(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        try:
            parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise OAuthError(400, "invalid_request", "body is not UTF-8")
        return {k: v[0] for k, v in parsed.items()}

    def _client(self, form):
        """Return the client_id (public client or client_secret_basic)."""
        st = self.st
        auth = self.headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
                cid, _, secret = decoded.partition(":")
            except Exception:
                raise OAuthError(401, "invalid_client", "malformed Basic credentials",
                                 {"WWW-Authenticate": 'Basic realm="oidc_issuer"'})
            cid, secret = unquote_plus(cid), unquote_plus(secret)
            with st.lock:
                st.basic_auth += 1
            if st.required_secret is not None and not secrets.compare_digest(secret, st.required_secret):
                raise OAuthError(401, "invalid_client", "client authentication failed",
                                 {"WWW-Authenticate": 'Basic realm="oidc_issuer"'})
            if form.get("client_id") and form["client_id"] != cid:
                raise OAuthError(400, "invalid_request", "client_id does not match Basic auth")
            return cid
        if st.required_secret is not None:
            raise OAuthError(401, "invalid_client", "client authentication required",
                             {"WWW-Authenticate": 'Basic realm="oidc_issuer"'})
        cid = form.get("client_id")
        if not cid:
            raise OAuthError(401, "invalid_client", "missing client_id")
        return cid

    def _metadata(self):
        st = self.st
        iss = st.issuer
        md = {
            "issuer": iss,
            "token_endpoint": st.args.advertise_token_endpoint or iss + "/token",
            "device_authorization_endpoint": iss + "/device_authorization",
            "revocation_endpoint": iss + "/revoke",
            "jwks_uri": iss + "/jwks",
            "userinfo_endpoint": iss + "/userinfo",
            "grant_types_supported": [DEVICE_GRANT, "refresh_token"],
            "response_types_supported": [],
            "scopes_supported": ["openid", "email", "profile", "offline_access"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "sub", "aud", "iat", "exp", "email"],
        }
        if st.args.no_revocation:
            del md["revocation_endpoint"]
            del md["revocation_endpoint_auth_methods_supported"]
        return md

    # -- verbs ---------------------------------------------------------
    def do_GET(self):
        st = self.st
        st.last_activity = time.monotonic()
        path = urlsplit(self.path).path
        if path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
            with st.lock:
                st.discovery[path] = st.discovery.get(path, 0) + 1
            if path == "/.well-known/openid-configuration" and st.args.rfc8414_only:
                return self._json(404, {"error": "not_found"})
            return self._json(200, self._metadata())
        if path == "/jwks":
            return self._json(200, {"keys": [st.signer.jwk]})
        if path == "/userinfo":
            return self._userinfo()
        if path == "/device":
            page = (b"<!doctype html><title>Device login</title><p>Enter the code shown by "
                    b"your device: POST /device/approve user_code=...&amp;sub=...</p>")
            return self._send(200, page, "text/html; charset=utf-8")
        if path == "/control/state":
            with st.lock:
                snap = st.snapshot()
            return self._json(200, snap)
        self._json(404, {"error": "not_found"})

    def do_POST(self):
        st = self.st
        st.last_activity = time.monotonic()
        path = urlsplit(self.path).path
        try:
            if path == "/token":
                return self._token()
            if path == "/device_authorization":
                return self._device_authorization()
            if path == "/revoke" and not st.args.no_revocation:
                return self._revoke()
            if path == "/userinfo":
                self._form()
                return self._userinfo()
            if path in ("/device/approve", "/device/deny"):
                return self._user_action(path.rsplit("/", 1)[1])
            if path == "/control/expire-access":
                self._form()
                with st.lock:
                    now = time.monotonic()
                    for a in st.access.values():
                        a["exp"] = min(a["exp"], now)
                return self._json(200, {"expired": len(st.access)})
            self._form()
            self._json(404, {"error": "not_found"})
        except OAuthError as e:
            self._error(e)

    # -- endpoints -----------------------------------------------------
    def _device_authorization(self):
        st = self.st
        form = self._form()
        cid = self._client(form)
        scope = form.get("scope", "")
        device_code = secrets.token_urlsafe(32)
        alphabet = "BCDFGHJKLMNPQRSTVWXZ"
        with st.lock:
            while True:
                raw = "".join(secrets.choice(alphabet) for _ in range(8))
                user_code = raw[:4] + "-" + raw[4:]
                if all(d["user_code"] != user_code for d in st.device_order):
                    break
            now = time.monotonic()
            d = {"label": "device-%d" % (len(st.device_order) + 1), "user_code": user_code,
                 "client_id": cid, "scope": scope, "status": "pending",
                 "interval": int(st.args.interval), "created": now,
                 "expires_at": now + st.args.device_expires, "polls": [], "outcomes": [],
                 "last_poll": None, "counted_polls": 0}
            st.devices[device_code] = d
            st.device_order.append(d)
        verification_uri = st.issuer + "/device" + st.args.verification_suffix
        self._json(200, {"device_code": device_code, "user_code": user_code + st.args.verification_suffix,
                         "verification_uri": verification_uri,
                         "verification_uri_complete": verification_uri + "?user_code=" + user_code,
                         "expires_in": int(st.args.device_expires),
                         "interval": int(st.args.interval)})

    def _user_action(self, action):
        st = self.st
        form = self._form()
        code = (form.get("user_code") or "").strip().upper()
        with st.lock:
            d = next((d for d in st.device_order if d["user_code"] == code), None)
            if d is None:
                raise OAuthError(404, "invalid_request", "unknown user_code")
            if d["status"] != "pending":
                raise OAuthError(409, "invalid_request", "device code already " + d["status"])
            if action == "approve":
                sub = form.get("sub")
                if not sub:
                    raise OAuthError(400, "invalid_request", "sub is required")
                d.update(status="approved", sub=sub, email=form.get("email") or default_email(sub))
            else:
                d["status"] = "denied"
        self._json(200, {"user_code": code, "status": d["status"]})

    def _poll(self, form, cid):
        """Device-code grant; returns the token response or raises OAuthError."""
        st = self.st
        args = st.args
        device_code = form.get("device_code")
        if not device_code:
            raise OAuthError(400, "invalid_request", "missing device_code")
        d = st.devices.get(device_code)
        if d is None or d["client_id"] != cid:
            raise OAuthError(400, "invalid_grant", "unknown device_code")
        now = time.monotonic()
        d["polls"].append(now)
        last, d["last_poll"] = d["last_poll"], now

        def answer(outcome):
            d["outcomes"].append(outcome)
            raise OAuthError(400, outcome)

        if d["status"] == "spent":
            answer("invalid_grant")
        if args.auto_expire or now >= d["expires_at"]:
            d["status"] = "expired"
            answer("expired_token")
        if args.auto_slow_down and len(d["polls"]) == 1:
            d["interval"] += args.slow_down_step
            answer("slow_down")
        if last is not None and now - last < d["interval"] - SLOW_DOWN_ALLOWANCE:
            d["interval"] += args.slow_down_step
            answer("slow_down")
        d["counted_polls"] += 1
        if d["status"] == "pending" and d["counted_polls"] >= args.auto_after:
            if args.auto_approve:
                d.update(status="approved", sub=args.auto_approve,
                         email=args.auto_email or default_email(args.auto_approve))
            elif args.auto_deny:
                d["status"] = "denied"
        if d["status"] == "denied":
            answer("access_denied")
        if d["status"] == "expired":
            answer("expired_token")
        if d["status"] == "pending":
            answer("authorization_pending")
        # approved
        d["status"] = "spent"
        d["outcomes"].append("tokens")
        return st.issue(d["sub"], d["email"], cid, d["scope"])

    def _token(self):
        st = self.st
        form = self._form()
        grant = form.get("grant_type") or "(none)"
        try:
            cid = self._client(form)
            with st.lock:
                if grant == DEVICE_GRANT:
                    result = self._poll(form, cid)
                elif grant == "refresh_token":
                    rt = form.get("refresh_token")
                    if not rt:
                        raise OAuthError(400, "invalid_request", "missing refresh_token")
                    r = st.refresh.get(rt)
                    if r is None or not r["valid"] or r["client_id"] != cid:
                        raise OAuthError(400, "invalid_grant", "refresh token is invalid, revoked or already used")
                    r["valid"] = False  # rotation
                    result = st.issue(r["sub"], r["email"], cid, form.get("scope") or r["scope"])
                else:
                    raise OAuthError(400, "unsupported_grant_type")
                st.count(grant, "ok")
        except OAuthError as e:
            with st.lock:
                st.count(grant, e.error)
            raise
        self._json(200, result)

    def _revoke(self):
        st = self.st
        form = self._form()
        self._client(form)
        token = form.get("token")
        if not token:
            raise OAuthError(400, "invalid_request", "missing token")
        hint = form.get("token_type_hint") or "(none)"
        with st.lock:
            rv = st.revocations
            rv["count"] += 1
            rv["by_hint"][hint] = rv["by_hint"].get(hint, 0) + 1
            if token in st.access:
                st.access[token]["revoked"] = True
                rv["by_kind"]["access"] += 1
            elif token in st.refresh:
                st.refresh[token]["valid"] = False
                for a in st.access.values():
                    if a["refresh"] == token:
                        a["revoked"] = True
                rv["by_kind"]["refresh"] += 1
            else:
                rv["by_kind"]["unknown"] += 1
        self._send(200, b"")

    def _userinfo(self):
        st = self.st
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        with st.lock:
            a = st.access.get(token) if token else None
            ok = a is not None and not a["revoked"] and a["exp"] > time.monotonic()
            info = {"sub": a["sub"], "email": a["email"]} if ok else None
        if not ok:
            err = 'Bearer error="invalid_token"' if token else 'Bearer realm="oidc_issuer"'
            return self._json(401, {"error": "invalid_token",
                                    "error_description": "access token missing, unknown, expired or revoked"},
                              {"WWW-Authenticate": err})
        self._json(200, info)


def default_email(sub):
    return sub if "@" in sub else sub + "@example.test"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--max-seconds", type=float, default=300.0,
                    help="exit after this many seconds without a request (default 300)")
    ap.add_argument("--interval", type=int, default=1, help="device polling interval (default 1)")
    ap.add_argument("--device-expires", type=int, default=600, help="device code lifetime (default 600)")
    ap.add_argument("--slow-down-step", type=int, default=5,
                    help="seconds added to the interval on slow_down (default 5)")
    ap.add_argument("--access-lifetime", type=int, default=3600,
                    help="access/ID token lifetime in seconds (default 3600)")
    auto = ap.add_mutually_exclusive_group()
    auto.add_argument("--auto-approve", metavar="SUB", help="approve as SUB on the Nth poll")
    auto.add_argument("--auto-deny", action="store_true", help="deny on the Nth poll")
    auto.add_argument("--auto-expire", action="store_true", help="every poll gets expired_token")
    ap.add_argument("--auto-email", help="email for --auto-approve")
    ap.add_argument("--auto-after", type=int, default=2, help="N for --auto-approve/--auto-deny (default 2)")
    ap.add_argument("--auto-slow-down", action="store_true",
                    help="answer slow_down to the first poll of each device code")
    ap.add_argument("--rfc8414-only", action="store_true",
                    help="serve only /.well-known/oauth-authorization-server")
    ap.add_argument("--no-revocation", action="store_true", help="no revocation endpoint")
    ap.add_argument("--advertise-token-endpoint", metavar="URL", help="token_endpoint named in the metadata")
    ap.add_argument("--client-secret-env", metavar="VAR",
                    help="require client_secret_basic with the secret in this environment variable")
    ap.add_argument("--verification-suffix", default="",
                    help="text appended to verification_uri and user_code (a hostile issuer's terminal escapes)")
    ap.add_argument("--jwt-access-tokens", action="store_true",
                    help="access tokens are RS256 JWTs (verifiable with /jwks), not opaque")
    ap.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    args = ap.parse_args()

    state = State(args)
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    httpd.state = state
    port = httpd.server_address[1]
    state.issuer = "http://127.0.0.1:%d" % port
    if args.port_file:
        write_port_file(args.port_file, port)
    if args.verbose:
        print("oidc_issuer: listening on %s" % state.issuer, file=sys.stderr, flush=True)

    serve_until_idle(httpd, args.max_seconds, lambda: state.last_activity)


if __name__ == "__main__":
    main()
