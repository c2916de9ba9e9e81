import Foundation
import KontextAudit
import KontextBroker
import KontextBrokerStore
import KontextCore
import KontextEnvFile
import KontextExchange
import KontextHTTP
import Logging

/// The self-hosted broker's credentials: grants decide which principal may have which
/// service; the principal's own credential is preferred to the organisation's; upstream
/// OAuth connections are refreshed at the provider's token endpoint when their access token
/// is (nearly) spent.
public struct BrokerVault: CredentialVault {
    let store: any BrokerStore
    let cipher: VaultCipher
    let grants: [BrokerConfig.Grant]
    let providers: [String: BrokerConfig.OAuthProvider]
    let environment: [String: String]
    let http: HTTPClient
    let logger: Logger

    /// An access token with less than this left is refreshed rather than handed out.
    static let refreshMargin = 60.0

    public init(store: any BrokerStore, cipher: VaultCipher, config: BrokerConfig, environment: [String: String],
                http: HTTPClient = HTTPClient(), logger: Logger) {
        self.store = store
        self.cipher = cipher
        grants = config.grants
        providers = config.providers
        self.environment = environment
        self.http = http
        self.logger = logger
    }

    public func credential(for placeholder: Placeholder, principal: Principal) async throws(OAuthError) -> String? {
        try await issue(for: placeholder, principal: principal)?.value
    }

    public func issue(for placeholder: Placeholder, principal: Principal) async throws(OAuthError) -> ReleasedCredential? {
        let granted = grants.contains { grant in
            // Exact targets: `github` is not `github/admin`; `github/*` names every resource.
            grant.principals.contains { $0.matches(principal.subject) } && grant.services.contains { $0.matches(placeholder.target) }
        }
        guard granted else {
            throw OAuthError("access_denied", "'\(principal.subject)' is not granted '\(placeholder.target)' on this broker")
        }
        let targets = placeholder.resource == nil ? [placeholder.target] : [placeholder.target, placeholder.service]
        let found: StoredCredential?
        do {
            found = try await store.firstCredential([principal.subject, ""].flatMap { owner in targets.map { (owner, $0) } })
        } catch {
            throw unavailable("the vault cannot be read", error)
        }
        guard let row = found else {
            if let provider = providers[placeholder.service] {
                throw notConnected(provider, "no connection to '\(placeholder.service)' for '\(principal.subject)'")
            }
            return nil
        }
        switch row.kind {
        case .staticKey:
            return ReleasedCredential(value: try open(row))
        case .oauth:
            return try await oauthAccessToken(row, service: placeholder.service)
        }
    }

    private func open(_ row: StoredCredential) throws(OAuthError) -> String {
        do {
            return try cipher.open(row.sealed, context: row.sealingContext)
        } catch {
            logger.error("vault row cannot be opened", metadata: ["owner": "\(row.owner)", "target": "\(row.target)",
                                                                  "reason": "\(error.message)"])
            throw OAuthError(status: 500, "server_error", "the stored credential for '\(row.target)' cannot be decrypted; an administrator must check the vault keys")
        }
    }

    private func unavailable(_ what: String, _ error: any Error) -> OAuthError {
        logger.error("\(what)", metadata: ["reason": "\(error)"])
        return OAuthError(status: 503, "temporarily_unavailable", "\(what); try again later")
    }

    private func notConnected(_ provider: BrokerConfig.OAuthProvider?, _ description: String) -> OAuthError {
        var extra: [String: String] = [:]
        if let url = provider?.connectURL { extra["connect_url"] = url }
        return OAuthError("provider_not_connected", description, extra: extra)
    }

    // MARK: OAuth connections

    /// The sealed value of an OAuth row.
    struct Connection {
        var refreshToken: String
        var accessToken: String?
        var expiresAt: Double?

        init(refreshToken: String, accessToken: String? = nil, expiresAt: Double? = nil) {
            self.refreshToken = refreshToken
            self.accessToken = accessToken
            self.expiresAt = expiresAt
        }

        init?(json text: String) {
            guard let value = try? JSONValue.parse(text), let refresh = value["refresh_token"]?.stringValue else { return nil }
            refreshToken = refresh
            accessToken = value["access_token"]?.stringValue
            if case .number(let seconds)? = value["expires_at"] { expiresAt = seconds }
        }

        var json: String {
            var members: [(String, JSONValue)] = [("refresh_token", .string(refreshToken))]
            if let accessToken { members.append(("access_token", .string(accessToken))) }
            if let expiresAt { members.append(("expires_at", .number(expiresAt.rounded(.down)))) }
            return JSONValue.object(members).serialized
        }
    }

    private func oauthAccessToken(_ initial: StoredCredential, service: String) async throws(OAuthError) -> ReleasedCredential {
        let provider = providers[service]
        var row = initial
        // Two rounds: when another replica refreshed the same row meanwhile, use its result.
        for _ in 0..<2 {
            guard row.connected else {
                throw notConnected(provider, "the connection to '\(service)' was revoked or expired; connect it again")
            }
            guard let connection = Connection(json: try open(row)) else {
                throw OAuthError(status: 500, "server_error", "the stored connection for '\(row.target)' is not readable")
            }
            let now = Date().timeIntervalSince1970
            if let token = connection.accessToken, let expiresAt = connection.expiresAt, expiresAt - now > Self.refreshMargin {
                return ReleasedCredential(value: token, expiresIn: Int(expiresAt - now))
            }
            guard let provider else {
                throw OAuthError(status: 500, "server_error", "'\(service)' has an OAuth connection but no [[provider]] in broker.toml")
            }
            let refreshed = try await refresh(connection, provider: provider)
            var updated = row
            updated.updatedAt = AuditTime.now()
            switch refreshed {
            case .revoked:
                updated.connected = false
            case .refreshed(let next):
                do {
                    updated.sealed = try cipher.seal(next.json, context: row.sealingContext)
                } catch {
                    throw OAuthError(status: 500, "server_error", "cannot seal the refreshed token: \(error.message)")
                }
            }
            let replaced: Bool
            do {
                replaced = try await store.replaceCredential(updated, expectedVersion: row.version)
            } catch {
                throw unavailable("the vault cannot be written", error)
            }
            if replaced {
                switch refreshed {
                case .revoked:
                    logger.notice("upstream refresh token refused; connection marked not connected",
                                  metadata: ["owner": "\(row.owner)", "service": "\(service)"])
                    throw notConnected(provider, "the provider refused the stored refresh token for '\(service)'; connect it again")
                case .refreshed(let next):
                    let left = (next.expiresAt ?? now + 3600) - now
                    return ReleasedCredential(value: next.accessToken ?? "", expiresIn: Int(left))
                }
            }
            do {
                guard let current = try await store.credential(owner: row.owner, target: row.target) else {
                    throw notConnected(provider, "the connection to '\(service)' was removed")
                }
                row = current
            } catch let error as OAuthError {
                throw error
            } catch {
                throw unavailable("the vault cannot be read", error)
            }
        }
        throw OAuthError(status: 503, "temporarily_unavailable", "the connection to '\(service)' is being refreshed elsewhere; try again")
    }

    enum Refreshed {
        case refreshed(Connection)
        case revoked
    }

    /// RFC 6749 section 6 at the provider's token endpoint (client_secret_post when a secret is set).
    private func refresh(_ connection: Connection, provider: BrokerConfig.OAuthProvider) async throws(OAuthError) -> Refreshed {
        var fields = [("grant_type", "refresh_token"), ("refresh_token", connection.refreshToken), ("client_id", provider.clientID)]
        if let variable = provider.clientSecretEnv {
            guard let secret = environment[variable], !secret.isEmpty else {
                throw OAuthError(status: 500, "server_error", "the client secret of provider '\(provider.service)' (\(variable)) is not set on the broker")
            }
            fields.append(("client_secret", secret))
        }
        if let scope = provider.scope { fields.append(("scope", scope)) }
        let response: HTTPResponse
        switch await http.perform(OAuthTokenEndpoint.request(provider.tokenEndpoint, fields: fields, timeout: 15)) {
        case .failure(let error):
            logger.warning("provider token endpoint unreachable", metadata: ["service": "\(provider.service)", "reason": "\(error.reason)"])
            throw OAuthError(status: 503, "temporarily_unavailable", "the token endpoint of '\(provider.service)' cannot be reached; try again later")
        case .success(let answer):
            response = answer
        }
        let answer = OAuthTokenEndpoint.parse(response)
        if case .issued(let grant) = answer {
            var next = connection
            next.accessToken = grant.accessToken
            if let seconds = grant.expiresIn, seconds > 0 {
                next.expiresAt = Date().timeIntervalSince1970 + seconds
            } else {
                next.expiresAt = Date().timeIntervalSince1970 + 3600
            }
            if let rotated = grant.refreshToken, !rotated.isEmpty { next.refreshToken = rotated }
            return .refreshed(next)
        }
        var errorCode: String?
        if case .refused(let refusal) = answer { errorCode = refusal.code }
        // invalid_grant: the refresh token is revoked, expired or was issued to another client.
        if response.status == 400 || response.status == 401, errorCode == "invalid_grant" {
            return .revoked
        }
        logger.warning("provider token endpoint refused a refresh",
                       metadata: ["service": "\(provider.service)", "status": "\(response.status)",
                                  "error": "\(errorCode ?? "-")"])
        throw OAuthError(status: 503, "temporarily_unavailable", "the token endpoint of '\(provider.service)' answered HTTP \(response.status); try again later")
    }
}

/// Every exchange goes to the exchange log before it is answered. A request whose subject
/// token was not accepted is only counted, per (minute, client, result): anyone can send
/// those, and one row each would let them fill the database.
public struct StoreExchangeRecorder: ExchangeRecorder {
    let store: any BrokerStore

    public init(store: any BrokerStore) {
        self.store = store
    }

    public func record(_ outcome: ExchangeOutcome) async throws(OAuthError) {
        do {
            let now = AuditTime.now()
            if outcome.principal == nil {
                try await store.countRefusedExchange(RefusedExchanges(minute: String(now.prefix(16)), client: outcome.client ?? "unknown",
                                                                      result: outcome.result, count: 1))
            } else {
                try await store.recordExchange(ExchangeLogEntry(time: now, principal: outcome.principal,
                                                                target: outcome.target, result: outcome.result))
            }
        } catch {
            throw OAuthError(status: 503, "temporarily_unavailable", "the exchange cannot be recorded; try again later")
        }
    }
}
