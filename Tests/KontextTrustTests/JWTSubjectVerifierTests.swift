import Foundation
import JWTKit
import KontextBroker
import KontextCore
import KontextEnvFile
import KontextExchange
import KontextHTTP
@testable import KontextTrust
import KontextTestIssuer
import Testing

let audience = "kontext-broker"

/// One identity provider with one published key, and a verifier that trusts it.
struct Fixture {
    let server: KeyServer
    let key: TestKey
    let verifier: JWTSubjectVerifier

    static func make(policy: KeyCachePolicy = KeyCachePolicy(), discover: Bool = false,
                     key: TestKey? = nil) async throws -> Fixture {
        let key = if let key { key } else { await TestKey.es256(kid: "key-1") }
        let server = try await KeyServer.start(publishing: [key])
        let issuer = TrustedIssuer(issuer: server.issuer, audiences: [audience],
                                   jwksURL: discover ? nil : server.jwksURL)
        let verifier = try JWTSubjectVerifier(issuers: [issuer], http: HTTPClient(), cachePolicy: policy)
        return Fixture(server: server, key: key, verifier: verifier)
    }

    /// Claims that pass every check, for tests to spoil one at a time.
    func claims(_ change: (inout TestClaims) -> Void = { _ in }) -> TestClaims {
        let now = Date().timeIntervalSince1970
        var claims = TestClaims(iss: server.issuer, sub: "user-42", aud: AudienceClaim(value: [audience]),
                                exp: now + 300, nbf: now - 10, iat: now - 10, email: "ada@example.com",
                                repository: "acme/app", ref: "refs/heads/main")
        change(&claims)
        return claims
    }

    func token(_ change: (inout TestClaims) -> Void = { _ in }) async throws -> String {
        try await key.sign(claims(change))
    }
}

/// The OAuth error a verification failed with, or nil when it passed.
func refusal(_ verifier: JWTSubjectVerifier, _ token: String, type: String = TokenTypeURN.jwt) async -> OAuthError? {
    do {
        _ = try await verifier.verify(token: token, type: type)
        return nil
    } catch {
        return error
    }
}

func expectInvalidSubject(_ error: OAuthError?, containing text: String,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error else {
        Issue.record("the token was accepted; expected a refusal mentioning \"\(text)\"", sourceLocation: sourceLocation)
        return
    }
    #expect(error.status == 400, sourceLocation: sourceLocation)
    #expect(error.code == "invalid_request", sourceLocation: sourceLocation)
    #expect(error.description.hasPrefix("subject_token"), "\(error.description)", sourceLocation: sourceLocation)
    #expect(error.description.contains(text), "\(error.description)", sourceLocation: sourceLocation)
}

// Serialized: the blocking libcurl transfers of many tests at once (HTTPClient offloads them to
// Dispatch's global queue) stretch the whole suite from about 1 s to 7–12 s on two cores.
@Suite(.serialized) struct JWTSubjectVerifierTests {
    @Test func validTokenNamesItsPrincipalAndKeepsItsClaims() async throws {
        let fixture = try await Fixture.make()
        let token = try await fixture.token()
        for type in [TokenTypeURN.jwt, TokenTypeURN.idToken, TokenTypeURN.accessToken] {
            #expect(try await fixture.verifier.verify(token: token, type: type) ==
                    Principal(subject: "user-42", email: "ada@example.com"))
        }
        let subject = try await fixture.verifier.verifySubject(token: token, type: TokenTypeURN.jwt)
        #expect(subject.issuer == fixture.server.issuer)
        #expect(subject.keyID == "key-1")
        #expect(subject.claims["repository"] == .string("acme/app"))
        #expect(subject.claims["ref"] == .string("refs/heads/main"))
        // Cached: four verifications, one fetch.
        #expect(fixture.server.jwksHits == 1)
        #expect(await fixture.verifier.keyFetchCount(issuer: fixture.server.issuer) == 1)
        await fixture.server.stop()
    }

    @Test func rs256TokenFromAKeyWithoutAlgVerifies() async throws {
        let fixture = try await Fixture.make(key: try await TestKey.rs256(kid: "rsa-1"))
        let principal = try await fixture.verifier.verify(token: try await fixture.token { $0.email = nil },
                                                          type: TokenTypeURN.idToken)
        #expect(principal == Principal(subject: "user-42"))
        await fixture.server.stop()
    }

    @Test func keysAreFoundThroughDiscovery() async throws {
        let fixture = try await Fixture.make(discover: true)
        #expect(try await fixture.verifier.verify(token: try await fixture.token(), type: TokenTypeURN.jwt).subject == "user-42")
        #expect(fixture.server.discoveryHits == 1)
        #expect(fixture.server.jwksHits == 1)
        await fixture.server.stop()
    }

    @Test func untrustedIssuerIsRefusedWithoutFetchingAnything() async throws {
        let fixture = try await Fixture.make()
        let token = try await fixture.token { $0.iss = "https://evil.example" }
        expectInvalidSubject(await refusal(fixture.verifier, token), containing: "untrusted issuer 'https://evil.example'")
        #expect(fixture.server.jwksHits == 0)
        await fixture.server.stop()
    }

    @Test func wrongAudienceIsRefused() async throws {
        let fixture = try await Fixture.make()
        expectInvalidSubject(await refusal(fixture.verifier, try await fixture.token { $0.aud = AudienceClaim(value: ["someone-else"]) }),
                             containing: "audience does not include '\(audience)'")
        expectInvalidSubject(await refusal(fixture.verifier, try await fixture.token { $0.aud = nil }),
                             containing: "no aud")
        // One of several audiences is enough.
        #expect(await refusal(fixture.verifier, try await fixture.token { $0.aud = AudienceClaim(value: ["other", audience]) }) == nil)
        await fixture.server.stop()
    }

    @Test func expiredTokenIsRefusedOutsideTheLeeway() async throws {
        let fixture = try await Fixture.make()
        let expiry = (Date().timeIntervalSince1970 - 3600).rounded(.down)
        expectInvalidSubject(await refusal(fixture.verifier, try await fixture.token { $0.exp = expiry; $0.iat = expiry - 60; $0.nbf = nil }),
                             containing: "expired at \(Date(timeIntervalSince1970: expiry).formatted(.iso8601))")
        // 30 s past exp is within the default 60 s leeway.
        #expect(await refusal(fixture.verifier, try await fixture.token { $0.exp = Date().timeIntervalSince1970 - 30 }) == nil)
        await fixture.server.stop()
    }

    @Test func notYetValidTokenIsRefused() async throws {
        let fixture = try await Fixture.make()
        let start = Date().timeIntervalSince1970 + 600
        expectInvalidSubject(await refusal(fixture.verifier, try await fixture.token { $0.nbf = start; $0.exp = start + 600 }),
                             containing: "not valid before")
        expectInvalidSubject(await refusal(fixture.verifier, try await fixture.token { $0.iat = start }),
                             containing: "issued in the future")
        // 30 s early is within the leeway.
        #expect(await refusal(fixture.verifier, try await fixture.token { $0.nbf = Date().timeIntervalSince1970 + 30 }) == nil)
        await fixture.server.stop()
    }

    @Test func missingExpiryIsRefused() async throws {
        let fixture = try await Fixture.make()
        expectInvalidSubject(await refusal(fixture.verifier, try await fixture.token { $0.exp = nil }), containing: "no exp")
        await fixture.server.stop()
    }

    @Test func signatureByAnotherKeyWithTheSameKidIsRefused() async throws {
        let fixture = try await Fixture.make()
        let impostor = await TestKey.es256(kid: "key-1")
        let forged = try await impostor.sign(fixture.claims())
        expectInvalidSubject(await refusal(fixture.verifier, forged), containing: "signature does not verify")
        // A payload edited after signing fails the same way.
        let genuine = try await fixture.token().split(separator: ".").map(String.init)
        let edited = try await fixture.token { $0.sub = "admin" }.split(separator: ".").map(String.init)
        expectInvalidSubject(await refusal(fixture.verifier, [genuine[0], edited[1], genuine[2]].joined(separator: ".")),
                             containing: "signature does not verify")
        await fixture.server.stop()
    }

    @Test func garbageIsNotAJWT() async throws {
        let fixture = try await Fixture.make()
        for token in ["not-a-token", "a.b", "e30.e30.e30.e30", "!!.??.**", "e30.bm90IGpzb24.c2ln", String(repeating: "a", count: 20_000)] {
            let error = await refusal(fixture.verifier, token, type: TokenTypeURN.accessToken)
            #expect(error?.code == "invalid_request")
            #expect(error?.description.hasPrefix("subject_token") == true, "\(String(describing: error))")
        }
        expectInvalidSubject(await refusal(fixture.verifier, "not-a-token"), containing: "not a JWT")
        // An unsigned token (alg none) from the trusted issuer.
        let payload = base64URL(Data(#"{"iss":"\#(fixture.server.issuer)","sub":"x","aud":"\#(audience)","exp":9999999999}"#.utf8))
        let unsigned = base64URL(Data(#"{"alg":"none"}"#.utf8)) + "." + payload + "."
        expectInvalidSubject(await refusal(fixture.verifier, unsigned), containing: "not signed")
        // HS256 is never accepted: a JWKS publishes public keys.
        let hmac = base64URL(Data(#"{"alg":"HS256","kid":"key-1"}"#.utf8)) + "." + payload + ".c2ln"
        expectInvalidSubject(await refusal(fixture.verifier, hmac), containing: "HS256")
        #expect(fixture.server.jwksHits == 0)
        await fixture.server.stop()
    }

    @Test func otherSubjectTokenTypesAreRefused() async throws {
        let fixture = try await Fixture.make()
        let error = await refusal(fixture.verifier, try await fixture.token(), type: "urn:ietf:params:oauth:token-type:saml2")
        #expect(error?.code == "invalid_request")
        #expect(error?.description.hasPrefix("subject_token_type") == true)
        await fixture.server.stop()
    }

    @Test func rotatedKeysAreRefetchedOnceAndRemovedKeysStopWorking() async throws {
        let fixture = try await Fixture.make(policy: KeyCachePolicy(lifetime: .seconds(300), minimumRefetchInterval: .zero))
        let old = fixture.key
        let oldToken = try await fixture.token()
        #expect(await refusal(fixture.verifier, oldToken) == nil)
        #expect(fixture.server.jwksHits == 1)

        // The issuer rotates: the new key replaces the old one.
        let new = await TestKey.es256(kid: "key-2")
        fixture.server.publish([new])
        let newToken = try await new.sign(fixture.claims())
        #expect(try await fixture.verifier.verify(token: newToken, type: TokenTypeURN.jwt).subject == "user-42")
        #expect(fixture.server.jwksHits == 2)
        #expect(await refusal(fixture.verifier, newToken) == nil)
        #expect(fixture.server.jwksHits == 2, "a known kid must not refetch")

        // The old key is gone from the set just fetched: its tokens fail now.
        let anotherOld = try await old.sign(fixture.claims { $0.sub = "user-43" })
        expectInvalidSubject(await refusal(fixture.verifier, anotherOld), containing: "unknown signing key (kid 'key-1')")
        await fixture.server.stop()
    }

    @Test func unknownKidsDoNotHammerTheIssuer() async throws {
        let fixture = try await Fixture.make(policy: KeyCachePolicy(lifetime: .seconds(300), minimumRefetchInterval: .seconds(60)))
        let stranger = await TestKey.es256(kid: "made-up")
        #expect(await refusal(fixture.verifier, try await fixture.token()) == nil)
        for _ in 0..<5 {
            expectInvalidSubject(await refusal(fixture.verifier, try await stranger.sign(fixture.claims())),
                                 containing: "unknown signing key (kid 'made-up')")
        }
        #expect(fixture.server.jwksHits == 1)
        await fixture.server.stop()
    }

    @Test func concurrentVerificationsShareOneFetch() async throws {
        let fixture = try await Fixture.make()
        let token = try await fixture.token()
        let verifier = fixture.verifier
        let accepted = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 { group.addTask { await refusal(verifier, token) == nil } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(accepted == 20)
        #expect(fixture.server.jwksHits == 1)
        await fixture.server.stop()
    }

    @Test func unreachableOrFailingKeyServerIsTemporarilyUnavailable() async throws {
        let fixture = try await Fixture.make()
        let token = try await fixture.token()
        fixture.server.answerJWKS(status: 500)
        let failing = await refusal(fixture.verifier, token)
        #expect(failing?.status == 503)
        #expect(failing?.code == "temporarily_unavailable")
        #expect(failing?.description.contains("HTTP 500") == true, "\(String(describing: failing))")

        let down = try await Fixture.make()
        let downToken = try await down.token()
        await down.server.stop()
        let refused = await refusal(down.verifier, downToken)
        #expect(refused?.status == 503)
        #expect(refused?.code == "temporarily_unavailable")
        #expect(refused?.description.contains(down.server.jwksURL) == true, "\(String(describing: refused))")
        await fixture.server.stop()
    }

    @Test func heldKeysOutliveAShortOutage() async throws {
        let fixture = try await Fixture.make(policy: KeyCachePolicy(lifetime: .zero, minimumRefetchInterval: .zero,
                                                                     staleGrace: .seconds(600)))
        let token = try await fixture.token()
        #expect(await refusal(fixture.verifier, token) == nil)
        fixture.server.answerJWKS(status: 503)
        #expect(await refusal(fixture.verifier, token) == nil)
        #expect(fixture.server.jwksHits == 2, "the due refresh was tried")
        await fixture.server.stop()
    }

    @Test func unverifiedEmailIsLeftOut() async throws {
        let fixture = try await Fixture.make()
        let principal = try await fixture.verifier.verify(token: try await fixture.token { $0.email_verified = false },
                                                          type: TokenTypeURN.jwt)
        #expect(principal == Principal(subject: "user-42", email: nil))
        await fixture.server.stop()
    }

    @Test func misconfigurationIsReportedAtOnce() throws {
        #expect(throws: KontextError.self) { try JWTSubjectVerifier(issuers: []) }
        do {
            _ = try JWTSubjectVerifier(issuers: [
                TrustedIssuer(issuer: "http://idp.example", audiences: []),
                TrustedIssuer(issuer: "https://ok.example", audiences: ["a"], jwksURL: "http://keys.example/jwks",
                              algorithms: ["HS256"]),
            ])
            Issue.record("a bad configuration was accepted")
        } catch {
            let text = error.details.joined(separator: "\n")
            #expect(text.contains("must be an https URL"))
            #expect(text.contains("expected audience"))
            #expect(text.contains("http://keys.example/jwks"))
            #expect(text.contains("'HS256' is not supported"))
        }
        #expect(TrustedIssuer.isAcceptableKeyURL("http://127.0.0.1:8080/jwks"))
        #expect(TrustedIssuer.isAcceptableKeyURL("http://[::1]:80/jwks"))
        #expect(!TrustedIssuer.isAcceptableKeyURL("http://127.0.0.1.evil.example/jwks"))
        #expect(!TrustedIssuer.isAcceptableKeyURL("http://127.0.0.1@evil.example/jwks"))
        #expect(!TrustedIssuer.isAcceptableKeyURL("file:///etc/jwks"))
        #expect(!TrustedIssuer.isAcceptableKeyURL("http://localhost.evil.example/jwks"))
    }

    @Test func base64URLDecoding() {
        #expect(base64URLDecode("aGVsbG8".utf8[...]) == Array("hello".utf8))
        #expect(base64URLDecode("-_8".utf8[...]) == [0xfb, 0xff])
        #expect(base64URLDecode("aGVsbG8=".utf8[...]) == nil)
        #expect(base64URLDecode("a".utf8[...]) == nil)
    }
}

/// A vault with fixed credentials that remembers whom it answered.
struct RecordingVault: CredentialVault {
    let credentials: [String: String]
    let principals = PrincipalLog()

    func credential(for placeholder: Placeholder, principal: Principal) async throws(OAuthError) -> String? {
        await principals.append(principal)
        return credentials[placeholder.target] ?? credentials[placeholder.service]
    }
}

actor PrincipalLog {
    private(set) var seen: [Principal] = []
    func append(_ principal: Principal) { seen.append(principal) }
}

@Suite struct SelfHostedBrokerExchangeTests {
    @Test func jwtSubjectIsExchangedOverRealHTTPAndExpiredOneIsRejected() async throws {
        let fixture = try await Fixture.make()
        let vault = RecordingVault(credentials: ["github": "gh-credential-for-test"])
        let broker = try await BrokerServer.start(service: TokenExchangeService(verifier: fixture.verifier, vault: vault, lifetime: 600))
        let endpoint = ExchangeEndpoint(tokenURL: broker.tokenURL, clientID: "kontext-ci")
        let github = Placeholder(service: "github")

        let good = TokenExchanger(endpoint: endpoint, subject: SubjectToken(value: try await fixture.token(), type: TokenTypeURN.jwt))
        let issued = try #require(await good.exchange([github])[github]).get()
        #expect(issued.value == "gh-credential-for-test")
        #expect(issued.issuedTokenType == TokenTypeURN.accessToken)
        #expect(issued.tokenType == "N_A")
        #expect(issued.expiresIn == 600)
        #expect(await vault.principals.seen == [Principal(subject: "user-42", email: "ada@example.com")])

        let expiredToken = try await fixture.token { $0.exp = Date().timeIntervalSince1970 - 3600; $0.iat = nil; $0.nbf = nil }
        let expired = TokenExchanger(endpoint: endpoint, subject: SubjectToken(value: expiredToken, type: TokenTypeURN.jwt))
        let result = await expired.exchange([github])[github]
        guard case .failure(.subjectRejected(let detail))? = result else {
            Issue.record("expected subjectRejected, got \(String(describing: result))")
            await broker.stop()
            await fixture.server.stop()
            return
        }
        #expect(detail?.contains("expired at") == true, "\(String(describing: detail))")
        #expect(await vault.principals.seen.count == 1, "the vault must not be asked for a refused subject")
        await broker.stop()
        await fixture.server.stop()
    }
}
