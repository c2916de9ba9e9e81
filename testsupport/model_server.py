#!/usr/bin/env python3
"""Scripted, offline stand-in for the Anthropic Messages API.

Lets tests run the real Claude Code binary (`claude -p ...`) on loopback:

    python3 testsupport/model_server.py --script SCRIPT.json --port 0 \
        --port-file PORTFILE [--log REQUESTS.jsonl] [--max-seconds 300]

then run claude with ANTHROPIC_BASE_URL=http://127.0.0.1:$(cat PORTFILE).

SCRIPT.json is a JSON list of turns, each one of
    {"tool_use": {"name": "Bash", "input": {"command": "...", "description": "..."}}}
    {"text": "..."}
A turn may combine both ({"text": ..., "tool_use": ...}: text block first),
and may say "wait_for": PATH: its reply is sent only once PATH exists (at
most 90 s), so a test can act outside the agent between two turns (the
request is logged before the wait).
and "tool_use" may be a list (parallel tool calls in one reply).  A turn with
a tool_use ends with stop_reason "tool_use", a text-only turn with "end_turn".

Turn selection (main-conversation requests only): the turn index is the
number of assistant messages already in the request's `messages`, i.e. how
many replies the conversation has had.  That equals "each request consumes
the next turn" in a normal run, and is stateless, so a retried request gets
the same answer instead of skipping a turn.  Past the end of the script the
server answers with a final text "(script exhausted)".

A POST /v1/messages is the main conversation when its body has a non-empty
`tools` list, no forced `tool_choice` ({"type": "tool"|"none"}) and a
non-empty `messages`.  Claude Code 2.1.330 sends its tool list with every
agent-loop request (also under --tools/--disallowedTools/--bare), and the
model name follows --model, so the model cannot tell them apart.  Anything
else (title/summary generation, classifiers, requests without tools) is a
side request: answered with --side-text ("OK"), consuming no turn.
POST /v1/messages/count_tokens -> {"input_tokens": 100}; HEAD anything -> 200;
GET /v1/models -> empty list; any other path -> 404 not_found_error (what
the real API says).  Streaming (SSE) and non-streaming requests both work.

The server exits by itself after --max-seconds (default 300) without any
request, and binds 127.0.0.1 only.

Every request (method, path, a few headers, parsed body, classification) is
appended as one JSON line to --log, so tests can inspect e.g. the
tool_result blocks Claude sent back.

Standard library only.
"""

import argparse
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import serve_until_idle, write_port_file  # noqa: E402


def _now():
    return time.time()


class State:
    def __init__(self, script, log_path, verbose, side_text="OK"):
        self.script = script
        self.side_text = side_text
        self.log_path = log_path
        self.verbose = verbose
        self.lock = threading.Lock()
        self.last_activity = _now()
        self.main_requests = 0
        self.seq = 0

    def log(self, record):
        with self.lock:
            self.seq += 1
            record["seq"] = self.seq
            record["time"] = _now()
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
                    f.flush()
            if self.verbose:
                summary = {k: record.get(k) for k in ("seq", "method", "path", "kind", "turn", "model")}
                print("model_server:", json.dumps(summary), file=sys.stderr, flush=True)


def classify(body):
    """Return "main" for the agent's main conversation, else "side".

    Observed with Claude Code 2.1.330 in -p mode: every agent-loop request
    carries the session's tool list (12 tools by default, 2 with
    `--tools Bash`, 3 with `--bare`, Bash absent with `--disallowedTools
    Bash`) and no tool_choice; its model follows --model, so the model name
    cannot tell main from side.  No side request was observed in -p mode;
    the ones Claude Code can make elsewhere (title/summary generation,
    classifiers, quota probes) send no tools or force one tool.
    """
    if not isinstance(body, dict):
        return "side"
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return "side"
    tc = body.get("tool_choice")
    if isinstance(tc, dict) and tc.get("type") in ("tool", "none"):
        return "side"
    if not body.get("messages"):
        return "side"
    return "main"


def turn_index(body):
    msgs = body.get("messages") or []
    return sum(1 for m in msgs if isinstance(m, dict) and m.get("role") == "assistant")


def build_content(turn):
    """Turn -> (list of content blocks, stop_reason).

    `tool_use` may be one object or a list of them (parallel tool calls).
    """
    blocks = []
    stop = "end_turn"
    if turn.get("text") is not None:
        blocks.append({"type": "text", "text": str(turn["text"])})
    uses = turn.get("tool_use")
    if uses is not None:
        for tu in (uses if isinstance(uses, list) else [uses]):
            blocks.append({
                "type": "tool_use",
                "id": tu.get("id") or ("toolu_" + uuid.uuid4().hex[:24]),
                "name": tu.get("name", "Bash"),
                "input": tu.get("input", {}),
            })
            stop = "tool_use"
    if not blocks:
        blocks.append({"type": "text", "text": ""})
    return blocks, stop


def _usage(output_tokens=1):
    return {
        "input_tokens": 10,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def message_json(model, blocks, stop):
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(5),
    }


def sse_events(model, blocks, stop):
    msg = message_json(model, [], None)
    msg["usage"] = _usage(1)
    yield "message_start", {"type": "message_start", "message": msg}
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            yield "content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": {"type": "text", "text": ""}}
            text = b["text"]
            # a couple of chunks, like the real API
            step = max(1, (len(text) + 1) // 2)
            for j in range(0, len(text), step):
                yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "text_delta", "text": text[j:j + step]}}
        else:
            yield "content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": {"type": "tool_use", "id": b["id"],
                                                            "name": b["name"], "input": {}}}
            raw = json.dumps(b["input"])
            step = max(1, (len(raw) + 1) // 2)
            for j in range(0, len(raw), step):
                yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "input_json_delta",
                                                        "partial_json": raw[j:j + step]}}
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": stop, "stop_sequence": None},
                            "usage": {"output_tokens": 5}}
    yield "message_stop", {"type": "message_stop"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scripted-model/1"

    def log_message(self, fmt, *args):  # silence default stderr logging
        if self.server.state.verbose:
            sys.stderr.write("model_server: " + (fmt % args) + "\n")

    # -- helpers -------------------------------------------------------
    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        try:
            return raw, (json.loads(raw) if raw else None)
        except ValueError:
            return raw, None

    def _send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        self.wfile.write(data)

    def _send_sse(self, model, blocks, stop):
        chunks = []
        for name, data in sse_events(model, blocks, stop):
            chunks.append(("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode())
        payload = b"".join(chunks)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _record(self, body, raw, **extra):
        st = self.server.state
        st.last_activity = _now()
        rec = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()
                        if k.lower() in ("user-agent", "anthropic-beta", "anthropic-version",
                                         "x-app", "content-type", "x-claude-code-session-id")},
            "body": body if body is not None else (raw.decode("utf-8", "replace") if raw else None),
        }
        if isinstance(body, dict) and "model" in body:
            rec["model"] = body["model"]
        rec.update(extra)
        st.log(rec)

    def _not_found(self):
        # What the real API says for an unknown path; Claude Code treats
        # failures of its optional endpoints as non-fatal.
        self._send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                         "message": "Not found: " + self.path}})

    # -- verbs ---------------------------------------------------------
    def do_GET(self):
        self.server.state.last_activity = _now()
        self._record(None, b"", kind="other")
        path = self.path.split("?", 1)[0]
        if path.startswith("/v1/models"):
            self._send_json(200, {"data": [], "has_more": False, "first_id": None, "last_id": None})
        else:
            self._not_found()

    def do_HEAD(self):
        self.server.state.last_activity = _now()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        st = self.server.state
        raw, body = self._read_body()
        path = self.path.split("?", 1)[0]

        if path == "/v1/messages/count_tokens":
            self._record(body, raw, kind="count_tokens")
            self._send_json(200, {"input_tokens": 100})
            return

        if path != "/v1/messages":
            self._record(body, raw, kind="other")
            self._not_found()
            return

        if not isinstance(body, dict):
            self._record(body, raw, kind="bad_request")
            self._send_json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                             "message": "body is not JSON"}})
            return

        model = body.get("model") or "claude-sonnet-4-5"
        kind = classify(body)
        if kind == "main":
            idx = turn_index(body)
            with st.lock:
                st.main_requests += 1
            if idx < len(st.script):
                blocks, stop = build_content(st.script[idx])
            else:
                blocks, stop = build_content({"text": "(script exhausted)"})
            self._record(body, raw, kind="main", turn=idx,
                         reply={"content": blocks, "stop_reason": stop})
            wait_for = st.script[idx].get("wait_for") if idx < len(st.script) else None
            if wait_for:
                # The test does something outside the agent (approves a call, say) between
                # two turns: the reply waits until it says so by creating the file.
                deadline = _now() + 90
                while not os.path.exists(wait_for) and _now() < deadline:
                    st.last_activity = _now()
                    time.sleep(0.05)
        else:
            blocks, stop = [{"type": "text", "text": st.side_text}], "end_turn"
            self._record(body, raw, kind="side", reply={"content": blocks, "stop_reason": stop})

        if body.get("stream"):
            self._send_sse(model, blocks, stop)
        else:
            self._send_json(200, message_json(model, blocks, stop))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--script", required=True, help="JSON list of turns")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--log", help="append every request as a JSON line here")
    ap.add_argument("--max-seconds", type=float, default=300.0,
                    help="exit after this many seconds without a request (default 300)")
    ap.add_argument("--side-text", default="OK",
                    help="text answered to side requests (default OK)")
    ap.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    args = ap.parse_args()

    with open(args.script, encoding="utf-8") as f:
        script = json.load(f)
    if not isinstance(script, list) or not all(isinstance(t, dict) for t in script):
        ap.error("script must be a JSON list of objects")

    state = State(script, args.log, args.verbose, args.side_text)
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    httpd.state = state
    port = httpd.server_address[1]

    if args.port_file:
        write_port_file(args.port_file, port)
    if args.verbose:
        print("model_server: listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)

    serve_until_idle(httpd, args.max_seconds, lambda: state.last_activity, clock=_now)


if __name__ == "__main__":
    main()
