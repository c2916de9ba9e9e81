import Foundation
import KontextBrokerService
import KontextBrokerStore
import KontextCore
import KontextTestIssuer
import KontextTestSupport
import KontextTrust
import Testing

/// Subject tokens the served broker must refuse, each with RFC 8693 section 2.2.2's
/// `invalid_request` (400) at the token endpoint and RFC 6750's `invalid_token` (401) at the
/// audit API, and each refusal counted (no principal: not logged one by one).
@Suite(.serialized) struct ServedTrustTests {
    /// Serves a broker with a static `github` credential; runs `body`; stops everything.
    func withBroker(_ label: String, keyCachePolicy: KeyCachePolicy = KeyCachePolicy(),
                    _ body: (BrokerSetup, RunningBroker) async throws -> Void) async throws {
        let setup = try await BrokerSetup.make(label)
        let admin = try await setup.admin()
        try await admin.add(target: "github", owner: "", kind: .staticKey, secret: TestSupport.secret("trust-github"))
        await admin.close()
        let broker = try await setup.serve(keyCachePolicy: keyCachePolicy)
        do {
            try await body(setup, broker)
        } catch {
            await broker.stop()
            await setup.idp.stop()
            throw error
        }
        await broker.stop()
        await setup.idp.stop()
    }

    func expectRefused(_ broker: RunningBroker, _ token: String, containing text: String,
                       sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let counted = try await broker.store.refusedExchanges(limit: 100).reduce(0) { $0 + ($1.result == "invalid_request" ? $1.count : 0) }
        let logged = try await broker.store.exchangeLog(limit: 100).count
        let answer = try await exchange(broker.baseURL, token: token, resource: "github")
        #expect(answer.status == 400, "\(answer.text)", sourceLocation: sourceLocation)
        #expect(answer.error == "invalid_request", "\(answer.text)", sourceLocation: sourceLocation)
        #expect(answer.description.contains(text), "\(answer.text)", sourceLocation: sourceLocation)
        #expect(answer.body["access_token"] == nil, sourceLocation: sourceLocation)
        let audit = try await call("POST", broker.baseURL + "/v1/audit/events", token: token, body: batch([]))
        #expect(audit.status == 401, "\(audit.text)", sourceLocation: sourceLocation)
        #expect(audit.error == "invalid_token", sourceLocation: sourceLocation)
        let refused = try await broker.store.refusedExchanges(limit: 100)
        #expect(refused.reduce(0) { $0 + ($1.result == "invalid_request" ? $1.count : 0) } == counted + 1, sourceLocation: sourceLocation)
        #expect(refused.allSatisfy { $0.client == "127.0.0.1" }, "\(refused)", sourceLocation: sourceLocation)
        #expect(try await broker.store.exchangeLog(limit: 100).count == logged, sourceLocation: sourceLocation)
    }

    @Test func aValidTokenIsExchangedAndRecorded() async throws {
        try await withBroker("trust-valid") { setup, broker in
            let answer = try await exchange(broker.baseURL, token: try await setup.token(), resource: "github")
            #expect(answer.status == 200, "\(answer.text)")
            #expect(answer.body["access_token"]?.stringValue == TestSupport.secret("trust-github"))
            #expect(answer.body["token_type"]?.stringValue == "N_A")
            #expect(answer.body["expires_in"] == .number(600))
            let log = try await broker.store.exchangeLog(limit: 5)
            #expect(log.first == ExchangeLogEntry(time: log.first?.time ?? "", principal: setup.user("alice"), target: "github", result: "issued"))
        }
    }

    @Test func untrustedIssuerIsRefused() async throws {
        try await withBroker("trust-untrusted") { setup, broker in
            let stranger = await TestKey.es256(kid: "key-1")
            let other = try await KeyServer.start(publishing: [stranger])
            let token = try await stranger.sign(setup.claims { $0.iss = other.issuer })
            try await expectRefused(broker, token, containing: "untrusted issuer '\(other.issuer)'")
            #expect(other.jwksHits == 0)
            await other.stop()
        }
    }

    @Test func wrongAudienceIsRefused() async throws {
        try await withBroker("trust-audience") { setup, broker in
            try await expectRefused(broker, try await setup.token { $0.aud = AudienceClaim(value: ["another-service"]) },
                                    containing: "audience does not include '\(brokerAudience)'")
        }
    }

    @Test func expiredTokenIsRefused() async throws {
        try await withBroker("trust-expired") { setup, broker in
            let past = Date().timeIntervalSince1970 - 3600
            try await expectRefused(broker, try await setup.token { $0.exp = past; $0.iat = past - 60; $0.nbf = nil },
                                    containing: "expired at")
        }
    }

    @Test func notYetValidTokenIsRefused() async throws {
        try await withBroker("trust-nbf") { setup, broker in
            let future = Date().timeIntervalSince1970 + 3600
            try await expectRefused(broker, try await setup.token { $0.nbf = future; $0.iat = nil; $0.exp = future + 300 },
                                    containing: "not valid before")
        }
    }

    @Test func badSignatureIsRefused() async throws {
        try await withBroker("trust-signature") { setup, broker in
            // Another key under the same kid: the header names a published key, the signature is not its.
            let forger = await TestKey.es256(kid: "key-1")
            try await expectRefused(broker, try await forger.sign(setup.claims()), containing: "signature does not verify")
            // A valid token with its signature's first character changed. (Not the last: its
            // low bits are base64 padding, so changing them can leave the signature's bytes as
            // they were.)
            var token = try await setup.token()
            let start = token.index(after: token.lastIndex(of: ".")!)
            token.replaceSubrange(start...start, with: token[start] == "A" ? "g" : "A")
            try await expectRefused(broker, token, containing: "signature")
        }
    }

    @Test func rotatedJWKSIsRefetchedAndTheRetiredKeyRefused() async throws {
        try await withBroker("trust-rotation", keyCachePolicy: KeyCachePolicy(lifetime: .seconds(300), minimumRefetchInterval: .zero)) { setup, broker in
            #expect(try await exchange(broker.baseURL, token: try await setup.token(), resource: "github").status == 200)
            #expect(setup.idp.jwksHits == 1)
            let rotated = await TestKey.es256(kid: "key-2")
            setup.idp.publish([rotated])
            let fresh = try await exchange(broker.baseURL, token: try await rotated.sign(setup.claims()), resource: "github")
            #expect(fresh.status == 200, "\(fresh.text)")
            #expect(setup.idp.jwksHits == 2)
            try await expectRefused(broker, try await setup.token(), containing: "unknown signing key (kid 'key-1')")
        }
    }

    @Test func aBearerlessAuditCallIs401() async throws {
        try await withBroker("trust-bearer") { _, broker in
            let answer = try await call("POST", broker.baseURL + "/v1/audit/events", token: nil, body: batch([]))
            #expect(answer.status == 401)
            #expect(answer.error == "invalid_token")
            #expect(try await call("GET", broker.baseURL + "/v1/sessions", token: "not-a-jwt").status == 401)
        }
    }
}
