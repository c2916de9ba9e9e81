import KontextCore
import KontextExchangeCore

/// One identity provider whose JWTs the broker accepts as subject tokens (SPEC section 6:
/// "validates subject tokens from configured trusted issuers (JWKS)").
public struct TrustedIssuer: Sendable, Equatable {
    /// The `iss` value, compared exactly (no normalisation, as OpenID Connect requires).
    public var issuer: String
    /// Accepted `aud` values: a token is accepted when its `aud` names at least one of them.
    public var audiences: [String]
    /// Where the signing keys are published. Nil: the `jwks_uri` of
    /// `{issuer}/.well-known/openid-configuration`.
    public var jwksURL: String?
    /// JWS `alg` values accepted from this issuer. Only asymmetric algorithms are supported:
    /// a JWKS publishes public keys, so HMAC (and `none`) can never be verified against it.
    public var algorithms: Set<String>
    /// Tolerated clock difference for `exp`, `nbf` and `iat`, seconds.
    public var leeway: Double
    /// How claims become a `Principal`.
    public var claimMapping: ClaimMapping

    public init(issuer: String, audiences: [String], jwksURL: String? = nil,
                algorithms: Set<String> = TrustedIssuer.supportedAlgorithms, leeway: Double = 60,
                claimMapping: ClaimMapping = ClaimMapping()) {
        self.issuer = issuer
        self.audiences = audiences
        self.jwksURL = jwksURL
        self.algorithms = algorithms
        self.leeway = leeway
        self.claimMapping = claimMapping
    }

    /// Every algorithm the verifier can check: RSA PKCS#1 v1.5 and PSS, ECDSA, EdDSA.
    public static let supportedAlgorithms: Set<String> = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    ]

    /// Where discovery looks for `jwks_uri`.
    public var discoveryURL: String {
        var base = issuer
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/.well-known/openid-configuration"
    }

    /// Configuration mistakes, each one line a person can act on; empty when usable.
    public func problems() -> [String] {
        var problems: [String] = []
        if issuer.isEmpty { problems.append("a trusted issuer has an empty issuer URL") }
        if !Self.isAcceptableKeyURL(issuer) {
            problems.append("issuer '\(issuer)' must be an https URL (http only on loopback)")
        }
        if audiences.isEmpty || audiences.contains(where: \.isEmpty) {
            problems.append("issuer '\(issuer)' needs at least one non-empty expected audience")
        }
        if let jwksURL, !Self.isAcceptableKeyURL(jwksURL) {
            problems.append("JWKS URL '\(jwksURL)' of issuer '\(issuer)' must be https (http only on loopback)")
        }
        if algorithms.isEmpty {
            problems.append("issuer '\(issuer)' accepts no signing algorithm")
        }
        for algorithm in algorithms.sorted() where !Self.supportedAlgorithms.contains(algorithm) {
            problems.append("issuer '\(issuer)': algorithm '\(algorithm)' is not supported (supported: \(Self.supportedAlgorithms.sorted().joined(separator: ", ")))")
        }
        if !(leeway >= 0 && leeway <= 600) {
            problems.append("issuer '\(issuer)': clock leeway must be between 0 and 600 seconds")
        }
        if claimMapping.subject.isEmpty { problems.append("issuer '\(issuer)': the subject claim name is empty") }
        return problems
    }

    /// Keys decide whose tokens are accepted, so they come over TLS, except from this machine.
    static func isAcceptableKeyURL(_ url: String) -> Bool {
        let lower = url.lowercased()
        if lower.hasPrefix("https://") { return true }
        guard lower.hasPrefix("http://") else { return false }
        var authority = lower.dropFirst("http://".count).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let host: Substring
        if authority.hasPrefix("[") {
            host = authority.dropFirst().prefix { $0 != "]" }
        } else {
            host = authority.prefix { $0 != ":" }
        }
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127"
            && octets.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }
}

/// Which claims name the principal. The whole claim set stays available in
/// `VerifiedSubject.claims` for rules on other claims (CI workload `repository`, `ref`, …).
public struct ClaimMapping: Sendable, Equatable {
    /// The claim that becomes `Principal.subject`; must be a non-empty string.
    public var subject: String
    /// The claim that becomes `Principal.email`, if present. An `email_verified: false`
    /// beside it leaves the email out.
    public var email: String?

    public init(subject: String = "sub", email: String? = "email") {
        self.subject = subject
        self.email = email
    }
}

/// A subject token that passed every check, with everything it said.
public struct VerifiedSubject: Sendable, Equatable {
    public var principal: Principal
    /// The trusted issuer that signed it (its `iss`).
    public var issuer: String
    /// The `kid` of the key that verified it, when the token named one.
    public var keyID: String?
    /// Every claim of the payload, as sent.
    public var claims: [String: JSONValue]
    /// `exp`, seconds since 1970.
    public var expiresAt: Double

    public init(principal: Principal, issuer: String, keyID: String?, claims: [String: JSONValue], expiresAt: Double) {
        self.principal = principal
        self.issuer = issuer
        self.keyID = keyID
        self.claims = claims
        self.expiresAt = expiresAt
    }
}
