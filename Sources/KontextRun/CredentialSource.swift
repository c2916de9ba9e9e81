import KontextAudit
import KontextBroker
import KontextCore
import KontextEnvFile
import KontextExchange
import KontextHTTP
import KontextKeyring
import KontextOIDC

/// Which of SPEC section 5's modes this run is in.
public enum Mode: Sendable, Equatable {
    case local
    case remote(issuer: String)

    public static func detect(_ environment: [String: String]) -> Mode {
        if let issuer = environment["KONTEXT_ISSUER_URL"], !issuer.isEmpty { return .remote(issuer: issuer) }
        return .local
    }
}

/// Who a run acts as: the OS user in local mode, the logged-in user in remote mode.
public struct RunIdentity: Sendable {
    /// nil in local mode.
    public let login: LoginSession?
    public let actor: AuditActor

    /// Remote mode needs a login (exit 3 without one); local mode needs nothing.
    public static func establish(settings: [String: String]) async throws -> RunIdentity {
        guard let oidc = OIDCSettings(settings: settings) else {
            return RunIdentity(login: nil, actor: localActor())
        }
        let store = try CredentialStores.fromEnvironment(settings)
        let session = try await LoginSession.open(Authenticator(settings: oidc, store: store))
        let login = await session.login
        return RunIdentity(login: session, actor: AuditActor(sub: login.subject, email: login.email))
    }
}

/// An open way to exchange placeholders. Local mode: an embedded broker on loopback that
/// accepts only this run's random subject token and serves the keyring's credentials.
/// Remote mode: the issuer's token endpoint (or KONTEXT_TOKEN_ENDPOINT) with the login's
/// access token as the subject token, renewed once if the server refuses it.
public final class CredentialSource: Sendable {
    public let exchanger: TokenExchanger
    private let broker: BrokerServer?
    private let login: LoginSession?

    private init(exchanger: TokenExchanger, broker: BrokerServer?, login: LoginSession?) {
        self.exchanger = exchanger
        self.broker = broker
        self.login = login
    }

    public static func open(environment: [String: String], identity: RunIdentity) async throws -> CredentialSource {
        if let login = identity.login, let oidc = OIDCSettings(settings: environment) {
            let token = try await login.accessToken()
            let stored = await login.login
            let exchanger = TokenExchanger(
                endpoint: ExchangeEndpoint(tokenURL: oidc.exchangeEndpoint ?? stored.tokenEndpoint,
                                           clientID: oidc.clientID, clientSecret: oidc.clientSecret),
                subject: SubjectToken(value: token, type: TokenTypeURN.accessToken), http: oidc.http)
            return CredentialSource(exchanger: exchanger, broker: nil, login: login)
        }
        let store = try CredentialStores.fromEnvironment(environment)
        let secret = LocalSubjectVerifier.makeSecret()
        let service = TokenExchangeService(
            verifier: LocalSubjectVerifier(secret: secret),
            vault: KeyringVault(store: store),
            missingCredentialHint: { placeholder in
                "no credential stored for '\(placeholder.target)'; add one with `kontext provider add \(placeholder.target)`"
            })
        let broker = try await BrokerServer.start(service: service)
        let exchanger = TokenExchanger(
            endpoint: ExchangeEndpoint(tokenURL: broker.tokenURL, clientID: "kontext-local"),
            subject: SubjectToken(value: secret, type: TokenTypeURN.accessToken))
        return CredentialSource(exchanger: exchanger, broker: broker, login: nil)
    }

    /// Exchanges every placeholder. When the server refuses the subject token (expired,
    /// revoked), the login is renewed once and only the refused placeholders are retried;
    /// a login that cannot be renewed, or is refused again, is exit 3.
    public func resolve(_ file: EnvFile) async throws -> Resolution {
        var results = await exchanger.exchange(file.placeholders)
        let refused = results.filter { if case .failure(.subjectRejected) = $0.value { true } else { false } }
        guard !refused.isEmpty, let login else { return CredentialResolver.resolve(file, results: results) }
        let renewed: String
        do {
            renewed = try await login.renew(rejected: exchanger.subject.value)
        } catch let error as KontextError {
            var failure = error
            failure.message = "the token service refused your login, and renewing it failed: " + error.message
            throw failure
        }
        var retry = exchanger
        retry.subject.value = renewed
        for (placeholder, result) in await retry.exchange(Array(refused.keys)) {
            if case .failure(.subjectRejected(let detail)) = result {
                throw KontextError(.authentication,
                                   "the token service at \(exchanger.endpoint.tokenURL) refuses your login even after renewing it\(detail.map { ": \($0)" } ?? "")",
                                   hint: "run `kontext login`; if that does not help, ask the token service's operator whether it trusts \(await login.login.issuer)")
            }
            results[placeholder] = result
        }
        return CredentialResolver.resolve(file, results: results)
    }

    public var endpointDescription: String { exchanger.endpoint.tokenURL }

    public func close() async {
        await broker?.stop()
    }
}
