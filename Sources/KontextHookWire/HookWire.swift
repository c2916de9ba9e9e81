#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@_exported import KontextSystem

/// The hook events of SPEC section 2, as `kontext hook EVENT` names them.
public enum HookEvent: String, CaseIterable, Sendable {
    case preTool = "pre-tool"
    case postTool = "post-tool"
    case userPrompt = "user-prompt"
    case sessionStart = "session-start"
    case sessionEnd = "session-end"
    case stop = "stop"

    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// What the hook front needs of an agent's hook dialect: its name, and how a decision is
/// written back to it. `AgentAdapter` (KontextAgent) refines it, and the front is handed the
/// same list of adapters the rest of kontext uses, so a dialect's answers exist once.
public protocol HookDialect: Sendable {
    var name: String { get }
    /// The hook's answer; `decision` nil leaves the call to the agent's own permissions.
    func answer(event: HookEvent, decision: PolicyDecision?, reason: String?) -> HookWire.Answer
}

/// What travels over the session socket. A request is one header line
/// `KXH1 EVENT AGENT FLAGS LENGTH\n` and LENGTH bytes of the agent's hook JSON, verbatim
/// (FLAGS: `-`, or `o` when the input was larger than `maximumInput` and was cut). The
/// answer is `EXIT STDOUT_LENGTH STDERR_LENGTH\n`, then both outputs: the sidecar decides
/// everything, the hook process only relays.
public enum HookWire {
    public static let maximumInput = 4 << 20
    static let magic = "KXH1"

    public struct Request: Sendable, Equatable {
        public var event: String
        public var agent: String
        public var truncated: Bool
        public var payload: [UInt8]

        public init(event: String, agent: String, truncated: Bool, payload: [UInt8]) {
            self.event = event
            self.agent = agent
            self.truncated = truncated
            self.payload = payload
        }
    }

    public struct Answer: Sendable, Equatable {
        public var exitCode: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]

        public init(exitCode: Int32, stdout: [UInt8] = [], stderr: [UInt8] = []) {
            self.exitCode = exitCode
            self.stdout = stdout
            self.stderr = stderr
        }

        public init(exitCode: Int32, stdout: String, stderr: String = "") {
            self.init(exitCode: exitCode, stdout: Array(stdout.utf8), stderr: Array(stderr.utf8))
        }
    }

    public static func encode(_ request: Request) -> [UInt8] {
        let header = "\(magic) \(request.event) \(request.agent) \(request.truncated ? "o" : "-") \(request.payload.count)\n"
        return Array(header.utf8) + request.payload
    }

    /// Parses a request; nil when the bytes are not one (a stray client, a torn write).
    public static func decodeRequest(_ bytes: [UInt8]) -> Request? {
        guard let newline = bytes.firstIndex(of: 10), newline < 256 else { return nil }
        let fields = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ")
        guard fields.count == 5, fields[0] == magic, let length = Int(fields[4]),
              length == bytes.count - newline - 1 else { return nil }
        return Request(event: String(fields[1]), agent: String(fields[2]), truncated: fields[3] == "o",
                       payload: Array(bytes[(newline + 1)...]))
    }

    public static func encode(_ answer: Answer) -> [UInt8] {
        Array("\(answer.exitCode) \(answer.stdout.count) \(answer.stderr.count)\n".utf8) + answer.stdout + answer.stderr
    }

    public static func decodeAnswer(_ bytes: [UInt8]) -> Answer? {
        guard let newline = bytes.firstIndex(of: 10), newline < 64 else { return nil }
        let fields = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ")
        guard fields.count == 3, let code = Int32(fields[0]), let outLength = Int(fields[1]), let errLength = Int(fields[2]),
              outLength >= 0, errLength >= 0, outLength <= bytes.count, errLength <= bytes.count,
              // Both bounded by the message size first, so a forged length cannot overflow the sum.
              outLength + errLength == bytes.count - newline - 1 else { return nil }
        let start = newline + 1
        return Answer(exitCode: code, stdout: Array(bytes[start..<(start + outLength)]),
                      stderr: Array(bytes[(start + outLength)...]))
    }
}
