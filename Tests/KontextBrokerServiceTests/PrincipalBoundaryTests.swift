import Foundation
import KontextBrokerService
import KontextBrokerStore
import KontextCore
import KontextTestIssuer
import KontextTestSupport
import Testing

/// What one broker principal can and cannot do to another (SPEC section 10, "Broker
/// principals"): exact grants, audit written only into one's own sessions under one's own
/// name, user principals qualified by issuer and admitted only where configured.
@Suite(.serialized) struct PrincipalBoundaryTests {
    @Test func aGrantNamesExactTargets() async throws {
        let setup = try await BrokerSetup.make("grant-exact", grants: """
            [[grant]]
            principals = "user:*"
            services = ["github", "linear/*"]
            """)
        let admin = try await setup.admin()
        for target in ["github", "github/admin", "linear", "linear/team"] {
            try await admin.add(target: target, owner: "", kind: .staticKey, secret: TestSupport.secret("exact-\(target)"))
        }
        await admin.close()
        let broker = try await setup.serve()
        let alice = try await setup.token(sub: "alice")

        let github = try await exchange(broker.baseURL, token: alice, resource: "github")
        #expect(github.body["access_token"]?.stringValue == TestSupport.secret("exact-github"), "\(github.text)")
        // `github` is the service alone, not every resource of it.
        let admin2 = try await exchange(broker.baseURL, token: alice, resource: "github/admin")
        #expect(admin2.status == 400, "\(admin2.text)")
        #expect(admin2.error == "access_denied", "\(admin2.text)")
        #expect(!admin2.text.contains(TestSupport.secretNonce))
        // `linear/*` is every resource of linear, not linear itself.
        #expect(try await exchange(broker.baseURL, token: alice, resource: "linear/team")
            .body["access_token"]?.stringValue == TestSupport.secret("exact-linear/team"))
        #expect(try await exchange(broker.baseURL, token: alice, resource: "linear").error == "access_denied")
        await broker.stop()
        await setup.idp.stop()
    }

    @Test(arguments: ["sqlite", "postgres"])
    func auditEventsGoOnlyIntoThePostersOwnSessionsUnderItsOwnName(store: String) async throws {
        let setup = try await BrokerSetup.make("audit-owner-\(store)", database: store == "postgres" ? try TestSupport.makePostgresDatabase() : nil)
        let broker = try await setup.serve()
        let base = broker.baseURL
        let alice = try await setup.token(sub: "alice")
        let mallory = try await setup.token(sub: "mallory")
        let auditor = try await setup.token(sub: "auditor")

        #expect(try await call("POST", base + "/v1/sessions", token: alice, body: #"{"session_id":"s-1","agent":"claude"}"#).status == 201)
        #expect(try await call("POST", base + "/v1/audit/events", token: alice,
                               body: batch([auditEvent(id: "a-1", session: "s-1", seq: 1)])).status == 200)

        // Mallory cannot write into Alice's session, nor into one that does not exist.
        let forged = try await call("POST", base + "/v1/audit/events", token: mallory,
                                    body: batch([auditEvent(id: "m-1", session: "s-1", seq: 2)]))
        #expect(forged.status == 404, "\(forged.text)")
        #expect(forged.error == "not_found", "\(forged.text)")
        let nowhere = try await call("POST", base + "/v1/audit/events", token: mallory,
                                     body: batch([auditEvent(id: "m-2", session: "no-such-session", seq: 1)]))
        #expect(nowhere.status == forged.status && nowhere.error == forged.error, "\(nowhere.text)")

        // Creating a session under Alice's id is answered exactly as a fresh id is: ids are
        // per principal, so the answer says nothing about Alice's.
        let fresh = try await call("POST", base + "/v1/sessions", token: mallory, body: #"{"session_id":"m-fresh","agent":"claude"}"#)
        let taken = try await call("POST", base + "/v1/sessions", token: mallory, body: #"{"session_id":"s-1","agent":"claude"}"#)
        #expect(taken.status == fresh.status, "\(taken.text)")
        #expect(taken.text == fresh.text.replacingOccurrences(of: "m-fresh", with: "s-1"))

        // Her events, even under Alice's event id and claiming to be Alice, are hers: stored
        // with her as actor, what she claimed kept beside it, and Alice's event untouched.
        let claimed = try await call("POST", base + "/v1/audit/events", token: mallory,
                                     body: batch([auditEvent(id: "a-1", session: "s-1", seq: 1, tool: "Forged")]))
        #expect(claimed.body == .object([("accepted", .number(1)), ("duplicates", .number(0))]), "\(claimed.text)")

        let alicesView = try await call("GET", base + "/v1/audit/events?session_id=s-1", token: alice)
        guard case .array(let alices)? = alicesView.body["events"] else { Issue.record("\(alicesView.text)"); return }
        #expect(alices.count == 1)
        #expect(alices.first?["tool_name"]?.stringValue == "Bash")
        #expect(alices.first?["actor"]?["sub"]?.stringValue == setup.user("alice"))
        #expect(alices.first?["actor"]?["email"]?.stringValue == "alice@example.com")

        let mallorysView = try await call("GET", base + "/v1/audit/events?session_id=s-1", token: mallory)
        guard case .array(let mallorys)? = mallorysView.body["events"] else { Issue.record("\(mallorysView.text)"); return }
        #expect(mallorys.count == 1)
        #expect(mallorys.first?["tool_name"]?.stringValue == "Forged")
        #expect(mallorys.first?["actor"]?["sub"]?.stringValue == setup.user("mallory"))
        #expect(mallorys.first?["claimed_actor"]?["sub"]?.stringValue == "alice")

        // An audit reader sees both sessions and every event, each with its owner.
        let everything = try await call("GET", base + "/v1/audit/events?session_id=s-1", token: auditor)
        guard case .array(let all)? = everything.body["events"] else { Issue.record("\(everything.text)"); return }
        #expect(Set(all.compactMap { $0["actor"]?["sub"]?.stringValue }) == [setup.user("alice"), setup.user("mallory")])
        let sessions = try await call("GET", base + "/v1/sessions", token: auditor)
        guard case .array(let list)? = sessions.body["sessions"] else { Issue.record("\(sessions.text)"); return }
        let owners = list.filter { $0["session_id"]?.stringValue == "s-1" }.compactMap { $0["owner"]?.stringValue }
        #expect(Set(owners) == [setup.user("alice"), setup.user("mallory")])

        // Ending is per owner too: Mallory's end does not end Alice's session.
        #expect(try await call("POST", base + "/v1/sessions/s-1/end", token: mallory, body: #"{"exit_code":1}"#).status == 204)
        let alicesSessions = try await call("GET", base + "/v1/sessions", token: alice)
        guard case .array(let mine)? = alicesSessions.body["sessions"] else { Issue.record("\(alicesSessions.text)"); return }
        #expect(mine.count == 1)
        #expect(mine.first?["ended_at"] == .null)
        await broker.stop()
        await setup.idp.stop()
    }

    @Test func anIssuerAdmitsUsersOnlyWithUsersTrue() async throws {
        let setup = try await BrokerSetup.make("users-default", users: nil)
        let admin = try await setup.admin()
        try await admin.add(target: "github", owner: "", kind: .staticKey, secret: TestSupport.secret("users-github"))
        await admin.close()
        let broker = try await setup.serve()
        // A token no claim rule names is nobody when the issuer does not say `users = true`.
        let refused = try await exchange(broker.baseURL, token: try await setup.token(sub: "alice"), resource: "github")
        #expect(refused.status == 400, "\(refused.text)")
        #expect(refused.error == "invalid_request")
        #expect(refused.description.contains("matches no principal rule"), "\(refused.text)")
        #expect(try await call("GET", broker.baseURL + "/v1/sessions", token: try await setup.token(sub: "alice")).status == 401)
        // The claim rule still names the workloads it should.
        let ci = try await setup.token(sub: "repo:acme/app:ref:refs/heads/main") {
            $0.repository = "acme/app"
            $0.ref = "refs/heads/main"
        }
        #expect(try await exchange(broker.baseURL, token: ci, resource: "github").body["access_token"]?.stringValue
            == TestSupport.secret("users-github"))
        await broker.stop()
        await setup.idp.stop()
    }

    @Test func equalSubjectsAtTwoIssuersAreTwoPrincipals() async throws {
        let otherKey = await TestKey.es256(kid: "other-1")
        let other = try await KeyServer.start(publishing: [otherKey])
        let setup = try await BrokerSetup.make("users-qualified", extraConfig: """
            [[issuer]]
            issuer = "\(other.issuer)"
            audiences = ["\(brokerAudience)"]
            jwks_url = "\(other.jwksURL)"
            users = true
            """)
        let admin = try await setup.admin()
        try await admin.add(target: "github", owner: setup.user("alice"), kind: .staticKey, secret: TestSupport.secret("alices-github"))
        await admin.close()
        let broker = try await setup.serve()
        let alice = try await setup.token(sub: "alice")
        let otherAlice = try await otherKey.sign(setup.claims(sub: "alice") { $0.iss = other.issuer })

        #expect(try await exchange(broker.baseURL, token: alice, resource: "github").body["access_token"]?.stringValue
            == TestSupport.secret("alices-github"))
        // The other issuer's "alice" is someone else: Alice's own credential is not hers.
        let stranger = try await exchange(broker.baseURL, token: otherAlice, resource: "github")
        #expect(stranger.error == "invalid_target", "\(stranger.text)")
        #expect(!stranger.text.contains(TestSupport.secretNonce))
        let log = try await broker.store.exchangeLog(limit: 2).reversed().map { $0.principal ?? "-" }
        #expect(log == [setup.user("alice"), userPrincipal(other.issuer, "alice")])

        // Audit readers are named with their issuer too: the other issuer's "auditor" is not one.
        #expect(try await call("POST", broker.baseURL + "/v1/sessions", token: alice,
                               body: #"{"session_id":"q-1","agent":"claude"}"#).status == 201)
        let reader = try await call("GET", broker.baseURL + "/v1/sessions", token: try await setup.token(sub: "auditor"))
        #expect(reader.text.contains("q-1"), "\(reader.text)")
        let impostor = try await otherKey.sign(setup.claims(sub: "auditor") { $0.iss = other.issuer })
        #expect(try await call("GET", broker.baseURL + "/v1/sessions", token: impostor).body == .object([("sessions", .array([]))]))
        await broker.stop()
        await other.stop()
        await setup.idp.stop()
    }
}
