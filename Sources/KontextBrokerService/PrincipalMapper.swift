import Foundation
import KontextBroker
import KontextCore
import KontextTrust

/// Subject tokens → principals: a JWT from a trusted issuer (KontextTrust checks signature,
/// `iss`, `aud`, `exp`, `nbf`), then the first `[[principal]]` rule whose claims all match
/// names it; a token no rule matches is the user `user:ISSUER_HOST:SUB` when its issuer has
/// `users = true`.
public struct PrincipalMapper: SubjectVerifier {
    public let jwt: JWTSubjectVerifier
    let rules: [BrokerConfig.PrincipalRule]
    /// The issuers admitting users, each with its ISSUER_HOST.
    let userIssuers: [String: String]

    public init(config: BrokerConfig, jwt: JWTSubjectVerifier) {
        self.jwt = jwt
        rules = config.principals
        userIssuers = Dictionary(config.issuers.filter(\.users).map { ($0.trusted.issuer, Self.issuerHost($0.trusted.issuer)) },
                                 uniquingKeysWith: { first, _ in first })
    }

    /// A user's principal: qualified by issuer, so equal `sub` values at two issuers are two
    /// principals.
    public static func userPrincipal(issuer: String, subject: String) -> String {
        "user:" + issuerHost(issuer) + ":" + subject
    }

    /// The issuer URL as configured, without its scheme and trailing `/`, with `%` and `:`
    /// percent-encoded: a port or a path stays part of it (`login.example.com%3A8443/realms/dev`),
    /// and the first `:` after `user:` always ends it, whatever `:` the subject holds.
    public static func issuerHost(_ issuer: String) -> String {
        var host = Substring(issuer)
        if let scheme = host.range(of: "://") { host = host[scheme.upperBound...] }
        while host.hasSuffix("/") { host = host.dropLast() }
        return host.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: ":", with: "%3A")
    }

    public func verify(token: String, type: String) async throws(OAuthError) -> Principal {
        let subject = try await jwt.verifySubject(token: token, type: type)
        for rule in rules where rule.issuer == nil || rule.issuer == subject.issuer {
            let matches = rule.claims.allSatisfy { claim in
                guard let value = Self.text(subject.claims[claim.name]) else { return false }
                return claim.pattern.matches(value)
            }
            if matches {
                return Principal(subject: Self.expand(rule.name, claims: subject.claims), email: subject.principal.email)
            }
        }
        guard let host = userIssuers[subject.issuer] else {
            throw OAuthError("invalid_request",
                             "subject_token of '\(subject.principal.subject)' matches no principal rule of this broker")
        }
        return Principal(subject: "user:" + host + ":" + subject.principal.subject, email: subject.principal.email)
    }

    /// A claim as text for matching: strings as themselves, numbers and booleans as JSON.
    static func text(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: text
        case .number?, .bool?: value!.serialized
        default: nil
        }
    }

    /// `ci:{repository}` → `ci:acme/app`; a claim that is missing stays as written.
    static func expand(_ template: String, claims: [String: JSONValue]) -> String {
        var result = ""
        var rest = template[...]
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            result += rest[..<open]
            let name = String(rest[rest.index(after: open)..<close])
            result += text(claims[name]) ?? String(rest[open...close])
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }
}
