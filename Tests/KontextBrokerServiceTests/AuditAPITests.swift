import Foundation
import KontextAudit
import KontextBrokerService
import KontextCore
import KontextHTTP
import KontextTestSupport
import Testing

/// The audit wire of SPEC section 7 as `kontext` ships to it, on the SQLite store.
@Suite(.serialized) struct AuditAPITests {
    @Test func ingestIsIdempotentAndQueriesAnswerInSeqOrder() async throws {
        let setup = try await BrokerSetup.make("audit-api")
        let broker = try await setup.serve()
        let base = broker.baseURL
        let alice = try await setup.token(sub: "alice")

        // Session create: 201, then 200 when repeated.
        let session = #"{"session_id":"s-1","agent":"claude","host":"devbox","cwd":"/src/app","started_at":"2026-11-22T13:00:00.000Z"}"#
        #expect(try await call("POST", base + "/v1/sessions", token: alice, body: session).status == 201)
        #expect(try await call("POST", base + "/v1/sessions", token: alice, body: session).status == 200)

        // A batch out of order, then the same batch again plus one new event.
        let events = [3, 1, 2].map { auditEvent(id: "e-\($0)", session: "s-1", seq: $0) }
        let first = try await call("POST", base + "/v1/audit/events", token: alice, body: batch(events))
        #expect(first.status == 200, "\(first.text)")
        #expect(first.body == .object([("accepted", .number(3)), ("duplicates", .number(0))]))
        let again = try await call("POST", base + "/v1/audit/events", token: alice,
                                   body: batch(events + [auditEvent(id: "e-4", session: "s-1", seq: 4)]))
        #expect(again.body == .object([("accepted", .number(1)), ("duplicates", .number(3))]))

        // Query: seq order, after, limit; the objects are SPEC section 7's, every key present.
        let all = try await call("GET", base + "/v1/audit/events?session_id=s-1", token: alice)
        guard case .array(let items)? = all.body["events"] else { Issue.record("no events array: \(all.text)"); return }
        #expect(items.compactMap { $0["seq"] } == [.number(1), .number(2), .number(3), .number(4)])
        let parsed = try AuditEvent(json: items[0])
        #expect(parsed.decision?.outcome == .allow)
        #expect(parsed.actor.email == "alice@example.com")
        // The keys as sent (these test events carry no hash chain), then what the client claimed
        // as actor (the stored actor is the principal).
        #expect(items[0].objectValue?.map(\.0) == AuditEvent.keys.filter { $0 != "prev_hash" && $0 != "hash" } + ["claimed_actor"])
        let page = try await call("GET", base + "/v1/audit/events?session_id=s-1&after=1&limit=2", token: alice)
        guard case .array(let pageItems)? = page.body["events"] else { Issue.record("\(page.text)"); return }
        #expect(pageItems.compactMap { $0["id"]?.stringValue } == ["e-2", "e-3"])

        // Heartbeat and end: 204; unknown session: 404.
        #expect(try await call("POST", base + "/v1/sessions/s-1/heartbeat", token: alice).status == 204)
        #expect(try await call("POST", base + "/v1/sessions/s-1/end", token: alice,
                               body: #"{"ended_at":"2026-11-22T13:05:00.000Z","exit_code":3}"#).status == 204)
        let unknown = try await call("POST", base + "/v1/sessions/nope/heartbeat", token: alice)
        #expect(unknown.status == 404)
        #expect(unknown.error == "not_found")
        let sessions = try await call("GET", base + "/v1/sessions", token: alice)
        guard case .array(let list)? = sessions.body["sessions"], let only = list.first else { Issue.record("\(sessions.text)"); return }
        #expect(list.count == 1)
        #expect(only["session_id"]?.stringValue == "s-1")
        #expect(only["ended_at"]?.stringValue == "2026-11-22T13:05:00.000Z")
        #expect(only["exit_code"] == .number(3))
        #expect(only["owner"]?.stringValue == setup.user("alice"))

        // Another user sees none of it; an audit reader sees all of it.
        let mallory = try await setup.token(sub: "mallory")
        let theirs = try await call("GET", base + "/v1/sessions", token: mallory)
        #expect(theirs.body == .object([("sessions", .array([]))]))
        #expect(try await call("GET", base + "/v1/audit/events?session_id=s-1", token: mallory).body == .object([("events", .array([]))]))
        #expect(try await call("POST", base + "/v1/sessions/s-1/heartbeat", token: mallory).status == 404)
        let auditor = try await setup.token(sub: "auditor")
        let everything = try await call("GET", base + "/v1/audit/events?session_id=s-1", token: auditor)
        guard case .array(let seen)? = everything.body["events"] else { Issue.record("\(everything.text)"); return }
        #expect(seen.count == 4)

        await broker.stop()
        await setup.idp.stop()
    }

    @Test func malformedBodiesAre400WithAnOAuthError() async throws {
        let setup = try await BrokerSetup.make("audit-bad")
        let broker = try await setup.serve()
        let url = broker.baseURL + "/v1/audit/events"
        let token = try await setup.token()
        let cases: [(String, String)] = [
            ("not json", "not JSON"),
            (#"{"events":{}}"#, #"{"events":[…]}"#),
            (#"[1,2]"#, "JSON object"),
            (batch([#"{"id":"x"}"#]), "event 0"),
            (batch([auditEvent(id: "ok", session: "s", seq: 1), auditEvent(id: "bad", session: "s", seq: 2).replacingOccurrences(of: "pre-tool", with: "nonsense")]),
             "event 1: unknown event"),
            (batch([auditEvent(id: "neg", session: "s", seq: 1).replacingOccurrences(of: #""seq":1"#, with: #""seq":-1"#)]), "seq"),
        ]
        for (body, text) in cases {
            let answer = try await call("POST", url, token: token, body: body)
            #expect(answer.status == 400, "\(body)")
            #expect(answer.error == "invalid_request", "\(body)")
            #expect(answer.description.contains(text), "\(body) → \(answer.description)")
        }
        // A refused batch stores nothing, not even its valid events.
        #expect(try await call("GET", url + "?session_id=s", token: token).body == .object([("events", .array([]))]))
        #expect(try await call("GET", url, token: token).status == 400)
        #expect(try await call("GET", url + "?session_id=s&limit=0", token: token).status == 400)
        #expect(try await call("POST", broker.baseURL + "/v1/sessions", token: token, body: #"{"agent":"claude"}"#).error == "invalid_request")
        #expect(try await call("POST", broker.baseURL + "/v1/sessions", token: token, body: #"{"session_id":"s","agent":"claude"}"#).status == 201)
        #expect(try await call("POST", broker.baseURL + "/v1/sessions/s/end", token: token, body: #"{"exit_code":"x"}"#).status == 400)
        let health = try await call("GET", broker.baseURL + "/healthz", token: nil)
        #expect(health.status == 200)
        #expect(health.body["status"]?.stringValue == "ok")
        await broker.stop()
        await setup.idp.stop()
    }
}

@Test func formBodiesDecodeByteByByte() {
    #expect(formDecode("a=%41%2b+b&c&d=%zz%4&e=x%3Dy=z&&f=%C3%A9") ==
            ["a": "A+ b", "c": "", "d": "%zz%4", "e": "x=y=z", "f": "é"])
    #expect(formDecode("") == [:])
}
