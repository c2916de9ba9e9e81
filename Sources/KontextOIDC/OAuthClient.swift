import Foundation
import KontextCore
import KontextExchange
import KontextHTTP

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
