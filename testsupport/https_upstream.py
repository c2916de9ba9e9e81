#!/usr/bin/env python3
"""A loopback HTTPS server standing in for a service's API, for the credential proxy tests.

    python3 https_upstream.py --cert CERT.pem --key KEY.pem --port-file PORTFILE --log LOG.jsonl
        [--max-seconds 300]

Every request is appended to LOG as one JSON line: method, path, Host, the SHA-256 of the
Authorization, X-Api-Key and Private-Token headers (never the values: the log is a file the
suite's secret sweep searches), and how many body bytes arrived.

    GET  /bytes/N   answers N bytes, streamed in 1 MiB writes, with Content-Length
    POST|PUT *      reads the body as it comes (Content-Length or chunked), answers {"received": N}
    *    /reset     closes the connection with a TCP reset, answering nothing
    anything else   200 {"ok": true}

Standard library only.
"""

import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import serve_tls  # noqa: E402

CHUNK = 1 << 20
log_lock = threading.Lock()


def digest(value):
    return None if value is None else hashlib.sha256(value.encode("latin-1")).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_path = None

    def log_message(self, *args):
        pass

    def record(self, body_bytes):
        entry = {
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "authorization_sha256": digest(self.headers.get("Authorization")),
            "x_api_key_sha256": digest(self.headers.get("X-Api-Key")),
            "private_token_sha256": digest(self.headers.get("Private-Token")),
            "body_bytes": body_bytes,
        }
        with log_lock, open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def read_body(self):
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                left = size
                while left:
                    got = len(self.rfile.read(min(left, CHUNK)))
                    if not got:
                        return total
                    left -= got
                    total += got
                self.rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        while left:
            got = len(self.rfile.read(min(left, CHUNK)))
            if not got:
                break
            left -= got
            total += got
        return total

    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        if self.path == "/reset":
            self.record(0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        received = self.read_body()
        self.record(received)
        if self.command == "GET" and self.path.startswith("/bytes/"):
            size = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b"k" * CHUNK
            left = size
            while left:
                n = min(left, CHUNK)
                self.wfile.write(block[:n])
                left -= n
            return
        if self.command in ("POST", "PUT"):
            self.answer(200, {"received": received})
            return
        self.answer(200, {"ok": True})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args()
    Handler.log_path = args.log
    open(args.log, "a").close()
    serve_tls(Handler, args.port, args.cert, args.key, args.port_file, args.max_seconds)


if __name__ == "__main__":
    main()
