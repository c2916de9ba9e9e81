import KontextAudit
import KontextAuditShipping
import KontextCore
import KontextKeyring

/// The key that signs a session's audit checkpoints (SPEC section 12).
public enum AuditSigning {
    static let keyName = "default"

    /// Local and remote mode: the keyring's key, made and stored on first use. A CI job keeps
    /// nothing: it signs with a key of its own run. A keyring that cannot be used gives a
    /// one-time key too, with a warning, rather than no audit.
    static func signer(identity: RunIdentity, settings: Settings) -> AuditSigner {
        guard identity.workload == nil else { return AuditSigner.generate() }
        do {
            return try keyringSigner(settings: settings, create: true)!
        } catch {
            printError("kontext: warning: cannot use the keyring for the audit signing key (\(error)); this session's checkpoints are signed with a one-time key")
            return AuditSigner.generate()
        }
    }

    /// The keyring's signing key; nil when there is none and `create` is false.
    public static func keyringSigner(settings: Settings, create: Bool) throws -> AuditSigner? {
        let store = try CredentialStores.open(settings: settings)
        if let stored = try store.lookup(kind: .auditSigningKey, key: keyName) {
            return try AuditSigner(privateKeyBase64: stored)
        }
        guard create else { return nil }
        let signer = AuditSigner.generate()
        try store.store(signer.privateKeyBase64, kind: .auditSigningKey, key: keyName, label: "kontext audit signing key")
        return signer
    }
}

/// The session's audit writer, signing checkpoints with the session's key, and what its
/// shipper needs to have the broker witness them (`AuditWitness`).
func sessionAuditWriter(store: AuditStore, identity: RunIdentity, settings: Settings,
                        sessionID: String) -> (writer: AuditWriter, witnessing: AuditWitnessing) {
    let signer = AuditSigning.signer(identity: identity, settings: settings)
    let receipts = AuditWitnessReceipts()
    return (AuditWriter(store: store, signer: signer, receipts: receipts),
            AuditWitnessing(sessionID: sessionID, publicKey: signer.publicKeyBase64, receipts: receipts))
}

extension AuditWriter {
    /// Seals the session's chain with a final signed checkpoint, carrying the broker's
    /// countersignature of the head it seals when there is a broker; a failure is reported,
    /// not fatal (the events are recorded; only their seal is missing).
    func seal(sessionID: String, witness shipper: BackgroundShipper?) async {
        await shipper?.witnessFinalHead(within: 5)
        do {
            try checkpoint(sessionID: sessionID, final: true)
        } catch {
            printError("kontext: warning: the audit chain of session \(sessionID) was not sealed: \(error)")
        }
    }
}
