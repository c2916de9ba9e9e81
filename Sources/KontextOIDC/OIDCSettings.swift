import Foundation
import KontextCore
import KontextExchange
import KontextHTTP

/// Remote mode's settings (SPEC section 3), taken from the process's settings.
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
    public init?(settings: Settings) {
        guard let issuer = settings.issuerURL else { return nil }
        self.init(issuer: issuer, clientID: settings.clientID ?? Self.defaultClientID,
                  clientSecret: settings.clientSecret, scopes: settings.scopes ?? Self.defaultScopes,
                  redirectURI: settings.redirectURI, exchangeEndpoint: settings.tokenEndpoint,
                  caBundle: settings.caBundle)
        allowHTTP = settings.allowHTTP
    }

    /// The keyring key of this issuer's login for this client.
    public var storeKey: String { IssuerMetadata.trimmedIssuer(issuer) + " " + clientID }

    public var http: HTTPClient { HTTPClient(caBundlePath: caBundle) }
}
