/// The exit codes of SPEC section 8 for kontext's own failures.
public enum ExitStatus: Int32, Sendable {
    case usage = 2
    case authentication = 3
    case credentialResolution = 4
    case launch = 5
}

/// A failure a person can act on: `message` is the first line printed on stderr (what
/// failed and why), `details` follow it, and `hint` says what to do next.
public struct KontextError: Error, CustomStringConvertible, Sendable {
    public var status: ExitStatus
    public var message: String
    public var details: [String]
    public var hint: String?

    public init(_ status: ExitStatus, _ message: String, details: [String] = [], hint: String? = nil) {
        self.status = status
        self.message = message
        self.details = details
        self.hint = hint
    }

    public static func usage(_ message: String, hint: String? = nil) -> KontextError {
        KontextError(.usage, message, hint: hint)
    }

    /// The full text for stderr, one line first.
    public var description: String {
        var lines = ["kontext: " + message]
        lines += details.map { "  " + $0 }
        if let hint { lines.append("hint: " + hint) }
        return lines.joined(separator: "\n")
    }
}
