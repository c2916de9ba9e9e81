import Foundation
import KontextCore
import KontextHTTP

/// A client's identity at a token endpoint, sent as `client_secret_basic` (RFC 6749 section 2.3.1).
public struct OAuthClientCredentials: Sendable, Equatable {
    public var clientID: String
    public var clientSecret: String

    public init(clientID: String, clientSecret: String) {
        self.clientID = clientID
        self.clientSecret = clientSecret
    }

    /// The `Authorization` header's value. Both parts are form-encoded before they are joined,
    /// so a `:` in the client id cannot move the split.
    public var basicAuthorization: String {
        let credentials = formEncode(clientID) + ":" + formEncode(clientSecret)
        return "Basic " + Data(credentials.utf8).base64EncodedString()
    }
}

/// A token endpoint's success answer (RFC 6749 section 5.1, with RFC 8693's
/// `issued_token_type` and OIDC Core's `id_token`). Absent members stay nil; each caller
/// picks its own defaults.
public struct TokenGrant: Sendable, Equatable {
    public var accessToken: String
    public var tokenType: String?
    /// Seconds; servers send a number or, against the RFC but commonly, a numeric string.
    public var expiresIn: Double?
    public var refreshToken: String?
    public var idToken: String?
    public var issuedTokenType: String?

    public init(accessToken: String, tokenType: String? = nil, expiresIn: Double? = nil, refreshToken: String? = nil,
                idToken: String? = nil, issuedTokenType: String? = nil) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresIn = expiresIn
        self.refreshToken = refreshToken
        self.idToken = idToken
        self.issuedTokenType = issuedTokenType
    }
}

/// A token endpoint's error object (RFC 6749 section 5.2), unsanitized.
public struct TokenEndpointRefusal: Sendable, Equatable {
    public var status: Int
    public var code: String
    public var description: String?
    public var errorURI: String?
    /// The whole object, for extension members such as `connect_url`.
    public var document: JSONValue
}

/// Everything a token endpoint can answer over HTTP.
public enum TokenEndpointAnswer: Sendable, Equatable {
    public enum Unreadable: Sendable, Equatable {
        /// HTTP 200 whose body is not a JSON object.
        case notJSONObject
        /// HTTP 200 with a JSON object but no non-empty `access_token`.
        case noAccessToken
        /// Any other status without an RFC 6749 error object (e.g. a proxy's HTML page).
        case noErrorObject
    }

    case issued(TokenGrant)
    case refused(TokenEndpointRefusal)
    case unreadable(status: Int, Unreadable)
}

/// The one client of RFC 6749 token endpoints: the form POST with optional
/// `client_secret_basic`, and the reading of its answer. Login, refresh and revocation
/// (`KontextOIDC`), RFC 8693 exchanges, and the broker's upstream refresh all use it; each
/// maps the answer to its own errors.
public enum OAuthTokenEndpoint {
    /// An `application/x-www-form-urlencoded` POST of `fields` to `url`, authenticated with
    /// `basic` when given (public clients put `client_id` in `fields` instead).
    public static func request(_ url: String, fields: [(String, String)], basic: OAuthClientCredentials? = nil,
                               timeout: Double = 30) -> HTTPRequest {
        var headers: [(name: String, value: String)] = []
        if let basic { headers.append(("Authorization", basic.basicAuthorization)) }
        return .form(url: url, fields: fields, headers: headers, timeout: timeout)
    }

    /// Reads an answer: HTTP 200 is section 5.1, any other status section 5.2.
    public static func parse(_ response: HTTPResponse) -> TokenEndpointAnswer {
        let document = try? JSONValue.parse(response.body)
        let object = document?.objectValue == nil ? nil : document
        if response.status == 200 {
            guard let object else { return .unreadable(status: 200, .notJSONObject) }
            guard let access = object["access_token"]?.stringValue, !access.isEmpty else {
                return .unreadable(status: 200, .noAccessToken)
            }
            return .issued(TokenGrant(
                accessToken: access, tokenType: object["token_type"]?.stringValue,
                expiresIn: seconds(object["expires_in"]), refreshToken: object["refresh_token"]?.stringValue,
                idToken: object["id_token"]?.stringValue, issuedTokenType: object["issued_token_type"]?.stringValue))
        }
        guard let object, let code = object["error"]?.stringValue else {
            return .unreadable(status: response.status, .noErrorObject)
        }
        return .refused(TokenEndpointRefusal(
            status: response.status, code: code, description: object["error_description"]?.stringValue,
            errorURI: object["error_uri"]?.stringValue, document: object))
    }

    /// `expires_in` as a number or a numeric string; anything else, or a non-finite value, is absent.
    static func seconds(_ value: JSONValue?) -> Double? {
        let seconds: Double?
        switch value {
        case .number(let number)?: seconds = number
        case .string(let text)?: seconds = Double(text)
        default: seconds = nil
        }
        return seconds.flatMap { $0.isFinite ? $0 : nil }
    }
}
