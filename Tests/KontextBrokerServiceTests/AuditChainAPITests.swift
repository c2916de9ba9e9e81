import Foundation
import KontextAudit
import KontextCore
import KontextTestSupport
import Testing

/// The broker's side of the hash chain (SPEC section 12): ingest checks continuity and
/// flags what breaks it, the client's reported head is the witness, and
/// `GET /v1/sessions/{id}/verify` reports the session's state.
@Suite(.serialized) struct AuditChainAPITests {
    /// A real chained session from the local store: its events as kontext ships them.
    func chainedEvents(_ session: String, count: Int) throws -> [String] {
        let directory = TestSupport.makeTemporaryDirectory("chain-events")
        let store = try AuditStore(path: directory.appendingPathComponent("audit.db").path)
        let writer = AuditWriter(store: store)
        defer { writer.close() }
        return try (1...count).map { index in
            try writer.append(AuditEvent(sessionID: session, agent: "claude", event: index == count ? .sessionEnd : .preTool,
                                         toolName: index == count ? nil : "Bash",
                                         toolInput: index == count ? .null : .object([("command", .string("echo \(index)"))]),
                                         actor: AuditActor(sub: "alice", email: "alice@example.com"), host: "devbox", cwd: "/src"))
                .json.serialized
        }
    }

    func hashOf(_ line: String) -> String { (try? JSONValue.parse(line))?["hash"]?.stringValue ?? "" }

    /// On both stores: the chain state (seq, hash, problem, witnessed head) is kept by each.
    @Test(arguments: ["sqlite", "postgres"])
    func theBackendFindsGapsAndEventsCutFromTheEndAndVerifiesAWholeChain(store: String) async throws {
        let setup = try await BrokerSetup.make("audit-chain-\(store)", database: store == "postgres" ? try TestSupport.makePostgresDatabase() : nil)
        let broker = try await setup.serve()
        let base = broker.baseURL
        let alice = try await setup.token(sub: "alice")
        func open(_ session: String) async throws {
            let created = try await call("POST", base + "/v1/sessions", token: alice, body: #"{"session_id":"\#(session)","agent":"claude"}"#)
            #expect(created.status == 201, "\(created.text)")
        }
        func verify(_ session: String, token: String? = nil) async throws -> Answer {
            try await call("GET", base + "/v1/sessions/\(session)/verify", token: token ?? alice)
        }
        func post(_ events: [String]) async throws {
            let answer = try await call("POST", base + "/v1/audit/events", token: alice, body: batch(events))
            #expect(answer.status == 200, "\(answer.text)")
        }

        // Whole: every event, and the head reported while it ran.
        try await open("whole")
        let whole = try chainedEvents("whole", count: 10)
        let reported = try await call("POST", base + "/v1/sessions/whole/checkpoints", token: alice,
                                      body: #"{"seq":10,"hash":"\#(hashOf(whole[9]))"}"#)
        #expect(reported.status == 200, "\(reported.text)")
        try await post(Array(whole[..<4]))
        try await post(Array(whole[4...]))
        var answer = try await verify("whole")
        #expect(answer.status == 200, "\(answer.text)")
        #expect(answer.body["verified"] == .bool(true), "\(answer.text)")
        #expect(answer.body["event_count"] == .number(10) && answer.body["ended"] == .bool(true))
        #expect(answer.body["witnessed_seq"] == .number(10) && answer.body["head_hash"]?.stringValue == hashOf(whole[9]))

        // Cut short: the client reported #10, then the last five never arrived.
        try await open("cut")
        let cut = try chainedEvents("cut", count: 10)
        #expect(try await call("POST", base + "/v1/sessions/cut/checkpoints", token: alice,
                               body: #"{"seq":10,"hash":"\#(hashOf(cut[9]))"}"#).status == 200)
        // An older head reported late does not lower the witness.
        #expect(try await call("POST", base + "/v1/sessions/cut/checkpoints", token: alice,
                               body: #"{"seq":3,"hash":"\#(hashOf(cut[2]))"}"#).status == 200)
        try await post(Array(cut[..<5]))
        answer = try await verify("cut")
        #expect(answer.body["verified"] == .bool(false), "\(answer.text)")
        #expect(answer.body["witnessed_seq"] == .number(10))
        let cutFindings = answer.body["findings"]?.arrayValue?.compactMap { $0["message"]?.stringValue } ?? []
        #expect(cutFindings.contains { $0.contains("#6–#10 are missing") }, "\(cutFindings)")

        // A gap in the middle is flagged at ingest, and stays flagged.
        try await open("gap")
        let gap = try chainedEvents("gap", count: 6)
        try await post(Array(gap[..<3]))
        try await post(Array(gap[4...]))
        answer = try await verify("gap")
        #expect(answer.body["verified"] == .bool(false))
        let gapFindings = answer.body["findings"]?.arrayValue?.compactMap { $0["message"]?.stringValue } ?? []
        #expect(gapFindings.contains { $0.hasPrefix("event #4 is missing before event #5") }, "\(gapFindings)")
        #expect(answer.body["ingest_problem"]?.stringValue?.hasPrefix("at ingest: event #4 is missing before event #5") == true,
                "\(answer.text)")

        // A changed event: its content no longer matches its hash.
        try await open("changed")
        var changed = try chainedEvents("changed", count: 4)
        changed[1] = changed[1].replacingOccurrences(of: "echo 2", with: "echo X")
        try await post(changed)
        answer = try await verify("changed")
        let changedFindings = answer.body["findings"]?.arrayValue ?? []
        #expect(changedFindings.first?["seq"] == .number(2), "\(answer.text)")
        #expect(changedFindings.first?["message"]?.stringValue?.contains("was changed") == true)

        // The backend writes claimed_actor; a client may not.
        let forged = whole[0].replacingOccurrences(of: "\"host\":", with: "\"claimed_actor\":{\"sub\":\"bob\"},\"host\":")
        #expect(try await call("POST", base + "/v1/audit/events", token: alice, body: batch([forged])).status == 400)
        // Bad heads and others' sessions.
        #expect(try await call("POST", base + "/v1/sessions/whole/checkpoints", token: alice, body: #"{"seq":0,"hash":"x"}"#).status == 400)
        let mallory = try await setup.token(sub: "mallory")
        #expect(try await verify("whole", token: mallory).status == 404)
        #expect(try await call("POST", base + "/v1/sessions/whole/checkpoints", token: mallory,
                               body: #"{"seq":11,"hash":"\#(hashOf(whole[9]))"}"#).status == 404)
        // An audit reader may verify anyone's.
        let auditor = try await setup.token(sub: "auditor")
        #expect(try await verify("whole", token: auditor).body["verified"] == .bool(true))

        await broker.stop()
        await setup.idp.stop()
    }
}
