#!/usr/bin/env python3
"""Scripted, offline stand-in for the OpenAI Responses API, for the real Codex CLI.

    python3 testsupport/responses_server.py --script SCRIPT.json --port 0 \
        --port-file PORTFILE [--log REQUESTS.jsonl] [--max-seconds 300]

then run codex with a custom model provider pointing at it:

    codex exec -c model_provider=scripted \
      -c 'model_providers.scripted={name="scripted",base_url="http://127.0.0.1:PORT/v1",wire_api="responses",env_key="SCRIPTED_KEY"}' \
      -m scripted-model --skip-git-repo-check "PROMPT"

SCRIPT.json is a JSON list of turns, each one of
    {"shell": "COMMAND"}                  a call of Codex's shell tool (exec_command)
    {"call": {"name": N, "arguments": {...}}}   any other function call
    {"text": "..."}                       an assistant message ending the turn
A turn may combine "text" with a call (the message comes first), and "shell"
or "call" may be a list (parallel calls in one response).

Turn selection is stateless, like model_server.py's: every output item of
turn N carries an id (message id, function call_id) tagged `kxtN_`, and Codex
sends the conversation so far back with each request, so the turn index is
the number of distinct tags already in the request's `input`.  A retried
request gets the same answer.  Past the end of the script the answer is the
text "(script exhausted)".

Only POST /v1/responses is served (streaming SSE: response.created,
response.output_item.added/done per item, response.completed); GET
/v1/models answers an empty list; anything else is a 404.  Every request
(method, path, a few headers, parsed body, turn) is appended as one JSON line
to --log, so a test can read e.g. the function_call_output items Codex sent
back.  Binds 127.0.0.1 only; exits after --max-seconds without a request.

Standard library only.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import respond, serve_until_idle, write_port_file  # noqa: E402

SHELL_TOOL = "exec_command"
TAG = re.compile(r"kxt(\d+)_")


class State:
    def __init__(self, script, log_path):
        self.script = script
        self.log_path = log_path
        self.lock = threading.Lock()
        self.last_activity = time.monotonic()
        self.seq = 0

    def log(self, record):
        with self.lock:
            self.seq += 1
            record["seq"] = self.seq
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")


def turn_index(body):
    """How many scripted turns the conversation in `input` already holds."""
    tags = set()
    for item in body.get("input") or []:
        if not isinstance(item, dict):
            continue
        for key in ("call_id", "id"):
            match = TAG.match(str(item.get(key) or ""))
            if match and item.get("type") in ("function_call", "message"):
                tags.add(match.group(1))
    return len(tags)


def output_items(turn, index):
    """One scripted turn -> the Responses API output items."""
    tag = "kxt%d_" % index
    items = []
    if turn.get("text") is not None:
        items.append({"type": "message", "id": tag + "msg", "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": str(turn["text"]), "annotations": []}]})
    calls = []
    shells = turn.get("shell")
    if shells is not None:
        for command in (shells if isinstance(shells, list) else [shells]):
            calls.append({"name": SHELL_TOOL, "arguments": {"cmd": command}})
    other = turn.get("call")
    if other is not None:
        calls.extend(other if isinstance(other, list) else [other])
    for number, call in enumerate(calls):
        call_id = "%scall%d" % (tag, number)
        items.append({"type": "function_call", "id": "fc_" + call_id, "call_id": call_id,
                      "name": call["name"], "arguments": json.dumps(call.get("arguments", {})),
                      "status": "completed"})
    if not items:
        items.append({"type": "message", "id": tag + "msg", "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": "", "annotations": []}]})
    return items


def sse(model, items):
    response_id = "resp_" + uuid.uuid4().hex
    base = {"id": response_id, "object": "response", "model": model, "created_at": int(time.time())}
    yield "response.created", {"type": "response.created", "response": dict(base, status="in_progress", output=[])}
    for position, item in enumerate(items):
        yield "response.output_item.added", {"type": "response.output_item.added", "output_index": position, "item": item}
        yield "response.output_item.done", {"type": "response.output_item.done", "output_index": position, "item": item}
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15}
    yield "response.completed", {"type": "response.completed",
                                 "response": dict(base, status="completed", output=items, usage=usage)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scripted-responses/1"

    def log_message(self, fmt, *args):
        pass

    def _record(self, body, **extra):
        record = {"method": self.command, "path": self.path,
                  "headers": {k.lower(): v for k, v in self.headers.items()
                              if k.lower() in ("user-agent", "originator", "content-type")},
                  "body": body}
        record.update(extra)
        self.server.state.log(record)

    def _not_found(self):
        respond(self, 404, json.dumps({"error": {"type": "invalid_request_error",
                                                 "message": "no such path: " + self.path}}).encode())

    def do_GET(self):
        self.server.state.last_activity = time.monotonic()
        self._record(None)
        if self.path.split("?", 1)[0] == "/v1/models":
            respond(self, 200, json.dumps({"object": "list", "data": [], "models": []}).encode())
        else:
            self._not_found()

    def do_POST(self):
        state = self.server.state
        state.last_activity = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if self.path.split("?", 1)[0] != "/v1/responses":
            self._record(body)
            self._not_found()
            return
        if not isinstance(body, dict):
            self._record(raw.decode("utf-8", "replace"))
            respond(self, 400, b'{"error":{"type":"invalid_request_error","message":"body is not JSON"}}')
            return
        index = turn_index(body)
        turn = state.script[index] if index < len(state.script) else {"text": "(script exhausted)"}
        items = output_items(turn, index)
        self._record(body, turn=index, reply=items)
        payload = b"".join(("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode()
                           for name, data in sse(body.get("model") or "scripted-model", items))
        respond(self, 200, payload, ctype="text/event-stream")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--script", required=True, help="JSON list of turns")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--log", help="append every request as a JSON line here")
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="exit after this many seconds without a request (default 300)")
    args = parser.parse_args()
    with open(args.script, encoding="utf-8") as f:
        script = json.load(f)
    if not isinstance(script, list) or not all(isinstance(t, dict) for t in script):
        parser.error("script must be a JSON list of objects")
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    httpd.state = State(script, args.log)
    if args.port_file:
        write_port_file(args.port_file, httpd.server_address[1])
    serve_until_idle(httpd, args.max_seconds, lambda: httpd.state.last_activity)


if __name__ == "__main__":
    main()
