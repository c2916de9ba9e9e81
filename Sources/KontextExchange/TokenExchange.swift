import Foundation
import KontextCore
import KontextEnvFile
import KontextHTTP

/// RFC 8693 token type identifiers.
public enum TokenTypeURN {
    public static let accessToken = "urn:ietf:params:oauth:token-type:access_token"
    public static let jwt = "urn:ietf:params:oauth:token-type:jwt"
    public static let idToken = "urn:ietf:params:oauth:token-type:id_token"
    public static let grantType = "urn:ietf:params:oauth:grant-type:token-exchange"
}

/// Where and as whom exchanges are made.
public struct ExchangeEndpoint: Sendable {
    public var tokenURL: String
    public var clientID: String
    public var clientSecret: String?

    public init(tokenURL: String, clientID: String, clientSecret: String? = nil) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
    }
}

public struct SubjectToken: Sendable {
    public var value: String
    public var type: String

    public init(value: String, type: String) {
        self.value = value
        self.type = type
    }
}

/// Where a service's credential may be sent (SPEC section 11), told to the client in the
/// exchange answer (`kontext_hosts`, `kontext_headers`) so that its credential proxy binds them.
public struct BoundHosts: Sendable, Equatable {
    public var hosts: [String]
    public var headers: [String]

    public init(hosts: [String], headers: [String] = []) {
        self.hosts = hosts
        self.headers = headers
    }

    /// `kontext_hosts` (and `kontext_headers`) of an exchange answer; nil when absent or not
    /// arrays of strings (a token service that does not speak this extension).
    init?(answer body: [UInt8]) {
        guard let object = try? JSONValue.parse(body), let hosts = object["kontext_hosts"]?.arrayValue else { return nil }
        let headers = object["kontext_headers"]?.arrayValue ?? []
        let hostNames = hosts.compactMap(\.stringValue), headerNames = headers.compactMap(\.stringValue)
        guard !hostNames.isEmpty, hostNames.count == hosts.count, headerNames.count == headers.count else { return nil }
        self.init(hosts: hostNames, headers: headerNames)
    }
}

/// A successful exchange (SPEC section 6 response fields).
public struct IssuedCredential: Sendable, Equatable {
    public var value: String
    public var issuedTokenType: String
    public var tokenType: String
    public var expiresIn: Int?
    /// The hosts the token service bound the credential to, when it said (`kontext_hosts`).
    public var boundHosts: BoundHosts? = nil
}

/// Why one placeholder could not be exchanged, in terms a person can act on.
public enum ExchangeFailure: Error, Sendable, Equatable {
    /// `invalid_target`: the server knows no such service or resource.
    case unknownService(detail: String?)
    /// The user has not connected the provider; `connectURL` is where to do it.
    case notConnected(detail: String?, connectURL: String?)
    /// The subject token was refused (expired, revoked, wrong audience).
    case subjectRejected(detail: String?)
    /// The server refused this client or principal the service.
    case denied(detail: String?)
    /// Any other RFC 6749 error code.
    case rejected(code: String, detail: String?)
    /// No HTTP answer at all.
    case unreachable(String)
    /// An HTTP error without an RFC 6749 body (e.g. 500 from a proxy).
    case serverError(status: Int)
    /// An answer that is not the JSON RFC 8693 describes.
    case malformedResponse(String)

    /// One line: what went wrong and what to do about it.
    public func explanation(for placeholder: Placeholder, endpoint: String) -> String {
        func with(_ detail: String?) -> String { detail.map { ": \($0)" } ?? "" }
        switch self {
        case .unknownService(let detail):
            return "unknown service '\(placeholder.target)'\(with(detail))"
        case .notConnected(let detail, let url):
            let action = url.map { "connect it at \($0)" } ?? "connect the provider, then try again"
            return "'\(placeholder.service)' is not connected for you\(with(detail)); \(action)"
        case .subjectRejected(let detail):
            return "your session was refused by the token service\(with(detail)); run `kontext login`"
        case .denied(let detail):
            return "access to '\(placeholder.target)' was denied\(with(detail))"
        case .rejected(let code, let detail):
            return "the token service refused the exchange (\(code))\(with(detail))"
        case .unreachable(let reason):
            return "cannot reach the token service at \(endpoint): \(reason); check the URL and that the server is running"
        case .serverError(let status):
            return "the token service at \(endpoint) failed with HTTP \(status); try again later or ask its operator"
        case .malformedResponse(let reason):
            return "the token service at \(endpoint) sent an answer kontext cannot read (\(reason))"
        }
    }
}

/// How token requests reach the token service: a token endpoint over HTTP, or a token
/// service in this process (local mode), which answers with the status and body an HTTP
/// server would send. Either way the request form and the answer's reading are the same.
public enum TokenRequestCarrier: Sendable {
    case http(HTTPClient)
    case inProcess(@Sendable (_ form: [String: String]) async -> HTTPResponse)
}

/// The client half of SPEC section 6: one request per distinct placeholder, all at once.
public struct TokenExchanger: Sendable {
    public var endpoint: ExchangeEndpoint
    public var subject: SubjectToken
    public var carrier: TokenRequestCarrier

    public init(endpoint: ExchangeEndpoint, subject: SubjectToken, http: HTTPClient = HTTPClient()) {
        self.init(endpoint: endpoint, subject: subject, carrier: .http(http))
    }

    public init(endpoint: ExchangeEndpoint, subject: SubjectToken, carrier: TokenRequestCarrier) {
        self.endpoint = endpoint
        self.subject = subject
        self.carrier = carrier
    }

    /// RFC 8693 section 2.1's form for one placeholder.
    public func form(for placeholder: Placeholder) -> [(String, String)] {
        [
            ("grant_type", TokenTypeURN.grantType),
            ("subject_token", subject.value),
            ("subject_token_type", subject.type),
            ("requested_token_type", TokenTypeURN.accessToken),
            ("audience", placeholder.service),
            ("resource", placeholder.target),
            ("client_id", endpoint.clientID),
        ]
    }

    public func request(for placeholder: Placeholder) -> HTTPRequest {
        let basic = endpoint.clientSecret.map { OAuthClientCredentials(clientID: endpoint.clientID, clientSecret: $0) }
        return OAuthTokenEndpoint.request(endpoint.tokenURL, fields: form(for: placeholder), basic: basic)
    }

    /// Exchanges each distinct placeholder once, concurrently.
    public func exchange(_ placeholders: [Placeholder]) async -> [Placeholder: Result<IssuedCredential, ExchangeFailure>] {
        var unique: [Placeholder] = []
        var seen = Set<Placeholder>()
        for placeholder in placeholders where seen.insert(placeholder).inserted { unique.append(placeholder) }
        let responses = await send(unique)
        var results: [Placeholder: Result<IssuedCredential, ExchangeFailure>] = [:]
        for (placeholder, response) in zip(unique, responses) {
            let result = response
                .mapError { ExchangeFailure.unreachable($0.reason) }
                .flatMap(Self.interpret)
            results[placeholder] = result
            switch result {
            case .success(let credential):
                Diagnostics.log("exchange \(placeholder.target) at \(endpoint.tokenURL) → issued (\(credential.tokenType), expires_in \(credential.expiresIn.map(String.init) ?? "unstated"))")
            case .failure(let failure):
                Diagnostics.log("exchange \(placeholder.target) at \(endpoint.tokenURL) → \(failure.explanation(for: placeholder, endpoint: endpoint.tokenURL))")
            }
        }
        return results
    }

    /// The answers to `placeholders`, in their order.
    func send(_ placeholders: [Placeholder]) async -> [Result<HTTPResponse, HTTPTransportError>] {
        switch carrier {
        case .http(let http):
            return await http.perform(placeholders.map(request(for:)))
        case .inProcess(let answer):
            let forms = placeholders.map { Dictionary(form(for: $0), uniquingKeysWith: { first, _ in first }) }
            return await withTaskGroup(of: (Int, HTTPResponse).self) { group in
                for (index, form) in forms.enumerated() {
                    group.addTask { (index, await answer(form)) }
                }
                var responses = [HTTPResponse?](repeating: nil, count: forms.count)
                for await (index, response) in group { responses[index] = response }
                return responses.map { .success($0!) }
            }
        }
    }

    static func interpret(_ response: HTTPResponse) -> Result<IssuedCredential, ExchangeFailure> {
        let refusal: TokenEndpointRefusal
        switch OAuthTokenEndpoint.parse(response) {
        case .issued(let grant):
            return .success(IssuedCredential(
                value: grant.accessToken,
                issuedTokenType: grant.issuedTokenType ?? TokenTypeURN.accessToken,
                tokenType: grant.tokenType ?? "N_A",
                expiresIn: grant.expiresIn.flatMap { Int(exactly: $0.rounded(.towardZero)) },
                boundHosts: BoundHosts(answer: response.body)))
        case .unreadable(_, .notJSONObject):
            return .failure(.malformedResponse("not a JSON object"))
        case .unreadable(_, .noAccessToken):
            return .failure(.malformedResponse("no access_token"))
        case .unreadable(let status, .noErrorObject):
            if status == 401 { return .failure(.subjectRejected(detail: nil)) }
            return .failure(status >= 500 || status < 400
                ? .serverError(status: status)
                : .malformedResponse("HTTP \(status) without an OAuth error"))
        case .refused(let answer):
            refusal = answer
        }
        let detail = refusal.description.map { sanitized($0) }
        switch refusal.code {
        case "invalid_target":
            return .failure(.unknownService(detail: detail))
        case "provider_not_connected":
            let url = (refusal.document["connect_url"]?.stringValue ?? refusal.errorURI).map { sanitized($0) }
            return .failure(.notConnected(detail: detail, connectURL: url))
        case "invalid_grant", "invalid_token":
            return .failure(.subjectRejected(detail: detail))
        case "invalid_client" where refusal.status == 401:
            return .failure(.subjectRejected(detail: detail))
        case "invalid_request" where detail?.contains("subject_token") == true:
            return .failure(.subjectRejected(detail: detail))
        case "access_denied", "unauthorized_client":
            return .failure(.denied(detail: detail))
        default:
            return .failure(.rejected(code: sanitized(refusal.code), detail: detail))
        }
    }
}
