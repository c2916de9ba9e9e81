import KontextCore
import KontextEnvFile
import KontextExchange
import KontextKeyring

/// Local mode's only accepted subject: a random secret made for one run and held in memory.
public struct LocalSubjectVerifier: SubjectVerifier {
    private let expected: [UInt8]

    public init(secret: String) {
        expected = Array(secret.utf8)
    }

    public func verify(token: String, type: String) async throws(OAuthError) -> Principal {
        let given = Array(token.utf8)
        // Constant time in the length of the expected secret.
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in expected.indices {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        guard difference == 0, type == TokenTypeURN.accessToken else {
            throw OAuthError("invalid_request", "subject_token is not this session's")
        }
        return Principal(subject: "local")
    }

    /// A fresh 256-bit secret, hex encoded.
    public static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }.joined()
    }
}

/// Provider credentials from the OS keyring (`kontext provider add`). A `SERVICE/RESOURCE`
/// placeholder takes the credential stored under that exact name, else the one stored
/// under `SERVICE`.
public struct KeyringVault: CredentialVault {
    public let store: any CredentialStore

    public init(store: any CredentialStore) {
        self.store = store
    }

    public func credential(for placeholder: Placeholder, principal: Principal) async throws(OAuthError) -> String? {
        let store = self.store
        let candidates = placeholder.resource == nil ? [placeholder.target] : [placeholder.target, placeholder.service]
        do {
            return try await offload {
                for key in candidates {
                    if let value = try store.lookup(kind: .provider, key: key) { return value }
                }
                return nil
            }
        } catch {
            throw OAuthError(status: 503, "temporarily_unavailable", "the keyring cannot be read: \(error)")
        }
    }
}
