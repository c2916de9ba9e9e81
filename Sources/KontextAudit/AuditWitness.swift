import Crypto
import Foundation
import KontextCore
import Synchronization

/// The broker as the witness of a remote or CI session's chain (SPEC section 12).
///
/// The broker has an Ed25519 key of its own (`GET /v1/audit/witness-key`). With it, it signs
/// two things the client records in its chain, inside the `tool_input` of its next
/// checkpoint event, so an export carries them:
///
/// - `certificate`: `{"session_id","subject","public_key","issued_at","signature"}`, answered
///   to `POST /v1/sessions` when the client sends the key that signs the session's
///   checkpoints: the broker binds that key to the session and to the principal (`subject`)
///   that created it. Signed over `kontext-audit-certificate-v1\n` + the RFC 8785 JSON of
///   `{"issued_at","public_key","session_id","subject"}`.
/// - `witness`: `{"session_id","subject","seq","hash","final","witnessed_at","signature"}`,
///   answered to `POST /v1/sessions/{id}/checkpoints`: the broker saw the chain's head `seq`
///   with `hash` at `witnessed_at`; `final` when the client reported it as the head its final
///   checkpoint seals. Signed over `kontext-audit-witness-v1\n` + the RFC 8785 JSON of
///   `{"final","hash","seq","session_id","subject","witnessed_at"}`.
///
/// Checked offline with the broker's public key (`kontext audit verify --witness-key`).
public enum AuditWitness {
    static let certificateDomain = "kontext-audit-certificate-v1\n"
    static let witnessDomain = "kontext-audit-witness-v1\n"

    static func certificateMessage(sessionID: String, subject: String, publicKey: String, issuedAt: String) -> [UInt8] {
        let signed = JSONValue.object([("issued_at", .string(issuedAt)), ("public_key", .string(publicKey)),
                                       ("session_id", .string(sessionID)), ("subject", .string(subject))])
        return Array((certificateDomain + signed.canonical).utf8)
    }

    static func witnessMessage(sessionID: String, subject: String, seq: Int, hash: String, final: Bool, witnessedAt: String) -> [UInt8] {
        let signed = JSONValue.object([("final", .bool(final)), ("hash", .string(hash)), ("seq", .number(Double(seq))),
                                       ("session_id", .string(sessionID)), ("subject", .string(subject)),
                                       ("witnessed_at", .string(witnessedAt))])
        return Array((witnessDomain + signed.canonical).utf8)
    }

    /// The broker's certificate binding `publicKey` to the session of `subject`.
    public static func certificate(sessionID: String, subject: String, publicKey: String, issuedAt: String,
                                   by broker: AuditSigner) -> JSONValue {
        let signature = broker.sign(certificateMessage(sessionID: sessionID, subject: subject, publicKey: publicKey, issuedAt: issuedAt))
        return .object([("session_id", .string(sessionID)), ("subject", .string(subject)), ("public_key", .string(publicKey)),
                        ("issued_at", .string(issuedAt)), ("signature", .string(signature))])
    }

    /// The broker's countersignature of a head it received.
    public static func countersignature(sessionID: String, subject: String, seq: Int, hash: String, final: Bool,
                                        witnessedAt: String, by broker: AuditSigner) -> JSONValue {
        let signature = broker.sign(witnessMessage(sessionID: sessionID, subject: subject, seq: seq, hash: hash, final: final,
                                                   witnessedAt: witnessedAt))
        return .object([("session_id", .string(sessionID)), ("subject", .string(subject)), ("seq", .number(Double(seq))),
                        ("hash", .string(hash)), ("final", .bool(final)), ("witnessed_at", .string(witnessedAt)),
                        ("signature", .string(signature))])
    }

}

// MARK: - Recording

/// What the broker answered for a session and its chain does not hold yet: the shipper puts
/// it here, the writer takes it into the session's next checkpoint (`AuditWriter`).
public final class AuditWitnessReceipts: Sendable {
    private let pending = Mutex<[String: [(String, JSONValue)]]>([:])

    public init() {}

    /// Keeps `value` under `member` (`certificate`, `witness`) for the session's next
    /// checkpoint; a later value replaces an earlier one not yet recorded.
    public func deposit(sessionID: String, member: String, _ value: JSONValue) {
        pending.withLock { table in
            var members = table[sessionID, default: []].filter { $0.0 != member }
            members.append((member, value))
            table[sessionID] = members
        }
    }

    /// The members waiting for the session, removed.
    func take(sessionID: String) -> [(String, JSONValue)] {
        pending.withLock { $0.removeValue(forKey: sessionID) ?? [] }
    }

    /// Puts members back that a checkpoint could not record.
    func restore(sessionID: String, _ members: [(String, JSONValue)]) {
        pending.withLock { table in
            let newer = table[sessionID] ?? []
            table[sessionID] = members.filter { old in !newer.contains { $0.0 == old.0 } } + newer
        }
    }
}

// MARK: - Verification

extension AuditWitness {
    /// Checks a session's events against the broker's key `witnessKey` (base64 Ed25519): a
    /// certificate of the broker binds every checkpoint key to this session; every
    /// countersignature is the broker's, for this session and subject, and for an event the
    /// chain holds with that hash; and the chain ends with the final checkpoint sealing the
    /// head the broker countersigned as final. Adds what is wrong to `report`.
    static func check(_ report: inout AuditChainReport, events: [JSONValue], witnessKey: String) {
        func found(_ message: String, seq: Int? = nil, id: String? = nil) {
            report.findings.append(AuditChainFinding(seq: seq, eventID: id, message: message))
        }
        guard let broker = AuditSigner.publicKey(witnessKey) else {
            found("the witness key is not an Ed25519 public key")
            return
        }
        let sessionID = report.sessionID
        var hashes: [Int: String] = [:]
        for event in events {
            if let seq = AuditChain.seqOf(event), let hash = event["hash"]?.stringValue { hashes[seq] = hash }
        }
        var certifiedKeys: [String] = []
        var subjects: [String] = []
        var checkpointKeys: [(name: String, seq: Int?, id: String?, key: String)] = []
        var witnessed: Int?
        var sealWitnessed = false
        for event in events where event["event"]?.stringValue == AuditEventKind.checkpoint.rawValue {
            let seq = AuditChain.seqOf(event)
            let id = event["id"]?.stringValue
            let name = "checkpoint #\(seq.map(String.init) ?? "?") (\(id ?? "no id"))"
            let input = event["tool_input"] ?? .null
            if let key = input["public_key"]?.stringValue { checkpointKeys.append((name, seq, id, key)) }
            if let certificate = input["certificate"] {
                let session = certificate["session_id"]?.stringValue ?? ""
                let subject = certificate["subject"]?.stringValue ?? ""
                let key = certificate["public_key"]?.stringValue ?? ""
                let issued = certificate["issued_at"]?.stringValue ?? ""
                if !AuditSigner.isValid(certificate["signature"]?.stringValue,
                            certificateMessage(sessionID: session, subject: subject, publicKey: key, issuedAt: issued), key: broker) {
                    found("\(name) carries a certificate the broker (the given witness key) did not sign", seq: seq, id: id)
                } else if session != sessionID {
                    found("\(name) carries the broker's certificate for another session (\(session)), not this one", seq: seq, id: id)
                } else {
                    certifiedKeys.append(key)
                    if !subjects.contains(subject) { subjects.append(subject) }
                }
            }
            guard let witness = input["witness"] else { continue }
            let session = witness["session_id"]?.stringValue ?? ""
            let subject = witness["subject"]?.stringValue ?? ""
            let witnessedSeq = AuditChain.seqOf(witness) ?? -1
            let hash = witness["hash"]?.stringValue ?? ""
            let final = witness["final"] == .bool(true)
            let at = witness["witnessed_at"]?.stringValue ?? ""
            guard AuditSigner.isValid(witness["signature"]?.stringValue,
                          witnessMessage(sessionID: session, subject: subject, seq: witnessedSeq, hash: hash, final: final, witnessedAt: at),
                          key: broker) else {
                found("\(name) carries a countersignature the broker (the given witness key) did not sign", seq: seq, id: id)
                continue
            }
            guard session == sessionID else {
                found("\(name) carries the broker's countersignature for another session (\(session)), not this one", seq: seq, id: id)
                continue
            }
            if !subjects.isEmpty, !subjects.contains(subject) {
                found("\(name) carries a countersignature for \(subject), but the broker certified this session for \(subjects.joined(separator: ", "))",
                      seq: seq, id: id)
            }
            guard let held = hashes[witnessedSeq] else {
                found("the broker witnessed event #\(witnessedSeq) (at \(at)), which is not in the chain: it was cut", seq: witnessedSeq)
                continue
            }
            guard held == hash else {
                found("event #\(witnessedSeq) is not the event the broker witnessed at #\(witnessedSeq) (at \(at)): it was changed or the chain rewritten",
                      seq: witnessedSeq)
                continue
            }
            witnessed = max(witnessed ?? 0, witnessedSeq)
            // The seal: the final checkpoint signs the very head the broker countersigned as final.
            if final, input["final"] == .bool(true), AuditChain.seqOf(input) == witnessedSeq, seq == report.headSeq {
                sealWitnessed = true
            }
        }
        report.witnessedThrough = witnessed
        report.witnessSubject = subjects.first
        if certifiedKeys.isEmpty {
            found("no certificate of the broker (the given witness key) binds a checkpoint key to this session")
        } else {
            if subjects.count > 1 {
                found("the broker's certificates here name several subjects (\(subjects.joined(separator: ", "))): they come from different sessions")
            }
            for checkpoint in checkpointKeys where !certifiedKeys.contains(checkpoint.key) {
                found("\(checkpoint.name) is signed by \(checkpoint.key), a key the broker's certificate does not bind to this session",
                      seq: checkpoint.seq, id: checkpoint.id)
            }
        }
        if !sealWitnessed {
            let head = report.headSeq.map { "#\($0)" } ?? "its start"
            let through = witnessed.map { "the broker's last countersignature here is for event #\($0)" } ?? "no countersignature of the broker is valid here"
            found("the chain ends at event \(head) without a final checkpoint sealing a head the broker countersigned as final (\(through)): events may have been cut from its end, or added",
                  seq: report.headSeq)
        }
    }
}
