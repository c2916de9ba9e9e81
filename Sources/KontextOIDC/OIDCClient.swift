import Foundation
import KontextCore
import KontextExchange
import KontextHTTP

/// Remote mode's settings (SPEC section 3), read from the merged settings.
public struct OIDCSettings: Sendable, Equatable {
    public static let defaultScopes = "openid profile email offline_access"
    public static let defaultClientID = "kontext"

    public var issuer: String
    public var clientID: String
    public var clientSecret: String?
    public var scopes: String
    /// `KONTEXT_REDIRECT_URI`: an exact registered loopback URI; nil for an ephemeral port.
    public var redirectURI: String?
    /// `KONTEXT_TOKEN_ENDPOINT`: where exchanges go when not the issuer's token endpoint.
    public var exchangeEndpoint: String?
    public var caBundle: String?
    /// `KONTEXT_ALLOW_HTTP=1`: plain HTTP to hosts that are not loopback is allowed.
    public var allowHTTP = false

    public init(issuer: String, clientID: String = OIDCSettings.defaultClientID, clientSecret: String? = nil,
                scopes: String = OIDCSettings.defaultScopes, redirectURI: String? = nil,
                exchangeEndpoint: String? = nil, caBundle: String? = nil) {
        self.issuer = issuer
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scopes = scopes
        self.redirectURI = redirectURI
        self.exchangeEndpoint = exchangeEndpoint
        self.caBundle = caBundle
    }

    /// nil when no issuer is configured (local mode).
    public init?(settings: [String: String]) {
        func value(_ name: String) -> String? { settings[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let issuer = value("KONTEXT_ISSUER_URL") else { return nil }
        self.init(issuer: issuer, clientID: value("KONTEXT_CLIENT_ID") ?? Self.defaultClientID,
                  clientSecret: value("KONTEXT_CLIENT_SECRET"), scopes: value("KONTEXT_SCOPES") ?? Self.defaultScopes,
                  redirectURI: value("KONTEXT_REDIRECT_URI"), exchangeEndpoint: value("KONTEXT_TOKEN_ENDPOINT"),
                  caBundle: value("KONTEXT_CA_BUNDLE"))
        allowHTTP = Transport.allowsHTTP(settings)
    }

    /// The keyring key of this issuer's login for this client.
    public var storeKey: String { IssuerMetadata.trimmedIssuer(issuer) + " " + clientID }

    public var http: HTTPClient { HTTPClient(settings: caBundle.map { [HTTPClient.caBundleSetting: $0] } ?? [:]) }
}

/// A token endpoint's success answer (RFC 6749 section 5.1, OIDC Core 3.1.3.3).
public struct TokenResponse: Sendable {
    public var accessToken: String
    public var tokenType: String
    public var expiresIn: Double?
    public var refreshToken: String?
    public var idToken: String?
}

/// A token endpoint's refusal (RFC 6749 section 5.2), or a transport failure.
public struct TokenEndpointError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case oauth(code: String)
        case unreachable
        case malformed
    }
    public var kind: Kind
    public var detail: String

    public var code: String? {
        if case .oauth(let code) = kind { return code }
        return nil
    }

    public var description: String {
        switch kind {
        case .oauth(let code): return detail.isEmpty ? code : "\(code): \(detail)"
        case .unreachable, .malformed: return detail
        }
    }
}

/// The client half of the OAuth endpoints kontext calls: token, device authorization,
/// revocation. Client authentication is `client_secret_basic` when a secret is set, else
/// the public client's `client_id` in the form.
public struct OAuthClient: Sendable {
    public var settings: OIDCSettings
    public var http: HTTPClient

    public init(settings: OIDCSettings, http: HTTPClient? = nil) {
        self.settings = settings
        self.http = http ?? settings.http
    }

    func formRequest(_ url: String, _ fields: [(String, String)]) -> HTTPRequest {
        guard let secret = settings.clientSecret else {
            return OAuthTokenEndpoint.request(url, fields: fields + [("client_id", settings.clientID)])
        }
        return OAuthTokenEndpoint.request(url, fields: fields,
                                          basic: OAuthClientCredentials(clientID: settings.clientID, clientSecret: secret))
    }

    /// POSTs a grant to the token endpoint.
    public func token(_ endpoint: String, grant: [(String, String)]) async -> Result<TokenResponse, TokenEndpointError> {
        let result: Result<TokenResponse, TokenEndpointError>
        switch await http.perform(formRequest(endpoint, grant)) {
        case .failure(let error):
            result = .failure(TokenEndpointError(kind: .unreachable, detail: "cannot reach \(endpoint): \(error.reason)"))
        case .success(let response):
            result = Self.interpret(response, endpoint: endpoint)
        }
        let type = grant.first { $0.0 == "grant_type" }?.1 ?? "?"
        switch result {
        case .success(let tokens):
            Diagnostics.log("token endpoint \(endpoint): \(type) → tokens (expires_in \(tokens.expiresIn.map { String(Int($0)) } ?? "unstated"), refresh token \(tokens.refreshToken == nil ? "no" : "yes"), ID token \(tokens.idToken == nil ? "no" : "yes"))")
        case .failure(let error):
            Diagnostics.log("token endpoint \(endpoint): \(type) → \(error)")
        }
        return result
    }

    static func interpret(_ response: HTTPResponse, endpoint: String) -> Result<TokenResponse, TokenEndpointError> {
        switch OAuthTokenEndpoint.parse(response) {
        case .issued(let grant):
            return .success(TokenResponse(accessToken: grant.accessToken, tokenType: grant.tokenType ?? "Bearer",
                                          expiresIn: grant.expiresIn, refreshToken: grant.refreshToken,
                                          idToken: grant.idToken))
        case .unreadable(200, _):
            return .failure(TokenEndpointError(kind: .malformed, detail: "\(endpoint) answered without an access_token"))
        case .unreadable(let status, _):
            return .failure(TokenEndpointError(kind: .malformed, detail: "\(endpoint) failed with HTTP \(status)"))
        case .refused(let refusal):
            return .failure(TokenEndpointError(kind: .oauth(code: sanitized(refusal.code, limit: 60)),
                                               detail: refusal.description.map { sanitized($0) } ?? ""))
        }
    }

    /// RFC 7009: asks the issuer to revoke `token`. The issuer answers 200 even for tokens it
    /// does not know, so only transport and HTTP failures are reported.
    public func revoke(_ endpoint: String, token: String, hint: String) async -> String? {
        switch await http.perform(formRequest(endpoint, [("token", token), ("token_type_hint", hint)])) {
        case .failure(let error): return "cannot reach \(endpoint): \(error.reason)"
        case .success(let response) where response.status == 200: return nil
        case .success(let response): return "\(endpoint) answered HTTP \(response.status)"
        }
    }
}
