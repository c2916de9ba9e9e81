import KontextCore
import KontextHookWire

/// Claude Code's hooks (SPEC appendix): JSON on stdin, `hookSpecificOutput` on stdout,
/// settings passed with `--settings FILE` so the user's own files are never edited.
public struct ClaudeAdapter: AgentAdapter {
    public let name = "claude"
    public let executableName = "claude"
    public let installHint = "install Claude Code (`npm install -g @anthropic-ai/claude-code`, or `pip install claude-agent-sdk`, which bundles it) or name the binary with --agent-command"
    public let minimumVersion: [Int]? = nil

    public init() {}

    /// Claude's name for each kontext hook event.
    public static func hookEventName(_ event: HookEvent) -> String {
        switch event {
        case .preTool: "PreToolUse"
        case .postTool: "PostToolUse"
        case .userPrompt: "UserPromptSubmit"
        case .sessionStart: "SessionStart"
        case .sessionEnd: "SessionEnd"
        case .stop: "Stop"
        }
    }

    public func parse(event: HookEvent, payload: [UInt8]) throws(MalformedHookInput) -> HookInput {
        try read(event: event, payload: payload, parse: { try JSONValue.parse($0) })
    }

    public func parsePrefix(event: HookEvent, payload: [UInt8]) throws(MalformedHookInput) -> HookInput {
        try read(event: event, payload: payload, parse: { try JSONValue.parsePrefix($0) })
    }

    private func read(event: HookEvent, payload: [UInt8],
                      parse: ([UInt8]) throws -> JSONValue) throws(MalformedHookInput) -> HookInput {
        guard !payload.isEmpty else { throw MalformedHookInput("empty hook input") }
        let document: JSONValue
        do {
            document = try parse(payload)
        } catch {
            throw MalformedHookInput("hook input is not JSON (\(error))")
        }
        guard document.objectValue != nil else { throw MalformedHookInput("hook input is not a JSON object") }
        switch event {
        case .preTool, .postTool:
            guard let tool = document["tool_name"]?.stringValue, !tool.isEmpty else {
                throw MalformedHookInput("hook input has no tool_name")
            }
            return HookInput(toolName: tool, toolInput: document["tool_input"] ?? .null,
                             toolResponse: event == .postTool ? document["tool_response"] ?? .null : .null)
        case .userPrompt:
            return HookInput(prompt: document["prompt"]?.stringValue ?? "")
        case .sessionStart, .sessionEnd, .stop:
            return HookInput()
        }
    }

    public func answer(event: HookEvent, decision: PolicyDecision?, reason: String?) -> HookWire.Answer {
        guard let decision else { return HookWire.Answer(exitCode: 0) }
        switch event {
        case .preTool:
            var fields: [(String, JSONValue)] = [
                ("hookEventName", .string("PreToolUse")),
                ("permissionDecision", .string(decision.rawValue)),
            ]
            if let reason { fields.append(("permissionDecisionReason", .string(reason))) }
            return HookWire.Answer(exitCode: 0, stdout: JSONValue.object([("hookSpecificOutput", .object(fields))]).serialized + "\n")
        case .userPrompt where decision == .deny:
            return HookWire.Answer(exitCode: 0, stdout: JSONValue.object([
                ("decision", .string("block")), ("reason", .string(reason ?? "blocked by kontext")),
            ]).serialized + "\n")
        default:
            return HookWire.Answer(exitCode: 0)
        }
    }

    /// `-p`/`--print` runs headless: Claude's `ask` is then a denial with no one to ask.
    public func asksItsUser(arguments: [String], onTerminal: Bool) -> Bool {
        onTerminal && !arguments.contains("-p") && !arguments.contains("--print")
    }

    public func hookedLaunch(_ hooks: HookWiring, arguments: [String]) -> AgentLaunch {
        let path = hooks.directory + "/claude-settings.json"
        let settings = settings(command: hooks.command, environment: hooks.environment, failClosed: hooks.failClosed)
        return AgentLaunch(arguments: ["--settings", path] + arguments, files: [(path, settings.serialized + "\n")])
    }

    /// Claude Code merges settings layers, and the `--settings` file outranks the project's
    /// `.claude/settings.json` and `settings.local.json`: so the keys a repository could use to
    /// switch kontext's hooks off (`disableAllHooks`, `allowManagedHooksOnly`) or to point
    /// them elsewhere (`env`) are pinned here. Hooks from other layers still run beside ours;
    /// they cannot remove them. `onFailure: "block"` makes a hook that fails to run (the
    /// front missing, a crash) block the call, as enforce mode must.
    public func settings(command: (HookEvent) -> String, environment: [(key: String, value: String)], failClosed: Bool) -> JSONValue {
        var hooks: [(String, JSONValue)] = []
        for event in HookEvent.allCases {
            var entry: [(String, JSONValue)] = []
            if event == .preTool || event == .postTool { entry.append(("matcher", .string("*"))) }
            var hook: [(String, JSONValue)] = [
                ("type", .string("command")),
                ("command", .string(command(event))),
                ("timeout", .number(30)),
            ]
            if failClosed { hook.append(("onFailure", .string("block"))) }
            entry.append(("hooks", .array([.object(hook)])))
            hooks.append((Self.hookEventName(event), .array([.object(entry)])))
        }
        return .object([
            ("disableAllHooks", .bool(false)),
            ("allowManagedHooksOnly", .bool(false)),
            ("env", .object(environment.map { ($0.key, .string($0.value)) })),
            ("hooks", .object(hooks)),
        ])
    }
}
