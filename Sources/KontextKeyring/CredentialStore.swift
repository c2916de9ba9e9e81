import KontextCore

/// What a stored secret is for: each kind is its own namespace of keys.
public enum CredentialKind: String, Sendable {
    /// A provider credential for local mode (`kontext provider add`), keyed `SERVICE[/RESOURCE]`.
    case provider
    /// A login (`kontext login`): refresh and access tokens with the ID token's claims, as
    /// JSON, keyed by issuer and client id.
    case oidcSession = "oidc-session"
    /// The Ed25519 private key that signs audit checkpoints (SPEC section 12), base64, keyed
    /// `default`; made on first use.
    case auditSigningKey = "audit-signing-key"
}

/// Where secrets live: the OS keyring by default (SPEC section 3, `KONTEXT_KEYRING`).
public protocol CredentialStore: Sendable {
    func store(_ secret: String, kind: CredentialKind, key: String, label: String) throws
    func lookup(kind: CredentialKind, key: String) throws -> String?
    /// Returns whether anything was removed.
    func remove(kind: CredentialKind, key: String) throws -> Bool
    func keys(kind: CredentialKind) throws -> [String]
}

public enum CredentialStores {
    /// The store `KONTEXT_KEYRING` selects: `secret-service` (default) or `file`.
    public static func open(settings: Settings) throws -> any CredentialStore {
        switch settings.keyring ?? "secret-service" {
        case "secret-service":
            return SecretServiceStore(environment: settings.environment)
        case "file":
            let store = FileCredentialStore(directory: XDGDirectories(environment: settings.environment).data + "/kontext")
            printError("kontext: warning: \(Settings.Name.keyring)=file keeps credentials unencrypted in \(store.path) (mode 0600)")
            return store
        case let other:
            throw KontextError.usage("\(Settings.Name.keyring)=\(other) is not a keyring kontext knows",
                                     hint: "use secret-service (the default) or file")
        }
    }
}
