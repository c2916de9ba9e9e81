# Shared by the bench scripts (sourced, not run). See bench/README.md.
#
# Environment:
#   KONTEXT_BENCH_SKIP_BUILD=1   use the release binaries already in .build-release
#   KONTEXT_BENCH_SCRATCH=DIR    scratch path of the release build (default .build-release)
#   KONTEXT_BENCH_RESULTS=FILE   append summary rows (figure|measured|target|verdict) here
#   KONTEXT_BENCH_QUICK=1        fewer runs (a smoke test of the scripts, not figures)

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
SCRATCH=${KONTEXT_BENCH_SCRATCH:-$REPO/.build-release}
BIN=$SCRATCH/release
KONTEXT=$BIN/kontext
KONTEXT_CLI=$BIN/kontext-cli

say() { printf '%s\n' "$*"; }
fail() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# Builds both products as scripts/package does (release, --static-swift-stdlib, the version from
# git describe), in their own scratch path (never the shared .build).
bench_build() {
    if [ "${KONTEXT_BENCH_SKIP_BUILD:-}" != 1 ]; then
        say "== building release binaries into ${SCRATCH#"$REPO"/} (first build takes minutes)"
        KONTEXT_PACKAGE_SCRATCH=$SCRATCH "$REPO/scripts/package" --build-only >/dev/null ||
            fail "release build failed (scripts/package --build-only)"
    fi
    [ -x "$KONTEXT" ] && [ -x "$KONTEXT_CLI" ] ||
        fail "missing $KONTEXT or $KONTEXT_CLI (build them: scripts/package --build-only)"
}

# Compiles the C helpers into $WORK/bin.
bench_compile_helpers() {
    mkdir -p "$WORK/bin"
    local cc=${CC:-cc}
    command -v "$cc" >/dev/null || fail "no C compiler ($cc): apt-get install gcc"
    # Static where glibc allows it: the driver's own exec (the `stamp`) then costs least.
    if ! "$cc" -O2 -Wall -static -pthread -o "$WORK/bin/hook-driver" "$BENCH_DIR/hook-driver.c" 2>/dev/null; then
        "$cc" -O2 -Wall -pthread -o "$WORK/bin/hook-driver" "$BENCH_DIR/hook-driver.c"
    fi
    "$cc" -O2 -Wall -o "$WORK/bin/floor-dynamic" "$BENCH_DIR/floor.c"
    "$cc" -O2 -Wall -static -o "$WORK/bin/floor-static" "$BENCH_DIR/floor.c" 2>/dev/null || true
    DRIVER=$WORK/bin/hook-driver
}

# Entry point of every sub-bench. The first call (outer) builds, makes the work directory and
# re-runs the script inside scripts/with-keyring (a private D-Bus session with a throwaway,
# unlocked gnome-keyring, whose files also land in the work directory); after it returns,
# everything is removed. The inner call sets up the throwaway HOME/XDG directories.
bench_enter() {
    if [ "${KONTEXT_BENCH_INNER:-}" != 1 ]; then
        bench_build
        WORK=$(mktemp -d "${TMPDIR:-/tmp}/kbench.XXXXXX")
        trap 'rm -rf "$WORK"' EXIT
        trap 'exit 130' INT TERM
        mkdir -p "$WORK/tmp"
        local status=0
        KONTEXT_BENCH_INNER=1 KONTEXT_BENCH_WORK=$WORK TMPDIR=$WORK/tmp \
            "$REPO/scripts/with-keyring" "$BENCH_DIR/$(basename "$0")" "$@" || status=$?
        exit "$status"
    fi
    WORK=$KONTEXT_BENCH_WORK
    [ -d "$WORK" ] || fail "KONTEXT_BENCH_WORK is not a directory"
    export HOME=$WORK/home
    export XDG_CONFIG_HOME=$HOME/.config XDG_DATA_HOME=$HOME/.local/share XDG_STATE_HOME=$HOME/.local/state
    # A short runtime directory: the session socket path must fit in sun_path.
    export XDG_RUNTIME_DIR=$WORK/run
    mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_STATE_HOME" "$WORK/project"
    mkdir -m 700 -p "$XDG_RUNTIME_DIR"
    unset KONTEXT_ISSUER_URL KONTEXT_AUDIT_URL KONTEXT_MODE KONTEXT_POLICY KONTEXT_KEYRING KONTEXT_DEBUG \
        KONTEXT_SOCKET KONTEXT_SESSION_ID
    export LANG=C.UTF-8
    cd "$WORK/project"
    bench_compile_helpers
}

# Stores a secret for SERVICE in the keyring, the way users do (stdin, never an argument).
bench_add_provider() {
    printf '%s' "$2" | "$KONTEXT" provider add "$1" >/dev/null 2>"$WORK/provider-add.err" ||
        { cat "$WORK/provider-add.err" >&2; fail "kontext provider add $1 failed"; }
}

# A policy with a few realistic rules; the benchmark's tool calls match the last one (allow),
# so that in enforce mode every hook prints a decision.
bench_write_policy() {
    cat >"$1" <<'EOF'
[[rule]]
tool = "Bash"
command = "curl *"
decision = "deny"
reason = "no network egress from agents"

[[rule]]
tool = "Bash"
command = "rm -rf *"
decision = "ask"
reason = "recursive deletes need a person"

[[rule]]
tool = "Edit|Write"
file_path = "re:(^|/)\\.env"
decision = "ask"

[[rule]]
tool = "Bash"
command = "ls *"
decision = "allow"
reason = "listing files is fine"
EOF
}

# Field KEY of the driver's RESULT line whose label and what match: result FILE LABEL WHAT KEY
result() {
    awk -v label="$2" -v what="$3" -v key="$4" '
        $1 == "RESULT" {
            delete f
            for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = substr($i, length(kv[1]) + 2) }
            if (f["label"] == label && f["what"] == what && (key in f)) { print f[key]; found = 1; exit }
        }
        END { if (!found) exit 1 }' "$1" || fail "no $4 for $2/$3 in $1"
}

# Number of audit events of one session in the local store (kontext audit export).
# audit_count SESSION: the session's events in $WORK/export.jsonl, counted; the chain's signed
# checkpoints (one per 100 events and one at the end) are kontext's own, not the hooks'.
audit_count() {
    local out=$WORK/export.jsonl
    "$KONTEXT" audit export --format jsonl --session "$1" | grep -v '"event":"checkpoint"' >"$out" ||
        fail "kontext audit export failed"
    grep -c . "$out" || true
}

# Appends a summary row (to this bench's table, and bench/run's): row FIGURE MEASURED TARGET VERDICT
row() {
    printf '%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" >>"$WORK/rows"
    if [ -n "${KONTEXT_BENCH_RESULTS:-}" ]; then
        printf '%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" >>"$KONTEXT_BENCH_RESULTS"
    fi
}

# Prints rows as an aligned table: print_table FILE
print_table() {
    awk -F'|' '
        { for (i = 1; i <= 4; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
        END {
            split("figure|measured|target|verdict", h, "|")
            for (i = 1; i <= 4; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
            fmt = "%-" w[1] "s  %-" w[2] "s  %-" w[3] "s  %s\n"
            printf fmt, h[1], h[2], h[3], h[4]
            printf fmt, substr("------------------------------------------------------------------------", 1, w[1]),
                substr("------------------------------------------------------------------------", 1, w[2]),
                substr("------------------------------------------------------------------------", 1, w[3]), "-------"
            for (r = 1; r <= NR; r++) printf fmt, cell[r, 1], cell[r, 2], cell[r, 3], cell[r, 4]
        }' "$1"
}

# awk arithmetic on decimals: calc 'EXPR'
calc() { awk "BEGIN { print ($1) }"; }
# The same, with one decimal.
calc1() { awk "BEGIN { printf \"%.1f\", ($1) }"; }
# Prints "ok" if the awk condition holds, else "MISS".
verdict() { if awk "BEGIN { exit !($1) }"; then echo ok; else echo MISS; fi; }

machine_line() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
    printf '%s, %s cores, %s, load average %s%s' "$(date -u +%Y-%m-%d)" "$(nproc)" "$cpu" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$([ "$(nice)" = 0 ] || echo ", run at nice $(nice)")"
}
