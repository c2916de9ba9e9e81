import KontextAudit
import KontextBrokerStore
import KontextCore
import KontextEnvFile

/// `kontext broker provider add|list|remove|rekey`: the vault, on the database the servers use.
public struct BrokerAdmin: Sendable {
    public let store: any BrokerStore
    public let cipher: VaultCipher

    public init(store: any BrokerStore, cipher: VaultCipher) {
        self.store = store
        self.cipher = cipher
    }

    /// Opens the database of `--db` / broker.toml with the configured vault keys.
    public static func open(configPath: String, database: String?, environment: [String: String]) async throws -> BrokerAdmin {
        let config = try BrokerConfig.load(path: configPath)
        let cipher = try config.cipher(environment: environment)
        let store = try await BrokerServe.openStore(config: config, database: database, environment: environment)
        return BrokerAdmin(store: store, cipher: cipher)
    }

    /// Stores (or replaces) a static key, or an OAuth connection whose `secret` is the
    /// refresh token. `owner` is a principal name, `""` for the organisation.
    public func add(target: String, owner: String, kind: StoredCredential.Kind, secret: String) async throws {
        let value = kind == .oauth ? JSONValue.object([("refresh_token", .string(secret))]).serialized : secret
        let sealed = try cipher.seal(value, context: StoredCredential.sealingContext(owner: owner, target: target, kind: kind))
        try await store.putCredential(StoredCredential(owner: owner, target: target, kind: kind, sealed: sealed,
                                                       updatedAt: AuditTime.now()))
    }

    public func list() async throws -> [StoredCredential] {
        try await store.credentials()
    }

    public func remove(target: String, owner: String) async throws -> Bool {
        try await store.removeCredential(owner: owner, target: target)
    }

    /// Reseals every credential with the current key, so old keys can be retired. Returns
    /// how many rows changed.
    public func rekey() async throws -> Int {
        var changed = 0
        for row in try await store.credentials() where row.sealed.keyID != cipher.currentKeyID {
            let plain = try cipher.open(row.sealed, context: row.sealingContext)
            var updated = row
            updated.sealed = try cipher.seal(plain, context: row.sealingContext)
            if try await store.replaceCredential(updated, expectedVersion: row.version) { changed += 1 }
        }
        _ = try await AuditWitnessKey.load(store: store, cipher: cipher)
        return changed
    }

    public func close() async {
        await store.close()
    }
}
