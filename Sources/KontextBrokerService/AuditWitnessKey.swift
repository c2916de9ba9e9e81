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

    static func load(store: any BrokerStore, cipher: VaultCipher) async throws -> AuditSigner {
        let candidate = try cipher.seal(AuditSigner.generate().privateKeyBase64, context: sealingContext)
        let stored = try await store.brokerKey(name: name, storingIfAbsent: candidate, at: AuditTime.now())
        do {
            return try AuditSigner(privateKeyBase64: try cipher.open(stored, context: sealingContext))
        } catch {
            throw KontextError.usage("the broker's audit witness key (sealed with vault key '\(stored.keyID)') cannot be opened",
                                     hint: "keep every vault key that sealed a row listed in the vault keys")
        }
    }
}
