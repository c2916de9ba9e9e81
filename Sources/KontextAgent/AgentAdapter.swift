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

/// How kontext's hooks are to be wired into one launch of an agent.
public struct HookWiring: Sendable {
    /// The shell command that runs `kontext hook EVENT --agent NAME`.
    public var command: @Sendable (HookEvent) -> String
    /// The variables the hooks depend on (socket, session, mode), for agents whose settings
    /// can pin them over a project's own.
    public var environment: [(key: String, value: String)]
    /// Enforce mode: a hook that cannot run must block the call, not let it through.
    public var failClosed: Bool
    /// The session's private directory, where a generated settings file may go.
    public var directory: String
    /// `sha256:` and the hex SHA-256 of some bytes (the adapters link no crypto library).
    public var digest: @Sendable ([UInt8]) -> String

    public init(command: @escaping @Sendable (HookEvent) -> String, environment: [(key: String, value: String)],
                failClosed: Bool, directory: String, digest: @escaping @Sendable ([UInt8]) -> String) {
        self.command = command
        self.environment = environment
        self.failClosed = failClosed
        self.directory = directory
        self.digest = digest
    }
}

/// An agent's command line with kontext's hooks in it, and the files (0600, in the session
/// directory) to write before launching it.
public struct AgentLaunch: Sendable {
    public var arguments: [String]
    public var files: [(path: String, contents: String)]

    public init(arguments: [String], files: [(path: String, contents: String)] = []) {
        self.arguments = arguments
        self.files = files
    }
}

/// One agent: its hook dialect (how its hook input reads, how a decision is written back)
/// and how it is launched with kontext's hooks. An agent is one type conforming to this in
/// this folder, listed once in `AgentAdapters.all`.
public protocol AgentAdapter: HookDialect {
    /// The executable looked up on PATH, and what to tell someone who lacks it.
    var executableName: String { get }
    var installHint: String { get }
    /// The oldest version whose hooks kontext was proven with (`kontext doctor` checks it
    /// against the binary's `--version`); nil when any will do.
    var minimumVersion: [Int]? { get }

    func parse(event: HookEvent, payload: [UInt8]) throws(MalformedHookInput) -> HookInput
    /// The same for the start of an input cut at the hook-input limit: as much as it tells
    /// (the tool name, the input up to the cut), for the audit record.
    func parsePrefix(event: HookEvent, payload: [UInt8]) throws(MalformedHookInput) -> HookInput
    /// The agent's whole command line, the user's `arguments` included, with kontext's hooks
    /// wired in; the user's own settings files are never edited.
    func hookedLaunch(_ hooks: HookWiring, arguments: [String]) -> AgentLaunch
    /// Whether this launch's own permission prompt can put a hook's `ask` to a person (an
    /// interactive session on a terminal), so that a call needing approval is asked there
    /// rather than sent to `kontext approve` (SPEC section 12).
    func asksItsUser(arguments: [String], onTerminal: Bool) -> Bool
}

/// The agents `kontext start --agent` launches. This list is the only place that names
/// them: help texts, `--agent` checks, completions, `doctor`, install hints and the hook
/// front's fallback answers are all read from it.
public enum AgentAdapters {
    public static let all: [any AgentAdapter] = [ClaudeAdapter(), CodexAdapter()]

    public static var names: [String] { all.map(\.name) }

    public static func named(_ name: String) -> (any AgentAdapter)? {
        all.first { $0.name == name }
    }
}

/// The first dotted number in a `--version` line (`codex-cli 0.163.0`, `2.1.330 (Claude Code)`).
public func versionNumber(in text: String) -> [Int]? {
    for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
        var numbers: [Int] = []
        for part in word.drop(while: { $0 == "v" }).split(separator: ".", omittingEmptySubsequences: false) {
            guard let number = Int(part.prefix { $0.isASCII && $0.isNumber }) else { break }
            numbers.append(number)
            // A pre-release suffix (`0-alpha`) ends the number.
            if part.contains(where: { !($0.isASCII && $0.isNumber) }) { break }
        }
        if numbers.count >= 2 { return numbers }
    }
    return nil
}

/// Whether `version` is at least `minimum`, comparing part by part (missing parts are 0).
public func version(_ version: [Int], isAtLeast minimum: [Int]) -> Bool {
    for index in 0..<max(version.count, minimum.count) {
        let have = index < version.count ? version[index] : 0
        let need = index < minimum.count ? minimum[index] : 0
        if have != need { return have > need }
    }
    return true
}
