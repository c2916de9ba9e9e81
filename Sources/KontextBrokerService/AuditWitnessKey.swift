import KontextAudit
import KontextBrokerStore
import KontextCore

/// The broker's Ed25519 key that certifies sessions' checkpoint keys and countersigns the
/// chain heads clients report (`AuditWitness`). Made by the first broker to start on a
/// database and kept there sealed with the vault key, like a credential, so every replica
/// and every restart signs with the same key.
enum AuditWitnessKey {
    static let name = "audit-witness"
    static let sealingContext = "kontext-broker-key\u{0}audit-witness"

    /// The key, made and stored on first use, and resealed with the current vault key when
    /// an older one sealed it (so the old vault key can go, as after `provider rekey`). nil
    /// when no configured vault key opens it: the broker then runs without a witness.
    static func load(store: any BrokerStore, cipher: VaultCipher) async throws -> AuditSigner? {
        let candidate = try cipher.seal(AuditSigner.generate().privateKeyBase64, context: sealingContext)
        let stored = try await store.brokerKey(name: name, storingIfAbsent: candidate, at: AuditTime.now())
        guard let text = try? cipher.open(stored, context: sealingContext), let signer = try? AuditSigner(privateKeyBase64: text) else {
            return nil
        }
        if stored.keyID != cipher.currentKeyID {
            _ = try await store.resealBrokerKey(name: name, from: stored, to: try cipher.seal(text, context: sealingContext))
        }
        return signer
    }
}
