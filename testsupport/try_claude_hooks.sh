#!/usr/bin/env bash
# Demo / smoke test: run the REAL Claude Code binary offline against the
# scripted model server (testsupport/model_server.py) with hooks wired in via
# --settings, and check what the hooks see and decide.
#
#   bash testsupport/try_claude_hooks.sh
#
# Env knobs:
#   CLAUDE_BIN            use this claude binary instead of installing one
#   CLAUDE_SDK_VENV       venv to install claude-agent-sdk into
#                         (default ${XDG_CACHE_HOME:-$HOME/.cache}/kontext-testsupport/claude-venv)
#   CLAUDE_SDK_VERSION    claude-agent-sdk version (default 0.2.187 = Claude Code 2.1.330)
#   CLAUDE_SDK_WHEEL      a local wheel file to install from instead of PyPI
#   KEEP_TMP=1            keep the temp dir for inspection
#
# Exit 0 when every check passes, 1 otherwise.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SERVER="$HERE/model_server.py"

# ---------------------------------------------------------------- claude binary
# Locate the bundled binary without importing the package (its __init__ needs
# the SDK's Python deps, which we do not install).
LOCATE='import importlib.util, os; s = importlib.util.find_spec("claude_agent_sdk"); print(os.path.join(list(s.submodule_search_locations)[0], "_bundled", "claude"))'

find_claude() {
  if [[ -n "${CLAUDE_BIN:-}" ]]; then echo "$CLAUDE_BIN"; return; fi
  local venv="${CLAUDE_SDK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kontext-testsupport/claude-venv}"
  local py="$venv/bin/python3"
  local bin
  if [[ -x "$py" ]]; then
    bin=$("$py" -c "$LOCATE" 2>/dev/null || true)
    if [[ -n "$bin" && -x "$bin" ]]; then echo "$bin"; return; fi
  fi
  echo "installing claude-agent-sdk into $venv ..." >&2
  python3 -m venv "$venv" >&2
  # --no-deps: only the bundled binary is needed, not the Python SDK's deps.
  local src="claude-agent-sdk==${CLAUDE_SDK_VERSION:-0.2.187}"
  [[ -n "${CLAUDE_SDK_WHEEL:-}" ]] && src="$CLAUDE_SDK_WHEEL"
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps "$src" >&2
  bin=$("$py" -c "$LOCATE")
  [[ -x "$bin" ]] || { echo "no claude binary at $bin" >&2; exit 1; }
  echo "$bin"
}

CLAUDE=$(find_claude)
echo "claude binary: $CLAUDE ($("$CLAUDE" --version 2>/dev/null))"

# ---------------------------------------------------------------- temp layout
T=$(mktemp -d "${TMPDIR:-/tmp}/try-claude-hooks.XXXXXX")
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

mkdir -p "$T/home" "$T/config" "$T/proj"
MY_VAR_VALUE="s3cr3t-$RANDOM$RANDOM"
EXPECT_HASH=$(printf %s "$MY_VAR_VALUE" | sha256sum | cut -c1-16)

# The model's script: Bash (allowed by the hook), Bash (denied), final text.
cat >"$T/script.json" <<EOF
[
  {"tool_use": {"name": "Bash", "input": {
     "command": "touch $T/proj/ran-1 && echo hello-\$(printf %s \"\$MY_VAR\" | sha256sum | cut -c1-16)",
     "description": "first call, hook allows"}}},
  {"tool_use": {"name": "Bash", "input": {
     "command": "touch $T/proj/ran-2 && echo DENYME",
     "description": "second call, hook denies"}}},
  {"text": "All done."}
]
EOF

# Stub hook: append {event, stdin, env facts} to a log; for PreToolUse allow,
# or deny when the tool input contains DENYME.
cat >"$T/hook.py" <<'EOF'
import hashlib, json, os, sys
event = sys.argv[1]
raw = sys.stdin.read()
try:
    data = json.loads(raw)
except ValueError:
    data = {"_unparsed": raw}
v = os.environ.get("MY_VAR")
rec = {"event": event, "stdin": data,
       "MY_VAR_sha16": hashlib.sha256(v.encode()).hexdigest()[:16] if v is not None else None}
with open(os.environ["HOOK_LOG"], "a") as f:
    f.write(json.dumps(rec) + "\n")
if event == "PreToolUse":
    deny = "DENYME" in json.dumps(data.get("tool_input", {}))
    print(json.dumps({"hookSpecificOutput": {
        "hookEventName": "PreToolUse",
        "permissionDecision": "deny" if deny else "allow",
        "permissionDecisionReason": "stub: contains DENYME" if deny else "ok"}}))
EOF

python3 - "$T" <<'EOF'
import json, sys
t = sys.argv[1]
events = ["PreToolUse", "PostToolUse", "UserPromptSubmit", "SessionStart", "SessionEnd", "Stop"]
settings = {"hooks": {e: [{"matcher": "*", "hooks": [
    {"type": "command", "command": "python3 %s/hook.py %s" % (t, e), "timeout": 30}]}] for e in events}}
json.dump(settings, open(t + "/settings.json", "w"), indent=2)
EOF

# ---------------------------------------------------------------- model server
python3 "$SERVER" --script "$T/script.json" --port 0 --port-file "$T/port" \
  --log "$T/requests.jsonl" --max-seconds 120 2>"$T/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do [[ -s "$T/port" ]] && break; sleep 0.05; done
[[ -s "$T/port" ]] || { echo "model server did not start"; cat "$T/server.err"; exit 1; }
PORT=$(cat "$T/port")
echo "model server: pid $SERVER_PID on 127.0.0.1:$PORT"

# ---------------------------------------------------------------- run claude
CMD=("$CLAUDE" -p "do it" --output-format json
     --settings "$T/settings.json" --setting-sources "")
printf "running:"; printf " %q" "${CMD[@]}"; echo
start=$(date +%s%N)
set +e
(cd "$T/proj" && env -i \
    PATH="/usr/local/bin:/usr/bin:/bin" \
    HOME="$T/home" CLAUDE_CONFIG_DIR="$T/config" \
    ANTHROPIC_BASE_URL="http://127.0.0.1:$PORT" ANTHROPIC_API_KEY="sk-ant-offline-test" \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 CLAUDE_CODE_MAX_RETRIES=0 \
    HOOK_LOG="$T/hooks.jsonl" MY_VAR="$MY_VAR_VALUE" \
    timeout 120 "${CMD[@]}" </dev/null >"$T/claude.json" 2>"$T/claude.err")
rc=$?
set -e
end=$(date +%s%N)
echo "claude exit code: $rc, wall time: $(( (end - start) / 1000000 )) ms"
[[ -s "$T/claude.err" ]] && { echo "--- claude stderr:"; cat "$T/claude.err"; }

# ---------------------------------------------------------------- report
python3 - "$T" "$EXPECT_HASH" "$rc" <<'EOF'
import json, os, sys
t, expect, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
ok = True
def check(cond, what):
    global ok
    print(("PASS " if cond else "FAIL ") + what)
    ok &= bool(cond)

hooks = [json.loads(l) for l in open(t + "/hooks.jsonl")] if os.path.exists(t + "/hooks.jsonl") else []
print("\n--- hook events, in order (stdin fields):")
for h in hooks:
    s = h["stdin"]
    extra = {k: s[k] for k in ("tool_name", "prompt", "source", "reason", "permission_mode") if k in s}
    if "tool_input" in s: extra["command"] = s["tool_input"].get("command", "")[:50]
    if "tool_response" in s: extra["stdout"] = s["tool_response"].get("stdout")
    print("  %-16s keys=%s %s" % (h["event"], sorted(s), json.dumps(extra)))

reqs = [json.loads(l) for l in open(t + "/requests.jsonl")]
print("\n--- model server requests:")
results = []
for r in reqs:
    print("  #%s %s %s kind=%s turn=%s model=%s" % (r["seq"], r["method"], r["path"], r.get("kind"), r.get("turn"), r.get("model")))
    b = r.get("body")
    if r.get("kind") == "main":
        last = b["messages"][-1]["content"]
        if isinstance(last, list):
            results += [c for c in last if isinstance(c, dict) and c.get("type") == "tool_result"]
for tr in results:
    print("  tool_result: is_error=%s content=%r" % (tr.get("is_error"), tr.get("content")))

out = json.load(open(t + "/claude.json"))
print("\n--- claude -p JSON: result=%r is_error=%s num_turns=%s" % (out.get("result"), out.get("is_error"), out.get("num_turns")))
print("    permission_denials=%s" % json.dumps(out.get("permission_denials")))

print()
events = [h["event"] for h in hooks]
check(rc == 0, "claude exited 0")
check(events == ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PreToolUse", "Stop", "SessionEnd"],
      "hook event order: " + " ".join(events))
check(os.path.exists(t + "/proj/ran-1"), "first Bash call ran (marker file exists)")
check(any(tr.get("content") == "hello-" + expect and not tr.get("is_error") for tr in results),
      "first call's output reached the model server as tool_result 'hello-%s'" % expect)
check("hello-" + expect in json.dumps([h["stdin"].get("tool_response") for h in hooks if h["event"] == "PostToolUse"]),
      "MY_VAR from claude's env reached the Bash command (sha256 prefix matches)")
check(all(h["MY_VAR_sha16"] == expect for h in hooks), "MY_VAR reached every hook process")
check(not os.path.exists(t + "/proj/ran-2"), "denied Bash call did not run (no marker file)")
den = out.get("permission_denials") or []
check(len(den) == 1 and "DENYME" in den[0]["tool_input"]["command"], "denied call listed under permission_denials")
check(any(tr.get("is_error") and "DENYME" in str(tr.get("content")) for tr in results),
      "model was told about the denial (tool_result is_error with the hook's reason)")
check(sum(1 for e in events if e == "PostToolUse") == 1, "no PostToolUse for the denied call")
check(all(r.get("kind") == "main" for r in reqs if r["method"] == "POST"), "no side requests were needed")
print("\nALL CHECKS PASSED" if ok else "\nSOME CHECKS FAILED")
sys.exit(0 if ok else 1)
EOF
