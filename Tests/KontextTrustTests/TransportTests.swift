import KontextCore
import Testing

/// SPEC section 10's transport rule: plain HTTP only to this machine, unless the user opts in.
@Suite struct TransportTests {
    @Test(arguments: [
        "http://127.0.0.1:8080/token", "http://127.1.2.3", "http://[::1]:9000/x", "http://localhost/x",
        "http://LOCALHOST:80", "http://broker.localhost:8080/oauth2/token", "http://user@127.0.0.1/x", "https://kontext.example.com",
    ])
    func loopbackAndTLSAreAccepted(url: String) throws {
        #expect(!Transport.isPlainHTTPOffLoopback(url))
        try Transport.check(url, name: "KONTEXT_TOKEN_ENDPOINT", allowHTTP: false)
    }

    @Test(arguments: [
        "http://kontext.example.com/oauth2/token", "http://10.0.0.5:8080", "http://127.0.0.1.evil.example/x",
        "http://localhost.evil.example", "http://[::2]/x", "HTTP://login.example.com", "http://127.0.0.1@evil.example/",
        "http://1270.0.0.1/",
    ])
    func plainHTTPElsewhereIsRefusedUnlessAllowed(url: String) throws {
        #expect(Transport.isPlainHTTPOffLoopback(url))
        #expect(throws: KontextError.self) { try Transport.check(url, name: "KONTEXT_AUDIT_URL", allowHTTP: false) }
        do {
            try Transport.check(url, name: "KONTEXT_AUDIT_URL", allowHTTP: false)
        } catch {
            #expect(error.status == .usage)
            #expect(error.message.hasPrefix("KONTEXT_AUDIT_URL \(url) is plain HTTP"), "\(error.message)")
            #expect(error.message.contains("KONTEXT_ALLOW_HTTP=1"))
            #expect(!error.message.contains("\n"))
        }
        try Transport.check(url, name: "KONTEXT_AUDIT_URL", allowHTTP: true)
    }

    @Test func theOptInIsOneTrueOrYes() {
        #expect(Settings(environment: ["KONTEXT_ALLOW_HTTP": "1"]).allowHTTP)
        #expect(Settings(environment: ["KONTEXT_ALLOW_HTTP": "true"]).allowHTTP)
        #expect(!Settings(environment: ["KONTEXT_ALLOW_HTTP": "0"]).allowHTTP)
        #expect(!Settings(environment: [:]).allowHTTP)
    }
}
