import KontextCore

/// The built-in rules that guard the session's injected credentials (SPEC section 7): a
/// tool input that contains an injected secret value, or that would dump the whole
/// environment, is denied. They run before the policy file's rules so that a user rule
/// allowing a tool cannot let a credential out.
public struct SecretGuard: Sendable {
    public static let secretInInputRule = "builtin:secret-in-input"
    public static let environmentDumpRule = "builtin:environment-dump"

    private let secrets: [(service: String, bytes: [UInt8])]

    /// `secrets` pairs each injected value with the SERVICE it came from; empty values are
    /// ignored. Every other value is guarded however short, as the Redactor redacts it.
    public init(secrets: [(service: String, value: String)]) {
        // Longest first, so a secret that contains another is reported as itself.
        self.secrets = secrets
            .filter { !$0.value.isEmpty }
            .map { (service: $0.service, bytes: Array($0.value.utf8)) }
            .sorted { $0.bytes.count > $1.bytes.count }
    }

    /// A deny verdict, or nil when the built-ins have nothing to say. Checks, in order: an
    /// injected value in any string of the input (object keys included, at any depth);
    /// `/proc/…/environ` in any string; a `command` field (a shell script, or an argv
    /// array as some agents send) that dumps the environment (see `EnvironmentDump`).
    public func evaluate(toolName: String, input: JSONValue) -> PolicyVerdict? {
        if let service = serviceOfSecret(in: input) {
            return PolicyVerdict(decision: .deny,
                                 reason: "tool input contains the injected \(service) credential",
                                 rule: SecretGuard.secretInInputRule)
        }
        if let dump = environmentDump(in: input) {
            return PolicyVerdict(decision: .deny,
                                 reason: dump.reason,
                                 rule: SecretGuard.environmentDumpRule)
        }
        return nil
    }

    /// The SERVICE whose injected value appears in the input, if any.
    func serviceOfSecret(in input: JSONValue) -> String? {
        guard !secrets.isEmpty else { return nil }
        var found: String?
        SecretGuard.forEachString(in: input) { text in
            for secret in secrets where ByteSearch.contains(secret.bytes, in: text) {
                found = secret.service
                return false
            }
            return true
        }
        return found
    }

    func environmentDump(in input: JSONValue) -> EnvironmentDump? {
        var mentionsProc = false
        SecretGuard.forEachString(in: input) { text in
            mentionsProc = EnvironmentDumpDetector.mentionsProcEnviron(text)
            return !mentionsProc
        }
        if mentionsProc { return .procEnviron }

        switch input["command"] {
        case .string(let script)?:
            return EnvironmentDumpDetector.dump(inScript: script)
        case .array(let items)?:
            let words = items.compactMap(\.stringValue)
            guard words.count == items.count else { return nil }
            return EnvironmentDumpDetector.dump(inCommand: words[...])
        default:
            return nil
        }
    }

    /// Visits every string, object keys included, until `body` returns false.
    @discardableResult
    static func forEachString(in value: JSONValue, _ body: (String) -> Bool) -> Bool {
        switch value {
        case .string(let text):
            return body(text)
        case .array(let items):
            for item in items where !forEachString(in: item, body) { return false }
            return true
        case .object(let members):
            for (key, member) in members {
                guard body(key), forEachString(in: member, body) else { return false }
            }
            return true
        case .null, .bool, .number:
            return true
        }
    }
}
