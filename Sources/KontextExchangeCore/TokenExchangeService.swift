import Foundation
import KontextCore
import KontextEnvFile
import KontextExchange

/// Who a subject token stands for.
public struct Principal: Sendable, Equatable {
    public var subject: String
    public var email: String?

    public init(subject: String, email: String? = nil) {
        self.subject = subject
        self.email = email
    }
}

/// An RFC 6749 error answer.
public struct OAuthError: Error, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var description: String
    public var extra: [String: String]

    public init(status: Int = 400, _ code: String, _ description: String, extra: [String: String] = [:]) {
        self.status = status
        self.code = code
        self.description = description
        self.extra = extra
    }
}

/// Decides whether a subject token is acceptable and whom it names.
public protocol SubjectVerifier: Sendable {
    func verify(token: String, type: String) async throws(OAuthError) -> Principal
}

/// Holds the upstream credentials the broker releases.
public protocol CredentialVault: Sendable {
    /// The credential for `placeholder` as `principal` may use it, or nil if there is none.
    func credential(for placeholder: Placeholder, principal: Principal) async throws(OAuthError) -> String?
    /// The same with its own remaining lifetime, for credentials that expire upstream
    /// (refreshed OAuth access tokens); by default `credential(for:principal:)` with none.
    func issue(for placeholder: Placeholder, principal: Principal) async throws(OAuthError) -> ReleasedCredential?
}

extension CredentialVault {
    public func issue(for placeholder: Placeholder, principal: Principal) async throws(OAuthError) -> ReleasedCredential? {
        try await credential(for: placeholder, principal: principal).map { ReleasedCredential(value: $0) }
    }
}

/// A released credential; `expiresIn` (seconds) caps the answer's `expires_in`.
public struct ReleasedCredential: Sendable {
    public var value: String
    public var expiresIn: Int?

    public init(value: String, expiresIn: Int? = nil) {
        self.value = value
        self.expiresIn = expiresIn
    }
}

/// One exchange as recorded: who asked for what and how it ended, never a secret value.
public struct ExchangeOutcome: Sendable, Equatable {
    /// The principal, when the subject token was accepted.
    public var principal: String?
    /// The requested `resource` (or `audience`), as sent, clipped.
    public var target: String?
    /// `issued`, or the RFC 6749 error code answered.
    public var result: String
    /// The client's address, when the server knows it.
    public var client: String?

    public init(principal: String?, target: String?, result: String, client: String? = nil) {
        self.principal = principal
        self.target = target
        self.result = result
        self.client = client
    }
}

/// Keeps the record of every exchange (the self-hosted broker's exchange log).
public protocol ExchangeRecorder: Sendable {
    /// Called before the answer is sent; a failure to record turns the answer into a 503.
    func record(_ outcome: ExchangeOutcome) async throws(OAuthError)
}

/// The STS half of SPEC section 6, independent of the HTTP server that carries it.
public struct TokenExchangeService: Sendable {
    public var verifier: any SubjectVerifier
    public var vault: any CredentialVault
    /// `expires_in` of issued results, seconds.
    public var lifetime: Int
    /// Said in `invalid_target` answers: how to add a missing credential.
    public var missingCredentialHint: @Sendable (Placeholder) -> String
    /// Where every exchange is recorded, when anywhere.
    public var recorder: (any ExchangeRecorder)?
    /// The hosts each service's credentials are bound to, said in every answer for the service.
    public var boundHosts: [String: BoundHosts] = [:]

    public init(verifier: any SubjectVerifier, vault: any CredentialVault, lifetime: Int = 3600,
                recorder: (any ExchangeRecorder)? = nil,
                missingCredentialHint: @escaping @Sendable (Placeholder) -> String = { "no credential for '\($0.target)'" }) {
        self.verifier = verifier
        self.vault = vault
        self.lifetime = lifetime
        self.recorder = recorder
        self.missingCredentialHint = missingCredentialHint
    }

    public struct Answer: Sendable {
        public var status: Int
        public var body: [UInt8]
    }

    /// Handles one form-encoded token request from `client` (its address, when known).
    public func handle(form: [String: String], client: String? = nil) async -> Answer {
        var principal: Principal?
        do {
            let (credential, service) = try await exchange(form: form, principal: &principal)
            try await recorder?.record(ExchangeOutcome(principal: principal?.subject, target: Self.target(form), result: "issued", client: client))
            var members: [(String, JSONValue)] = [
                ("access_token", .string(credential.value)),
                ("expires_in", .number(Double(min(lifetime, max(credential.expiresIn ?? lifetime, 1))))),
                ("issued_token_type", .string(TokenTypeURN.accessToken)),
                ("token_type", .string("N_A")),
            ]
            if let bound = boundHosts[service] {
                members.append(("kontext_hosts", .array(bound.hosts.map(JSONValue.string))))
                if !bound.headers.isEmpty { members.append(("kontext_headers", .array(bound.headers.map(JSONValue.string)))) }
            }
            let body = JSONValue.object(members)
            return Answer(status: 200, body: Array(body.serialized.utf8))
        } catch {
            var failure = error
            if error.code != "temporarily_unavailable", let recorder {
                do {
                    try await recorder.record(ExchangeOutcome(principal: principal?.subject, target: Self.target(form), result: error.code,
                                                              client: client))
                } catch {
                    failure = error
                }
            }
            var members: [(String, JSONValue)] = [("error", .string(failure.code)), ("error_description", .string(failure.description))]
            for (key, value) in failure.extra.sorted(by: { $0.key < $1.key }) { members.append((key, .string(value))) }
            return Answer(status: failure.status, body: Array(JSONValue.object(members).serialized.utf8))
        }
    }

    /// The requested target for the record: bounded, since it is the caller's text.
    static func target(_ form: [String: String]) -> String? {
        guard let target = form["resource"].flatMap({ $0.isEmpty ? nil : $0 }) ?? form["audience"] else { return nil }
        return target.count > 200 ? String(target.prefix(200)) : target
    }

    func exchange(form: [String: String], principal verified: inout Principal?) async throws(OAuthError) -> (ReleasedCredential, service: String) {
        guard let grant = form["grant_type"] else {
            throw OAuthError("invalid_request", "grant_type is required")
        }
        guard grant == TokenTypeURN.grantType else {
            throw OAuthError("unsupported_grant_type", "only token exchange (RFC 8693) is served here")
        }
        guard let subjectToken = form["subject_token"], !subjectToken.isEmpty,
              let subjectType = form["subject_token_type"], !subjectType.isEmpty else {
            throw OAuthError("invalid_request", "subject_token and subject_token_type are required")
        }
        if let requested = form["requested_token_type"], requested != TokenTypeURN.accessToken {
            throw OAuthError("invalid_request", "only access_token results are issued")
        }
        let principal = try await verifier.verify(token: subjectToken, type: subjectType)
        verified = principal
        guard let target = form["resource"].flatMap({ $0.isEmpty ? nil : $0 }) ?? form["audience"],
              let placeholder = Placeholder(target: target) else {
            throw OAuthError("invalid_target", "resource or audience must name a service (SERVICE or SERVICE/RESOURCE)")
        }
        if let audience = form["audience"], !audience.isEmpty, audience != placeholder.service {
            throw OAuthError("invalid_target", "audience '\(audience)' does not match resource '\(target)'")
        }
        guard let credential = try await vault.issue(for: placeholder, principal: principal) else {
            throw OAuthError("invalid_target", missingCredentialHint(placeholder))
        }
        return (credential, placeholder.service)
    }
}
