import Foundation
import Hummingbird
import KontextBroker
import KontextBrokerService
import KontextBrokerStore
import KontextCore
import KontextEnvFile
import KontextExchange
import KontextHTTP
import KontextTestIssuer
import KontextTestSupport
import Logging
import Synchronization
import Testing

/// A provider's OAuth token endpoint on loopback (RFC 6749 section 6): it redeems refresh
/// tokens it issued, rotates them on every use, and can revoke them.
final class TestOAuthProvider: Sendable {
    struct State {
        var valid: Set<String> = []
        var refreshes = 0
        var expiresIn = 3600
        var lastClientSecret: String?
    }

    let state = Mutex(State())
    let tokenURL: String
    private let task: Task<Void, any Error>

    private init(tokenURL: String, task: Task<Void, any Error>, state: Mutex<State>.Type = Mutex<State>.self) {
        self.tokenURL = tokenURL
        self.task = task
    }

    static func start() async throws -> TestOAuthProvider {
        let holder = Holder()
        let router = Router()
        router.post("/token") { request, _ -> Response in
            let form = formDecode(String(buffer: try await request.body.collect(upTo: 65536)))
            let provider = holder.provider!
            let (status, body) = provider.state.withLock { state -> (Int, String) in
                guard form["grant_type"] == "refresh_token", form["client_id"] == "kontext-test-client",
                      let refresh = form["refresh_token"] else {
                    return (400, #"{"error":"invalid_request"}"#)
                }
                guard state.valid.remove(refresh) != nil else {
                    return (400, #"{"error":"invalid_grant","error_description":"refresh token revoked"}"#)
                }
                state.refreshes += 1
                state.lastClientSecret = form["client_secret"]
                let next = TestSupport.secret("refresh-\(state.refreshes)")
                state.valid.insert(next)
                let access = TestSupport.secret("access-\(state.refreshes)")
                return (200, #"{"access_token":""# + access + #"","token_type":"Bearer","expires_in":"# + String(state.expiresIn)
                    + #","refresh_token":""# + next + #""}"#)
            }
            return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        var quiet = Logger(label: "kontext.test.oauth")
        quiet.logLevel = .critical
        let listening = try await LoopbackApplication.start(router, logger: quiet)
        let provider = TestOAuthProvider(tokenURL: listening.baseURL + "/token", task: listening.task)
        holder.provider = provider
        return provider
    }

    /// A refresh token the provider will honour once.
    func grant(_ token: String) { state.withLock { _ = $0.valid.insert(token) } }
    func revokeAll() { state.withLock { $0.valid.removeAll() } }
    var refreshes: Int { state.withLock { $0.refreshes } }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

final class Holder: @unchecked Sendable {
    var provider: TestOAuthProvider?
}

@Suite(.serialized) struct VaultTests {
    @Test func secretsAreSealedAtRestAndKeysRotate() async throws {
        let setup = try await BrokerSetup.make("vault-at-rest")
        let secret = TestSupport.secret("static-github")
        let admin = try await setup.admin()
        try await admin.add(target: "github", owner: "", kind: .staticKey, secret: secret)
        let rows = try await admin.list()
        #expect(rows.map(\.target) == ["github"])
        #expect(rows.first?.sealed.keyID == "k1")
        await admin.close()

        let broker = try await setup.serve()
        let answer = try await exchange(broker.baseURL, token: try await setup.token(), resource: "github")
        #expect(answer.body["access_token"]?.stringValue == secret, "\(answer.text)")
        await broker.stop()

        // Neither the database file nor its WAL holds the secret, nor the exchange log.
        let path = String(setup.database.dropFirst("sqlite:".count))
        let bytes = databaseBytes(path)
        #expect(bytes.count > 4096)
        #expect(bytes.range(of: Data(secret.utf8)) == nil, "plaintext secret in \(path)")
        #expect(bytes.range(of: Data("github".utf8)) != nil, "the grep must look at the real file")

        // Rotation: k2 becomes current, k1 stays readable; rekey reseals; then k1 can go.
        var rotated = setup.environment
        rotated[BrokerConfig.defaultVaultKeyVariable] = vaultKeys(["k2", "k1"])
        let second = try await setup.serve(environment: rotated)
        #expect(try await exchange(second.baseURL, token: try await setup.token(), resource: "github").body["access_token"]?.stringValue == secret)
        await second.stop()
        let rekeying = try await setup.admin(environment: rotated)
        #expect(try await rekeying.rekey() == 1)
        #expect(try await rekeying.list().first?.sealed.keyID == "k2")
        await rekeying.close()

        var onlyNew = setup.environment
        onlyNew[BrokerConfig.defaultVaultKeyVariable] = vaultKeys(["k2"])
        let third = try await setup.serve(environment: onlyNew)
        #expect(try await exchange(third.baseURL, token: try await setup.token(), resource: "github").body["access_token"]?.stringValue == secret)
        await third.stop()

        // A key that never sealed anything opens nothing: a 500 naming no secret.
        var wrong = setup.environment
        wrong[BrokerConfig.defaultVaultKeyVariable] = vaultKeys(["k9"])
        let fourth = try await setup.serve(environment: wrong)
        let refused = try await exchange(fourth.baseURL, token: try await setup.token(), resource: "github")
        #expect(refused.status == 500)
        #expect(refused.error == "server_error")
        #expect(!refused.text.contains(secret))
        await fourth.stop()
        await setup.idp.stop()
    }

    @Test func principalsGrantsAndOwnersDecideWhatIsReleased() async throws {
        let setup = try await BrokerSetup.make("vault-grants", grants: """
            [[grant]]
            principals = "user:*"
            services = ["github"]
            [[grant]]
            principals = "ci:acme/app"
            services = ["github", "deploy-*"]
            """)
        let admin = try await setup.admin()
        try await admin.add(target: "github", owner: "", kind: .staticKey, secret: TestSupport.secret("org-github"))
        try await admin.add(target: "github", owner: setup.user("bob"), kind: .staticKey, secret: TestSupport.secret("bob-github"))
        try await admin.add(target: "deploy-prod", owner: "", kind: .staticKey, secret: TestSupport.secret("deploy"))
        await admin.close()
        let broker = try await setup.serve()

        // Users: the organisation's credential, unless they have their own.
        #expect(try await exchange(broker.baseURL, token: try await setup.token(sub: "alice"), resource: "github")
            .body["access_token"]?.stringValue == TestSupport.secret("org-github"))
        #expect(try await exchange(broker.baseURL, token: try await setup.token(sub: "bob"), resource: "github")
            .body["access_token"]?.stringValue == TestSupport.secret("bob-github"))
        let denied = try await exchange(broker.baseURL, token: try await setup.token(sub: "alice"), resource: "deploy-prod")
        #expect(denied.status == 400)
        #expect(denied.error == "access_denied")
        #expect(denied.description.contains("'\(setup.user("alice"))' is not granted 'deploy-prod'"))

        // A CI workload by claim rule: repository and ref both match.
        let ci = try await setup.token(sub: "repo:acme/app:ref:refs/heads/main") {
            $0.repository = "acme/app"
            $0.ref = "refs/heads/main"
        }
        #expect(try await exchange(broker.baseURL, token: ci, resource: "deploy-prod").body["access_token"]?.stringValue == TestSupport.secret("deploy"))
        // Another branch of the same repository is no CI principal: it is a plain user, not granted deploy.
        let branch = try await setup.token(sub: "repo:acme/app:ref:refs/heads/dev") {
            $0.repository = "acme/app"
            $0.ref = "refs/heads/dev"
        }
        #expect(try await exchange(broker.baseURL, token: branch, resource: "deploy-prod").error == "access_denied")
        // Granted but nothing stored.
        let missing = try await exchange(broker.baseURL, token: ci, resource: "deploy-staging")
        #expect(missing.error == "invalid_target")
        #expect(missing.description.contains("kontext broker provider add deploy-staging"))

        let log = try await broker.store.exchangeLog(limit: 10).reversed().map { "\($0.principal ?? "-") \($0.target ?? "-") \($0.result)" }
        #expect(log == [
            "\(setup.user("alice")) github issued", "\(setup.user("bob")) github issued",
            "\(setup.user("alice")) deploy-prod access_denied", "ci:acme/app deploy-prod issued",
            "\(setup.user("repo:acme/app:ref:refs/heads/dev")) deploy-prod access_denied",
            "ci:acme/app deploy-staging invalid_target",
        ])
        await broker.stop()
        await setup.idp.stop()
    }

    @Test func upstreamOAuthIsRefreshedAndARevokedConnectionIsNotConnected() async throws {
        let provider = try await TestOAuthProvider.start()
        let connectURL = "https://broker.example/connect/linear"
        let setup = try await BrokerSetup.make("vault-oauth", extraConfig: """
            [[provider]]
            service = "linear"
            token_endpoint = "\(provider.tokenURL)"
            client_id = "kontext-test-client"
            client_secret_env = "LINEAR_CLIENT_SECRET"
            connect_url = "\(connectURL)"
            """)
        var environment = setup.environment
        environment["LINEAR_CLIENT_SECRET"] = TestSupport.secret("linear-client")
        let first = TestSupport.secret("refresh-0")
        provider.grant(first)
        let admin = try await setup.admin(environment: environment)
        try await admin.add(target: "linear", owner: setup.user("alice"), kind: .oauth, secret: first)
        await admin.close()
        let broker = try await setup.serve(environment: environment)
        let alice = try await setup.token(sub: "alice")

        // First exchange: the broker redeems the refresh token; the answer is the upstream access token.
        let issued = try await exchange(broker.baseURL, token: alice, resource: "linear")
        #expect(issued.status == 200, "\(issued.text)")
        #expect(issued.body["access_token"]?.stringValue == TestSupport.secret("access-1"))
        #expect(provider.refreshes == 1)
        #expect(provider.state.withLock { $0.lastClientSecret } == TestSupport.secret("linear-client"))
        // Still valid: served from the vault without asking the provider.
        #expect(try await exchange(broker.baseURL, token: alice, resource: "linear").body["access_token"]?.stringValue == TestSupport.secret("access-1"))
        #expect(provider.refreshes == 1)

        // Short-lived upstream tokens: each exchange refreshes with the rotated refresh token,
        // and expires_in follows the upstream token's remaining life.
        provider.state.withLock { $0.expiresIn = 30 }
        let admin2 = try await setup.admin(environment: environment)
        try await admin2.add(target: "linear", owner: setup.user("alice"), kind: .oauth, secret: TestSupport.secret("refresh-1"))
        await admin2.close()
        let short = try await exchange(broker.baseURL, token: alice, resource: "linear")
        #expect(short.body["access_token"]?.stringValue == TestSupport.secret("access-2"), "\(short.text)")
        if case .number(let seconds)? = short.body["expires_in"] { #expect(seconds <= 30 && seconds >= 25) } else { Issue.record("no expires_in") }
        #expect(try await exchange(broker.baseURL, token: alice, resource: "linear").body["access_token"]?.stringValue == TestSupport.secret("access-3"))
        #expect(provider.refreshes == 3)

        // The user revokes the grant at the provider: "not connected", with where to connect.
        provider.revokeAll()
        let revoked = try await exchange(broker.baseURL, token: alice, resource: "linear")
        #expect(revoked.status == 400)
        #expect(revoked.error == "provider_not_connected", "\(revoked.text)")
        #expect(revoked.body["connect_url"]?.stringValue == connectURL)
        // Remembered: the provider is not asked again.
        #expect(try await exchange(broker.baseURL, token: alice, resource: "linear").error == "provider_not_connected")
        #expect(provider.refreshes == 3)
        let state = try await broker.store.credential(owner: setup.user("alice"), target: "linear")
        #expect(state?.connected == false)

        // The CLI's exchange client turns it into "connect it at URL".
        let client = TokenExchanger(endpoint: ExchangeEndpoint(tokenURL: broker.server.tokenURL, clientID: "kontext"),
                                    subject: SubjectToken(value: alice, type: TokenTypeURN.jwt))
        let linear = Placeholder(service: "linear")
        let failure = try #require(await client.exchange([linear])[linear])
        guard case .failure(let error) = failure else { Issue.record("the exchange succeeded"); return }
        #expect(error.explanation(for: linear, endpoint: "broker").contains("connect it at \(connectURL)"), "\(error.explanation(for: linear, endpoint: "broker"))")

        // A user who never connected gets the same answer.
        let bob = try await exchange(broker.baseURL, token: try await setup.token(sub: "bob"), resource: "linear")
        #expect(bob.error == "provider_not_connected")
        #expect(bob.body["connect_url"]?.stringValue == connectURL)

        // Nothing of the OAuth exchange is in the database in clear.
        let bytes = databaseBytes(String(setup.database.dropFirst("sqlite:".count)))
        for value in ["refresh-0", "refresh-1", "refresh-3", "access-1", "access-3", "linear-client"] {
            #expect(bytes.range(of: Data(TestSupport.secret(value).utf8)) == nil, "\(value) in clear")
        }
        await broker.stop()
        await provider.stop()
        await setup.idp.stop()
    }
}
