import Foundation
import KontextKeyring
import KontextTestSupport
import Testing

/// A sandboxed user in remote mode against issuers started by the test.
struct RemoteUser {
    let sandbox: Sandbox
    let issuer: String
    let clientID: String
    var environment: [String: String]
    /// Every output kontext produced, for the token sweep at the end.
    final class Outputs: @unchecked Sendable { var texts: [String] = [] }
    let outputs = Outputs()

    init(_ label: String, issuer: String, clientID: String = "kontext-test", extra: [String: String] = [:]) {
        sandbox = Sandbox(label)
        self.issuer = issuer
        self.clientID = clientID
        environment = ["KONTEXT_ISSUER_URL": issuer, "KONTEXT_CLIENT_ID": clientID].merging(extra) { $1 }
    }

    @discardableResult
    func kontext(_ arguments: [String], extra: [String: String] = [:], timeout: TimeInterval = 60) throws -> ProcessResult {
        let result = try sandbox.kontext(arguments, environment: environment.merging(extra) { $1 }, timeout: timeout)
        outputs.texts += [result.stdout, result.stderr]
        return result
    }

    /// The login as the keyring holds it (nil when logged out).
    func storedLogin() throws -> [String: Any]? {
        let store = SecretServiceStore(environment: ProcessInfo.processInfo.environment)
        guard let text = try store.lookup(kind: .oidcSession, key: "\(issuer) \(clientID)") else { return nil }
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    }

    func storedTokens() throws -> [String] {
        guard let login = try storedLogin() else { return [] }
        return ["access_token", "refresh_token"].compactMap { login[$0] as? String }
    }

    /// No token in any file of the sandbox or anything kontext printed; no JWT (an ID
    /// token) either.
    func expectNoTokens(_ tokens: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for token in Set(tokens) where !token.isEmpty {
            #expect(TestSupport.files(under: sandbox.root, containing: token).isEmpty, "a token was written to disk",
                    sourceLocation: sourceLocation)
            #expect(!outputs.texts.contains { $0.contains(token) }, "a token was printed", sourceLocation: sourceLocation)
        }
        #expect(!outputs.texts.contains { $0.contains("eyJ") }, "something JWT-shaped was printed", sourceLocation: sourceLocation)
        #expect(TestSupport.files(under: sandbox.root, containing: "eyJhbGci").isEmpty, "a JWT was written to disk",
                sourceLocation: sourceLocation)
    }
}

/// The device-flow issuer of testsupport/oidc_issuer.py, approving as `subject`.
func deviceIssuer(_ directory: URL, subject: String = "bob", extra: [String] = []) throws -> LoopbackServer {
    try LoopbackServer(script: "oidc_issuer.py", arguments: [
        "--auto-approve", subject, "--auto-email", "\(subject)@example.test", "--auto-after", "2", "--interval", "1",
    ] + extra, in: directory)
}

@Suite(.enabled(if: TestSupport.hasSessionBus, "needs a Secret Service: run scripts/test"))
struct LoginTests {
    static var browser: String {
        "\(LoopbackServer.python) \(LoopbackServer.repository.appendingPathComponent("testsupport/fake_browser.py").path)"
    }

    /// oidc-provider-mock (PyPI), a third-party OpenID provider; it requires client
    /// authentication, so the client has a secret.
    func providerMock(_ directory: URL, tokenLifetime: Int = 30) throws -> LoopbackServer {
        try LoopbackServer(program: .module("oidc_provider_mock", readinessPath: "/.well-known/openid-configuration"),
                           arguments: ["--token-max-age", String(tokenLifetime),
                                       "--user-claims", #"{"sub":"alice","email":"alice@example.com","name":"Alice"}"#],
                           in: directory)
    }

    @Test func authorizationCodeLoginRefreshWhoamiLogoutAgainstAThirdPartyProvider() throws {
        let scratch = TestSupport.makeTemporaryDirectory("mock")
        let mock = try providerMock(scratch)
        let marker = scratch.appendingPathComponent("browser-opened")
        let user = RemoteUser("login-code", issuer: mock.baseURL, extra: [
            "KONTEXT_CLIENT_SECRET": TestSupport.secret("client"), "BROWSER": Self.browser,
            "FAKE_BROWSER_SUB": "alice", "FAKE_BROWSER_MARK": marker.path,
        ])

        let login = try user.kontext(["login"])
        #expect(login.status == 0, "\(login.stderr)")
        #expect(login.stderr.contains("logged in to \(mock.baseURL) as alice (alice@example.com)"), "\(login.stderr)")
        #expect(FileManager.default.fileExists(atPath: marker.path), "the browser was opened")
        let first = try #require(try user.storedLogin())
        let firstTokens = try user.storedTokens()
        #expect(firstTokens.count == 2, "access and refresh token stored")

        // The access token lives 30 s, inside the 60 s margin: the next command renews it first.
        let whoami = try user.kontext(["whoami", "--verbose"])
        #expect(whoami.status == 0, "\(whoami.stderr)")
        for line in ["subject: alice", "email:   alice@example.com", "name:    Alice", "issuer:  \(mock.baseURL)", "expires: "] {
            #expect(whoami.stdout.contains(line), "\(whoami.stdout)")
        }
        #expect(whoami.stderr.contains("renewing it"), "\(whoami.stderr)")
        let renewed = try #require(try user.storedLogin())
        #expect(renewed["access_token"] as? String != first["access_token"] as? String, "a new access token")
        #expect(renewed["refresh_token"] as? String == first["refresh_token"] as? String,
                "the refresh token is kept when the issuer does not rotate it")
        let renewedTokens = try user.storedTokens()

        let again = try user.kontext(["whoami", "--verbose"])
        #expect(again.status == 0)
        #expect(!again.stderr.contains("renewing it"), "a fresh token is not renewed again")

        let logout = try user.kontext(["logout", "--verbose"])
        #expect(logout.status == 0, "\(logout.stderr)")
        #expect(logout.stderr.contains("no revocation endpoint"), "\(logout.stderr)")
        #expect(try user.storedLogin() == nil)
        let after = try user.kontext(["whoami"])
        #expect(after.status == 3)
        #expect(after.stderr.hasPrefix("kontext: not logged in to \(mock.baseURL)"), "\(after.stderr)")
        user.expectNoTokens(firstTokens + renewedTokens + [TestSupport.secret("client")])
    }

    @Test func noBrowserPrintsTheURLAndWaitsForTheRedirect() throws {
        let scratch = TestSupport.makeTemporaryDirectory("mock-nobrowser")
        let mock = try providerMock(scratch)
        let marker = scratch.appendingPathComponent("browser-opened")
        let user = RemoteUser("login-nobrowser", issuer: mock.baseURL, extra: [
            "KONTEXT_CLIENT_SECRET": TestSupport.secret("client"), "BROWSER": Self.browser,
            "FAKE_BROWSER_MARK": marker.path,
        ])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.kontextPath)
        process.arguments = ["login", "--no-browser"]
        process.currentDirectoryURL = user.sandbox.workingDirectory
        process.environment = user.sandbox.environment.merging(user.environment) { $1 }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // The URL is printed on stderr; a person would open it, here the stand-in browser does.
        var printed = ""
        var url: String?
        let deadline = Date().addingTimeInterval(30)
        while url == nil, Date() < deadline {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            printed += String(decoding: chunk, as: UTF8.self)
            url = printed.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix(mock.baseURL + "/oauth2/authorize?") }
        }
        let authorize = try #require(url, "the sign-in URL is printed: \(printed)")
        #expect(authorize.contains("code_challenge_method=S256") && authorize.contains("state=") && authorize.contains("nonce="))
        let browser = Process()
        browser.executableURL = URL(fileURLWithPath: LoopbackServer.python)
        browser.arguments = [LoopbackServer.repository.appendingPathComponent("testsupport/fake_browser.py").path, authorize]
        #expect(try runProcess(browser, stdin: nil, timeout: 30).status == 0)
        process.waitUntilExit()
        printed += String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        user.outputs.texts.append(printed)
        #expect(process.terminationStatus == 0, "\(printed)")
        #expect(printed.contains("logged in to \(mock.baseURL) as alice"))
        #expect(!FileManager.default.fileExists(atPath: marker.path), "--no-browser opens no browser")
        user.expectNoTokens(try user.storedTokens())
    }

    @Test func deniedSignInIsAnAuthenticationFailure() throws {
        let scratch = TestSupport.makeTemporaryDirectory("mock-deny")
        let mock = try providerMock(scratch)
        let user = RemoteUser("login-deny", issuer: mock.baseURL, extra: [
            "KONTEXT_CLIENT_SECRET": TestSupport.secret("client"), "BROWSER": Self.browser, "FAKE_BROWSER_DENY": "1",
        ])
        let login = try user.kontext(["login"])
        #expect(login.status == 3)
        #expect(login.stderr.contains("kontext: sign-in was denied"), "\(login.stderr)")
        #expect(try user.storedLogin() == nil)
    }

    @Test func deviceFlowLoginRevokesOnLogout() throws {
        let scratch = TestSupport.makeTemporaryDirectory("device")
        // Only RFC 8414 metadata: discovery must fall back from openid-configuration.
        let issuer = try deviceIssuer(scratch, extra: ["--rfc8414-only"])
        let user = RemoteUser("login-device", issuer: issuer.baseURL)
        let login = try user.kontext(["login", "--device"])
        #expect(login.status == 0, "\(login.stderr)")
        #expect(login.stderr.contains("enter the code"), "\(login.stderr)")
        #expect(login.stderr.contains("logged in to \(issuer.baseURL) as bob (bob@example.test)"), "\(login.stderr)")
        let tokens = try user.storedTokens()
        #expect(tokens.count == 2)

        let whoami = try user.kontext(["whoami"])
        #expect(whoami.stdout.contains("subject: bob") && whoami.stdout.contains("email:   bob@example.test"), "\(whoami.stdout)")

        let logout = try user.kontext(["logout"])
        #expect(logout.status == 0, "\(logout.stderr)")
        #expect(logout.stderr.contains("tokens revoked at the issuer"), "\(logout.stderr)")
        let state = try #require(try issuer.getJSON("/control/state") as? [String: Any])
        let revocations = try #require(state["revocations"] as? [String: Any])
        #expect((revocations["count"] as? Int ?? 0) >= 2, "refresh and access token revoked: \(revocations)")
        #expect(try user.storedLogin() == nil)
        #expect(try user.kontext(["whoami"]).status == 3)
        user.expectNoTokens(tokens)
    }

    /// A hostile issuer's device answer carries terminal escapes (an OSC title change, a
    /// screen clear) in verification_uri and user_code: kontext prints them as inert text.
    @Test func deviceFlowPrintsNoControlCharactersFromTheIssuer() throws {
        let scratch = TestSupport.makeTemporaryDirectory("device-osc")
        let escapes = "\u{1B}]0;pwned\u{07}\u{1B}[2J\u{9B}1A"
        // The subject (and so the email claim) carries them too: `login` and `whoami` print those.
        let issuer = try deviceIssuer(scratch, subject: "bob" + escapes, extra: ["--verification-suffix", escapes])
        let user = RemoteUser("login-device-osc", issuer: issuer.baseURL)
        let login = try user.kontext(["login", "--device"])
        #expect(login.status == 0, "\(login.stderr)")
        #expect(login.stderr.contains("enter the code"), "\(login.stderr)")
        let whoami = try user.kontext(["whoami"])
        #expect(whoami.status == 0 && whoami.stdout.contains("subject: bob"), "\(whoami.stdout)")
        for output in [login.stderr, whoami.stdout] {
            let controls = output.unicodeScalars.filter { $0.properties.generalCategory == .control && $0 != "\n" }
            #expect(controls.isEmpty, "printed control characters: \(controls.map { $0.value })")
        }
        user.expectNoTokens(try user.storedTokens())
    }

    @Test func deviceFlowSlowsDownWhenTold() throws {
        let scratch = TestSupport.makeTemporaryDirectory("device-slow")
        let issuer = try deviceIssuer(scratch, extra: ["--auto-slow-down", "--slow-down-step", "1"])
        let user = RemoteUser("login-slow", issuer: issuer.baseURL)
        let login = try user.kontext(["login", "--device"], timeout: 90)
        #expect(login.status == 0, "\(login.stderr)")
        let state = try #require(try issuer.getJSON("/control/state") as? [String: Any])
        let devices = try #require(state["devices"] as? [[String: Any]])
        let polls = try #require(devices.first?["polls"] as? [Double], "\(devices)")
        #expect(polls.count >= 2)
        if polls.count >= 2 {
            // RFC 8628 section 3.5: after slow_down the interval grows by 5 seconds.
            #expect(polls[1] - polls[0] >= 5.9, "polls: \(polls)")
        }
    }

    @Test(arguments: [("--auto-expire", "the sign-in code expired"), ("--auto-deny", "sign-in was denied")])
    func deviceFlowEndsClearly(flag: String, message: String) throws {
        let scratch = TestSupport.makeTemporaryDirectory("device-end")
        let issuer = try LoopbackServer(script: "oidc_issuer.py", arguments: [flag, "--interval", "1", "--auto-after", "1"], in: scratch)
        let user = RemoteUser("login-end", issuer: issuer.baseURL)
        let login = try user.kontext(["login", "--device"])
        #expect(login.status == 3)
        #expect(login.stderr.contains("kontext: \(message)"), "\(login.stderr)")
        #expect(try user.storedLogin() == nil)
    }

    @Test func remoteCommandsWithoutALoginSayWhatToDo() throws {
        let scratch = TestSupport.makeTemporaryDirectory("nologin")
        let issuer = try deviceIssuer(scratch)
        let user = RemoteUser("nologin", issuer: issuer.baseURL)
        user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\n")
        let run = try user.kontext(["run", "--", "touch", "ran"])
        #expect(run.status == 3)
        #expect(run.stderr.hasPrefix("kontext: not logged in to \(issuer.baseURL)\nhint: run `kontext login`"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: user.sandbox.workingDirectory.appendingPathComponent("ran").path))
    }
}

@Suite(.enabled(if: TestSupport.hasSessionBus, "needs a Secret Service: run scripts/test"))
struct RemoteRunTests {
    struct Fixture {
        let user: RemoteUser
        let issuer: LoopbackServer
        let sts: LoopbackServer
        let credential: String
        let teamCredential: String
    }

    /// A logged-in user, an issuer and a third-party STS that checks subject tokens at the
    /// issuer's userinfo endpoint and requires client authentication.
    func fixture(_ label: String, sts stsArguments: [String] = []) throws -> Fixture {
        let scratch = TestSupport.makeTemporaryDirectory(label)
        let issuer = try deviceIssuer(scratch)
        let credential = TestSupport.secret("\(label)-github")
        let teamCredential = TestSupport.secret("\(label)-linear")
        let sts = try LoopbackServer(script: "sts_server.py", arguments: [
            "--credentials-env", "STS_CREDENTIALS", "--userinfo-url", issuer.baseURL + "/userinfo", "--cache-seconds", "0",
            "--client-secret-env", "STS_CLIENT_SECRET", "--client-id", "kontext-test",
        ] + stsArguments, environment: [
            "STS_CREDENTIALS": #"{"github":"\#(credential)","linear/team-a":"\#(teamCredential)"}"#,
            "STS_CLIENT_SECRET": TestSupport.secret("client"),
        ], in: scratch)
        let user = RemoteUser(label, issuer: issuer.baseURL, extra: [
            "KONTEXT_TOKEN_ENDPOINT": sts.baseURL + "/token", "KONTEXT_CLIENT_SECRET": TestSupport.secret("client"),
        ])
        let login = try user.kontext(["login", "--device"])
        #expect(login.status == 0, "\(login.stderr)")
        return Fixture(user: user, issuer: issuer, sts: sts, credential: credential, teamCredential: teamCredential)
    }

    /// Runs a child that records only hashes of what it received.
    func runHashing(_ user: RemoteUser, extra: [String: String] = [:]) throws -> (ProcessResult, String?) {
        let result = try user.kontext(["run", "--verbose", "--", "sh", "-c",
                                       #"printf '%s|%s' "$GITHUB_TOKEN" "$TEAM_KEY" | sha256sum > hashes"#], extra: extra)
        let hashes = try? String(contentsOf: user.sandbox.workingDirectory.appendingPathComponent("hashes"), encoding: .utf8)
        try? FileManager.default.removeItem(at: user.sandbox.workingDirectory.appendingPathComponent("hashes"))
        return (result, hashes.map { String($0.prefix(64)) })
    }

    @Test func placeholdersResolveThroughAThirdPartySTS() throws {
        let f = try fixture("remote-run")
        f.user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\nTEAM_KEY=\"<<kontext:linear/team-a>>\"\n")
        let (result, hashes) = try runHashing(f.user)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(hashes == (try sha256Hex("\(f.credential)|\(f.teamCredential)")))
        let requests = try #require(try f.sts.getJSON("/control/requests") as? [[String: Any]])
        #expect(requests.count == 2)
        for request in requests {
            #expect(request["subject_token_type"] as? String == "urn:ietf:params:oauth:token-type:access_token")
            #expect(request["requested_token_type"] as? String == "urn:ietf:params:oauth:token-type:access_token")
            #expect(request["basic_auth"] as? Bool == true, "client_secret_basic with KONTEXT_CLIENT_SECRET")
            #expect(request["outcome"] as? String == "ok")
        }
        #expect(Set(requests.compactMap { $0["resource"] as? String }) == ["github", "linear/team-a"])
        #expect(Set(requests.compactMap { $0["audience"] as? String }) == ["github", "linear"])
        f.user.expectNoTokens(try f.user.storedTokens() + [f.credential, f.teamCredential, TestSupport.secret("client")])
    }

    /// SPEC section 11's fresh credentials through the CLI in remote mode: the STS says each
    /// credential lives 5 s (and numbers them); `run --proxy`'s child makes two requests 10 s
    /// apart, and the proxy exchanges the placeholder again (RFC 8693, the same path as at
    /// launch) before the second, so each carries its own credential and both succeed.
    @Test func theProxyExchangesAgainACredentialAboutToExpire() throws {
        let f = try fixture("remote-proxy-renew", sts: ["--expires-in", "5", "--serial"])
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let config = f.user.sandbox.home.appendingPathComponent(".config/kontext")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        try "[[service]]\nname = \"github\"\nhosts = [\"api.github.localhost\"]\n"
            .write(to: config.appendingPathComponent("hosts.toml"), atomically: true, encoding: .utf8)
        f.user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\n")
        let url = "https://api.github.localhost:\(upstream.port)/user"
        let script = "curl -sS -H \"Authorization: Bearer $GITHUB_TOKEN\" \(url); echo; sleep 10; curl -sS -H \"Authorization: Bearer $GITHUB_TOKEN\" \(url)"
        let result = try f.user.kontext(["run", "--proxy", "--", "sh", "-c", script], extra: ["KONTEXT_CA_BUNDLE": ca.caFile])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "{\"ok\": true}\n{\"ok\": true}", "\(result.stdout) \(result.stderr)")
        let sent = upstream.requests().map { $0["authorization_sha256"] as? String }
        #expect(sent == [try sha256Hex("Bearer \(f.credential)-1"), try sha256Hex("Bearer \(f.credential)-2")])
        let exchanges = try #require(try f.sts.getJSON("/control/requests") as? [[String: Any]])
        #expect(exchanges.map { $0["outcome"] as? String } == ["ok", "ok"])
        f.user.expectNoTokens(try f.user.storedTokens() + [f.credential, "\(f.credential)-1", "\(f.credential)-2"])
    }

    @Test(arguments: [
        ("nope", "unknown service 'nope'"),
        ("unconnected", "'unconnected' is not connected for you: the user has not connected the provider 'unconnected'; connect it at https://example.test/connect/unconnected"),
        ("boom", "failed with HTTP 500; try again later"),
        ("garbage", "sent an answer kontext cannot read (not a JSON object)"),
        ("down", "cannot reach the token service at http://127.0.0.1:"),
    ])
    func everyErrorClassSaysWhatToDo(service: String, message: String) throws {
        let f = try fixture("remote-\(service)")
        f.user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\nOTHER=<<kontext:\(service)>>\n")
        var extra: [String: String] = [:]
        if service == "down" { extra["KONTEXT_TOKEN_ENDPOINT"] = "http://127.0.0.1:\(unusedLoopbackPort())/token" }
        let result = try f.user.kontext(["run", "--", "touch", "ran"], extra: extra)
        #expect(result.status == 4, "\(result.stderr)")
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("kontext: could not resolve") == true, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: f.user.sandbox.workingDirectory.appendingPathComponent("ran").path),
                "nothing is launched")
        f.user.expectNoTokens(try f.user.storedTokens() + [f.credential])
    }

    @Test func anExpiredSubjectTokenIsRenewedOnceAndRetried() throws {
        let f = try fixture("remote-expired")
        f.user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\nTEAM_KEY=<<kontext:linear/team-a>>\n")
        let before = try f.user.storedTokens()
        #expect(try runHashing(f.user).0.status == 0)
        // The STS now treats the token it has seen as expired, though the issuer would not.
        try f.sts.post("/control/expire-subjects")
        let (result, hashes) = try runHashing(f.user)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(hashes == (try sha256Hex("\(f.credential)|\(f.teamCredential)")))
        #expect(result.stderr.contains("renewing it once"), "\(result.stderr)")
        let requests = try #require(try f.sts.getJSON("/control/requests") as? [[String: Any]])
        #expect(requests.map { $0["outcome"] as? String } == ["ok", "ok", "invalid_grant", "invalid_grant", "ok", "ok"])
        #expect(Set(requests.compactMap { $0["subject_sha256"] as? String }).count == 2, "retried with a new token")
        let after = try f.user.storedTokens()
        #expect(after.count == 2 && after != before, "the renewed login is stored")
        f.user.expectNoTokens(before + after + [f.credential, f.teamCredential])
    }

    /// A self-hosted token service behind a private CA: trusted only with KONTEXT_CA_BUNDLE,
    /// which adds to the system's CAs rather than replacing them.
    @Test func aPrivateCAIsTrustedThroughTheCABundle() throws {
        let scratch = TestSupport.makeTemporaryDirectory("tls")
        func openssl(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.currentDirectoryURL = scratch
            let result = try runProcess(process, stdin: nil, timeout: 60)
            #expect(result.status == 0, "openssl \(arguments.joined(separator: " ")): \(result.stderr)")
        }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                     "-subj", "/CN=kontext test CA"])
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"])
        try "subjectAltName=IP:127.0.0.1\n".write(to: scratch.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", "server.pem", "-days", "2", "-extfile", "san.ext"])
        let issuer = try deviceIssuer(scratch)
        let credential = TestSupport.secret("tls-github")
        let sts = try LoopbackServer(script: "sts_server.py", arguments: [
            "--credentials-env", "STS_CREDENTIALS", "--tls-cert", scratch.appendingPathComponent("server.pem").path,
            "--tls-key", scratch.appendingPathComponent("server.key").path,
        ], environment: ["STS_CREDENTIALS": #"{"github":"\#(credential)"}"#], in: scratch)
        let user = RemoteUser("remote-tls", issuer: issuer.baseURL,
                              extra: ["KONTEXT_TOKEN_ENDPOINT": "https://127.0.0.1:\(sts.port)/token"])
        #expect(try user.kontext(["login", "--device"]).status == 0)
        user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\n")

        let untrusted = try user.kontext(["run", "--", "touch", "ran"])
        #expect(untrusted.status == 4, "\(untrusted.stderr)")
        #expect(untrusted.stderr.contains("cannot reach the token service at https://127.0.0.1:\(sts.port)/token"), "\(untrusted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: user.sandbox.workingDirectory.appendingPathComponent("ran").path))

        let trusted = try user.kontext(["run", "--", "sh", "-c", #"printf %s "$GITHUB_TOKEN" | sha256sum > hash"#],
                                       extra: ["KONTEXT_CA_BUNDLE": scratch.appendingPathComponent("ca.pem").path])
        #expect(trusted.status == 0, "\(trusted.stderr)")
        let hash = try String(contentsOf: user.sandbox.workingDirectory.appendingPathComponent("hash"), encoding: .utf8)
        #expect(hash.prefix(64) == (try sha256Hex(credential)).prefix(64))
        user.expectNoTokens(try user.storedTokens() + [credential])
    }

    @Test func aLoginThatCannotBeRenewedIsExitThree() throws {
        let f = try fixture("remote-revoked")
        f.user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\n")
        let tokens = try f.user.storedTokens()
        let refresh = try #require(try f.user.storedLogin()?["refresh_token"] as? String)
        try f.issuer.post("/revoke", form: ["token": refresh, "token_type_hint": "refresh_token", "client_id": "kontext-test"])
        try f.sts.post("/control/expire-subjects")
        let result = try f.user.kontext(["run", "--", "touch", "ran"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("kontext: the token service refused your login, and renewing it failed: your login to \(f.issuer.baseURL) has expired or was revoked"),
                "\(result.stderr)")
        #expect(result.stderr.contains("hint: run `kontext login`"))
        #expect(!FileManager.default.fileExists(atPath: f.user.sandbox.workingDirectory.appendingPathComponent("ran").path))
        f.user.expectNoTokens(tokens + [f.credential])
    }
}

@Suite(.enabled(if: TestSupport.hasSessionBus, "needs a Secret Service: run scripts/test"))
struct AuditShippingTests {
    /// Each session is shipped only to the audit backend and identity it was recorded under:
    /// a local-mode session never leaves the machine, and a remote session's backlog goes
    /// neither to a backend configured later nor with another login.
    @Test func sessionsShipOnlyWhereTheyWereRecorded() throws {
        let scratch = TestSupport.makeTemporaryDirectory("shipping-bound")
        let issuer = try deviceIssuer(scratch)
        let otherIssuer = try deviceIssuer(scratch, subject: "carol")
        let backendA = try LoopbackServer(script: "audit_backend.py", arguments: [], in: scratch)
        let backendB = try LoopbackServer(script: "audit_backend.py", arguments: [], in: scratch)
        var user = RemoteUser("shipping-bound", issuer: issuer.baseURL)
        let runtime = user.sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let sessionEnvironment = ["KONTEXT_HOOK": TestSupport.kontextPath, "XDG_RUNTIME_DIR": runtime.path]
        user.sandbox.write("agent.sh", """
            for word in one two three; do
              printf '{"tool_name":"Bash","tool_input":{"command":"echo %s"}}' "$word" | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null || exit 9
            done
            """)
        func received(_ backend: LoopbackServer) throws -> (events: [[String: Any]], sessions: [String: Any]) {
            let state = try #require(try backend.getJSON("/control/events") as? [String: Any])
            return (state["events"] as? [[String: Any]] ?? [], state["sessions"] as? [String: Any] ?? [:])
        }

        // A local-mode session (no issuer), then an audit backend and a login appear.
        let local = try user.sandbox.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"], environment: sessionEnvironment)
        #expect(local.status == 0, "\(local.stderr)")
        #expect(try user.kontext(["login", "--device"], extra: ["KONTEXT_AUDIT_URL": backendA.baseURL]).status == 0)
        #expect(try user.kontext(["whoami"], extra: ["KONTEXT_AUDIT_URL": backendA.baseURL]).status == 0)
        let afterLocal = try received(backendA)
        #expect(afterLocal.events.isEmpty && afterLocal.sessions.isEmpty, "a local-mode session was shipped: \(afterLocal.sessions.keys)")

        // A remote session recorded for backend A while it is down.
        user.environment.merge(sessionEnvironment) { $1 }
        backendA.stop()
        let remote = try user.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"], extra: ["KONTEXT_AUDIT_URL": backendA.baseURL])
        #expect(remote.status == 0, "\(remote.stderr)")
        // Backend B configured instead: it gets nothing of A's backlog.
        #expect(try user.kontext(["whoami"], extra: ["KONTEXT_AUDIT_URL": backendB.baseURL]).status == 0)
        let atB = try received(backendB)
        #expect(atB.events.isEmpty && atB.sessions.isEmpty, "backend A's session went to backend B")
        // Backend A again, but logged in as someone else (another issuer): nothing either.
        try backendA.restart()
        let carol = ["KONTEXT_AUDIT_URL": backendA.baseURL, "KONTEXT_ISSUER_URL": otherIssuer.baseURL]
        #expect(try user.kontext(["login", "--device"], extra: carol).status == 0)
        #expect(try user.kontext(["whoami"], extra: carol).status == 0)
        let asCarol = try received(backendA)
        #expect(asCarol.events.isEmpty && asCarol.sessions.isEmpty, "bob's session was shipped with carol's login")

        // The identity and backend it was recorded under: exactly that session arrives.
        #expect(try user.kontext(["whoami"], extra: ["KONTEXT_AUDIT_URL": backendA.baseURL]).status == 0)
        let atA = try received(backendA)
        // Its three calls and its final checkpoint.
        #expect(atA.events.count == 4, "\(atA.events.count) events at backend A")
        #expect(atA.sessions.count == 1)
        #expect(atA.events.allSatisfy { ($0["actor"] as? [String: Any])?["sub"] as? String == "bob" })
        #expect(Set(atA.events.compactMap { $0["session_id"] as? String }) == Set(atA.sessions.keys))
        user.expectNoTokens(try user.storedTokens())
    }

    /// One session whose backend is down for its first half and back for the second, then
    /// a session killed with kill -9 while the backend is down again: every event reaches
    /// the backend exactly once (after de-duplication), the last ones via the next command.
    @Test func everyEventArrivesOnceAcrossOutagesAndKillNine() throws {
        let scratch = TestSupport.makeTemporaryDirectory("shipping")
        let issuer = try deviceIssuer(scratch)
        let backend = try LoopbackServer(script: "audit_backend.py", arguments: [
            "--store", scratch.appendingPathComponent("backend.jsonl").path, "--userinfo-url", issuer.baseURL + "/userinfo",
        ], in: scratch)
        backend.stop()  // down from the start
        var user = RemoteUser("shipping", issuer: issuer.baseURL, extra: ["KONTEXT_AUDIT_URL": backend.baseURL])
        #expect(try user.kontext(["login", "--device"]).status == 0)
        let runtime = user.sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        user.environment["KONTEXT_HOOK"] = TestSupport.kontextPath
        user.environment["XDG_RUNTIME_DIR"] = runtime.path
        let hookCalls = { (from: Int, to: Int) in
            """
            i=\(from)
            while [ $i -lt \(to) ]; do
              printf '{"tool_name":"Bash","tool_input":{"command":"echo %s"}}' "$i" | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null || exit 9
              i=$((i+1))
            done
            """
        }
        // Session 1: 15 events while the backend is down, then 15 after it is back.
        user.sandbox.write("agent1.sh", hookCalls(0, 15) + "\ntouch half\nwhile [ ! -f resume ]; do sleep 0.1; done\n" + hookCalls(15, 30))
        let session = Process()
        session.executableURL = URL(fileURLWithPath: TestSupport.kontextPath)
        session.arguments = ["start", "--agent-command", "/bin/sh", "--", "agent1.sh"]
        session.currentDirectoryURL = user.sandbox.workingDirectory
        session.environment = user.sandbox.environment.merging(user.environment) { $1 }
        let sessionOutput = user.sandbox.root.appendingPathComponent("session1.err")
        FileManager.default.createFile(atPath: sessionOutput.path, contents: nil)
        session.standardError = try FileHandle(forWritingTo: sessionOutput)
        session.standardOutput = FileHandle.nullDevice
        try session.run()
        let half = user.sandbox.workingDirectory.appendingPathComponent("half")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: half.path), Date() < deadline, session.isRunning { usleep(50_000) }
        #expect(FileManager.default.fileExists(atPath: half.path))
        let pendingWhileDown = try user.kontext(["audit", "sessions"])
        #expect(pendingWhileDown.stderr.contains("not yet sent to \(backend.baseURL)"), "\(pendingWhileDown.stderr)")
        try backend.restart()
        FileManager.default.createFile(atPath: user.sandbox.workingDirectory.appendingPathComponent("resume").path, contents: nil)
        session.waitUntilExit()
        #expect(session.terminationStatus == 0, "\((try? String(contentsOf: sessionOutput, encoding: .utf8)) ?? "")")
        user.outputs.texts.append((try? String(contentsOf: sessionOutput, encoding: .utf8)) ?? "")

        // Session 2: the backend goes down again and kontext is killed before it can send.
        backend.stop()
        user.sandbox.write("agent2.sh", hookCalls(100, 110) + "\nkill -KILL $PPID\nsleep 1\n")
        let killed = try user.kontext(["start", "--agent-command", "/bin/sh", "--", "agent2.sh"])
        #expect(killed.status == 128 + 9)
        try backend.restart()
        // Any command sends what is left.
        #expect(try user.kontext(["whoami"]).status == 0)

        // 40 calls, and the final checkpoint of the session that ended (the killed one has none).
        let local = try exportedEvents(user.sandbox, environment: user.environment)
        #expect(local.count == 41)
        #expect(local.filter { $0["event"] as? String == "checkpoint" }.count == 1)
        let received = try #require(try backend.getJSON("/control/events") as? [String: Any])
        let events = try #require(received["events"] as? [[String: Any]])
        #expect(events.count == 41, "every event arrived once after de-duplication")
        #expect(Set(events.compactMap { $0["id"] as? String }) == Set(local.compactMap { $0["id"] as? String }))
        for event in events {
            #expect(Set(event.keys) == specEventKeys)
            #expect((event["actor"] as? [String: Any])?["sub"] as? String == "bob", "attributed to the logged-in user")
        }
        let sessions = try #require(received["sessions"] as? [String: Any])
        #expect(sessions.count == 2, "both sessions were created at the backend")
        let ended = sessions.values.compactMap { ($0 as? [String: Any])?["ended"] as? [String: Any] }
        #expect(ended.count == 1 && ended.first?["exit_code"] as? Int == 0, "the first session's end was sent: \(sessions)")
        let after = try user.kontext(["audit", "sessions"])
        #expect(after.stderr.contains("every event has been sent"), "\(after.stderr)")
        user.expectNoTokens(try user.storedTokens())
    }
}

/// Remote-mode checks that need no keyring.
@Suite struct RemoteModeTests {
    /// A discovery document is the issuer's word, fetched over the network: its endpoints get
    /// the same transport check as the settings.
    @Test func aDiscoveryDocumentNamingPlainHTTPElsewhereIsRefused() throws {
        let scratch = TestSupport.makeTemporaryDirectory("discovery-http")
        let issuer = try deviceIssuer(scratch, extra: ["--advertise-token-endpoint", "http://sts.example.com/token"])
        let user = RemoteUser("discovery-http", issuer: issuer.baseURL, extra: ["KONTEXT_KEYRING": "file"])
        let login = try user.kontext(["login", "--device"])
        #expect(login.status == 2, "\(login.stderr)")
        let line = login.stderr.split(separator: "\n").first { !$0.contains("KONTEXT_KEYRING") }.map(String.init) ?? ""
        #expect(line.contains("token_endpoint http://sts.example.com/token"), "\(login.stderr)")
        #expect(line.contains("KONTEXT_ALLOW_HTTP=1"), "\(login.stderr)")
        #expect(!login.stdout.contains("device"), "the device flow must not start: \(login.stdout)")
    }
}
