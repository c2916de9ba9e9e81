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
