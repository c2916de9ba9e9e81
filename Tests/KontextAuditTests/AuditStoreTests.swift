import Foundation
import KontextAudit
import KontextCore
import Testing

@Suite struct AuditStoreTests {
    @Test func eventRoundTripsThroughTheStoreWithEverySpecKey() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let writer = AuditWriter(store: store)
        defer { writer.close() }

        var event = fullEvent(session: "sess-1")
        event.toolResponse = .object([("stdout", .string("ok\n")), ("interrupted", .bool(false))])
        let stored = try writer.append(event)
        #expect(stored.seq == 1)
        var expected = event
        expected.seq = 1
        expected.prevHash = AuditChain.genesis(sessionID: "sess-1", start: event.time)
        expected.hash = AuditChain.hash(of: expected.json)
        #expect(stored == expected)

        let read = try #require(try store.event(id: event.id))
        #expect(read == expected)
        #expect(read.json.objectValue?.map(\.0) == AuditEvent.keys)
        #expect(read.json.serialized == expected.json.serialized)
        #expect(try store.events(sessionID: "sess-1") == [expected])
        #expect(try store.allEvents() == [expected])
        #expect(try store.event(id: "missing") == nil)
    }

    @Test func anotherConnectionSeesCommittedEvents() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let writerStore = try AuditStore(path: path)
        let writer = AuditWriter(store: writerStore)
        let ids = try (0..<50).map { _ in try writer.append(fullEvent(session: "s")).id }
        // No close: a second, independent store must see every acknowledged event.
        let reader = try AuditStore(path: path)
        #expect(try reader.events(sessionID: "s").map(\.id) == ids)
        writer.close()
    }

    @Test func seqIsGapFreeAndUniqueUnderConcurrentAppends() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let writer = AuditWriter(store: store)
        defer { writer.close() }
        let answers = Collector<AuditEvent>()
        let failures = Collector<String>()

        // Two sessions interleaved from 16 threads.
        onThreads(16) { thread in
            for index in 0..<50 {
                let session = (thread + index) % 2 == 0 ? "even" : "odd"
                do { answers.add(try writer.append(fullEvent(session: session, command: "echo \(thread) \(index)"))) } catch {
                    failures.add("\(error)")
                }
            }
        }
        #expect(failures.values.isEmpty)
        #expect(answers.values.count == 800)
        for session in ["even", "odd"] {
            let events = try store.events(sessionID: session)
            #expect(events.map(\.seq) == Array(1...events.count), "seq of \(session) must be 1…n in order")
            // What each appender was told matches what is stored.
            let told = answers.values.filter { $0.sessionID == session }.sorted { $0.seq < $1.seq }
            #expect(told == events)
        }
        #expect(try store.eventCount() == 800)
        // Commit order: positions increase with seq within a session.
        let records = try store.events(after: 0, limit: 10_000)
        for session in ["even", "odd"] {
            let seqs = records.filter { $0.event.sessionID == session }.map(\.event.seq)
            #expect(seqs == seqs.sorted())
        }
    }

    @Test func asyncAndCallbackAppendsShareTheQueue() async throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let writer = AuditWriter(store: store)
        let seqs = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 {
                group.addTask { try await writer.append(fullEvent(session: "async")).seq }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(seqs.sorted() == Array(1...20))

        let viaCallback = await withCheckedContinuation { continuation in
            writer.append(fullEvent(session: "async")) { continuation.resume(returning: $0) }
        }
        #expect(try viaCallback.get().seq == 21)
        writer.close()
        #expect(throws: KontextError.self) { try writer.append(fullEvent(session: "async")) }
    }

    @Test func duplicateIDsAreIgnoredIdempotently() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let writer = AuditWriter(store: store)
        defer { writer.close() }

        let original = fullEvent(session: "s", id: "same-id", command: "first")
        let first = try writer.append(original)
        var retry = original
        retry.toolInput = .object([("command", .string("second"))])
        let second = try writer.append(retry)
        let next = try writer.append(fullEvent(session: "s"))

        #expect(second == first, "a retried append answers with the stored event")
        #expect(try store.eventCount() == 2)
        #expect(try store.event(id: "same-id")?.toolInput["command"] == .string("first"))
        #expect(next.seq == 2, "an ignored duplicate consumes no seq")

        // Duplicates inside one batch too.
        onThreads(8) { _ in _ = try? writer.append(fullEvent(session: "t", id: "racing-id")) }
        #expect(try store.events(sessionID: "t").map(\.seq) == [1])
    }

    @Test func listsSessionsNewestFirstWithCounts() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let writer = AuditWriter(store: store)
        defer { writer.close() }

        try store.recordSessionStart(AuditSession(id: "aaa111", agent: "claude", actor: AuditActor(sub: "u1", email: "u1@example.com"),
                                                  host: "devbox", cwd: "/p", startedAt: "2026-11-22T10:00:00.000Z"))
        var late = fullEvent(session: "bbb222")
        late.time = "2026-11-22T11:00:00.000Z"
        try writer.append(late)
        for _ in 0..<3 { try writer.append(fullEvent(session: "aaa111")) }
        var end = AuditEvent(sessionID: "aaa111", time: "2026-11-22T10:30:00.000Z", agent: "claude", event: .sessionEnd)
        end = try writer.append(end)
        try store.endSession(id: "aaa111", endedAt: "2026-11-22T10:31:00.000Z", exitCode: 130)

        let sessions = try store.sessions()
        #expect(sessions.map(\.id) == ["bbb222", "aaa111"])
        #expect(sessions.map(\.eventCount) == [1, 4])
        let first = sessions[1]
        #expect(first.actor == AuditActor(sub: "u1", email: "u1@example.com"))
        #expect(first.exitCode == 130 && first.endedAt == "2026-11-22T10:31:00.000Z")
        #expect(first.lastEventAt == end.time)
        // A session first seen through an event takes its details from that event.
        #expect(sessions[0].startedAt == late.time && sessions[0].agent == "claude" && sessions[0].cwd == late.cwd)
        #expect(try store.sessions(limit: 1).map(\.id) == ["bbb222"])
        #expect(throws: KontextError.self) { try store.endSession(id: "nope", exitCode: 0) }
    }

    @Test func sessionEndEventSetsEndedAt() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let writer = AuditWriter(store: store)
        defer { writer.close() }
        try writer.append(AuditEvent(sessionID: "s", agent: "claude", event: .sessionStart))
        #expect(try store.session(id: "s")?.endedAt == nil)
        let end = try writer.append(AuditEvent(sessionID: "s", agent: "claude", event: .sessionEnd))
        #expect(try store.session(id: "s")?.endedAt == end.time)
    }

    @Test func resolvesSessionsByUniquePrefix() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        for id in ["3f2a91c0", "3f2b0000", "7c00aa11", "a_b%c"] {
            try store.recordSessionStart(AuditSession(id: id, agent: "claude"))
        }
        #expect(try store.resolveSession("3f2a").id == "3f2a91c0")
        #expect(try store.resolveSession("7").id == "7c00aa11")
        #expect(try store.resolveSession("3f2b0000").id == "3f2b0000")
        #expect(try store.resolveSession("3F2A").id == "3f2a91c0")
        // LIKE wildcards in the prefix are literal.
        #expect(try store.resolveSession("a_").id == "a_b%c")
        #expect(try store.sessions(idPrefix: "a%").isEmpty)

        let ambiguous = #expect(throws: KontextError.self) { try store.resolveSession("3f2") }
        #expect(ambiguous?.message.contains("ambiguous") == true)
        #expect(ambiguous?.details.count == 2)
        let missing = #expect(throws: KontextError.self) { try store.resolveSession("ffff") }
        #expect(missing?.message.contains("no audit session") == true)
        #expect(throws: KontextError.self) { try store.resolveSession("") }
    }

    @Test func tailReadsRecentThenNewerEvents() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let writer = AuditWriter(store: store)
        defer { writer.close() }
        let ids = try (0..<10).map { _ in try writer.append(fullEvent(session: "s")).id }

        let recent = try store.recentEvents(limit: 3)
        #expect(recent.map(\.event.id) == Array(ids.suffix(3)))
        #expect(recent.map(\.position) == recent.map(\.position).sorted())

        let more = try (0..<2).map { _ in try writer.append(fullEvent(session: "s")).id }
        let newer = try store.events(after: recent.last!.position)
        #expect(newer.map(\.event.id) == more)
        #expect(try store.events(after: newer.last!.position).isEmpty)
        #expect(try store.events(after: 0, limit: 4).map(\.event.id) == Array(ids.prefix(4)))
    }

    @Test func shippingQueueTracksUnshippedEvents() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let writer = AuditWriter(store: store)
        defer { writer.close() }
        let backend = AuditDestination(url: "https://audit.example/", issuer: "https://issuer.example", subject: "u1")
        try store.recordSessionStart(AuditSession(id: "s", agent: "claude", destination: backend))
        let ids = try (0..<5).map { _ in try writer.append(fullEvent(session: "s")).id }
        // A local session's events (no destination) are never queued; another destination's neither.
        _ = try writer.append(fullEvent(session: "local"))
        try store.recordSessionStart(AuditSession(id: "other", agent: "claude",
                                                  destination: AuditDestination(url: backend.url, issuer: backend.issuer, subject: "u2")))
        _ = try writer.append(fullEvent(session: "other"))

        #expect(try store.pendingEvents(limit: 3, for: backend).map(\.event.id) == Array(ids.prefix(3)))
        try store.markShipped(ids: Array(ids.prefix(3)) + ["unknown-id"])
        #expect(try store.pendingEvents(limit: 10, for: backend).map(\.event.id) == Array(ids.suffix(2)))
        #expect(try store.pendingEventCount(for: backend) == 2)
        #expect(try store.pendingEventCount(auditURL: "https://audit.example") == 3)
        #expect(try store.pendingSessions(start: true, for: backend).map(\.id) == ["s"])
        try store.markShipped(ids: Array(ids.suffix(2)))
        #expect(try store.pendingEvents(limit: 10, for: backend).isEmpty)
        // Shipping state survives reopening (a restart resumes where it stopped).
        let reopened = try AuditStore(path: directory.file("audit.db"))
        #expect(try reopened.pendingEventCount(for: backend) == 0)
        #expect(try reopened.session(id: "s")?.destination == backend)
        #expect(try reopened.session(id: "local")?.destination == nil)
        #expect(try reopened.eventCount() == 7)
    }

    @Test func createsPrivateDirectoryAndFiles() throws {
        let directory = try TemporaryDirectory()
        let environment = ["HOME": "/nonexistent", "XDG_STATE_HOME": directory.file("state")]
        let path = AuditStore.defaultPath(environment: environment)
        #expect(path == directory.file("state") + "/kontext/audit.db")
        #expect(!AuditStore.exists(path: path))
        let store = try AuditStore(environment: environment)
        let writer = AuditWriter(store: store)
        try writer.append(fullEvent(session: "s"))

        func mode(_ path: String) -> mode_t {
            var status = stat()
            guard stat(path, &status) == 0 else { return 0o7777 }
            return status.st_mode & 0o777
        }
        #expect(mode(directory.file("state") + "/kontext") == 0o700)
        #expect(mode(path) == 0o600)
        #expect(mode(path + "-wal") == 0o600)
        #expect(AuditStore.exists(path: path))
        writer.close()

        // An existing store readable by others is tightened.
        let loose = directory.file("loose.db")
        close(open(loose, O_CREAT | O_WRONLY, 0o644))
        chmod(loose, 0o644)
        _ = try AuditStore(path: loose)
        #expect(mode(loose) == 0o600)
    }

    @Test func unopenableStoreIsAClearError() throws {
        let directory = try TemporaryDirectory()
        let notADatabase = directory.file("garbage.db")
        _ = FileManager.default.createFile(atPath: notADatabase, contents: Data(repeating: 0x41, count: 8192))
        let error = #expect(throws: KontextError.self) { try AuditStore(path: notADatabase) }
        #expect(error?.message.contains("cannot open the audit store") == true)
    }
}
