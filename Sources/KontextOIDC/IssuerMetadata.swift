import KontextCore
import KontextHTTP

/// The endpoints an issuer publishes: OpenID Connect discovery, else RFC 8414 metadata.
public struct IssuerMetadata: Sendable, Equatable {
    public var issuer: String
    public var authorizationEndpoint: String?
    public var tokenEndpoint: String
    public var deviceAuthorizationEndpoint: String?
    public var revocationEndpoint: String?
    public var jwksURI: String?
    public var userinfoEndpoint: String?

    public init(issuer: String, authorizationEndpoint: String? = nil, tokenEndpoint: String,
                deviceAuthorizationEndpoint: String? = nil, revocationEndpoint: String? = nil,
                jwksURI: String? = nil, userinfoEndpoint: String? = nil) {
        self.issuer = issuer
        self.authorizationEndpoint = authorizationEndpoint
        self.tokenEndpoint = tokenEndpoint
        self.deviceAuthorizationEndpoint = deviceAuthorizationEndpoint
        self.revocationEndpoint = revocationEndpoint
        self.jwksURI = jwksURI
        self.userinfoEndpoint = userinfoEndpoint
    }

    /// Where the two documents live. RFC 8414 inserts its well-known segment before an
    /// issuer's path; OpenID Connect appends it.
    public static func documentURLs(issuer: String) -> [String] {
        let base = trimmedIssuer(issuer)
        var urls = [base + "/.well-known/openid-configuration"]
        let schemeEnd = base.range(of: "://").map(\.upperBound) ?? base.startIndex
        if let pathStart = base[schemeEnd...].firstIndex(of: "/") {
            urls.append(String(base[..<pathStart]) + "/.well-known/oauth-authorization-server" + base[pathStart...])
        } else {
            urls.append(base + "/.well-known/oauth-authorization-server")
        }
        return urls
    }

    static func trimmedIssuer(_ issuer: String) -> String {
        var base = issuer
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// Fetches the issuer's metadata; fails with exit 2 (configuration) and what to check. Its
    /// endpoints are held to the transport rule of the settings (`allowHTTP`: the user's opt-in).
    public static func discover(issuer: String, http: HTTPClient, allowHTTP: Bool) async throws -> IssuerMetadata {
        var problems: [String] = []
        for url in documentURLs(issuer: issuer) {
            let answer = await http.perform(HTTPRequest(url: url, headers: [("Accept", "application/json")], timeout: 15))
            Diagnostics.log("discovery: GET \(url) → \((try? answer.get()).map { "HTTP \($0.status)" } ?? "no answer")")
            switch answer {
            case .failure(let error):
                throw KontextError(.usage, "cannot reach the issuer \(issuer): \(error.reason)",
                                   hint: "check KONTEXT_ISSUER_URL and your network (and KONTEXT_CA_BUNDLE for a private CA)")
            case .success(let response) where response.status == 404:
                problems.append("\(url): HTTP 404")
                continue
            case .success(let response):
                guard response.status == 200 else {
                    problems.append("\(url): HTTP \(response.status)")
                    continue
                }
                return try parse(response.body, issuer: issuer, url: url, allowHTTP: allowHTTP)
            }
        }
        throw KontextError(.usage, "\(issuer) publishes no OpenID Connect or OAuth metadata", details: problems,
                           hint: "check KONTEXT_ISSUER_URL: it must be the issuer itself, e.g. https://login.example.com/realms/dev")
    }

    static func parse(_ body: [UInt8], issuer: String, url: String, allowHTTP: Bool = false) throws -> IssuerMetadata {
        guard let document = try? JSONValue.parse(body), document.objectValue != nil else {
            throw KontextError(.usage, "\(url) is not a JSON metadata document")
        }
        func field(_ name: String) -> String? {
            document[name]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        }
        // RFC 8414 section 3.3 / OIDC Discovery 4.3: the document must name the issuer asked
        // for, or anyone able to serve it could impersonate another issuer.
        guard let named = field("issuer"), trimmedIssuer(named) == trimmedIssuer(issuer) else {
            throw KontextError(.usage, "\(url) names issuer '\(field("issuer") ?? "")', not '\(issuer)'",
                               hint: "set KONTEXT_ISSUER_URL to exactly the issuer the server names")
        }
        guard let token = field("token_endpoint") else {
            throw KontextError(.usage, "\(url) has no token_endpoint")
        }
        for name in ["token_endpoint", "authorization_endpoint", "device_authorization_endpoint", "revocation_endpoint",
                     "jwks_uri", "userinfo_endpoint"] {
            if let endpoint = field(name) { try Transport.check(endpoint, name: "the issuer's \(name)", allowHTTP: allowHTTP) }
        }
        return IssuerMetadata(issuer: named, authorizationEndpoint: field("authorization_endpoint"), tokenEndpoint: token,
                              deviceAuthorizationEndpoint: field("device_authorization_endpoint"),
                              revocationEndpoint: field("revocation_endpoint"), jwksURI: field("jwks_uri"),
                              userinfoEndpoint: field("userinfo_endpoint"))
    }
}
