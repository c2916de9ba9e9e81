import KontextCore
import KontextHookWire

/// What kontext needs from one hook call, whatever the agent's own format.
public struct HookInput: Sendable {
    public var toolName: String?
    public var toolInput: JSONValue
    public var toolResponse: JSONValue
    public var prompt: String?

    public init(toolName: String? = nil, toolInput: JSONValue = .null, toolResponse: JSONValue = .null, prompt: String? = nil) {
        self.toolName = toolName
        self.toolInput = toolInput
        self.toolResponse = toolResponse
        self.prompt = prompt
    }
}

/// Input the agent sent that kontext cannot use; recorded, and decided by the mode.
public struct MalformedHookInput: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One agent's hook dialect: how its settings wire hooks to `kontext hook`, how its hook
/// input reads, and how a decision is written back.
public protocol AgentAdapter: Sendable {
    var name: String { get }
    /// The executable looked up on PATH, and what to tell someone who lacks it.
    var executableName: String { get }
    var installHint: String { get }

    func parse(event: HookEvent, payload: [UInt8]) throws(MalformedHookInput) -> HookInput
    /// The same for the start of an input cut at the hook-input limit: as much as it tells
    /// (the tool name, the input up to the cut), for the audit record.
    func parsePrefix(event: HookEvent, payload: [UInt8]) throws(MalformedHookInput) -> HookInput
    /// The hook's answer; `decision` nil leaves the call to the agent's own permissions.
    func answer(event: HookEvent, decision: PolicyDecision?, reason: String?) -> HookWire.Answer
    /// Arguments that make the agent use the generated settings file.
    func launchArguments(settingsPath: String) -> [String]
    /// The generated settings file; `command(event)` is the shell command for a hook.
    /// `environment` holds the variables the hooks depend on (socket, session, mode), pinned
    /// over anything a project's own agent settings set; with `failClosed` (enforce mode) a
    /// hook that cannot run blocks the call instead of letting it through.
    func settings(command: (HookEvent) -> String, environment: [(key: String, value: String)], failClosed: Bool) -> JSONValue
}

public enum AgentAdapters {
    public static func named(_ name: String) -> (any AgentAdapter)? {
        switch name {
        case "claude": ClaudeAdapter()
        default: nil
        }
    }
}
