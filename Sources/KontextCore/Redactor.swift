/// Replaces every injected secret value in text by `[REDACTED:SERVICE]` (SPEC section 7).
/// Longer secrets are replaced first so that one secret containing another is not split.
public struct Redactor: Sendable {
    /// UTF-8 bytes of each secret and of its label: matching bytes (`ByteSearch`) instead of
    /// Characters is ~100x faster than `String.contains`, which builds a search table per call,
    /// and also catches a secret followed by a combining mark.
    private let secrets: [(value: [UInt8], label: [UInt8])]

    /// `secrets` pairs each injected value with the SERVICE it came from.
    public init(secrets: [(service: String, value: String)]) {
        self.secrets = secrets
            .filter { !$0.value.isEmpty }
            .map { (value: Array($0.value.utf8), label: Array("[REDACTED:\($0.service)]".utf8)) }
            .sorted { $0.value.count > $1.value.count }
    }

    public var isEmpty: Bool { secrets.isEmpty }

    public func redact(_ text: String) -> String {
        var result = text
        for secret in secrets {
            result.makeContiguousUTF8()
            let replaced = result.utf8.withContiguousStorageIfAvailable { haystack in
                Redactor.replacingAll(secret.value, with: secret.label, in: haystack)
            } ?? nil
            if let replaced { result = replaced }
        }
        return result
    }

    /// nil when `needle` does not occur (the common case allocates nothing).
    fileprivate static func replacingAll(_ needle: [UInt8], with replacement: [UInt8], in haystack: UnsafeBufferPointer<UInt8>) -> String? {
        guard !needle.isEmpty, var match = ByteSearch.firstIndex(of: needle, in: haystack) else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(haystack.count)
        var copied = 0
        while true {
            output.append(contentsOf: haystack[copied..<match])
            output.append(contentsOf: replacement)
            copied = match + needle.count
            guard let next = ByteSearch.firstIndex(of: needle, in: haystack, from: copied) else { break }
            match = next
        }
        output.append(contentsOf: haystack[copied...])
        return String(decoding: output, as: UTF8.self)
    }
}

extension String {
    /// Plain substring replacement without Foundation (the redactor's byte search).
    public func replacingAll(_ target: String, with replacement: String) -> String {
        var text = self
        text.makeContiguousUTF8()
        let replaced = text.utf8.withContiguousStorageIfAvailable {
            Redactor.replacingAll(Array(target.utf8), with: Array(replacement.utf8), in: $0)
        } ?? nil
        return replaced ?? self
    }
}
