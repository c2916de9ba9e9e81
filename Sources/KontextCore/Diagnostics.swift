import Synchronization

/// `--verbose` / `KONTEXT_DEBUG=1`: what kontext is doing, on stderr. Callers pass only
/// names, URLs, counts and outcomes — never a token or credential — and every line also
/// goes through the redactor of the secrets this process knows.
public enum Diagnostics {
    private struct State: Sendable {
        var enabled = false
        var secrets: [(service: String, value: String)] = []
        var redactor = Redactor(secrets: [])
    }
    private static let state = Mutex(State())

    public static func enable(_ on: Bool) {
        state.withLock { $0.enabled = on }
    }

    public static var isEnabled: Bool { state.withLock { $0.enabled } }

    /// Secrets to mask in every later line (belt and braces over the callers' care).
    public static func mask(_ secrets: [(service: String, value: String)]) {
        state.withLock {
            $0.secrets += secrets
            $0.redactor = Redactor(secrets: $0.secrets)
        }
    }

    public static func log(_ message: @autoclosure () -> String) {
        let (enabled, redactor) = state.withLock { ($0.enabled, $0.redactor) }
        guard enabled else { return }
        printError("kontext: debug: " + redactor.redact(message()))
    }
}
