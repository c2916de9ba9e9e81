#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import KontextCore
import KontextExchange
import KontextHTTP
import KontextProcess
import KontextSystem
import KontextTrust

/// Random, URL-safe values for `state`, `nonce` and the PKCE verifier.
enum RandomToken {
    static func make(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return base64URL((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

func base64URL(_ bytes: some Sequence<UInt8>) -> String {
    Data(bytes).base64EncodedString()
        .replacingAll("+", with: "-").replacingAll("/", with: "_").replacingAll("=", with: "")
}

/// RFC 7636 with S256.
public struct PKCE: Sendable {
    public let verifier: String
    public let challenge: String

    public init(verifier: String? = nil) {
        let verifier = verifier ?? RandomToken.make()
        self.verifier = verifier
        challenge = base64URL(SHA256.hash(data: Data(verifier.utf8)))
    }
}

/// What a completed login flow hands back.
public struct LoginResult: Sendable {
    public var tokens: TokenResponse
    public var identity: VerifiedSubject?
}

/// Authorization Code + PKCE with a loopback redirect (RFC 6749 4.1, RFC 7636, RFC 8252).
public struct AuthorizationCodeLogin: Sendable {
    public var settings: OIDCSettings
    public var metadata: IssuerMetadata
    public var openBrowser: Bool
    public var timeout: Double
    /// The process environment (`BROWSER`, `PATH`, `DISPLAY` for xdg-open).
    public var environment: [String: String]

    public init(settings: OIDCSettings, metadata: IssuerMetadata, openBrowser: Bool, timeout: Double = 300,
                environment: [String: String]) {
        self.settings = settings
        self.metadata = metadata
        self.openBrowser = openBrowser
        self.timeout = timeout
        self.environment = environment
    }

    public func run() async throws -> LoginResult {
        guard let authorize = metadata.authorizationEndpoint else {
            throw KontextError.usage("\(metadata.issuer) has no authorization endpoint",
                                     hint: metadata.deviceAuthorizationEndpoint != nil ? "use `kontext login --device`" : nil)
        }
        let listener = try LoopbackRedirect(registered: settings.redirectURI)
        let state = RandomToken.make(bytes: 16)
        let nonce = RandomToken.make(bytes: 16)
        let pkce = PKCE()
        let query: [(String, String)] = [
            ("response_type", "code"), ("client_id", settings.clientID), ("redirect_uri", listener.redirectURI),
            ("scope", settings.scopes), ("state", state), ("nonce", nonce),
            ("code_challenge", pkce.challenge), ("code_challenge_method", "S256"),
        ]
        let url = authorize + (authorize.contains("?") ? "&" : "?")
            + query.map { formEncode($0.0) + "=" + formEncode($0.1) }.joined(separator: "&")
        // The endpoint comes from the issuer's metadata: printed as text only.
        let shownURL = sanitized(url, limit: 8192)
        if openBrowser, openInBrowser(url, environment: environment) {
            printError("kontext: opened your browser to sign in to \(metadata.issuer); if it did not open, visit:\n  \(shownURL)")
        } else {
            printError("kontext: to sign in to \(metadata.issuer), open this URL in a browser on this machine:\n  \(shownURL)")
        }
        let timeout = self.timeout
        let parameters = try await offload { try listener.waitForResponse(timeout: timeout) }
        // An error ends the login whoever sent it (some issuers omit `state` from error
        // redirects); only a code must prove, by its state, that it answers this login.
        if let error = parameters["error"] {
            let detail = parameters["error_description"].map { ": " + sanitized($0) } ?? ""
            throw KontextError(.authentication, error == "access_denied"
                ? "sign-in was denied\(detail)" : "the issuer refused the sign-in (\(sanitized(error, limit: 60))\(detail))",
                               hint: "run `kontext login` again")
        }
        guard parameters["state"] == state else {
            throw KontextError(.authentication, "the sign-in answer does not carry this login's state; it was not started by this kontext",
                               hint: "run `kontext login` again")
        }
        guard let code = parameters["code"], !code.isEmpty else {
            throw KontextError(.authentication, "the sign-in answer has no authorization code", hint: "run `kontext login` again")
        }
        let client = OAuthClient(settings: settings)
        let answer = await client.token(metadata.tokenEndpoint, grant: [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", listener.redirectURI),
            ("code_verifier", pkce.verifier),
        ])
        let tokens: TokenResponse
        switch answer {
        case .success(let value): tokens = value
        case .failure(let error):
            throw KontextError(.authentication, "the issuer refused the authorization code: \(error)",
                               hint: "run `kontext login` again; check KONTEXT_CLIENT_ID (and KONTEXT_CLIENT_SECRET, KONTEXT_REDIRECT_URI if the issuer requires them)")
        }
        return LoginResult(tokens: tokens, identity: try await validateIdentity(tokens, nonce: nonce,
                                                                             settings: settings, metadata: metadata))
    }
}

/// The Device Authorization Grant (RFC 8628): for machines without a browser.
public struct DeviceLogin: Sendable {
    public var settings: OIDCSettings
    public var metadata: IssuerMetadata

    public init(settings: OIDCSettings, metadata: IssuerMetadata) {
        self.settings = settings
        self.metadata = metadata
    }

    public func run() async throws -> LoginResult {
        guard let endpoint = metadata.deviceAuthorizationEndpoint else {
            throw KontextError.usage("\(metadata.issuer) does not offer the device flow (no device_authorization_endpoint)",
                                     hint: "run `kontext login` (browser), or `kontext login --no-browser` to open the URL elsewhere on this machine")
        }
        let client = OAuthClient(settings: settings)
        let grant: HTTPResponse
        switch await client.http.perform(client.formRequest(endpoint, [("scope", settings.scopes)])) {
        case .failure(let error):
            throw KontextError(.authentication, "cannot reach \(endpoint): \(error.reason)")
        case .success(let response): grant = response
        }
        let document = try? JSONValue.parse(grant.body)
        guard grant.status == 200, let document,
              let deviceCode = document["device_code"]?.stringValue,
              let userCode = document["user_code"]?.stringValue,
              let verification = (document["verification_uri"] ?? document["verification_url"])?.stringValue else {
            let reason = document?["error"]?.stringValue.map { sanitized($0, limit: 60) } ?? "HTTP \(grant.status)"
            throw KontextError(.authentication, "the issuer refused to start a device login (\(reason))",
                               hint: "check KONTEXT_CLIENT_ID: the client must be allowed the device flow")
        }
        func seconds(_ name: String, _ fallback: Double) -> Double {
            if case .number(let value)? = document[name], value > 0 { return value }
            return fallback
        }
        var interval = seconds("interval", 5)
        let deadline = monotonicSeconds() + seconds("expires_in", 600)
        // The issuer's words go to the user's terminal: shown as text, never acted on.
        let shownURI = sanitized(verification, limit: 2048), shownCode = sanitized(userCode, limit: 64)
        if let complete = document["verification_uri_complete"]?.stringValue {
            printError("kontext: to sign in, open \(sanitized(complete, limit: 2048))\n  (or open \(shownURI) and enter the code \(shownCode))")
        } else {
            printError("kontext: to sign in, open \(shownURI) and enter the code \(shownCode)")
        }
        while true {
            try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            guard monotonicSeconds() < deadline else { throw Self.expired }
            let answer = await client.token(metadata.tokenEndpoint, grant: [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", deviceCode),
            ])
            switch answer {
            case .success(let tokens):
                return LoginResult(tokens: tokens, identity: try await validateIdentity(tokens, nonce: nil,
                                                                                     settings: settings, metadata: metadata))
            case .failure(let error):
                switch error.code {
                case "authorization_pending": continue
                case "slow_down": interval += 5  // RFC 8628 section 3.5
                case "expired_token": throw Self.expired
                case "access_denied":
                    throw KontextError(.authentication, "sign-in was denied", hint: "run `kontext login --device` again")
                default:
                    if error.kind == .unreachable { continue }  // a blip: keep polling until the code expires
                    throw KontextError(.authentication, "the device login failed: \(error)", hint: "run `kontext login --device` again")
                }
            }
        }
    }

    static let expired = KontextError(.authentication, "the sign-in code expired before it was approved",
                                      hint: "run `kontext login --device` again and approve it sooner")
}

/// Checks the ID token when the issuer sent one (an OpenID issuer does; plain OAuth may not).
func validateIdentity(_ tokens: TokenResponse, nonce: String?, settings: OIDCSettings,
                      metadata: IssuerMetadata) async throws -> VerifiedSubject? {
    guard let idToken = tokens.idToken else { return nil }
    guard let jwks = metadata.jwksURI else {
        throw KontextError(.authentication, "\(metadata.issuer) sent an ID token but publishes no jwks_uri to check it with")
    }
    return try await IDTokenValidator(issuer: metadata.issuer, clientID: settings.clientID, jwksURL: jwks,
                                      http: settings.http).validate(idToken, nonce: nonce)
}
