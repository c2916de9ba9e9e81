import Foundation
import Hummingbird
import JWTKit
import KontextBroker
import KontextCore
import Logging
@_exported import JWTKit
import Synchronization

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What the loopback identity provider serves and has been asked.
final class IdentityProviderState: Sendable {
    struct Values {
        var baseURL = ""
        var keys: [String] = []
        var jwksStatus = 200
        var jwksHits = 0
        var discoveryHits = 0
    }

    let values = Mutex(Values())
}

/// A loopback identity provider for the tests: it serves a discovery document and a JWKS
/// over real HTTP (Hummingbird on 127.0.0.1:0), counts requests, and can switch keys or fail.
public final class KeyServer: Sendable {
    public let baseURL: String
    private let state: IdentityProviderState
    private let task: Task<Void, any Error>

    public var issuer: String { baseURL }
    public var jwksURL: String { baseURL + "/jwks" }

    private init(baseURL: String, state: IdentityProviderState, task: Task<Void, any Error>) {
        self.baseURL = baseURL
        self.state = state
        self.task = task
    }

    /// Publishes exactly these keys.
    public func publish(_ keys: [TestKey]) { state.values.withLock { $0.keys = keys.map(\.publicJWK) } }
    public func answerJWKS(status: Int) { state.values.withLock { $0.jwksStatus = status } }
    public var jwksHits: Int { state.values.withLock { $0.jwksHits } }
    public var discoveryHits: Int { state.values.withLock { $0.discoveryHits } }

    public static func start(publishing keys: [TestKey]) async throws -> KeyServer {
        var quiet = Logger(label: "kontext.test.idp")
        quiet.logLevel = .critical
        let state = IdentityProviderState()
        state.values.withLock { $0.keys = keys.map(\.publicJWK) }
        let router = Router()
        router.get("/jwks") { _, _ -> Response in
            let (status, body) = state.values.withLock { values -> (Int, String) in
                values.jwksHits += 1
                return (values.jwksStatus, #"{"keys":["# + values.keys.joined(separator: ",") + "]}")
            }
            return jsonResponse(status, status == 200 ? body : #"{"error":"down"}"#)
        }
        router.get("/.well-known/openid-configuration") { _, _ -> Response in
            let base = state.values.withLock { values in
                values.discoveryHits += 1
                return values.baseURL
            }
            return jsonResponse(200, #"{"issuer":""# + base + #"","jwks_uri":""# + base + #"/jwks"}"#)
        }
        let listening = try await LoopbackApplication.start(router, logger: quiet)
        state.values.withLock { $0.baseURL = listening.baseURL }
        return KeyServer(baseURL: listening.baseURL, state: state, task: listening.task)
    }

    /// Stops serving; later fetches are refused at the socket.
    public func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

private func jsonResponse(_ status: Int, _ body: String) -> Response {
    Response(status: .init(code: status), headers: [.contentType: "application/json"],
             body: .init(byteBuffer: ByteBuffer(string: body)))
}

/// The claims a test token carries; nil fields are left out.
public struct TestClaims: JWTPayload {
    public var iss: String?
    public var sub: String?
    public var aud: AudienceClaim?
    public var exp: Double?
    public var nbf: Double?
    public var iat: Double?
    public var email: String?
    public var email_verified: Bool?
    public var repository: String?
    public var ref: String?

    public init(iss: String? = nil, sub: String? = nil, aud: AudienceClaim? = nil, exp: Double? = nil,
                nbf: Double? = nil, iat: Double? = nil, email: String? = nil, email_verified: Bool? = nil,
                repository: String? = nil, ref: String? = nil) {
        self.iss = iss
        self.sub = sub
        self.aud = aud
        self.exp = exp
        self.nbf = nbf
        self.iat = iat
        self.email = email
        self.email_verified = email_verified
        self.repository = repository
        self.ref = ref
    }

    /// Signing never checks anything: the verifier under test does.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// An issuer's signing key: signs tokens and publishes its public half.
public struct TestKey: Sendable {
    public let kid: String
    public let signer: JWTKeyCollection
    /// The public JWK as a JSON object.
    public let publicJWK: String

    public static func es256(kid: String) async -> TestKey {
        let key = ES256PrivateKey()
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        let (x, y) = key.publicKey.parameters!
        let jwk = #"{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":""# + kid + #"","x":""# + x + #"","y":""# + y + #""}"#
        return TestKey(kid: kid, signer: signer, publicJWK: jwk)
    }

    /// RS256 with a fixed 2048-bit test key (made for this suite only; RSA generation
    /// needs CryptoExtras, which the test target does not link). `alg` is left out of the
    /// JWK, as several real issuers do.
    public static func rs256(kid: String) async throws -> TestKey {
        let key = try Insecure.RSA.PrivateKey(pem: testRSAPrivateKeyPEM)
        let signer = JWTKeyCollection()
        await signer.add(rsa: key, digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
        let (modulus, exponent) = try key.publicKey.getKeyPrimitives()
        let jwk = #"{"kty":"RSA","use":"sig","kid":""# + kid + #"","n":""# + base64URL(modulus) + #"","e":""# + base64URL(exponent) + #""}"#
        return TestKey(kid: kid, signer: signer, publicJWK: jwk)
    }

    public func sign(_ claims: TestClaims) async throws -> String {
        try await signer.sign(claims, kid: JWKIdentifier(string: kid))
    }
}

public func base64URL(_ data: Data) -> String {
    data.base64EncodedString()
        .replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

public let testRSAPrivateKeyPEM = """
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCdXIQuowINqgP5
2ysmG2RIxVCTooOUU5Bjn1jxzGXfyRRg/ZcjGw2Kt4S3R5MQZEwRziQ1DUdFViPg
7EJpzuzZ5EtOopQL+NltOaEUJ6IRqTVOv/OOUyPOva0hLK0XCcWgTQaR/beDklby
kV5FSGNKOzXC7DWQqOlrcbRFlmSPvIsyjZn43Pa0TVb9FqJO7HSWVkOwQWVX4dNI
wjM4HtWdh+z030O+wybbcJWai1ECcHOFuk0he17PcpODRmtQZdvGzWhNdIS3Eb4e
22A6BC4Wy02ei0/JNEj7C6AFq0zFy6W7YUW+GUROzk9yplZ1qT91oktZShD6+02/
ymNKCIFfAgMBAAECggEACYLC9nKhuCOzc9F8TSRQrllGonWrEDbwviSuYobhDWKA
2c/Z56RF8EFhQxaPW+lD87uK0q4HxbgMGRcOeIiqJg03Q/xtiD+1HHXkN2yhzgF1
GFpfpRV/T4qFQUELAR51FFgzcnVsNwaMPMLueK+EWMM1X5+ZKTIcUYMgyyfo0gsR
56GSaFXl03Vwe0+zp83Xsq794brLSaGoXNDJIKy26u9q3YHuXlOuZzoxySySDoWx
3++NCa/FEslMf3mMQFwr0cfW4DfzFH5qi3ggbAL+coV42iJzjCMmXX2+fiRETxlC
I+oQhZ2tzYDNoP1qQy8ecfjuEE6sD2bWJJm2MDk+iQKBgQDXpvHVCcyeoJJT8F3I
353Hl+wlDHIXgjZ79hanQf008mQ8fFP2oCweOe6WQgPS5QZssQo+perQPAEWsKV/
+FpO6DnFeExkwNXYm3A86nfzLT6ulyVtSKXG20vwa8Sf7z82P1O+LCKxg/BalzRN
3SkjSXfeRSQDaWIAsGirbGvd0wKBgQC6zaEyGaKoAGOSOLkstdnr2E2EQahUuPog
Ka9dEykWH8Zw4TGJudQP4BiFK8g8tAS5wDyxh3gT3zr8atRh8jmvQXudqJK+y0mY
e0vdLZcO7jU3lNqQD4nCAHXxqRrNc+LlKjfE/U0Ff8rRQmX+/eFnAiHDaMQ+bKMW
77jq/gc6xQKBgQCkB7bgfYCnk6lZsXYUiYqgu70B/TJ3ETNSHL/kXvwzHsABhevz
pqeIIjaJEhOIgW3elNcfCeLOmyWU1a485XIDnP38ZuFsrYS7Kpg3rXypelu4Pv1X
369Az6M2bzJzGG6zW33eJAILljjnHyXIqBVXYtWLOnoHIkxKC+TBp0lwwwKBgAJ3
LlZ78iKnhqjqaL9HUy4Ct9s0BqW/n0WHZ1IiK5uoJbVds4qu0ja3bXtsfYMXmSxe
di6drB8PBjdIra7xRIOkqJ4HGJC+HCWQEwtDS8gdqsQmCdB29AmEegoLglgN3IPL
z9qgwUB+VE34w2HfNfdnFsz+eACe7HQkC9vGKJBFAoGAPL7FzkgOMgaTpm1c+FI5
vY6kqGya6sX5O+NF7N9gakci7xYlk6FdduLXRSquqT6s4xREEhAj312LhNubvTt+
cYIRUhMwWEiFNKVUZR2uYwochqrgB6aVuf5ToDDo48Luu0FIFW0GE49fPBrawr+/
VWjrU1DlEyHW8xdIRtITZUw=
-----END PRIVATE KEY-----
"""
