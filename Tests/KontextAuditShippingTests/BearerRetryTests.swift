import KontextAuditShipping
import KontextHTTP
import Synchronization
import Testing

/// `BearerSource.send`: one renewal on 401, never more, and which step failed.
@Suite struct BearerRetryTests {
    struct Refused: Error {}

    /// Records the tokens each attempt carried and answers the given statuses in turn.
    final class Server: Sendable {
        let statuses: [Int]
        let tokens = Mutex<[String]>([])
        init(_ statuses: [Int]) { self.statuses = statuses }

        func attempt(_ token: String) -> Result<HTTPResponse, HTTPTransportError> {
            let index = tokens.withLock { $0.append(token); return $0.count - 1 }
            return .success(HTTPResponse(status: statuses[min(index, statuses.count - 1)], contentType: nil, body: []))
        }
        var seen: [String] { tokens.withLock { $0 } }
    }

    let bearer = BearerSource(current: { "old" }, renew: { "renewed-" + $0 })

    func status(_ answer: Result<HTTPResponse, HTTPTransportError>) -> Int? {
        if case .success(let response) = answer { return response.status }
        return nil
    }

    @Test func anAcceptedTokenIsSentOnce() async throws {
        let server = Server([200])
        #expect(status(try await bearer.send { server.attempt($0) }) == 200)
        #expect(server.seen == ["old"])
    }

    @Test func a401RenewsTheRefusedTokenAndResendsOnce() async throws {
        let server = Server([401, 200])
        #expect(status(try await bearer.send { server.attempt($0) }) == 200)
        #expect(server.seen == ["old", "renewed-old"])
    }

    @Test func aSecond401IsTheCallersAnswer() async throws {
        let server = Server([401])
        #expect(status(try await bearer.send { server.attempt($0) }) == 401)
        #expect(server.seen == ["old", "renewed-old"])
    }

    @Test func otherRefusalsAreNotRetried() async throws {
        let server = Server([403])
        #expect(status(try await bearer.send { server.attempt($0) }) == 403)
        #expect(server.seen == ["old"])
    }

    /// The step `send` failed at, or nil when it got an answer.
    func failure(of source: BearerSource, against server: Server) async -> BearerSource.RetryError? {
        do {
            _ = try await source.send { server.attempt($0) }
            return nil
        } catch {
            return error
        }
    }

    @Test func noTokenAndFailedRenewalAreTold() async {
        let server = Server([401])
        let tokenless = BearerSource(current: { throw Refused() }, renew: { _ in "never" })
        guard case .noToken(let reason)? = await failure(of: tokenless, against: server) else {
            Issue.record("no token was not told")
            return
        }
        #expect(reason is Refused)
        #expect(server.seen.isEmpty)

        let unrenewable = BearerSource(current: { "old" }, renew: { _ in throw Refused() })
        guard case .renewalFailed(let refusal)? = await failure(of: unrenewable, against: server) else {
            Issue.record("the failed renewal was not told")
            return
        }
        #expect(refusal is Refused)
        #expect(server.seen == ["old"])
    }
}
