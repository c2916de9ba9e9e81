import KontextCore
import KontextHookWire

/// OpenAI's Codex CLI (observed with 0.163.0). Its hook input and its blocking answers are
/// Claude Code's (JSON on stdin; `hookSpecificOutput.permissionDecision` for a tool call,
/// `{"decision":"block"}` for a prompt), so both are read and written by `ClaudeAdapter`.
/// What differs is the wiring: Codex takes kontext's hooks as `-c` overrides on its command
/// line (its "session flags" layer, above the user's and the project's config files), and
/// runs a hook only once its exact definition is trusted.
public struct CodexAdapter: AgentAdapter {
    public let name = "codex"
    public let executableName = "codex"
    public let installHint = "install the Codex CLI 0.163 or later (`npm install -g @openai/codex`; the `openai-codex-cli-bin` wheel on PyPI carries the same binary) or name the binary with --agent-command"
    public let minimumVersion: [Int]? = [0, 163, 0]

    public init() {}

    private static let claude = ClaudeAdapter()

    /// Codex's name for each event in its config, and in the key of its trust records.
    static func configName(_ event: HookEvent) -> (table: String, key: String) {
        switch event {
        case .preTool: ("PreToolUse", "pre_tool_use")
        case .postTool: ("PostToolUse", "post_tool_use")
        case .userPrompt: ("UserPromptSubmit", "user_prompt_submit")
        case .sessionStart: ("SessionStart", "session_start")
        case .sessionEnd: ("SessionEnd", "session_end")
        case .stop: ("Stop", "stop")
        }
    }

    public func parse(event: HookEvent, payload: [UInt8]) throws(MalformedHookInput) -> HookInput {
        try Self.claude.parse(event: event, payload: payload)
    }

    public func parsePrefix(event: HookEvent, payload: [UInt8]) throws(MalformedHookInput) -> HookInput {
        try Self.claude.parsePrefix(event: event, payload: payload)
    }

    /// Codex's PreToolUse honours only `deny`: an `allow` or `ask` answer is reported as a
    /// failed hook and the call runs. So allow says nothing (the call is left to Codex's own
    /// approval policy, as for Claude), and ask, which a hook cannot put to the user in Codex,
    /// blocks: enforce mode does not run unapproved what a rule wants approved.
    public func answer(event: HookEvent, decision: PolicyDecision?, reason: String?) -> HookWire.Answer {
        switch (event, decision) {
        case (.preTool, .deny?), (.userPrompt, .deny?):
            return Self.claude.answer(event: event, decision: .deny, reason: reason)
        case (.preTool, .ask?):
            return Self.claude.answer(event: event, decision: .deny,
                                      reason: (reason ?? "kontext: this call needs approval")
                                        + " (Codex hooks cannot ask for approval, so kontext blocks it)")
        default:
            return HookWire.Answer(exitCode: 0)
        }
    }

    /// Codex subcommands that run a session and take their own `-c`: an override given before
    /// the subcommand is dropped once the subcommand has any `-c` of its own, so kontext's go
    /// right after it.
    static let sessionSubcommands: Set<String> = ["exec", "e", "review", "resume", "fork"]

    /// Codex's hooks cannot ask (an `ask` answer is a failed hook): approvals go to `kontext approve`.
    public func asksItsUser(arguments: [String], onTerminal: Bool) -> Bool { false }

    public func hookedLaunch(_ hooks: HookWiring, arguments: [String]) -> AgentLaunch {
        let overrides = configOverrides(hooks).flatMap { ["-c", $0] }
        if let first = arguments.first, Self.sessionSubcommands.contains(first) {
            return AgentLaunch(arguments: [first] + overrides + arguments.dropFirst())
        }
        return AgentLaunch(arguments: overrides + arguments)
    }

    /// The `-c key=value` overrides (values in TOML). Nothing in them is secret: the hooks'
    /// variables reach them through Codex's own environment, which kontext sets.
    /// - `features.hooks`: hooks are on by default; pinned so a config file cannot turn them off.
    /// - `hooks`: one command hook per event. Hooks of the user's and project's files still
    ///   run beside them (each layer's hooks are kept), and cannot remove them.
    /// - `hooks.state`: Codex runs a non-managed hook only when its trust record holds the
    ///   hash of its current definition; the records for kontext's own hooks are given here,
    ///   for this invocation only. Nothing is written to `~/.codex`, and no other hook is
    ///   trusted (unlike `--dangerously-bypass-hook-trust`, which would run every unreviewed
    ///   hook of the user's and the project's files too).
    /// - `shell_environment_policy.ignore_default_excludes`: Codex can drop variables whose
    ///   names contain KEY, SECRET or TOKEN from its shell tool's environment; the injected
    ///   credentials are what the session is for, so they are kept. A user's own `exclude`,
    ///   `include_only` or `inherit` still applies.
    /// - `features.shell_snapshot`: Codex snapshots the user's shell for its shell tool into
    ///   `~/.codex/shell_snapshots`, exported variables and their values included, in a
    ///   world-readable file; off, so the injected credentials stay off the disk.
    func configOverrides(_ hooks: HookWiring) -> [String] {
        var tables: [String] = []
        var states: [String] = []
        for event in HookEvent.allCases {
            let (table, key) = Self.configName(event)
            var command = hooks.command(event)
            // Codex has no "block when the hook cannot run": in enforce mode a hook that fails
            // to start (the front gone, a crash) exits 2, which Codex takes as a block.
            if hooks.failClosed && (event == .preTool || event == .userPrompt) { command += " || exit 2" }
            // Codex caps a session-end hook at 3 s (and warns); the trust hash is of the
            // definition as given, so it is given within the cap.
            let timeout = event == .sessionEnd ? 3 : 30
            let matcher = event == .preTool || event == .postTool ? "*" : nil
            let handler = "{type=\"command\",command=\(Self.toml(command)),timeout=\(timeout)}"
            tables.append("\(table)=[{" + (matcher.map { "matcher=\(Self.toml($0))," } ?? "") + "hooks=[\(handler)]}]")
            let identity = Self.identity(event: key, matcher: matcher, command: command, timeout: timeout)
            let trustKey = "/<session-flags>/config.toml:\(key):0:0"
            states.append("\(Self.toml(trustKey))={trusted_hash=\(Self.toml(hooks.digest(Array(identity.utf8)))),enabled=true}")
        }
        return [
            "features.hooks=true",
            "hooks={\(tables.joined(separator: ","))}",
            "hooks.state={\(states.joined(separator: ","))}",
            "shell_environment_policy.ignore_default_excludes=true",
            "features.shell_snapshot=false",
        ]
    }

    /// What Codex hashes to name a hook's definition: compact JSON with sorted keys of the
    /// event, its matcher and its one handler with the defaults filled in, strings escaped as
    /// Rust's serde_json escapes them.
    static func identity(event: String, matcher: String?, command: String, timeout: Int) -> String {
        "{\"event_name\":\(serdeString(event)),\"hooks\":[{\"async\":false,\"command\":\(serdeString(command)),"
            + "\"timeout\":\(timeout),\"type\":\"command\"}]"
            + (matcher.map { ",\"matcher\":\(serdeString($0))" } ?? "") + "}"
    }

    /// A JSON string as serde_json writes it: `"` and `\` escaped, the short escapes for
    /// backspace, form feed, newline, return and tab, `\u00xx` for other control characters,
    /// everything else (DEL and non-ASCII included) as is.
    static func serdeString(_ text: String) -> String {
        escaped(text)
    }

    /// A TOML basic string: as JSON's, with DEL escaped too (TOML forbids it raw).
    static func toml(_ text: String) -> String {
        escaped(text, extra: { $0 == 0x7f ? "\\u007f" : nil })
    }

    private static func escaped(_ text: String, extra: ((UInt32) -> String?)? = nil) -> String {
        var out = ""
        JSONValue.writeCanonicalString(text, to: &out, extra: extra)
        return out
    }
}
