@testable import KontextAudit
import KontextCore
import Testing

@Suite struct AuditWriterInternalsTests {
    @Test func preparedTextEqualsTheSerializedEvent() {
        var event = fullEvent(session: "s\"1", command: "echo \"quoted\" \\ back\nslash")
        event.toolResponse = .object([("stdout", .string("é\u{2028}\t"))])
        let prepared = PreparedEvent(event)
        for seq in [1, 9, 10, 123_456_789] {
            event.seq = seq
            event.prevHash = seq == 1 ? nil : String(repeating: "ab", count: 32)
            event.hash = nil
            // The spliced canonical text hashes to what hashing the whole object gives.
            let hash = prepared.hash(seq: seq, prevHash: event.prevHash)
            #expect(hash == AuditChain.hash(of: event.json))
            event.hash = hash
            #expect(prepared.jsonText(seq: seq, prevHash: event.prevHash, hash: hash) == event.json.serialized)
        }
    }

    @Test func oneFailingEventDoesNotFailItsBatch() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        // Stand-in for any per-event failure: SQLite refuses events of one tool.
        try store.pool.write { db in
            try db.execute(sql: """
                CREATE TRIGGER reject_boom BEFORE INSERT ON events WHEN NEW.tool_name = 'Boom'
                BEGIN SELECT RAISE(ABORT, 'boom rejected'); END
                """)
        }
        let writer = AuditWriter(store: store)
        defer { writer.close() }
        let failures = Collector<String>()
        let successes = Collector<Int>()

        onThreads(12) { thread in
            for index in 0..<20 {
                var event = fullEvent(session: "s")
                if (thread + index) % 7 == 0 { event.toolName = "Boom" }
                do { successes.add(try writer.append(event).seq) } catch { failures.add("\(error)") }
            }
        }
        let expectedFailures = (0..<12).flatMap { thread in (0..<20).filter { (thread + $0) % 7 == 0 } }.count
        #expect(failures.values.count == expectedFailures)
        #expect(failures.values.allSatisfy { $0.contains("boom rejected") })
        #expect(successes.values.sorted() == Array(1...(240 - expectedFailures)))
        #expect(try store.events(sessionID: "s").map(\.seq) == Array(1...(240 - expectedFailures)))
    }
}
