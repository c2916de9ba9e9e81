import Foundation
import JWTKit
import KontextCore
import KontextExchange
import KontextExchangeCore
import KontextHTTP

/// The self-hosted broker's subject check: a subject token is accepted only when it is a
/// JWT from a configured issuer, signed by a key in that issuer's JWKS (fetched, cached and
/// refetched on rotation), for an expected audience, and within its lifetime.
///
/// Every refusal is RFC 8693 section 2.2.2's `invalid_request`, with a description that
/// starts with `subject_token` and says what was wrong; keys that cannot be fetched are
/// `503 temporarily_unavailable`.
public struct JWTSubjectVerifier: SubjectVerifier {
    /// Subject token types whose value may be a JWT.
    public static let acceptedTokenTypes: Set<String> = [TokenTypeURN.jwt, TokenTypeURN.idToken, TokenTypeURN.accessToken]
    /// Larger subject tokens are refused before any parsing.
    public static let maximumTokenLength = 16 * 1024

    public let issuers: [TrustedIssuer]
    private let caches: [String: KeySetCache]
    private let now: @Sendable () -> Date

    /// Fails with every configuration problem at once (`KontextError(.usage)`).
    public init(issuers: [TrustedIssuer], http: HTTPClient = HTTPClient(), cachePolicy: KeyCachePolicy = KeyCachePolicy(),
                now: @escaping @Sendable () -> Date = { Date() }) throws(KontextError) {
        var problems = issuers.flatMap { $0.problems() }
        if issuers.isEmpty { problems.append("no trusted issuer is configured") }
        var seen = Set<String>()
        for issuer in issuers where !seen.insert(issuer.issuer).inserted {
            problems.append("issuer '\(issuer.issuer)' is configured twice")
        }
        guard problems.isEmpty else {
            throw KontextError(.usage, "the broker's trusted issuers are misconfigured", details: problems,
                               hint: "each trusted issuer needs an https issuer URL and at least one expected audience")
        }
        self.issuers = issuers
        var caches: [String: KeySetCache] = [:]
        for issuer in issuers { caches[issuer.issuer] = KeySetCache(issuer: issuer, http: http, policy: cachePolicy) }
        self.caches = caches
        self.now = now
    }

    public func verify(token: String, type: String) async throws(OAuthError) -> Principal {
        try await verifySubject(token: token, type: type).principal
    }

    /// The same check, keeping every claim for rules beyond the principal.
    public func verifySubject(token: String, type: String) async throws(OAuthError) -> VerifiedSubject {
        guard Self.acceptedTokenTypes.contains(type) else {
            throw OAuthError("invalid_request",
                             "subject_token_type '\(clip(type))' is not accepted here; send a JWT as \(TokenTypeURN.jwt) or \(TokenTypeURN.idToken)")
        }
        let jws = try JWS(token)
        guard let claimedIssuer = jws.payload["iss"]?.stringValue else {
            throw OAuthError("invalid_request", "subject_token has no iss (issuer) claim")
        }
        guard let issuer = issuers.first(where: { $0.issuer == claimedIssuer }), let cache = caches[issuer.issuer] else {
            throw OAuthError("invalid_request", "subject_token is issued by an untrusted issuer '\(clip(claimedIssuer))'")
        }
        guard let alg = jws.header["alg"]?.stringValue, alg != "none", !alg.isEmpty else {
            throw OAuthError("invalid_request", "subject_token is not signed (alg none or missing)")
        }
        guard issuer.algorithms.contains(alg) else {
            throw OAuthError("invalid_request",
                             "subject_token is signed with \(clip(alg, 20)), which is not accepted from issuer '\(issuer.issuer)' (accepted: \(issuer.algorithms.sorted().joined(separator: ", ")))")
        }
        if jws.header["crit"] != nil {
            throw OAuthError("invalid_request", "subject_token has critical header extensions this broker does not understand")
        }
        let kid: String?
        switch jws.header["kid"] {
        case nil, .null?: kid = nil
        case .string(let value)?: kid = value
        default: throw OAuthError("invalid_request", "subject_token has a kid header that is not a string")
        }

        let key = try await cache.verificationKey(kid: kid, alg: alg)
        let verified: Bool
        do {
            verified = try key.verify(jws.signature, signs: jws.signingInput)
        } catch {
            verified = false
        }
        guard verified else {
            throw OAuthError("invalid_request", "subject_token signature does not verify against the keys of issuer '\(issuer.issuer)'")
        }

        let claims = try checkClaims(jws.payload, issuer: issuer)
        return VerifiedSubject(principal: try principal(from: jws.payload, issuer: issuer), issuer: issuer.issuer,
                               keyID: kid, claims: claims.all, expiresAt: claims.expiresAt)
    }

    /// How many times the JWKS of `issuer` has been fetched (diagnostics and tests).
    public func keyFetchCount(issuer: String) async -> Int {
        await caches[issuer]?.fetchCount ?? 0
    }

    // MARK: - Claims

    private func checkClaims(_ payload: JSONValue, issuer: TrustedIssuer) throws(OAuthError) -> (all: [String: JSONValue], expiresAt: Double) {
        var all: [String: JSONValue] = [:]
        for (name, value) in payload.objectValue ?? [] { all[name] = value }
        let now = self.now().timeIntervalSince1970
        let leeway = issuer.leeway

        func time(_ name: String) throws(OAuthError) -> Double? {
            switch all[name] {
            case nil: return nil
            case .number(let value)? where value.isFinite: return value
            default: throw OAuthError("invalid_request", "subject_token has a \(name) claim that is not a number of seconds")
            }
        }
        guard let exp = try time("exp") else {
            throw OAuthError("invalid_request", "subject_token has no exp (expiry) claim; tokens without one are not accepted")
        }
        if now > exp + leeway {
            throw OAuthError("invalid_request", "subject_token expired at \(Self.format(exp))")
        }
        if let nbf = try time("nbf"), now + leeway < nbf {
            throw OAuthError("invalid_request", "subject_token is not valid before \(Self.format(nbf))")
        }
        if let iat = try time("iat"), now + leeway < iat {
            throw OAuthError("invalid_request", "subject_token was issued in the future (iat \(Self.format(iat))); check the clocks")
        }

        let audiences: [String]
        switch all["aud"] {
        case .string(let value)?: audiences = [value]
        case .array(let values)?: audiences = values.compactMap(\.stringValue)
        default: audiences = []
        }
        if !audiences.contains(where: issuer.audiences.contains) {
            let expected = issuer.audiences.map { "'\($0)'" }
            let wanted = expected.count == 1 ? expected[0] : "any of " + expected.joined(separator: ", ")
            throw OAuthError("invalid_request", audiences.isEmpty
                ? "subject_token has no aud (audience) claim; it must include \(wanted)"
                : "subject_token audience does not include \(wanted) (it has \(audiences.prefix(5).map { "'\(clip($0, 80))'" }.joined(separator: ", ")))")
        }
        return (all, exp)
    }

    private func principal(from payload: JSONValue, issuer: TrustedIssuer) throws(OAuthError) -> Principal {
        let mapping = issuer.claimMapping
        guard let subject = payload[mapping.subject]?.stringValue, !subject.isEmpty else {
            throw OAuthError("invalid_request", "subject_token has no \(mapping.subject) claim naming its subject")
        }
        var email: String?
        if let claim = mapping.email, let value = payload[claim]?.stringValue, !value.isEmpty {
            if case .bool(false)? = payload["email_verified"] {
                email = nil
            } else {
                email = value
            }
        }
        return Principal(subject: subject, email: email)
    }

    static func format(_ seconds: Double) -> String {
        Date(timeIntervalSince1970: seconds.rounded(.down)).formatted(.iso8601)
    }
}

/// A compact-serialised JWS, split and decoded but not yet trusted.
struct JWS {
    var header: JSONValue
    var payload: JSONValue
    var signingInput: [UInt8]
    var signature: [UInt8]

    init(_ token: String) throws(OAuthError) {
        let notJWT = OAuthError("invalid_request", "subject_token is not a JWT (expected three base64url parts separated by dots)")
        guard token.utf8.count <= JWTSubjectVerifier.maximumTokenLength else {
            throw OAuthError("invalid_request", "subject_token is longer than \(JWTSubjectVerifier.maximumTokenLength) bytes")
        }
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw parts.count == 5
                ? OAuthError("invalid_request", "subject_token is an encrypted JWT (JWE); send a signed one")
                : notJWT
        }
        guard let headerBytes = base64URLDecode(parts[0]), let payloadBytes = base64URLDecode(parts[1]),
              let signature = base64URLDecode(parts[2]) else { throw notJWT }
        guard let header = try? JSONValue.parse(headerBytes, maxDepth: 16), header.objectValue != nil,
              let payload = try? JSONValue.parse(payloadBytes, maxDepth: 32), payload.objectValue != nil else {
            throw notJWT
        }
        self.header = header
        self.payload = payload
        self.signingInput = Array(parts[0]) + [UInt8(ascii: ".")] + Array(parts[1])
        self.signature = signature
    }
}
