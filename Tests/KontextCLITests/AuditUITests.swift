import Foundation
import KontextTestSupport
import Testing

/// Debian's chromium, headless.
enum Chromium {
    static var binary: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// `kontext audit ui` (SPEC section 12) in a real headless browser: the session list, a
/// session's timeline with the denied call and its rule, the filter, the token, no secret.
@Suite(.enabled(if: TestSupport.hasSessionBus && Chromium.binary != nil, "needs a keyring and chromium: run scripts/test"))
struct AuditUITests {
    /// The DOM chromium built for `url` (and a screenshot of it).
    func render(_ url: String, in sandbox: Sandbox, screenshot: String? = nil) throws -> String {
        let profile = sandbox.root.appendingPathComponent("chromium-\(UUID().uuidString.prefix(8))").path
        var arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile)",
                         "--window-size=1400,1000"]
        arguments += screenshot.map { ["--screenshot=\($0)"] } ?? ["--dump-dom"]
        let result = try sandbox.run(Chromium.binary!, arguments + [url], timeout: 90)
        #expect(result.status == 0, "chromium: \(result.stderr.suffix(2000))")
        return result.stdout
    }

    func status(_ url: String, headers: [String] = [], in sandbox: Sandbox) throws -> String {
        let result = try sandbox.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}"] + headers.flatMap { ["-H", $0] } + [url])
        return result.stdout
    }

    /// Starts `kontext audit ui --no-browser` (plus `arguments`); returns the process, the
    /// URL it printed, and that URL's base and token.
    func startUI(_ arguments: [String] = [], in sandbox: Sandbox, environment: [String: String] = [:]) throws
        -> (ui: Process, url: String, base: String, token: String) {
        let ui = Process()
        ui.executableURL = URL(fileURLWithPath: TestSupport.kontextPath)
        ui.arguments = ["audit", "ui", "--no-browser"] + arguments
        ui.currentDirectoryURL = sandbox.workingDirectory
        ui.environment = sandbox.environment.merging(environment) { $1 }
        let out = Pipe()
        ui.standardOutput = out
        ui.standardError = FileHandle.nullDevice
        try ui.run()
        var line = ""
        let deadline = Date().addingTimeInterval(30)
        while !line.contains("\n"), Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += String(decoding: chunk, as: UTF8.self)
        }
        let url = line.trimmingCharacters(in: .whitespacesAndNewlines)
        let base = try #require(url.components(separatedBy: "/?token=").first, "\(url)")
        let token = try #require(url.components(separatedBy: "/?token=").last)
        #expect(url.hasPrefix("http://127.0.0.1:") && token.count == 64, "\(url)")
        return (ui, url, base, token)
    }

    @Test func thePageListsTheSessionShowsTheDenialFiltersAndKeepsOthersOut() throws {
        let sandbox = Sandbox("audit-ui")
        let runtime = sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let (service, secret) = try sandbox.guardedProject("audit-ui")
        // One call that would leak the token (recorded redacted), one harmless, one denied.
        sandbox.write("agent.sh", """
            hook() { printf '{"tool_name":"Bash","tool_input":{"command":"%s"}}' "$1" | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null; }
            hook "echo $GITHUB_TOKEN"
            hook "echo hello-from-the-agent"
            hook "touch notes.txt"
            printf '%s' "$KONTEXT_SESSION_ID" > session-id
            """)
        let run = try sandbox.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"],
                                      environment: ["KONTEXT_HOOK": TestSupport.kontextPath, "XDG_RUNTIME_DIR": runtime.path])
        #expect(run.status == 0, "\(run.stderr)")
        let session = try String(contentsOf: sandbox.workingDirectory.appendingPathComponent("session-id"), encoding: .utf8)

        let (ui, url, base, token) = try startUI(in: sandbox)
        defer {
            if ui.isRunning { ui.terminate() }
            ui.waitUntilExit()
        }

        let screenshot = sandbox.root.appendingPathComponent("sessions.png").path
        _ = try render(url, in: sandbox, screenshot: screenshot)
        let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
        #expect(png.count > 5000 && png.prefix(4) == Data([0x89, 0x50, 0x4e, 0x47]), "a PNG screenshot")
        let list = try render(url, in: sandbox)
        #expect(list.contains("data-session=\"\(session)\""), "\(list.prefix(3000))")
        #expect(list.contains("verified, sealed"), "the chain's state is shown")

        let timeline = try render("\(base)/sessions/\(session)?token=\(token)", in: sandbox)
        #expect(timeline.contains("<td class=\"decision deny\">deny (observe)</td><td class=\"rule\">project:no-writes</td>"),
                "\(timeline.prefix(6000))")
        #expect(timeline.contains("hello-from-the-agent") && timeline.contains("[REDACTED:\(service)]"))

        let denied = try render("\(base)/sessions/\(session)?token=\(token)&decision=deny", in: sandbox)
        #expect(denied.contains("touch notes.txt") && !denied.contains("hello-from-the-agent"), "\(denied.prefix(6000))")
        let searched = try render("\(base)/sessions/\(session)?token=\(token)&q=hello-from", in: sandbox)
        #expect(searched.contains("hello-from-the-agent") && !searched.contains("touch notes.txt"))

        // Without the token, with a wrong one, or through another host name: 403.
        #expect(try status("\(base)/", in: sandbox) == "403")
        #expect(try status("\(base)/sessions/\(session)", in: sandbox) == "403")
        #expect(try status("\(base)/?token=\(String(repeating: "0", count: 64))", in: sandbox) == "403")
        #expect(try status("\(base)/", headers: ["Cookie: kontext_audit_ui=\(token)"], in: sandbox) == "200")
        let port = base.components(separatedBy: ":").last ?? ""
        #expect(try status("\(base)/", headers: ["Cookie: kontext_audit_ui=\(token)", "Host: attacker.example:\(port)"], in: sandbox) == "403")

        for page in [list, timeline, denied, searched] {
            #expect(!page.contains(secret) && !page.contains(TestSupport.secretNonce), "a secret on the page")
        }
        ui.terminate()
        ui.waitUntilExit()
        #expect(ui.terminationStatus == 0 || ui.terminationReason == .uncaughtSignal)
    }

    /// `--remote`: the same page over a real broker's query API with the user's login: the
    /// shipped session, its call the organisation's policy denied, the broker-held credential
    /// the agent echoed only redacted.
    @Test func theRemotePageShowsAShippedSessionItsDenialAndNoSecret() throws {
        let scratch = TestSupport.makeTemporaryDirectory("audit-ui-remote")
        let issuer = try deviceIssuer(scratch, extra: ["--jwt-access-tokens"])
        let config = try organisationBrokerConfig(scratch, issuers: [issuer.baseURL], extra: """

            [[grant]]
            principals = ["user:*"]
            services = ["github"]
            """)
        let environment = brokerEnvironment()
        let database = "sqlite:" + scratch.appendingPathComponent("broker.db").path
        let secret = TestSupport.secret("audit-ui-remote")
        let add = Process()
        add.executableURL = TestSupport.productsDirectory.appendingPathComponent("kontext-cli")
        add.arguments = ["broker", "provider", "add", "github", "--config", config, "--db", database]
        add.environment = environment
        let added = try runProcess(add, stdin: secret + "\n", timeout: 60)
        #expect(added.status == 0, "\(added.stderr)")
        let broker = try ServedBroker(config: config, database: database, environment: environment,
                                      log: scratch.appendingPathComponent("broker.log"))
        let user = RemoteUser("audit-ui-remote", issuer: issuer.baseURL, extra: [
            "KONTEXT_AUDIT_URL": broker.baseURL, "KONTEXT_TOKEN_ENDPOINT": broker.baseURL + "/oauth2/token",
        ])
        #expect(try user.kontext(["login", "--device"]).status == 0)
        user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\n")
        let session = try remoteSession(user, commands: ["echo $GITHUB_TOKEN", "echo hello-from-the-agent", "./deploy prod --now"])

        let (ui, url, base, token) = try startUI(["--remote"], in: user.sandbox, environment: user.environment)
        defer {
            if ui.isRunning { ui.terminate() }
            ui.waitUntilExit()
        }
        let list = try render(url, in: user.sandbox)
        #expect(list.contains("data-session=\"\(session)\""), "\(list.prefix(3000))")
        #expect(list.contains("verified by the audit backend"), "\(list.prefix(3000))")
        let timeline = try render("\(base)/sessions/\(session)?token=\(token)", in: user.sandbox)
        #expect(timeline.contains("<td class=\"decision deny\">deny</td><td class=\"rule\">org:no-prod-deploy</td>"),
                "\(timeline.prefix(6000))")
        #expect(timeline.contains("hello-from-the-agent") && timeline.contains("[REDACTED:github]"), "\(timeline.prefix(6000))")
        #expect(try status("\(base)/", in: user.sandbox) == "403")
        for page in [list, timeline] {
            #expect(!page.contains(secret) && !page.contains(TestSupport.secretNonce), "a secret on the page")
        }
        user.expectNoTokens(try user.storedTokens())
    }
}
