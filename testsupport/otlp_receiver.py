#!/usr/bin/env python3
"""An OTLP/HTTP logs receiver for tests: decodes every export request with the
OpenTelemetry project's own generated classes (opentelemetry-proto from PyPI),
so what kontext sends is checked against the real schema, not against
kontext's idea of it.  Loopback only.

    .build/test-tools/venv/bin/python testsupport/otlp_receiver.py --port 0 \
        --port-file PORTFILE [--store RECORDS.jsonl] [--delay SECONDS] [--max-seconds 300]

POST /v1/logs (any query string) with Content-Type application/x-protobuf
(ExportLogsServiceRequest, binary) or application/json (OTLP's JSON form,
parsed with protobuf's json_format): 200 with an ExportLogsServiceResponse in
the request's encoding; a body that does not decode: 400.  With --delay, each
export is answered that many seconds late (a slow collector, so that exporters
working at the same time overlap).

GET /control/records -> [{"encoding", "resource": {key: value},
"scope": name, "time_unix_nano", "observed_time_unix_nano", "severity_number",
"severity_text", "event_name", "body", "attributes": {key: value}}] for every
log record received (with --store, also those received before a restart).
"""

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest, ExportLogsServiceResponse)

from serving import respond, serve_until_idle, write_port_file


def plain(any_value):
    """An AnyValue as a Python value."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind)


def flatten(request, encoding):
    for resource_logs in request.resource_logs:
        resource = {kv.key: plain(kv.value) for kv in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                yield {
                    "encoding": encoding, "resource": resource, "scope": scope_logs.scope.name,
                    "time_unix_nano": record.time_unix_nano,
                    "observed_time_unix_nano": record.observed_time_unix_nano,
                    "severity_number": record.severity_number, "severity_text": record.severity_text,
                    "event_name": record.event_name, "body": plain(record.body),
                    "attributes": {kv.key: plain(kv.value) for kv in record.attributes},
                }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--store")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    args = ap.parse_args()
    lock = threading.Lock()
    records = []
    if args.store and os.path.exists(args.store):
        with open(args.store) as f:
            records = [json.loads(line) for line in f if line.strip()]
    last = [time.monotonic()]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            last[0] = time.monotonic()
            if self.path == "/control/records":
                with lock:
                    respond(self, 200, json.dumps(records).encode())
            else:
                respond(self, 404, b'{"error":"not found"}')

        def do_POST(self):
            last[0] = time.monotonic()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?")[0] != "/v1/logs":
                respond(self, 404, b'{"error":"not found"}')
                return
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            request = ExportLogsServiceRequest()
            try:
                if ctype == "application/x-protobuf":
                    request.ParseFromString(body)
                    encoding = "protobuf"
                elif ctype == "application/json":
                    json_format.Parse(body.decode("utf-8"), request)
                    encoding = "json"
                else:
                    raise ValueError("unsupported content type %r" % ctype)
            except Exception as error:  # noqa: BLE001 - any decoding failure is the client's
                respond(self, 400, json.dumps({"error": str(error)}).encode())
                return
            if args.delay:
                time.sleep(args.delay)
            new = list(flatten(request, encoding))
            with lock:
                records.extend(new)
                if args.store:
                    with open(args.store, "a") as f:
                        for record in new:
                            f.write(json.dumps(record) + "\n")
            if encoding == "protobuf":
                respond(self, 200, ExportLogsServiceResponse().SerializeToString(), "application/x-protobuf")
            else:
                respond(self, 200, b"{}")

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    if args.port_file:
        write_port_file(args.port_file, httpd.server_address[1])
    serve_until_idle(httpd, args.max_seconds, lambda: last[0])


if __name__ == "__main__":
    main()
