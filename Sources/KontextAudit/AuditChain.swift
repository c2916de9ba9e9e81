import Crypto
import KontextCore

/// The per-session hash chain of SPEC section 12.
///
/// An event's `hash` is SHA-256 (lowercase hex) over the RFC 8785 canonical JSON of the
/// event's object without its `hash` member, so it covers `prev_hash` and `seq`. The first
/// event's `prev_hash` is the session's genesis: the hash of `{"session_id":ID,"start":TIME}`
/// with TIME the first event's `time` (an export alone is enough to recompute it). Each later
/// event's `prev_hash` is the previous event's `hash`.
///
/// What this shows alone: an event changed, removed from the middle, or moved. What it cannot
/// show alone: events cut from the end, or a whole tail rewritten with fresh hashes by someone
/// who can write the store; signed checkpoints and the broker's copy cover those.
public enum AuditChain {
    public static func genesis(sessionID: String, start: String) -> String {
        sha256Hex(JSONValue.object([("session_id", .string(sessionID)), ("start", .string(start))]).canonical)
    }

    /// The hash an event object should carry: over its canonical JSON without `hash`.
    public static func hash(of object: JSONValue) -> String {
        guard case .object(let members) = object else { return sha256Hex(object.canonical) }
        return sha256Hex(JSONValue.object(members.filter { $0.0 != "hash" }).canonical)
    }

    static func sha256Hex(_ text: String) -> String {
        hex(SHA256.hash(data: Array(text.utf8)))
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for byte in digest {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

// MARK: - Verification

/// One thing wrong with a session's chain, naming the event it was found at.
public struct AuditChainFinding: Sendable, Equatable, CustomStringConvertible {
    public var seq: Int?
    public var eventID: String?
    public var message: String
    public var description: String { message }

    public init(seq: Int?, eventID: String?, message: String) {
        self.seq = seq
        self.eventID = eventID
        self.message = message
    }
}

/// The state of one session's chain as read from the store, an export or the broker.
public struct AuditChainReport: Sendable, Equatable {
    public var sessionID: String
    public var eventCount: Int
    /// The last event's `seq` and `hash` in the order read.
    public var headSeq: Int?
    public var headHash: String?
    /// Whether the events include the session's `session-end`.
    public var ended: Bool
    public var findings: [AuditChainFinding]
    public var verified: Bool { findings.isEmpty }
    /// The highest `seq` a valid signed checkpoint covers, and the keys that signed.
    public var signedThrough: Int?
    public var signingKeys: [String] = []
    /// Whether a final checkpoint sealed the session.
    public var sealed = false
    /// With a witness key: the highest `seq` the broker countersigned, and the principal its
    /// certificate names (`AuditWitness`).
    public var witnessedThrough: Int?
    public var witnessSubject: String?
}

extension AuditChain {
    /// Verifies every session in `objects` (event objects in the order read, sessions
    /// interleaved as in a whole-store export), each in the order its first event appears.
    public static func verify(objects: [JSONValue], trustedKey: String? = nil, requireSignature: Bool = false,
                              witnessKey: String? = nil) -> [AuditChainReport] {
        var order: [String] = []
        var bySession: [String: [JSONValue]] = [:]
        for object in objects {
            let session = object["session_id"]?.stringValue ?? ""
            if bySession[session] == nil { order.append(session) }
            bySession[session, default: []].append(object)
        }
        return order.map {
            verify(sessionID: $0, events: bySession[$0]!, trustedKey: trustedKey, requireSignature: requireSignature, witnessKey: witnessKey)
        }
    }

    /// Checks each link of one session's events in the order given: its content against its
    /// `hash`, its `seq` against its place, its `prev_hash` against the event before (or the
    /// genesis), that nothing follows the final checkpoint that sealed the session (an agent
    /// may go on after a `session-end`: Claude Code's `/clear`), and each checkpoint's
    /// signature and the head it signs. With `trustedKey` (base64 Ed25519 public key), checkpoints must be signed by
    /// it and there must be one; an ended session must then be sealed by a final one. With
    /// `after`, the events continue a chain already checked up to that event (the broker's
    /// ingest). With `witnessKey` (the broker's, base64 Ed25519), the broker's certificate and
    /// countersignatures the chain carries are checked too (`AuditWitness`).
    public static func verify(sessionID: String, events: [JSONValue], after: (seq: Int, hash: String)? = nil,
                              trustedKey: String? = nil, requireSignature: Bool = false, witnessKey: String? = nil) -> AuditChainReport {
        var report = AuditChainReport(sessionID: sessionID, eventCount: events.count, ended: false, findings: [])
        let seqs = events.map(seqOf)
        var expectedSeq = (after?.seq ?? 0) + 1
        var previous: (hash: String, name: String)? = after.map { ($0.hash, "event #\($0.seq)") }
        var seal: String?
        // Hashes by seq, for the heads checkpoints sign; before `after`, only its own is known.
        var hashes: [Int: String] = after.map { [$0.seq: $0.hash] } ?? [:]
        var checkpoints = 0
        for (index, object) in events.enumerated() {
            let seq = seqs[index]
            let id = object["id"]?.stringValue
            let name = "event #\(seq.map(String.init) ?? "?") (\(id ?? "no id"))"
            func found(_ message: String) {
                report.findings.append(AuditChainFinding(seq: seq, eventID: id, message: message))
            }
            guard let hash = object["hash"]?.stringValue, let prevHash = object["prev_hash"]?.stringValue else {
                found("\(name) has no hash: the session was recorded before hash chaining, or the hashes were removed")
                return report
            }
            let isCheckpoint = object["event"]?.stringValue == AuditEventKind.checkpoint.rawValue
            if let seal {
                found("\(name) was appended after the session ended (sealed by its final checkpoint \(seal))")
            }
            if AuditChain.hash(of: object) != hash {
                found("\(name) was changed: its content does not match its hash")
            }
            let seqValue = seq ?? -1
            var linked = true
            if seqValue > expectedSeq {
                let missing = expectedSeq..<seqValue
                if seqs[(index + 1)...].contains(where: { later in later.map { missing.contains($0) } ?? false }) {
                    found("\(name) is out of order: an earlier event comes after it")
                } else {
                    let range = missing.count == 1 ? "#\(expectedSeq) is" : "#\(expectedSeq)–#\(seqValue - 1) are"
                    found("event \(range) missing before \(name): deleted from the chain")
                }
                linked = false
            } else if seqValue < expectedSeq {
                found("\(name) is out of order: expected #\(expectedSeq) here")
                linked = false
            }
            if linked {
                let expected = previous?.hash
                    ?? genesis(sessionID: sessionID, start: object["time"]?.stringValue ?? "")
                if prevHash != expected {
                    found(previous.map { "\(name) does not follow \($0.name): its prev_hash is not that event's hash (one of them was changed or replaced)" }
                          ?? "\(name) does not start the session's chain: its prev_hash is not the session's genesis")
                }
            }
            if object["event"]?.stringValue == AuditEventKind.sessionEnd.rawValue {
                report.ended = true
            }
            if isCheckpoint {
                checkpoints += 1
                let input = object["tool_input"] ?? .null
                let signedSeq = seqOf(input) ?? -1
                if let problem = AuditCheckpoint.signatureProblem(object, sessionID: sessionID, trustedKey: trustedKey) {
                    found("checkpoint \(name) \(problem)")
                } else if signedSeq >= seqValue || (hashes[signedSeq] == nil && signedSeq > (after?.seq ?? 0)) {
                    found("checkpoint \(name) signs event #\(signedSeq), which is not before it in the chain")
                } else if let known = hashes[signedSeq], known != input["hash"]?.stringValue {
                    found("checkpoint \(name) signed event #\(signedSeq) with another hash: the chain was rewritten after it was signed")
                } else {
                    report.signedThrough = max(report.signedThrough ?? 0, signedSeq)
                    if let key = input["public_key"]?.stringValue, !report.signingKeys.contains(key) { report.signingKeys.append(key) }
                    if input["final"] == .bool(true), seal == nil {
                        seal = name
                        report.sealed = true
                    }
                }
            }
            if let seq { hashes[seq] = hash }
            previous = (hash, name)
            expectedSeq = max(expectedSeq, seqValue + 1)
            report.headSeq = seq
            report.headHash = hash
        }
        if requireSignature, report.signedThrough == nil {
            report.findings.append(AuditChainFinding(seq: nil, eventID: nil, message: "no checkpoint signed by the given key"))
        }
        if (trustedKey != nil || checkpoints > 0) && report.ended && !report.sealed {
            report.findings.append(AuditChainFinding(seq: report.headSeq, eventID: nil, message:
                "the session ended, but no final signed checkpoint seals it: its last events may have been changed, cut or added"))
        }
        if let witnessKey {
            AuditWitness.check(&report, events: events, witnessKey: witnessKey)
        }
        return report
    }

    public static func seqOf(_ object: JSONValue) -> Int? {
        guard case .number(let value)? = object["seq"], value == value.rounded(), value >= 0, value < 9e15 else { return nil }
        return Int(value)
    }
}

// MARK: - Appending

/// An event with its JSON text and its canonical text prepared by the appending thread, so
/// the writer thread (the serial part of ingest) only splices in `seq` and `prev_hash` and
/// hashes.
struct PreparedEvent: Sendable {
    var event: AuditEvent
    /// Stored text: head + seq + tail + `,"prev_hash":…,"hash":…}`.
    private var jsonHead: String
    private var jsonTail: String
    /// Canonical text: head + prev_hash + middle + seq + tail ("prev_hash" sorts before "seq").
    private var canonicalHead: String
    private var canonicalMiddle: String
    private var canonicalTail: String

    init(_ event: AuditEvent) {
        self.event = event
        guard case .object(let all) = event.json, all.count > 3, all[2].0 == "seq" else {
            preconditionFailure("AuditEvent.json starts with id, session_id, seq")
        }
        let members = all.filter { $0.0 != "prev_hash" && $0.0 != "hash" }

        var head = "{"
        for (key, value) in members[..<2] {
            JSONValue.writeString(key, to: &head)
            head += ":"
            value.write(to: &head)
            head += ","
        }
        jsonHead = head + "\"seq\":"
        // The remaining members as an object, with its "{" turned into the separator and its
        // "}" left for the hashes.
        var tail = JSONValue.object(Array(members[3...])).serialized
        tail.replaceSubrange(tail.startIndex...tail.startIndex, with: ",")
        tail.removeLast()
        jsonTail = tail

        let sorted = JSONValue.canonicalOrder(members.filter { $0.0 != "seq" } + [("prev_hash", .null), ("seq", .null)])
        let texts = sorted.map { key, value in
            var text = ""
            JSONValue.writeCanonicalString(key, to: &text)
            text += ":"
            if key != "prev_hash" && key != "seq" { value.writeCanonical(to: &text) }
            return text
        }
        let prevIndex = sorted.firstIndex { $0.0 == "prev_hash" }!
        let seqIndex = sorted.firstIndex { $0.0 == "seq" }!
        canonicalHead = "{" + texts[..<prevIndex].map { $0 + "," }.joined() + texts[prevIndex]
        canonicalMiddle = "," + texts[(prevIndex + 1)..<seqIndex].map { $0 + "," }.joined() + texts[seqIndex]
        canonicalTail = texts[(seqIndex + 1)...].map { "," + $0 }.joined() + "}"
    }

    /// The event's hash once it has its place.
    func hash(seq: Int, prevHash: String?) -> String {
        var prev = ""
        if let prevHash { JSONValue.writeCanonicalString(prevHash, to: &prev) } else { prev = "null" }
        var hasher = SHA256()
        hasher.update(data: Array(canonicalHead.utf8))
        hasher.update(data: Array(prev.utf8))
        hasher.update(data: Array(canonicalMiddle.utf8))
        hasher.update(data: Array(String(seq).utf8))
        hasher.update(data: Array(canonicalTail.utf8))
        return AuditChain.hex(hasher.finalize())
    }

    func jsonText(seq: Int, prevHash: String?, hash: String?) -> String {
        var text = jsonHead + String(seq) + jsonTail + ",\"prev_hash\":"
        if let prevHash { JSONValue.writeString(prevHash, to: &text) } else { text += "null" }
        text += ",\"hash\":"
        if let hash { JSONValue.writeString(hash, to: &text) } else { text += "null" }
        return text + "}"
    }
}
