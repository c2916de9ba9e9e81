import Crypto
import Foundation
import KontextCore

/// The Ed25519 key that signs a session's chain heads (SPEC section 12's signed checkpoints).
/// Local and remote mode keep one in the OS keyring, made on first use; a CI job, which keeps
/// nothing, signs with a key of its own run (its evidence is the broker's copy).
public struct AuditSigner: Sendable {
    let key: Curve25519.Signing.PrivateKey

    public static func generate() -> AuditSigner {
        AuditSigner(key: Curve25519.Signing.PrivateKey())
    }

    /// From `privateKeyBase64` (the keyring's form).
    public init(privateKeyBase64 text: String) throws {
        guard let bytes = Data(base64Encoded: text), bytes.count == 32,
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes) else {
            throw KontextError.usage("the audit signing key in the keyring is not an Ed25519 key",
                                     hint: "remove it (kind audit-signing-key) and kontext makes a new one")
        }
        self.key = key
    }

    init(key: Curve25519.Signing.PrivateKey) {
        self.key = key
    }

    /// The private key for the keyring: standard base64 of its 32 raw bytes.
    public var privateKeyBase64: String { key.rawRepresentation.base64EncodedString() }
    /// Standard base64 of the 32 raw bytes of the public key (`kontext audit verify --public-key`).
    public var publicKeyBase64: String { key.publicKey.rawRepresentation.base64EncodedString() }

    /// Whether `text` is an Ed25519 public key in this form.
    public static func isPublicKey(_ text: String) -> Bool {
        publicKey(text) != nil
    }

    /// The Ed25519 public key in that form; nil when `text` is not one.
    static func publicKey(_ text: String) -> Curve25519.Signing.PublicKey? {
        Data(base64Encoded: text).flatMap { try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }
    }

    /// Whether `signatureText` (standard base64) is `key`'s signature over `message`.
    static func isValid(_ signatureText: String?, _ message: [UInt8], key: Curve25519.Signing.PublicKey) -> Bool {
        guard let signatureText, let signature = Data(base64Encoded: signatureText) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    func sign(_ message: [UInt8]) -> String {
        // Ed25519 signing fails only for a broken key; such a key never got here.
        ((try? key.signature(for: message)) ?? Data()).base64EncodedString()
    }
}

/// When a session's head is signed: after every `everyEvents` events, when `everySeconds`
/// have passed since the last checkpoint and there are new events, and at the session's end.
public struct AuditCheckpointPolicy: Sendable {
    public var everyEvents: Int
    public var everySeconds: Double

    public init(everyEvents: Int = 100, everySeconds: Double = 60) {
        self.everyEvents = max(1, everyEvents)
        self.everySeconds = everySeconds
    }
}

/// A checkpoint is an event of the chain (`"event":"checkpoint"`), so an export carries its
/// signatures and the backend receives them with the events. Its `tool_input`:
/// `{"seq":S,"hash":H,"final":F,"public_key":K,"signature":SIG}`: the head it signs (event
/// `S` with hash `H`), whether the session ended there, the Ed25519 public key and the
/// signature over `kontext-audit-checkpoint-v1\n` + the RFC 8785 JSON of
/// `{"final":F,"hash":H,"seq":S,"session_id":ID}`.
public enum AuditCheckpoint {
    static let domain = "kontext-audit-checkpoint-v1\n"

    static func message(sessionID: String, seq: Int, hash: String, final: Bool) -> [UInt8] {
        let signed = JSONValue.object([("final", .bool(final)), ("hash", .string(hash)), ("seq", .number(Double(seq))),
                                       ("session_id", .string(sessionID))])
        return Array((domain + signed.canonical).utf8)
    }

    /// The checkpoint event signing `head` of the session `template` belongs to.
    /// `witnessed` (the broker's `certificate` and `witness`, `AuditWitness`) goes beside the
    /// signature: it is the broker's signed word, covered by the chain's hashes.
    static func event(signing head: (seq: Int, hash: String), final: Bool, signer: AuditSigner, like template: AuditEvent,
                      witnessed: [(String, JSONValue)] = []) -> AuditEvent {
        let signature = signer.sign(message(sessionID: template.sessionID, seq: head.seq, hash: head.hash, final: final))
        return AuditEvent(sessionID: template.sessionID, agent: template.agent, event: .checkpoint,
                          toolInput: .object([("seq", .number(Double(head.seq))), ("hash", .string(head.hash)),
                                              ("final", .bool(final)), ("public_key", .string(signer.publicKeyBase64)),
                                              ("signature", .string(signature))] + witnessed),
                          actor: template.actor, host: template.host, cwd: template.cwd)
    }

    /// What is wrong with a checkpoint event's signature, or nil when it is valid.
    static func signatureProblem(_ object: JSONValue, sessionID: String, trustedKey: String?) -> String? {
        let input = object["tool_input"] ?? .null
        guard let seq = AuditChain.seqOf(input), let hash = input["hash"]?.stringValue,
              case .bool(let final)? = input["final"], let keyText = input["public_key"]?.stringValue,
              let signatureText = input["signature"]?.stringValue else {
            return "is not a well-formed checkpoint"
        }
        guard let key = AuditSigner.publicKey(keyText),
              AuditSigner.isValid(signatureText, message(sessionID: sessionID, seq: seq, hash: hash, final: final), key: key) else {
            return "has an invalid signature"
        }
        if let trustedKey, trustedKey != keyText {
            return "is signed by another key (\(keyText)) than the one given"
        }
        return nil
    }
}
