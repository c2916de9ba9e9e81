import Foundation
import KontextBroker
import KontextBrokerService
import KontextBrokerStore
import KontextCore
import KontextTestIssuer
import KontextTestSupport
import Testing

/// What one client on the network can cost the broker: a connection that never finishes its
/// request, a flood of token requests, a flood of garbage in the exchange log.
@Suite(.serialized) struct BrokerLimitsTests {
    @Test func aHalfSentHeaderIsClosedAfterTheIdleTimeout() async throws {
        let setup = try await BrokerSetup.make("limits-idle", extraConfig: "[limits]\nidle_timeout = 2")
        let broker = try await setup.serve()
        let connection = try RawConnection(broker.baseURL)
        let started = Date()
        connection.send("POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-")
        let closed = connection.readUntilClosed(seconds: 10)
        #expect(closed != nil, "the connection was still open after 10 s")
        #expect(Date().timeIntervalSince(started) < 6)
        // A well-behaved client is still served.
        #expect(try await call("GET", broker.baseURL + "/healthz", token: nil).status == 200)
        await broker.stop()
        await setup.idp.stop()
    }

    @Test func theTokenEndpointIsRateLimitedPerClient() async throws {
        // One request per 100 s after the burst: nothing refills while the test runs.
        let setup = try await BrokerSetup.make("limits-rate", extraConfig: "[limits]\ntoken_rate = 0.01\ntoken_burst = 5")
        let broker = try await setup.serve()
        let token = try await setup.token()
        for _ in 0..<5 {
            #expect(try await exchange(broker.baseURL, token: token, resource: "github").status != 429)
        }
        let limited = try await exchange(broker.baseURL, token: token, resource: "github")
        #expect(limited.status == 429, "\(limited.text)")
        #expect(limited.error == "temporarily_unavailable", "\(limited.text)")
        // The answer says when to come back.
        let connection = try RawConnection(broker.baseURL)
        let form = "grant_type=x"
        connection.send("POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                        + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n\r\n\(form)")
        let raw = try #require(connection.readUntilClosed(seconds: 10))
        #expect(raw.hasPrefix("HTTP/1.1 429"), "\(raw)")
        let retryAfter = raw.split(separator: "\r\n").first { $0.lowercased().hasPrefix("retry-after:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        #expect(retryAfter.map { $0 >= 1 } == true, "\(raw)")
        // The audit API is not the token endpoint: not limited by it.
        #expect(try await call("GET", broker.baseURL + "/v1/sessions", token: token).status == 200)
        await broker.stop()
        await setup.idp.stop()
    }

    @Test func refusedUnauthenticatedRequestsAreCountedNotLoggedOneByOne() async throws {
        // No rate limit here: this is about what the log keeps, not about what is answered.
        let setup = try await BrokerSetup.make("limits-garbage", extraConfig: "[limits]\ntoken_rate = 0")
        let broker = try await setup.serve()
        let before = try await broker.store.exchangeLog(limit: 10_000).count
        for index in 0..<100 {
            let answer = try await exchange(broker.baseURL, token: "garbage-\(index)", resource: "github")
            #expect(answer.status == 400)
        }
        // Two buckets at most: the run may cross a minute.
        let after = try await broker.store.exchangeLog(limit: 10_000).count
        #expect(after - before <= 2, "\(after - before) rows for 100 refused requests")
        // Counted instead: one row per minute, client and result, the counts adding up.
        let refused = try await broker.store.refusedExchanges(limit: 10)
        #expect(after == before)
        #expect((1...2).contains(refused.count), "\(refused)")
        #expect(refused.allSatisfy { $0.client == "127.0.0.1" && $0.result == "invalid_request" }, "\(refused)")
        #expect(refused.reduce(0) { $0 + $1.count } == 100)
        // An authenticated principal's refusal is still logged one by one, with its name.
        #expect(try await exchange(broker.baseURL, token: try await setup.token(), resource: "nothing-granted").error == "access_denied")
        #expect(try await broker.store.exchangeLog(limit: 1).first?.principal == setup.user("alice"))
        await broker.stop()
        await setup.idp.stop()
    }
}
