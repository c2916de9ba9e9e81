/// Replaces every injected secret value in text by `[REDACTED:SERVICE]` (SPEC section 7).
/// Longer secrets are replaced first so that one secret containing another is not split.
public struct Redactor: Sendable {
    private let secrets: [(value: String, label: String)]

    /// `secrets` pairs each injected value with the SERVICE it came from.
    public init(secrets: [(service: String, value: String)]) {
        self.secrets = secrets
            .filter { !$0.value.isEmpty }
            .map { (value: $0.value, label: "[REDACTED:\($0.service)]") }
            .sorted { $0.value.utf8.count > $1.value.utf8.count }
    }

    public var isEmpty: Bool { secrets.isEmpty }

    public func redact(_ text: String) -> String {
        var result = text
        for secret in secrets where result.contains(secret.value) {
            result = result.replacingAll(secret.value, with: secret.label)
        }
        return result
    }

    /// The service whose secret appears in text, if any.
    public func firstSecretService(in text: String) -> String? {
        for secret in secrets where text.contains(secret.value) {
            return String(secret.label.dropFirst("[REDACTED:".count).dropLast())
        }
        return nil
    }
}

extension String {
    /// Plain substring replacement without Foundation.
    public func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
