import Foundation
import KontextCore
import KontextExchange
import KontextExchangeCore
import KontextHTTP
import KontextKeyring
import KontextTrust

/// A login kept in the OS keyring: the tokens and who they stand for. Only `whoami`'s
/// fields are ever shown; the tokens never leave the keyring except to the issuer and STS.
public struct StoredLogin: Sendable, Equatable {
    public var issuer: String
    public var accessToken: String
    /// Seconds since 1970; nil when the issuer did not say.
    public var accessExpiresAt: Double?
    public var refreshToken: String?
    public var subject: String
    public var email: String?
    public var name: String?
    public var tokenEndpoint: String
    public var revocationEndpoint: String?

    func maskInDiagnostics() {
        Diagnostics.mask([("access-token", accessToken)] + (refreshToken.map { [("refresh-token", $0)] } ?? []))
    }

    var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("issuer", .string(issuer)), ("access_token", .string(accessToken)),
            ("subject", .string(subject)), ("token_endpoint", .string(tokenEndpoint)),
        ]
        if let accessExpiresAt { members.append(("access_expires_at", .number(accessExpiresAt))) }
        if let refreshToken { members.append(("refresh_token", .string(refreshToken))) }
        if let email { members.append(("email", .string(email))) }
        if let name { members.append(("name", .string(name))) }
        if let revocationEndpoint { members.append(("revocation_endpoint", .string(revocationEndpoint))) }
        return .object(members)
    }

    init?(json: JSONValue) {
        guard let issuer = json["issuer"]?.stringValue, let access = json["access_token"]?.stringValue,
              let subject = json["subject"]?.stringValue, let token = json["token_endpoint"]?.stringValue else { return nil }
        self.issuer = issuer
        accessToken = access
        self.subject = subject
        tokenEndpoint = token
        if case .number(let expiry)? = json["access_expires_at"] { accessExpiresAt = expiry }
        refreshToken = json["refresh_token"]?.stringValue
        email = json["email"]?.stringValue
        name = json["name"]?.stringValue
        revocationEndpoint = json["revocation_endpoint"]?.stringValue
    }

    init(issuer: String, tokens: TokenResponse, identity: VerifiedSubject?, previous: StoredLogin?,
         metadata: IssuerMetadata, now: Double) {
        self.issuer = issuer
        accessToken = tokens.accessToken
        accessExpiresAt = tokens.expiresIn.map { now + $0 }
        // RFC 6749 section 6: a refresh answer may leave the refresh token unchanged.
        refreshToken = tokens.refreshToken ?? previous?.refreshToken
        subject = identity?.principal.subject ?? previous?.subject ?? "unknown"
        email = identity.map { $0.principal.email } ?? previous?.email
        name = identity?.claims["name"]?.stringValue ?? previous?.name
        tokenEndpoint = metadata.tokenEndpoint
        revocationEndpoint = metadata.revocationEndpoint
    }
}

/// Reads, refreshes and forgets the login of one issuer and client.
public struct Authenticator: Sendable {
    /// An access token this close to expiry is refreshed before use.
    public static let refreshMargin = 60.0

    public let settings: OIDCSettings
    public let store: any CredentialStore
    public let client: OAuthClient
    let now: @Sendable () -> Double

    public init(settings: OIDCSettings, store: any CredentialStore,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.settings = settings
        self.store = store
        self.client = OAuthClient(settings: settings)
        self.now = now
    }

    public func load() throws -> StoredLogin? {
        let store = self.store, key = settings.storeKey
        guard let text = try store.lookup(kind: .oidcSession, key: key) else { return nil }
        guard let json = try? JSONValue.parse(text), let login = StoredLogin(json: json) else {
            throw KontextError(.authentication, "the stored login for \(settings.issuer) is unreadable",
                               hint: "run `kontext login` again")
        }
        login.maskInDiagnostics()
        return login
    }

    public func save(_ login: StoredLogin) throws {
        login.maskInDiagnostics()
        try store.store(login.json.serialized, kind: .oidcSession, key: settings.storeKey,
                        label: "kontext login (\(settings.issuer))")
    }

    @discardableResult
    public func forget() throws -> Bool {
        try store.remove(kind: .oidcSession, key: settings.storeKey)
    }

    var notLoggedIn: KontextError {
        KontextError(.authentication, "not logged in to \(settings.issuer)", hint: "run `kontext login`")
    }

    /// The stored login with an access token valid for at least `refreshMargin` seconds,
    /// refreshing it first when needed.
    public func currentLogin() async throws -> StoredLogin {
        let stored = try await offloadLoad()
        guard let login = stored else { throw notLoggedIn }
        if isDue(login) {
            Diagnostics.log("the access token for \(settings.issuer) expires within \(Int(Self.refreshMargin)) s: renewing it")
            return try await refresh(login)
        }
        return login
    }

    /// Whether the access token is within `refreshMargin` of its expiry.
    func isDue(_ login: StoredLogin) -> Bool {
        login.accessExpiresAt.map { $0 - now() < Self.refreshMargin } ?? false
    }

    func offloadLoad() async throws -> StoredLogin? {
        let authenticator = self
        return try await offload { try authenticator.load() }
    }

    /// Trades the refresh token for new tokens and stores them.
    public func refresh(_ login: StoredLogin) async throws -> StoredLogin {
        guard let refreshToken = login.refreshToken else {
            throw KontextError(.authentication, "your login to \(settings.issuer) has expired and cannot be renewed (the issuer gave no refresh token)",
                               hint: "run `kontext login`")
        }
        let answer = await client.token(login.tokenEndpoint, grant: [
            ("grant_type", "refresh_token"), ("refresh_token", refreshToken),
        ])
        switch answer {
        case .failure(let error) where error.code == "invalid_grant":
            _ = try? forget()
            throw KontextError(.authentication, "your login to \(settings.issuer) has expired or was revoked (\(error))",
                               hint: "run `kontext login`")
        case .failure(let error):
            throw KontextError(.authentication, "cannot renew your login to \(settings.issuer): \(error)",
                               hint: "try again; if it persists, run `kontext login`")
        case .success(let tokens):
            var identity: VerifiedSubject?
            if let idToken = tokens.idToken, let jwks = await jwksURL(for: login) {
                identity = try await IDTokenValidator(issuer: login.issuer, clientID: settings.clientID, jwksURL: jwks,
                                                      http: client.http).validate(idToken, nonce: nil)
            }
            let metadata = IssuerMetadata(issuer: login.issuer, tokenEndpoint: login.tokenEndpoint,
                                          revocationEndpoint: login.revocationEndpoint)
            let renewed = StoredLogin(issuer: login.issuer, tokens: tokens, identity: identity, previous: login,
                                      metadata: metadata, now: now())
            let authenticator = self
            try await offload { try authenticator.save(renewed) }
            return renewed
        }
    }

    private func jwksURL(for login: StoredLogin) async -> String? {
        (try? await IssuerMetadata.discover(issuer: login.issuer, http: client.http, allowHTTP: settings.allowHTTP))?.jwksURI
    }

    /// Stores the result of a completed login flow.
    public func complete(tokens: TokenResponse, identity: VerifiedSubject?, metadata: IssuerMetadata) async throws -> StoredLogin {
        let login = StoredLogin(issuer: metadata.issuer, tokens: tokens, identity: identity, previous: nil,
                                metadata: metadata, now: now())
        let authenticator = self
        try await offload { try authenticator.save(login) }
        return login
    }
}

/// OIDC Core 3.1.3.7: the ID token is signed by the issuer's keys, names the issuer, is
/// for this client, unexpired, and carries the nonce the login sent.
public struct IDTokenValidator: Sendable {
    public var issuer: String
    public var clientID: String
    public var jwksURL: String
    public var http: HTTPClient

    public init(issuer: String, clientID: String, jwksURL: String, http: HTTPClient) {
        self.issuer = issuer
        self.clientID = clientID
        self.jwksURL = jwksURL
        self.http = http
    }

    public func validate(_ idToken: String, nonce: String?) async throws -> VerifiedSubject {
        func failure(_ reason: String) -> KontextError {
            KontextError(.authentication, "the issuer's ID token is not valid: \(reason)",
                         hint: "check the clock, KONTEXT_ISSUER_URL and KONTEXT_CLIENT_ID, then run `kontext login` again")
        }
        let verifier: JWTSubjectVerifier
        do {
            verifier = try JWTSubjectVerifier(issuers: [TrustedIssuer(issuer: issuer, audiences: [clientID], jwksURL: jwksURL)],
                                              http: http)
        } catch {
            throw KontextError(.usage, "cannot check ID tokens from \(issuer): \(error.details.joined(separator: "; "))")
        }
        let subject: VerifiedSubject
        do {
            subject = try await verifier.verifySubject(token: idToken, type: TokenTypeURN.idToken)
        } catch {
            throw failure(error.description.replacingAll("subject_token", with: "ID token"))
        }
        if let nonce {
            guard subject.claims["nonce"]?.stringValue == nonce else {
                throw failure("its nonce does not match this login's (a replayed or injected response)")
            }
        }
        return subject
    }
}

/// The login one kontext process acts with. Refreshes are serialised: issuers rotate refresh
/// tokens, so two concurrent refreshes with the same one would end the login.
public actor LoginSession {
    public let authenticator: Authenticator
    public private(set) var login: StoredLogin

    init(authenticator: Authenticator, login: StoredLogin) {
        self.authenticator = authenticator
        self.login = login
    }

    /// The stored login, refreshed first if it is about to expire; exit 3 when there is none.
    public static func open(_ authenticator: Authenticator) async throws -> LoginSession {
        LoginSession(authenticator: authenticator, login: try await authenticator.currentLogin())
    }

    /// An access token valid for at least `Authenticator.refreshMargin` seconds.
    public func accessToken() async throws -> String {
        if authenticator.isDue(login) {
            login = try await authenticator.refresh(login)
        }
        return login.accessToken
    }

    /// A server refused `rejected`: refresh once, unless another caller already did.
    public func renew(rejected: String) async throws -> String {
        if login.accessToken == rejected {
            Diagnostics.log("a server refused the access token: renewing it once")
            login = try await authenticator.refresh(login)
        }
        return login.accessToken
    }
}
