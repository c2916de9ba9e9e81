import Foundation
import KontextBroker
import KontextCore
import KontextEnvFile
@testable import KontextExchange
import KontextHTTP
import KontextTestSupport
import Testing

/// A vault with fixed credentials. With a barrier, each request waits (up to 10 s) until
/// `expected` requests are in flight at once, so concurrency shows as a count, not a time.
struct FixedVault: CredentialVault {
    var credentials: [String: String]
    var barrier: Barrier?

    func credential(for placeholder: Placeholder, principal: Principal) async throws(OAuthError) -> String? {
        await barrier?.arriveAndWait()
        return credentials[placeholder.target] ?? credentials[placeholder.service]
    }
}

actor Barrier {
    let expected: Int
    private(set) var inFlight = 0
    private(set) var mostInFlight = 0
    private(set) var arrivals = 0

    init(expected: Int) { self.expected = expected }

    func arriveAndWait() async {
        arrivals += 1
        inFlight += 1
        mostInFlight = max(mostInFlight, inFlight)
        let deadline = ContinuousClock.now + .seconds(10)
        while mostInFlight < expected, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        inFlight -= 1
    }
}

func startBroker(_ vault: FixedVault, secret: String) async throws -> BrokerServer {
    try await BrokerServer.start(service: TokenExchangeService(
        verifier: LocalSubjectVerifier(secret: secret), vault: vault, lifetime: 900))
}

@Suite struct EmbeddedBrokerExchangeTests {
    let subject = LocalSubjectVerifier.makeSecret()

    func exchanger(_ broker: BrokerServer, subject: String? = nil) -> TokenExchanger {
        TokenExchanger(endpoint: ExchangeEndpoint(tokenURL: broker.tokenURL, clientID: "kontext-test"),
                       subject: SubjectToken(value: subject ?? self.subject, type: TokenTypeURN.accessToken))
    }

    @Test func exchangesOverRealHTTPWithSection6Fields() async throws {
        let value = TestSupport.secret("gh")
        let broker = try await startBroker(FixedVault(credentials: ["github": value, "pg/ro": "pg-ro"]), secret: subject)
        defer { Task { await broker.stop() } }
        let results = await exchanger(broker).exchange([Placeholder(service: "github"), Placeholder(service: "pg", resource: "ro")])
        #expect(try results[Placeholder(service: "github")]?.get() ==
                IssuedCredential(value: value, issuedTokenType: TokenTypeURN.accessToken, tokenType: "N_A", expiresIn: 900))
        #expect(try results[Placeholder(service: "pg", resource: "ro")]?.get().value == "pg-ro")
        await broker.stop()
    }

    @Test func rawRequestCarriesEveryRFC8693Field() async throws {
        let request = exchanger(try await startBroker(FixedVault(credentials: [:]), secret: subject))
            .request(for: Placeholder(service: "postgres", resource: "app-ro"))
        let form = formDecode(String(decoding: request.body, as: UTF8.self))
        #expect(form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange")
        #expect(form["subject_token"] == subject)
        #expect(form["subject_token_type"] == TokenTypeURN.accessToken)
        #expect(form["requested_token_type"] == TokenTypeURN.accessToken)
        #expect(form["audience"] == "postgres")
        #expect(form["resource"] == "postgres/app-ro")
        #expect(form["client_id"] == "kontext-test")
        #expect(request.method == "POST")
    }

    @Test func unknownServiceIsInvalidTarget() async throws {
        let broker = try await startBroker(FixedVault(credentials: [:]), secret: subject)
        let result = await exchanger(broker).exchange([Placeholder(service: "nope")])[Placeholder(service: "nope")]
        await broker.stop()
        guard case .failure(.unknownService(let detail))? = result else {
            Issue.record("expected unknownService, got \(String(describing: result))")
            return
        }
        #expect(detail?.contains("nope") == true)
    }

    @Test func anotherSubjectTokenIsRefused() async throws {
        let broker = try await startBroker(FixedVault(credentials: ["github": "x"]), secret: subject)
        let result = await exchanger(broker, subject: LocalSubjectVerifier.makeSecret()).exchange([Placeholder(service: "github")])
        await broker.stop()
        guard case .failure(.subjectRejected)? = result[Placeholder(service: "github")] else {
            Issue.record("expected subjectRejected, got \(String(describing: result))")
            return
        }
    }

    @Test func brokerAnswersRFC6749ErrorsToMalformedRequests() async throws {
        let broker = try await startBroker(FixedVault(credentials: ["github": "x"]), secret: subject)
        let http = HTTPClient()
        func post(_ fields: [(String, String)]) async throws -> (Int, String?) {
            let response = try await http.perform(.form(url: broker.tokenURL, fields: fields)).get()
            let json = try JSONValue.parse(response.body)
            return (response.status, json["error"]?.stringValue)
        }
        #expect(try await post([("grant_type", "password")]) == (400, "unsupported_grant_type"))
        #expect(try await post([("grant_type", TokenTypeURN.grantType)]) == (400, "invalid_request"))
        #expect(try await post([("grant_type", TokenTypeURN.grantType), ("subject_token", subject),
                          ("subject_token_type", TokenTypeURN.accessToken), ("resource", "bad name")]) == (400, "invalid_target"))
        #expect(try await post([("grant_type", TokenTypeURN.grantType), ("subject_token", subject),
                          ("subject_token_type", TokenTypeURN.accessToken), ("audience", "other"), ("resource", "github")]) == (400, "invalid_target"))
        await broker.stop()
    }

    @Test func independentPlaceholdersAreExchangedConcurrentlyAndOnce() async throws {
        // Every request is held at the broker until all ten are in flight together; sequential
        // exchanges would never get past one in flight. Each placeholder appears twice.
        var credentials: [String: String] = [:]
        for i in 0..<10 { credentials["svc\(i)"] = "value-\(i)" }
        let barrier = Barrier(expected: 10)
        let broker = try await startBroker(FixedVault(credentials: credentials, barrier: barrier), secret: subject)
        let placeholders = (0..<10).map { Placeholder(service: "svc\($0)") }
        let results = await exchanger(broker).exchange(placeholders + placeholders)
        await broker.stop()
        #expect(results.count == 10)
        #expect(results.values.allSatisfy { (try? $0.get()) != nil })
        #expect(await barrier.mostInFlight == 10)
        #expect(await barrier.arrivals == 10)
    }

    @Test func unreachableServerIsNamed() async throws {
        let result = await TokenExchanger(endpoint: ExchangeEndpoint(tokenURL: "http://127.0.0.1:9/token", clientID: "x"),
                                    subject: SubjectToken(value: "s", type: TokenTypeURN.accessToken))
            .exchange([Placeholder(service: "github")])[Placeholder(service: "github")]
        guard case .failure(let failure)? = result, case .unreachable = failure else {
            Issue.record("expected unreachable, got \(String(describing: result))")
            return
        }
        #expect(failure.explanation(for: Placeholder(service: "github"), endpoint: "http://127.0.0.1:9/token")
            .contains("cannot reach the token service"))
    }
}

@Suite struct ResponseInterpretationTests {
    func interpret(_ status: Int, _ body: String) -> Result<IssuedCredential, ExchangeFailure> {
        TokenExchanger.interpret(HTTPResponse(status: status, contentType: "application/json", body: Array(body.utf8)))
    }

    @Test func mapsErrorsToActionableFailures() {
        #expect(interpret(400, #"{"error":"invalid_target","error_description":"no such service"}"#) == .failure(.unknownService(detail: "no such service")))
        #expect(interpret(400, #"{"error":"provider_not_connected","connect_url":"https://broker/connect/github"}"#) ==
                .failure(.notConnected(detail: nil, connectURL: "https://broker/connect/github")))
        #expect(interpret(400, #"{"error":"invalid_grant"}"#) == .failure(.subjectRejected(detail: nil)))
        #expect(interpret(500, "<html>oops</html>") == .failure(.serverError(status: 500)))
        #expect(interpret(200, "not json") == .failure(.malformedResponse("not a JSON object")))
        #expect(interpret(200, #"{"token_type":"N_A"}"#) == .failure(.malformedResponse("no access_token")))
        #expect(interpret(403, #"{"error":"access_denied","error_description":"line1\nline2"}"#) == .failure(.denied(detail: "line1 line2")))
    }
}

/// Which URLs the HTTP client keeps away from environment proxies (`http_proxy`, …).
@Suite struct LoopbackDetectionTests {
    @Test(arguments: ["http://127.0.0.1:8080/token", "http://localhost/x", "http://LOCALHOST:1", "http://[::1]:9/t",
                      "http://127.10.0.3/", "https://broker.localhost/token"])
    func loopbackURLs(url: String) {
        #expect(HTTPClient.isLoopback(url: url))
    }

    @Test(arguments: ["https://example.com/token", "http://127.0.0.1@example.com/", "http://128.0.0.1/",
                      "http://localhost.example.com/", "http://[::2]/", "not a url"])
    func otherURLs(url: String) {
        #expect(!HTTPClient.isLoopback(url: url))
    }
}

/// Local mode hands the form to the exchange core in process. The same placeholders against
/// the same service must end the same way as over HTTP, answer for answer.
@Suite struct InProcessExchangeTests {
    let subject = LocalSubjectVerifier.makeSecret()

    func service(_ vault: FixedVault) -> TokenExchangeService {
        TokenExchangeService(verifier: LocalSubjectVerifier(secret: subject), vault: vault, lifetime: 900)
    }

    func inProcess(_ service: TokenExchangeService, subject: String) -> TokenExchanger {
        TokenExchanger(endpoint: ExchangeEndpoint(tokenURL: "in process", clientID: "kontext-test"),
                       subject: SubjectToken(value: subject, type: TokenTypeURN.accessToken),
                       carrier: .inProcess { form in
                           let answer = await service.handle(form: form)
                           return HTTPResponse(status: answer.status, contentType: "application/json", body: answer.body)
                       })
    }

    @Test func answersMatchTheHTTPCarrier() async throws {
        let value = TestSupport.secret("inproc")
        let vault = FixedVault(credentials: ["github": value, "pg/ro": "pg-ro"])
        let placeholders = [Placeholder(service: "github"), Placeholder(service: "pg", resource: "ro"),
                            Placeholder(service: "nope"), Placeholder(service: "github")]
        let broker = try await startBroker(vault, secret: subject)
        for token in [subject, LocalSubjectVerifier.makeSecret()] {
            let overHTTP = await TokenExchanger(endpoint: ExchangeEndpoint(tokenURL: broker.tokenURL, clientID: "kontext-test"),
                                                subject: SubjectToken(value: token, type: TokenTypeURN.accessToken))
                .exchange(placeholders)
            let direct = await inProcess(service(vault), subject: token).exchange(placeholders)
            #expect(direct.count == 3)
            #expect(direct == overHTTP)
        }
        await broker.stop()
        let issued = await inProcess(service(vault), subject: subject).exchange(placeholders)
        #expect(try issued[Placeholder(service: "github")]?.get() ==
                IssuedCredential(value: value, issuedTokenType: TokenTypeURN.accessToken, tokenType: "N_A", expiresIn: 900))
        guard case .failure(.unknownService)? = issued[Placeholder(service: "nope")] else {
            Issue.record("expected unknownService, got \(String(describing: issued[Placeholder(service: "nope")]))")
            return
        }
    }

    @Test func placeholdersAreExchangedConcurrentlyAndOnce() async throws {
        var credentials: [String: String] = [:]
        for i in 0..<10 { credentials["svc\(i)"] = "value-\(i)" }
        let barrier = Barrier(expected: 10)
        let placeholders = (0..<10).map { Placeholder(service: "svc\($0)") }
        let results = await inProcess(service(FixedVault(credentials: credentials, barrier: barrier)), subject: subject)
            .exchange(placeholders + placeholders)
        #expect(results.count == 10)
        #expect(results.values.allSatisfy { (try? $0.get()) != nil })
        #expect(await barrier.mostInFlight == 10)
        #expect(await barrier.arrivals == 10)
    }
}
