#!/usr/bin/env python3
"""A stand-in for a CI platform's OIDC token service (GitHub Actions' shape), for tests.

    .build/test-tools/venv/bin/python testsupport/workload_issuer.py --port 0 \
        --port-file PORTFILE --request-token-env VAR [--repository OWNER/REPO] \
        [--ref refs/heads/main] [--max-seconds 300]

Issuer: http://127.0.0.1:PORT.  GET /.well-known/openid-configuration ->
{issuer, jwks_uri}; GET /jwks -> the RS256 public key (kid set).

GET /token?audience=AUD with `Authorization: Bearer <request token>` (the
value of the environment variable --request-token-env names, as GitHub's
ACTIONS_ID_TOKEN_REQUEST_TOKEN) -> {"value": JWT}; wrong or missing request
token -> 401; no audience -> 400.  The JWT has GitHub's claims: iss, aud,
sub ("repo:OWNER/REPO:ref:REF"), repository, repository_owner, ref,
workflow, run_id, iat, nbf, exp (10 minutes).  A `repository=OWNER/REPO`
query parameter overrides --repository (a job of another repository).

GET /mint?audience=AUD[&repository=…][&expired=1] -> the JWT as plain text
(no request token needed): for token-file tests (Kubernetes, --id-token-file);
expired=1 gives one whose exp is an hour ago.

Never prints a token.  Exits by itself after --max-seconds without a request.
"""
import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oidc_issuer import Signer  # noqa: E402
from serving import respond, serve_until_idle, write_port_file  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="application/json"):
        respond(self, status, body if isinstance(body, bytes) else body.encode(), ctype)

    def do_GET(self):
        st = self.server.st
        st["last"] = time.monotonic()
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        issuer = st["issuer"]
        if url.path == "/.well-known/openid-configuration":
            return self._send(200, json.dumps({"issuer": issuer, "jwks_uri": issuer + "/jwks",
                                               "id_token_signing_alg_values_supported": ["RS256"]}))
        if url.path == "/jwks":
            return self._send(200, json.dumps({"keys": [st["signer"].jwk]}))
        if url.path in ("/token", "/mint"):
            if url.path == "/token":
                expected = "Bearer " + os.environ[st["args"].request_token_env]
                if self.headers.get("Authorization") != expected:
                    return self._send(401, json.dumps({"message": "bad request token"}))
            audience = query.get("audience")
            if not audience:
                return self._send(400, json.dumps({"message": "audience is required"}))
            repository = query.get("repository", st["args"].repository)
            ref = st["args"].ref
            now = int(time.time()) - (3600 if query.get("expired") == "1" else 0)
            claims = {"iss": issuer, "aud": audience, "sub": "repo:%s:ref:%s" % (repository, ref),
                      "repository": repository, "repository_owner": repository.split("/")[0],
                      "ref": ref, "workflow": "CI", "run_id": "4242", "iat": now, "nbf": now - 5,
                      "exp": now + 600}
            token = st["signer"].sign(claims)
            if url.path == "/mint":
                return self._send(200, token, "text/plain")
            return self._send(200, json.dumps({"count": 1, "value": token}))
        self._send(404, json.dumps({"message": "not found"}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--request-token-env", required=True)
    ap.add_argument("--repository", default="acme/app")
    ap.add_argument("--ref", default="refs/heads/main")
    ap.add_argument("--max-seconds", type=float, default=300.0)
    args = ap.parse_args()
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    httpd.st = {"args": args, "signer": Signer(), "issuer": "http://127.0.0.1:%d" % port, "last": time.monotonic()}
    if args.port_file:
        write_port_file(args.port_file, port)

    serve_until_idle(httpd, args.max_seconds, lambda: httpd.st["last"])


if __name__ == "__main__":
    main()
