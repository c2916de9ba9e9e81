import Foundation
@testable import KontextAudit
import KontextCore
import Testing

/// RFC 8785 canonical JSON, against the RFC's own examples.
@Suite struct CanonicalJSONTests {
    @Test func numbersAreWrittenAsECMAScriptDoes() {
        // RFC 8785 appendix B and section 3.2.2.3.
        let cases: [(Double, String)] = [
            (0, "0"), (-0.0, "0"), (1, "1"), (-1, "-1"), (4.50, "4.5"), (0.002, "0.002"), (2e-3, "0.002"),
            (1e21, "1e+21"), (1e20, "100000000000000000000"), (1e-7, "1e-7"), (0.000001, "0.000001"),
            (123e-20, "1.23e-18"), (333333333.3333333, "333333333.3333333"), (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (9007199254740992, "9007199254740992"),
            (295147905179352830000, "295147905179352830000"), (-1.5e-9, "-1.5e-9"), (1e23, "1e+23"),
            (999999999999999900000, "999999999999999900000"), (0.1, "0.1"), (1.0e-6 * 1.5, "0.0000015"),
        ]
        for (value, expected) in cases {
            #expect(JSONValue.canonicalNumber(value) == expected, "\(value)")
        }
    }

    @Test func keysSortByUTF16CodeUnitsAndStringsEscapeOnlyWhatTheRFCRequires() throws {
        // RFC 8785 section 3.2.3's sorting example.
        let value = try JSONValue.parse(#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#)
        let keys = try #require(try JSONValue.parse(value.canonical).objectValue).map(\.0)
        #expect(keys == ["\r", "1", "\u{80}", "\u{f6}", "\u{20ac}", "\u{1F600}", "\u{fb33}"])
        #expect(JSONValue.object([("a", .string("\u{7f}\u{2028}\u{8}\u{c}\u{1}\"\\/é"))]).canonical
                == "{\"a\":\"\u{7f}\u{2028}\\b\\f\\u0001\\\"\\\\/é\"}")
        #expect(try JSONValue.parse(#"{"b":[1,{"d":true,"c":null}],"a":"x"}"#).canonical
                == #"{"a":"x","b":[1,{"c":null,"d":true}]}"#)
    }

    /// The byte-run writer the chain uses and the scalar-by-scalar one (taken when `extra` is
    /// given) write every string alike: random mixes of escapes, ASCII, and 2-, 3- and 4-byte
    /// scalars, at the edges of the string too.
    @Test func theFastStringWriterAgreesWithTheScalarOne() throws {
        let pieces: [String] = ["\"", "\\", "\u{0}", "\u{1f}", "\n", "\t", "\u{8}", "a", "/", "\u{7f}", "é", "\u{2028}",
                                "€", "\u{1F600}", "e\u{301}", "plain text ", "\r\n"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let text = (0..<Int.random(in: 0...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            var fast = "", scalar = ""
            JSONValue.writeCanonicalString(text, to: &fast)
            JSONValue.writeCanonicalString(text, to: &scalar, extra: { _ in nil })
            #expect(fast == scalar, "\(Array(text.unicodeScalars))")
            #expect(try JSONValue.parse("[" + fast + "]") == .array([.string(text)]))
        }
    }
}

/// The hash chain of SPEC section 12 and `kontext audit verify`'s checks, against the real
/// SQLite store and its real export: every kind of tampering the issue names is found and
/// named, and an untouched session verifies.
@Suite struct AuditChainTests {
    /// A finished session of eight events, recorded through the writer; `sealed`: signed, with
    /// kontext's final checkpoint as the ninth.
    func recordedSession(_ store: AuditStore, id: String = "chain-session", sealed: Bool = false) throws -> [AuditEvent] {
        let writer = AuditWriter(store: store, signer: sealed ? AuditSigner.generate() : nil)
        defer { writer.close() }
        var events: [AuditEvent] = []
        events.append(try writer.append(AuditEvent(sessionID: id, agent: "claude", event: .sessionStart)))
        events.append(try writer.append(AuditEvent(sessionID: id, agent: "claude", event: .userPrompt,
                                                   toolInput: AuditEvent.promptInput("list the files, 1.5e-7 ✓"))))
        for command in ["ls -la", "curl https://example.com", "cat README.md"] {
            events.append(try writer.append(fullEvent(session: id, command: command)))
        }
        events.append(try writer.append(AuditEvent(sessionID: id, agent: "claude", event: .postTool, toolName: "Bash",
                                                   toolResponse: .object([("stdout", .string("ok\n")), ("exit", .number(0.25))]))))
        events.append(try writer.append(AuditEvent(sessionID: id, agent: "claude", event: .stop)))
        events.append(try writer.append(AuditEvent(sessionID: id, agent: "claude", event: .sessionEnd)))
        if sealed, let seal = try writer.checkpoint(sessionID: id, final: true) { events.append(seal) }
        return events
    }

    func verifyStore(_ store: AuditStore, _ session: String = "chain-session") throws -> AuditChainReport {
        AuditChain.verify(sessionID: session, events: try store.eventObjects(sessionID: session))
    }

    @Test func everyEventIsChainedToThePreviousFromTheSessionsGenesis() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let events = try recordedSession(store)
        #expect(events[0].prevHash == AuditChain.genesis(sessionID: "chain-session", start: events[0].time))
        for (previous, event) in zip(events, events.dropFirst()) {
            #expect(event.prevHash == previous.hash)
        }
        for event in events {
            #expect(event.hash == AuditChain.hash(of: event.json))
            #expect(event.hash?.count == 64)
        }
        let report = try verifyStore(store)
        #expect(report.verified, "\(report.findings)")
        #expect(report.ended && report.eventCount == 8 && report.headSeq == 8 && report.headHash == events.last?.hash)
        // A second session in the same store has its own chain.
        let other = try recordedSession(store, id: "other-session")
        #expect(other[0].prevHash == AuditChain.genesis(sessionID: "other-session", start: other[0].time))
        #expect(try verifyStore(store, "other-session").verified)
    }

    /// A chain continued by a later writer (another kontext process) links to the stored head.
    @Test func aNewWriterContinuesTheStoredChain() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let first = AuditWriter(store: store)
        let one = try first.append(fullEvent(session: "s"))
        first.close()
        let second = AuditWriter(store: try AuditStore(path: directory.file("audit.db")))
        let two = try second.append(fullEvent(session: "s"))
        second.close()
        #expect(two.prevHash == one.hash)
        #expect(try verifyStore(store, "s").verified)
    }

    // MARK: Tampering with the SQLite store

    /// Each tampering on a fresh copy of the same session.
    func tamperedStore(sealed: Bool = false, _ tamper: (AuditStore, [AuditEvent]) throws -> Void) throws -> AuditChainReport {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let events = try recordedSession(store, sealed: sealed)
        #expect(try verifyStore(store).verified)
        try tamper(store, events)
        return try verifyStore(store)
    }

    /// Raw SQL, as anyone who can write the file could run it.
    func run(_ store: AuditStore, _ sql: String, _ values: [String?]) throws {
        try store.pool.write { db in try db.execute(sql: sql, arguments: .init(values)) }
    }

    @Test func aDeletedEventIsNamed() throws {
        let report = try tamperedStore { store, events in
            try run(store, "DELETE FROM events WHERE id = ?", [events[3].id])
        }
        #expect(!report.verified)
        #expect(report.findings.first?.message.contains("#4 is missing before event #5 (\(report.findings.first?.eventID ?? ""))") == true,
                "\(report.findings)")
    }

    @Test func aChangedEventIsNamed() throws {
        let report = try tamperedStore { store, events in
            // What an agent hiding its call would do: rewrite the command in place.
            try run(store, "UPDATE events SET json = replace(json, 'curl https://example.com', 'ls') WHERE id = ?", [events[3].id])
        }
        let first = try #require(report.findings.first)
        #expect(first.seq == 4 && first.message.contains("was changed"), "\(report.findings)")
    }

    @Test func aChangedEventWithARecomputedHashIsCaughtAtTheNextLink() throws {
        var changedID = ""
        let report = try tamperedStore { store, events in
            var forged = events[3]
            forged.toolInput = .object([("command", .string("ls"))])
            forged.hash = AuditChain.hash(of: forged.json)
            changedID = forged.id
            try run(store, "UPDATE events SET json = ?, hash = ? WHERE id = ?", [forged.json.serialized, forged.hash, forged.id])
        }
        let first = try #require(report.findings.first)
        #expect(first.seq == 5 && first.message.contains("does not follow event #4 (\(changedID))"), "\(report.findings)")
    }

    @Test func reorderedEventsAreNamed() throws {
        let report = try tamperedStore { store, events in
            // Swap the order of #3 and #4 as the store reads it.
            try run(store, "UPDATE events SET seq = -1 WHERE id = ?", [events[2].id])
            try run(store, "UPDATE events SET seq = 3 WHERE id = ?", [events[3].id])
            try run(store, "UPDATE events SET seq = 4 WHERE id = ?", [events[2].id])
        }
        let first = try #require(report.findings.first)
        #expect(first.seq == 4 && first.message.contains("out of order"), "\(report.findings)")
    }

    @Test func anEventAppendedAfterTheEndIsNamedEvenWithAValidLink() throws {
        var appendedID = ""
        let report = try tamperedStore(sealed: true) { store, events in
            // A forger who knows the scheme: the right seq, prev_hash and hash.
            var forged = fullEvent(session: "chain-session", command: "innocent")
            forged.seq = 10
            forged.prevHash = events.last!.hash
            forged.hash = AuditChain.hash(of: forged.json)
            appendedID = forged.id
            try run(store, """
                INSERT INTO events (id, session_id, seq, time, event, json, hash) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, [forged.id, forged.sessionID, "10", forged.time, "pre-tool", forged.json.serialized, forged.hash])
        }
        #expect(report.findings.count == 1)
        let first = try #require(report.findings.first)
        #expect(first.eventID == appendedID && first.message.contains("appended after the session ended"), "\(report.findings)")
    }

    // MARK: Tampering with an export

    func exportLines() throws -> [String] {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        _ = try recordedSession(store, sealed: true)
        _ = try recordedSession(store, id: "second-session", sealed: true)
        let path = directory.file("export.jsonl")
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try AuditExport.write(store: store, format: .jsonl, to: fd)
        close(fd)
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func verifyLines(_ lines: [String]) throws -> [AuditChainReport] {
        AuditChain.verify(objects: try lines.map { try JSONValue.parse($0) })
    }

    @Test func anUntouchedExportVerifiesAndEachTamperingIsNamed() throws {
        let lines = try exportLines()
        #expect(lines.count == 18)
        let untouched = try verifyLines(lines)
        #expect(untouched.map(\.sessionID) == ["chain-session", "second-session"])
        #expect(untouched.allSatisfy { $0.verified })
        func id(_ line: String) -> String { (try? JSONValue.parse(line))?["id"]?.stringValue ?? "" }

        var deleted = lines
        deleted.remove(at: 2)
        var report = try verifyLines(deleted)[0]
        #expect(report.findings.first?.eventID == id(lines[3]) && report.findings.first?.message.contains("#3 is missing") == true)
        #expect(try verifyLines(deleted)[1].verified, "the other session is untouched")

        var changed = lines
        changed[4] = changed[4].replacingOccurrences(of: "cat README.md", with: "cat NOTES.md")
        report = try verifyLines(changed)[0]
        #expect(report.findings.first?.eventID == id(lines[4]) && report.findings.first?.message.contains("was changed") == true)

        var reordered = lines
        reordered.swapAt(5, 6)
        report = try verifyLines(reordered)[0]
        #expect(report.findings.first?.eventID == id(lines[6]) && report.findings.first?.message.contains("out of order") == true,
                "\(report.findings)")

        // Appended after the end: a copy of an earlier event moved to the end with the next
        // seq and a valid link (the forger recomputed the hash).
        var appended = lines
        var forged = try AuditEvent(jsonText: lines[3])
        forged.id = "forged-event"
        forged.seq = 10
        forged.prevHash = try AuditEvent(jsonText: lines[8]).hash
        forged.hash = AuditChain.hash(of: forged.json)
        appended.insert(forged.json.serialized, at: 9)
        report = try verifyLines(appended)[0]
        #expect(report.findings.map(\.eventID) == ["forged-event"])
        #expect(report.findings.first?.message.contains("appended after the session ended") == true)
    }

    // MARK: Signed checkpoints

    @Test func checkpointsSignTheHeadEveryNEventsAndSealTheEnd() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let signer = AuditSigner.generate()
        let writer = AuditWriter(store: store, signer: signer, checkpoints: AuditCheckpointPolicy(everyEvents: 3, everySeconds: 3600))
        for index in 1...7 { try writer.append(fullEvent(session: "signed", command: "echo \(index)")) }
        try writer.append(AuditEvent(sessionID: "signed", agent: "claude", event: .sessionEnd))
        #expect(try writer.checkpoint(sessionID: "signed", final: true)?.seq == 11)
        #expect(try writer.checkpoint(sessionID: "signed", final: true) == nil, "already sealed")
        writer.close()

        let events = try store.events(sessionID: "signed")
        #expect(events.map(\.event.rawValue) == ["pre-tool", "pre-tool", "pre-tool", "checkpoint", "pre-tool", "pre-tool", "pre-tool",
                                                  "checkpoint", "pre-tool", "session-end", "checkpoint"])
        let checkpoints = events.filter { $0.event == .checkpoint }
        #expect(checkpoints.map { $0.toolInput["seq"] } == [.number(3), .number(7), .number(10)])
        #expect(checkpoints.map { $0.toolInput["final"] } == [.bool(false), .bool(false), .bool(true)])
        #expect(checkpoints.allSatisfy { $0.toolInput["public_key"] == .string(signer.publicKeyBase64) })

        let objects = try store.eventObjects(sessionID: "signed")
        var report = AuditChain.verify(sessionID: "signed", events: objects, trustedKey: signer.publicKeyBase64)
        #expect(report.verified && report.sealed && report.signedThrough == 10, "\(report.findings)")
        report = AuditChain.verify(sessionID: "signed", events: objects, trustedKey: AuditSigner.generate().publicKeyBase64,
                                   requireSignature: true)
        #expect(report.findings.count == 5 && report.findings[0].message.contains("is signed by another key"), "\(report.findings)")

        // A signature that does not match what it signs.
        try run(store, "UPDATE events SET json = replace(json, '\"final\":false', '\"final\":true') WHERE session_id = ? AND seq = 4", ["signed"])
        report = try verifyStore(store, "signed")
        #expect(report.findings.contains { $0.seq == 4 && $0.message.contains("was changed") })
        #expect(report.findings.contains { $0.seq == 4 && $0.message.contains("has an invalid signature") }, "\(report.findings)")
    }

    /// A writer in another process (`kontext start` after a crash) seals a chain it did not write.
    @Test func aRequestedCheckpointSignsTheStoredHead() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let first = AuditWriter(store: store)
        let head = try first.append(fullEvent(session: "resumed"))
        first.close()
        let signer = AuditSigner.generate()
        let second = AuditWriter(store: store, signer: signer)
        let sealed = try #require(try second.checkpoint(sessionID: "resumed", final: true))
        #expect(sealed.seq == 2 && sealed.toolInput["hash"] == head.hash.map(JSONValue.string))
        #expect(try second.checkpoint(sessionID: "resumed", final: true) == nil)
        #expect(try second.checkpoint(sessionID: "nothing-here", final: true) == nil)
        second.close()
        let report = try verifyStore(store, "resumed")
        #expect(report.verified && report.sealed, "\(report.findings)")
        let later = AuditWriter(store: store)
        _ = try later.append(fullEvent(session: "resumed"))
        later.close()
        #expect(try verifyStore(store, "resumed").findings.first?.message.contains("appended after the session ended") == true)
    }
}
