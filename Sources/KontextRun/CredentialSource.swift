import KontextBroker
import KontextCore
import KontextEnvFile
import KontextExchange
import KontextHTTP
import KontextKeyring

/// Which of SPEC section 5's modes this run is in.
public enum Mode: Sendable, Equatable {
    case local
    case remote(issuer: String)

    public static func detect(_ environment: [String: String]) -> Mode {
        if let issuer = environment["KONTEXT_ISSUER_URL"], !issuer.isEmpty { return .remote(issuer: issuer) }
        return .local
    }
}

/// An open way to exchange placeholders: in local mode an embedded broker on loopback that
/// accepts only this run's random subject token and serves the keyring's credentials.
public final class CredentialSource: Sendable {
    public let exchanger: TokenExchanger
    private let broker: BrokerServer?

    private init(exchanger: TokenExchanger, broker: BrokerServer?) {
        self.exchanger = exchanger
        self.broker = broker
    }

    public static func open(environment: [String: String]) async throws -> CredentialSource {
        switch Mode.detect(environment) {
        case .local:
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
            return CredentialSource(exchanger: exchanger, broker: broker)
        case .remote(let issuer):
            throw KontextError(.usage, "remote mode (KONTEXT_ISSUER_URL=\(issuer)) is not available in this build yet",
                               hint: "unset KONTEXT_ISSUER_URL to use local mode")
        }
    }

    public func resolve(_ file: EnvFile) async -> Resolution {
        await CredentialResolver.resolve(file, with: exchanger)
    }

    public var endpointDescription: String { exchanger.endpoint.tokenURL }

    public func close() async {
        await broker?.stop()
    }
}
