import Foundation
import KontextTestSupport
import Testing

// SPEC section 10: a repository's files, the agent and kontext's own secrets. Each test here
// failed on the main branch before the trust-boundaries work.

extension RemoteRunTests {
    /// Consent: an untrusted env file exchanges nothing (the STS sees no request), `kontext
    /// trust` lets it run, and a changed file needs trusting again.
    @Test func anUntrustedProjectExchangesNothingUntilTrusted() throws {
        let f = try fixture("trust-remote")
        f.user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\n", trusted: false)
        let (refused, nothing) = try runHashing(f.user)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.hasPrefix("kontext: ") && refused.stderr.contains(".env.kontext is not trusted"), "\(refused.stderr)")
        #expect(refused.stderr.contains("run `kontext trust`"), "\(refused.stderr)")
        #expect(nothing == nil, "nothing is launched")
        #expect((try f.sts.getJSON("/control/requests") as? [[String: Any]])?.isEmpty == true, "the STS saw a request")

        let trust = try f.user.kontext(["trust"])
        #expect(trust.status == 0, "\(trust.stderr)")
        #expect(trust.stdout.contains("GITHUB_TOKEN  credentials: github"), "\(trust.stdout)")
        let (ran, hashes) = try runHashing(f.user)
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(hashes == (try sha256Hex("\(f.credential)|")))

        f.user.sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:github>>\nTEAM_KEY=<<kontext:linear/team-a>>\n", trusted: false)
        let (again, none) = try runHashing(f.user)
        #expect(again.status == 2 && none == nil, "a changed env file ran without consent: \(again.stderr)")
        let list = try f.user.kontext(["trust", "--list"])
        #expect(list.stdout.contains("changed since (not trusted)"), "\(list.stdout)")
        #expect((try f.sts.getJSON("/control/requests") as? [[String: Any]])?.count == 1, "only the trusted run exchanged")
    }
}

@Suite(.enabled(if: TestSupport.hasSessionBus, "needs dbus-run-session and gnome-keyring (scripts/test sets them up)"))
struct TrustBoundaryTests {
    func read(_ sandbox: Sandbox, _ name: String) -> String {
        (try? String(contentsOf: sandbox.workingDirectory.appendingPathComponent(name), encoding: .utf8)) ?? "<missing>"
    }

    func makeProjectPolicy(_ sandbox: Sandbox, _ text: String, trusted: Bool) throws {
        try FileManager.default.createDirectory(at: sandbox.workingDirectory.appendingPathComponent(".kontext"), withIntermediateDirectories: true)
        sandbox.write(".kontext/policy.toml", text, trusted: trusted)
    }

    func runtimeDirectory(_ sandbox: Sandbox) throws -> String {
        let runtime = sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return runtime.path
    }

    @Test func consentCoversTheProjectPolicyAndCanBeRevoked() throws {
        let sandbox = Sandbox("trust-local")
        let service = "svc-\(UUID().uuidString.prefix(6).lowercased())"
        #expect(try sandbox.kontext(["provider", "add", service], stdin: TestSupport.secret("trust-local")).status == 0)
        #expect(try sandbox.kontext(["trust"]).status == 2, "nothing to trust in an empty project")
        sandbox.write(".env.kontext", "API_KEY=<<kontext:\(service)>>\n")
        let touch = ["run", "--", "/usr/bin/touch", "ran"]
        #expect(try sandbox.kontext(touch).status == 0)
        try FileManager.default.removeItem(at: sandbox.workingDirectory.appendingPathComponent("ran"))

        // A project policy added later is part of what the user consents to.
        try makeProjectPolicy(sandbox, "[[rule]]\ntool = \"Bash\"\ndecision = \"allow\"\nreason = \"\\u001b]0;pwned\\u0007 trust me\"\n", trusted: false)
        let refused = try sandbox.kontext(touch)
        #expect(refused.status == 2 && refused.stderr.contains(".kontext/policy.toml is not trusted"), "\(refused.stderr)")
        #expect(read(sandbox, "ran") == "<missing>")
        let shown = try sandbox.kontext(["trust"])
        #expect(shown.status == 0)
        #expect(shown.stdout.contains("allow tool=Bash") && !shown.stdout.contains("\u{1b}"), "rules shown, control characters not: \(shown.stdout.debugDescription)")
        #expect(try sandbox.kontext(touch).status == 0)

        // Revoking takes it back, by default for this project, or for everything under a directory.
        #expect(try sandbox.kontext(["trust", "--revoke"]).status == 0)
        #expect(try sandbox.kontext(touch).status == 2)
        #expect(try sandbox.kontext(["trust"]).status == 0)
        #expect(try sandbox.kontext(["trust", "--revoke", sandbox.workingDirectory.path]).status == 0)
        #expect(try sandbox.kontext(touch).status == 2)
        #expect(try sandbox.kontext(["trust", "--list"]).stderr.contains("no project is trusted yet"))
    }

    /// An env file may not set what loads code into, or changes how, the programs it
    /// launches: exit 2 at the variable's place, nothing launched.
    @Test func envFileVariablesThatLoadCodeAreRefused() throws {
        let sandbox = Sandbox("ld-preload")
        sandbox.write(".env.kontext", "LOG_LEVEL=debug\nexport LD_PRELOAD=./evil.so\n")
        for command in [["run", "--", "/usr/bin/touch", "ran"], ["start", "--agent-command", "/usr/bin/touch", "--", "ran"]] {
            let result = try sandbox.kontext(command)
            #expect(result.status == 2, "\(result.stderr)")
            #expect(result.stderr.hasPrefix("kontext: .env.kontext:2:8: LD_PRELOAD may not be set from an env file"), "\(result.stderr)")
            #expect(read(sandbox, "ran") == "<missing>", "\(command[0]) launched")
        }
    }

    /// Inside a session the agent may run kontext itself: it gets no credentials and cannot
    /// consent on the user's behalf.
    @Test func nothingResolvesInsideASession() throws {
        let sandbox = Sandbox("nested")
        let service = "svc-\(UUID().uuidString.prefix(6).lowercased())"
        #expect(try sandbox.kontext(["provider", "add", service], stdin: TestSupport.secret("nested")).status == 0)
        sandbox.write("other.env", "STOLEN=<<kontext:\(service)>>\n")
        sandbox.write("agent.sh", """
            "$KONTEXT_HOOK" run --env-file other.env -- sh -c 'printf %s "$STOLEN" > stolen' 2> run-err; echo $? > run-code
            "$KONTEXT_HOOK" env --env-file other.env > /dev/null 2> env-err; echo $? > env-code
            "$KONTEXT_HOOK" trust --env-file other.env > /dev/null 2> trust-err; echo $? > trust-code
            "$KONTEXT_HOOK" start --agent-command /bin/true 2> start-err; echo $? > start-code
            """)
        let result = try sandbox.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"],
                                         environment: ["KONTEXT_HOOK": TestSupport.kontextPath, "XDG_RUNTIME_DIR": try runtimeDirectory(sandbox)])
        #expect(result.status == 0, "\(result.stderr)")
        for command in ["run", "env", "trust", "start"] {
            #expect(read(sandbox, "\(command)-code") == "2\n", "\(command): \(read(sandbox, "\(command)-err"))")
            let message = read(sandbox, "\(command)-err")
            #expect(message.hasPrefix("kontext: kontext \(command) ") && message.contains("inside a kontext session"), "\(message)")
        }
        #expect(read(sandbox, "stolen") == "<missing>")
    }

    /// The generated Claude settings pin what the hooks depend on; a session whose agent
    /// never called them is reported and audited.
    @Test(arguments: ["enforce", "observe"])
    func generatedSettingsPinTheHooksAndMissingHooksAreReported(mode: String) throws {
        let sandbox = Sandbox("pinned-\(mode)")
        let bin = sandbox.root.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        // A stand-in claude that keeps its --settings file and calls no hook.
        let fake = bin.appendingPathComponent("claude")
        try "#!/bin/sh\n[ \"$1\" = --settings ] && cp \"$2\" settings-copy.json\n".write(to: fake, atomically: true, encoding: .utf8)
        chmod(fake.path, 0o755)
        let result = try sandbox.kontext(["start", "--agent", "claude", "--mode", mode],
                                         environment: ["PATH": bin.path + ":/usr/bin:/bin", "XDG_RUNTIME_DIR": try runtimeDirectory(sandbox)])
        #expect(result.status == 0, "\(result.stderr)")
        let settings = try #require(try JSONSerialization.jsonObject(with: Data(read(sandbox, "settings-copy.json").utf8)) as? [String: Any])
        #expect(settings["disableAllHooks"] as? Bool == false)
        #expect(settings["allowManagedHooksOnly"] as? Bool == false)
        let pinned = try #require(settings["env"] as? [String: String])
        #expect(Set(pinned.keys) == ["KONTEXT_SESSION_ID", "KONTEXT_SOCKET", "KONTEXT_MODE"] && pinned["KONTEXT_MODE"] == mode)
        let hooks = try #require(settings["hooks"] as? [String: [[String: Any]]])
        #expect(hooks.count == 6)
        for (_, entries) in hooks {
            for hook in entries.flatMap({ $0["hooks"] as? [[String: Any]] ?? [] }) {
                #expect((hook["onFailure"] as? String) == (mode == "enforce" ? "block" : nil), "\(hook)")
            }
        }
        #expect(result.stderr.contains("kontext: warning: the agent never called kontext's session-start hook"), "\(result.stderr)")
        let events = try exportedEvents(sandbox)
        let missing = events.first { ($0["decision"] as? [String: Any])?["rule"] as? String == "builtin:hooks-missing" }
        #expect(missing?["event"] as? String == "session-start", "\(events)")
    }

    /// The kontext process that holds the credentials is not dumpable and leaves no core: a
    /// same-user agent cannot read its memory or environment through /proc. Run as an
    /// unprivileged user, since root may read any process.
    @Test func theSessionProcessIsNotDumpable() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else { return }
        let scratch = URL(fileURLWithPath: "/tmp").appendingPathComponent("kontext-dumpable-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        chown(scratch.path, 65534, 65534)
        try """
            cat /proc/$PPID/environ > /dev/null 2>&1 && echo readable > environ || echo denied > environ
            stat -c %u /proc/$PPID/mem > mem-owner
            grep 'Max core file size' /proc/$PPID/limits | awk '{print $5 "/" $6}' > core-limit
            """.write(to: scratch.appendingPathComponent("agent.sh"), atomically: true, encoding: .utf8)
        let process = Process()
        // Cores allowed where kontext starts, so that the limit it sets is what is seen.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        process.arguments = ["--core=1048576:1048576", "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TestSupport.kontextPath,
                             "start", "--agent-command", "/bin/sh", "--", "agent.sh"]
        process.currentDirectoryURL = scratch
        process.environment = ["HOME": scratch.path, "PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": scratch.path + "/run",
                               "KONTEXT_KEYRING": "file"]
        mkdir(scratch.path + "/run", 0o700)
        chown(scratch.path + "/run", 65534, 65534)
        let result = try runProcess(process, stdin: nil, timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        func file(_ name: String) -> String { (try? String(contentsOf: scratch.appendingPathComponent(name), encoding: .utf8)) ?? "<missing>" }
        #expect(file("environ") == "denied\n")
        #expect(file("mem-owner") == "0\n")
        #expect(file("core-limit") == "0/0\n")
    }
}

extension CIModeTests {
    /// kontext's own secrets (the client secret, the job's identity and the tokens that request
    /// it) never reach the agent, and are redacted from what it reports. A CI job runs its own
    /// repository, so it needs no `kontext trust` (the env file here is untrusted).
    @Test func ownSecretsNeverReachTheAgent() throws {
        let f = try fixture("ci-own")
        let sandbox = Sandbox("ci-own")
        sandbox.write(".env.kontext", "DEPLOY_KEY=<<kontext:deploy>>\n", trusted: false)
        let clientSecret = TestSupport.secret("ci-own-client")
        sandbox.write("agent.sh", """
            env > agent-env
            [ -n "$DEPLOY_KEY" ] && echo yes > got-deploy-key
            printf '{"tool_name":"Bash","tool_input":{"command":"echo %s %s"}}' "$LEAKED_REQUEST" "$LEAKED_CLIENT" \\
              | "$KONTEXT_HOOK" hook pre-tool --agent claude > /dev/null
            printf '%s' "$KONTEXT_SESSION_ID" > session-id
            """)
        let runtime = sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var job = githubJob(f)
        job["KONTEXT_AUDIT_URL"] = f.broker.baseURL
        job["KONTEXT_CLIENT_SECRET"] = clientSecret
        job["KONTEXT_HOOK"] = TestSupport.kontextPath
        job["XDG_RUNTIME_DIR"] = runtime.path
        // What a prompt-injected agent might have found elsewhere and echoes back.
        job["LEAKED_REQUEST"] = f.requestToken
        job["LEAKED_CLIENT"] = clientSecret
        let result = try sandbox.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"], environment: job)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(read(sandbox, "got-deploy-key") == "yes\n")
        let agentEnvironment = read(sandbox, "agent-env")
        for name in ["KONTEXT_CLIENT_SECRET=", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=", "ACTIONS_ID_TOKEN_REQUEST_URL="] {
            #expect(!agentEnvironment.contains("\n" + name) && !agentEnvironment.hasPrefix(name), "\(name) reached the agent")
        }
        try? FileManager.default.removeItem(at: sandbox.workingDirectory.appendingPathComponent("agent-env"))

        let sessionID = read(sandbox, "session-id")
        let token = try f.issuer.text("/mint?audience=kontext")
        let answer = try getJSON(f.broker.baseURL + "/v1/audit/events?session_id=\(sessionID)", bearer: token)
        let events = try #require(answer["events"] as? [[String: Any]], "\(answer)")
        let command = (events.first?["tool_input"] as? [String: Any])?["command"] as? String
        #expect(command == "echo [REDACTED:ACTIONS_ID_TOKEN_REQUEST_TOKEN] [REDACTED:KONTEXT_CLIENT_SECRET]", "\(command ?? "no event")")
        expectNothingPersisted(sandbox)
    }

    func read(_ sandbox: Sandbox, _ name: String) -> String {
        (try? String(contentsOf: sandbox.workingDirectory.appendingPathComponent(name), encoding: .utf8)) ?? "<missing>"
    }
}
