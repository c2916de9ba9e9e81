import Foundation
@testable import KontextAudit
import KontextCore
import Testing

/// `AuditWitness`: the broker's certificate and countersignatures, recorded in the chain by
/// the real writer and store, checked offline with the broker's public key.
@Suite struct AuditWitnessCheckTests {
    let broker = AuditSigner.generate()
    let session = "witnessed-session"

    /// Eight events; the broker certifies the session key, countersigns #4 (recorded by the
    /// checkpoint #5) and the final head #9, which the final checkpoint #10 seals.
    func witnessedExport(certificateFor certifiedSession: String? = nil, certificateSubject: String = "user:alice",
                         witnessSubject: String = "user:alice") throws -> [JSONValue] {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let signer = AuditSigner.generate()
        let receipts = AuditWitnessReceipts()
        let writer = AuditWriter(store: store, signer: signer, receipts: receipts)
        defer { writer.close() }
        receipts.deposit(sessionID: session, member: "certificate", AuditWitness.certificate(
            sessionID: certifiedSession ?? session, subject: certificateSubject, publicKey: signer.publicKeyBase64,
            issuedAt: AuditTime.now(), by: broker))
        func append(_ command: String) throws {
            try writer.append(AuditEvent(sessionID: session, agent: "claude", event: .preTool, toolName: "Bash",
                                         toolInput: .object([("command", .string(command))])))
        }
        func countersign(final: Bool) throws {
            let head = try #require(try store.chainHead(sessionID: session))
            receipts.deposit(sessionID: session, member: "witness", AuditWitness.countersignature(
                sessionID: session, subject: witnessSubject, seq: head.seq, hash: head.hash ?? "", final: final,
                witnessedAt: AuditTime.now(), by: broker))
        }
        for index in 1...4 { try append("echo \(index)") }
        try countersign(final: false)
        try #require(try writer.checkpoint(sessionID: session, final: false) != nil)
        for index in 6...8 { try append("echo \(index)") }
        try writer.append(AuditEvent(sessionID: session, agent: "claude", event: .sessionEnd))
        try countersign(final: true)
        try #require(try writer.checkpoint(sessionID: session, final: true) != nil)
        return try store.eventObjects(sessionID: session)
    }

    func verify(_ events: [JSONValue], witnessKey: String? = nil) -> AuditChainReport {
        AuditChain.verify(sessionID: session, events: events, witnessKey: witnessKey ?? broker.publicKeyBase64)
    }

    func messages(_ report: AuditChainReport) -> String { report.findings.map(\.message).joined(separator: "\n") }

    @Test func aWitnessedSessionVerifiesWithTheBrokersKeyOnly() throws {
        let events = try witnessedExport()
        #expect(events.count == 10)
        let report = verify(events)
        #expect(report.verified, "\(messages(report))")
        #expect(report.witnessedThrough == 9 && report.witnessSubject == "user:alice")
        let other = verify(events, witnessKey: AuditSigner.generate().publicKeyBase64)
        #expect(!other.verified)
        #expect(messages(other).contains("checkpoint #5 (") && messages(other).contains("the broker (the given witness key) did not sign"),
                "\(messages(other))")
    }

    @Test func aTailCutBelowTheCountersignedHeadIsNamed() throws {
        let events = try witnessedExport()
        // Without the broker's key, a chain cut from its end (seal and all) looks whole.
        let cut = Array(events.prefix(7))
        #expect(AuditChain.verify(sessionID: session, events: cut).verified)
        let report = verify(cut)
        #expect(!report.verified)
        #expect(messages(report).contains("the chain ends at event #7 without a final checkpoint sealing a head the broker countersigned as final (the broker's last countersignature here is for event #4)"),
                "\(messages(report))")
    }

    @Test func aChainRewrittenAndResignedByAForgersKeyIsRefused() throws {
        let events = try witnessedExport()
        let forger = AuditSigner.generate()
        // Event #2 changed, every hash recomputed, every checkpoint signed again by the forger,
        // keeping the broker's certificate and countersignatures as they were.
        var forged: [JSONValue] = []
        var previous: String?
        var hashes: [Int: String] = [:]
        for var event in events {
            let seq = AuditChain.seqOf(event)!
            if seq == 2 { event = setting(event, "tool_input", .object([("command", .string("echo nothing to see"))])) }
            if event["event"]?.stringValue == "checkpoint", let input = event["tool_input"] {
                let signed = AuditChain.seqOf(input)!
                let final = input["final"] == .bool(true)
                var rewritten = setting(input, "hash", .string(hashes[signed]!))
                rewritten = setting(rewritten, "public_key", .string(forger.publicKeyBase64))
                rewritten = setting(rewritten, "signature", .string(forger.sign(
                    AuditCheckpoint.message(sessionID: session, seq: signed, hash: hashes[signed]!, final: final))))
                event = setting(event, "tool_input", rewritten)
            }
            if let previous { event = setting(event, "prev_hash", .string(previous)) }
            let hash = AuditChain.hash(of: event)
            event = setting(event, "hash", .string(hash))
            hashes[seq] = hash
            previous = hash
            forged.append(event)
        }
        // The forgery is a valid chain with valid signatures of its own...
        #expect(AuditChain.verify(sessionID: session, events: forged).verified)
        // ...that the broker's key refuses.
        let report = verify(forged)
        #expect(!report.verified)
        let text = messages(report)
        #expect(text.contains("is signed by \(forger.publicKeyBase64), a key the broker's certificate does not bind to this session"), "\(text)")
        #expect(text.contains("event #4 is not the event the broker witnessed at #4"), "\(text)")
        #expect(text.contains("event #9 is not the event the broker witnessed at #9"), "\(text)")
    }

    @Test func aCertificateForAnotherSessionOrSubjectIsRefused() throws {
        let otherSession = verify(try witnessedExport(certificateFor: "another-session"))
        #expect(!otherSession.verified)
        #expect(messages(otherSession).contains("carries the broker's certificate for another session (another-session), not this one"),
                "\(messages(otherSession))")
        #expect(messages(otherSession).contains("no certificate of the broker (the given witness key) binds a checkpoint key to this session"))

        let otherSubject = verify(try witnessedExport(certificateSubject: "user:mallory"))
        #expect(!otherSubject.verified)
        #expect(messages(otherSubject).contains("carries a countersignature for user:alice, but the broker certified this session for user:mallory"),
                "\(messages(otherSubject))")
    }

    /// `object` with `key` set (replaced in place, or added at the end).
    func setting(_ object: JSONValue, _ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var members) = object else { return object }
        if let index = members.firstIndex(where: { $0.0 == key }) { members[index].1 = value } else { members.append((key, value)) }
        return .object(members)
    }
}
