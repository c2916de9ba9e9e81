import KontextAudit
import KontextCore
import KontextEnvFile
import KontextExchange
import KontextExchangeCore
import KontextHTTP
import KontextKeyring
import KontextOIDC
import KontextWorkload
import KontextAuditShipping

/// An open way to exchange placeholders. Local mode: the exchange core in this process,
/// accepting only this run's random subject token and serving the keyring's credentials
/// (no listening socket: nothing else on the machine can ask it for anything).
/// Remote mode: the issuer's token endpoint (or KONTEXT_TOKEN_ENDPOINT) with the login's
/// access token as the subject token, renewed once if the server refuses it.
public final class CredentialSource: Sendable {
    public let exchanger: TokenExchanger
    private let login: LoginSession?
    private let workload: WorkloadToken?

    private init(exchanger: TokenExchanger, login: LoginSession?, workload: WorkloadToken? = nil) {
        self.exchanger = exchanger
        self.login = login
        self.workload = workload
    }

    public static func open(settings: Settings, identity: RunIdentity) async throws -> CredentialSource {
        if let workload = identity.workload {
            let oidc = OIDCSettings(settings: settings)
            let endpoint: String
            if let configured = settings.tokenEndpoint {
                endpoint = configured
            } else if let oidc {
                endpoint = try await IssuerMetadata.discover(issuer: oidc.issuer, http: oidc.http, allowHTTP: oidc.allowHTTP).tokenEndpoint
            } else {
                throw KontextError.usage("CI mode (\(workload.platform.rawValue)) needs a token service to exchange the job's identity at",
                                         hint: "set KONTEXT_TOKEN_ENDPOINT to the broker's token endpoint (e.g. https://kontext.example.com/oauth2/token)")
            }
            let exchanger = TokenExchanger(
                endpoint: ExchangeEndpoint(tokenURL: endpoint, clientID: oidc?.clientID ?? OIDCSettings.defaultClientID,
                                           clientSecret: oidc?.clientSecret),
                subject: SubjectToken(value: workload.token, type: TokenTypeURN.jwt),
                http: HTTPClient(settings: settings))
            return CredentialSource(exchanger: exchanger, login: nil, workload: workload)
        }
        if let login = identity.login, let oidc = OIDCSettings(settings: settings) {
            let token = try await login.accessToken()
            let stored = await login.login
            let exchanger = TokenExchanger(
                endpoint: ExchangeEndpoint(tokenURL: oidc.exchangeEndpoint ?? stored.tokenEndpoint,
                                           clientID: oidc.clientID, clientSecret: oidc.clientSecret),
                subject: SubjectToken(value: token, type: TokenTypeURN.accessToken), http: oidc.http)
            return CredentialSource(exchanger: exchanger, login: login)
        }
        let store = try CredentialStores.open(settings: settings)
        let secret = LocalSubjectVerifier.makeSecret()
        let service = TokenExchangeService(
            verifier: LocalSubjectVerifier(secret: secret),
            vault: KeyringVault(store: store),
            missingCredentialHint: { placeholder in
                "no credential stored for '\(placeholder.target)'; add one with `kontext provider add \(placeholder.target)`"
            })
        // The same form and answer as over HTTP, read by the same code; measured against the
        // loopback broker this replaced, it saves the server's start and a round trip per
        // placeholder (README, Performance).
        let exchanger = TokenExchanger(
            endpoint: ExchangeEndpoint(tokenURL: Self.localEndpoint, clientID: "kontext-local"),
            subject: SubjectToken(value: secret, type: TokenTypeURN.accessToken),
            carrier: .inProcess { form in
                let answer = await service.handle(form: form)
                return HTTPResponse(status: answer.status, contentType: "application/json", body: answer.body)
            })
        return CredentialSource(exchanger: exchanger, login: nil)
    }

    /// Exchanges every placeholder. When the server refuses the subject token (expired,
    /// revoked), the login is renewed once and only the refused placeholders are retried;
    /// a login that cannot be renewed, or is refused again, is exit 3.
    public func resolve(_ file: EnvFile) async throws -> Resolution {
        var results = await exchanger.exchange(file.placeholders)
        let refused = results.filter { if case .failure(.subjectRejected) = $0.value { true } else { false } }
        if let workload, case .failure(.subjectRejected(let detail))? = refused.first?.value {
            // A job's token cannot be renewed by kontext: the platform issues it.
            throw KontextError(.authentication,
                               "the token service at \(exchanger.endpoint.tokenURL) refused the workload identity from \(workload.platform.rawValue)\(detail.map { ": \($0)" } ?? "")",
                               hint: "check the broker's trusted issuers and claim rules for this job (sub \(workload.claim("sub") ?? "?"))")
        }
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

    /// One placeholder exchanged again, for the credential proxy before the credential
    /// expires: with the login's current access token, renewed once if the server refuses it.
    public func exchangeAgain(_ placeholder: Placeholder) async throws -> IssuedCredential {
        var current = exchanger
        if let login { current.subject.value = try await login.accessToken() }
        var result = await current.exchange([placeholder])[placeholder]
        if case .failure(.subjectRejected)? = result, let login {
            current.subject.value = try await login.renew(rejected: current.subject.value)
            result = await current.exchange([placeholder])[placeholder]
        }
        switch result {
        case .success(let credential)?:
            return credential
        case .failure(let failure)?:
            throw KontextError(.credentialResolution, failure.explanation(for: placeholder, endpoint: exchanger.endpoint.tokenURL))
        case nil:
            throw KontextError(.credentialResolution, "no answer for \(placeholder)")
        }
    }

    public var endpointDescription: String { exchanger.endpoint.tokenURL }

    /// How local mode's token service is named in messages.
    public static let localEndpoint = "the local token service (in process)"

}
