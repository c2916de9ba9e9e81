import Foundation
import KontextAgent
import KontextTestSupport
import Testing

/// The real Codex CLI (from the openai-codex-cli-bin wheel; scripts/install-test-tools
/// --codex puts it on KONTEXT_CODEX_BIN) under `kontext start`, against a scripted
/// Responses API server.
enum CodexCLI {
    static var binary: String? { agentBinary("KONTEXT_CODEX_BIN") }
    static var available: Bool { binary != nil && TestSupport.hasSessionBus }
}

extension ScriptedModelServer {
    /// What each function call returned to the model, by call id (turn N's first call is
    /// `kxtN_call0`), from the conversation Codex sent back.
    func functionOutputs() throws -> [String: String] {
        var outputs: [String: String] = [:]
        for line in try String(contentsOf: log, encoding: .utf8).split(separator: "\n") {
            let entry = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let input = (entry?["body"] as? [String: Any])?["input"] as? [[String: Any]] ?? []
            for item in input where item["type"] as? String == "function_call_output" {
                if let id = item["call_id"] as? String, let output = item["output"] as? String { outputs[id] = output }
            }
        }
        return outputs
    }

}

@Suite(.enabled(if: CodexCLI.available, "needs the codex binary (KONTEXT_CODEX_BIN) and a keyring: run scripts/test"))
struct CodexEndToEndTests {
    struct Outcome {
        var sandbox: Sandbox
        var result: ProcessResult
        var events: [[String: Any]]
        var outputs: [String: String]
        var secret: String
        var marker: URL
    }

    /// Codex offline: the scripted server as a custom model provider, a home of its own, no
    /// sandbox or approvals of Codex's (so what stops a call is kontext's hook, nothing else).
    static func codexArguments(server: ScriptedModelServer, prompt: String) -> [String] {
        ["exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
         "-c", "model_provider=scripted",
         "-c", #"model_providers.scripted={name="scripted",base_url="http://127.0.0.1:\#(server.port)/v1",wire_api="responses",env_key="SCRIPTED_MODEL_API_KEY",request_max_retries=0,stream_max_retries=0}"#,
         "-m", "scripted-model", prompt]
    }

    static func codexEnvironment(_ sandbox: Sandbox) -> [String: String] {
        let directory = URL(fileURLWithPath: CodexCLI.binary!).deletingLastPathComponent().path
        return ["PATH": directory + ":" + (sandbox.environment["PATH"] ?? "/usr/bin:/bin"), "SCRIPTED_MODEL_API_KEY": "sk-kontext-test"]
    }

    /// A user's `~/.codex/config.toml` that would undo each thing kontext relies on: hooks
    /// off, kontext's pre-tool hook disabled, KEY/SECRET/TOKEN names filtered from the shell
    /// tool, shell snapshots on. kontext's `-c` overrides outrank it, without editing it.
    static let hostileUserConfig = """
        [features]
        hooks = false
        shell_snapshot = true

        [shell_environment_policy]
        ignore_default_excludes = false

        [hooks.state."/<session-flags>/config.toml:pre_tool_use:0:0"]
        enabled = false

        """

    /// One scenario, two modes: a shell call that uses the injected token by name (only its
    /// hash comes back) and checks that nothing under ~/.codex holds it, then a call the
    /// project policy denies.
    func runScenario(mode: String) throws -> Outcome {
        let sandbox = Sandbox("codex-\(mode)")
        let service = "github-\(UUID().uuidString.prefix(6).lowercased())"
        let secret = TestSupport.secret("codex-\(mode)")
        #expect(try sandbox.kontext(["provider", "add", service], stdin: secret).status == 0)
        sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:\(service)>>\nLOG_LEVEL=debug\n")
        try FileManager.default.createDirectory(at: sandbox.workingDirectory.appendingPathComponent(".kontext"), withIntermediateDirectories: true)
        sandbox.write(".kontext/policy.toml", """
            [[rule]]
            id = "no-writes"
            tool = "Bash"
            command = "touch *"
            decision = "deny"
            reason = "agents may not create files here"
            """)
        let codexHome = sandbox.home.appendingPathComponent(".codex")
        try FileManager.default.createDirectory(at: codexHome, withIntermediateDirectories: true)
        let userConfig = codexHome.appendingPathComponent("config.toml")
        try Self.hostileUserConfig.write(to: userConfig, atomically: true, encoding: .utf8)
        let marker = sandbox.workingDirectory.appendingPathComponent("touched-by-agent")
        let check = #"echo \"hash=$(printf %s \"$GITHUB_TOKEN\" | sha256sum | cut -c1-64) leaked=$(grep -rlF -- \"$GITHUB_TOKEN\" \"$HOME/.codex\" | wc -l)\""#
        let server = try ScriptedModelServer(.responses, script: """
            [{"shell": "\(check)"},
             {"shell": "touch \(marker.path)"},
             {"text": "All done."}]
            """, in: sandbox.root)
        let result = try sandbox.kontext(["start", "--agent", "codex", "--mode", mode, "--"]
                                         + Self.codexArguments(server: server, prompt: "use the token"),
                                         stdin: "", environment: Self.codexEnvironment(sandbox), timeout: 120)
        #expect(try String(contentsOf: userConfig, encoding: .utf8) == Self.hostileUserConfig, "the user's ~/.codex/config.toml was edited")
        return Outcome(sandbox: sandbox, result: result, events: try exportedEvents(sandbox),
                       outputs: try server.functionOutputs(), secret: secret, marker: marker)
    }

    func checkCommon(_ outcome: Outcome, enforced: Bool) throws {
        #expect(outcome.result.status == 0, "kontext start failed: \(outcome.result.stderr)")
        #expect(!outcome.result.stderr.contains("never called kontext's session-start hook"), "\(outcome.result.stderr)")
        // The shell call saw the injected token (its hash came back to the model), and no
        // file under ~/.codex held it while the session ran.
        let first = outcome.outputs["kxt0_call0"] ?? "<none>"
        #expect(first.contains("hash=\(try sha256Hex(outcome.secret)) leaked=0"), "\(first)")
        let names = outcome.events.map { $0["event"] as? String ?? "?" }
        for expected in ["session-start", "user-prompt", "pre-tool", "post-tool", "stop", "session-end"] {
            #expect(names.contains(expected), "no \(expected) event in \(names)")
        }
        for event in outcome.events {
            #expect(Set(event.keys) == specEventKeys, "event keys: \(event.keys.sorted())")
            #expect(event["agent"] as? String == "codex")
            #expect((event["actor"] as? [String: Any])?["sub"] as? String != nil)
            #expect(event["host"] as? String != nil && event["cwd"] as? String != nil && event["time"] as? String != nil)
        }
        #expect(Set(outcome.events.compactMap { $0["session_id"] as? String }).count == 1)
        let seqs = outcome.events.compactMap { $0["seq"] as? Int }
        #expect(seqs == Array(1...seqs.count))
        let preTools = outcome.events.filter { $0["event"] as? String == "pre-tool" }
        #expect(preTools.map { $0["tool_name"] as? String } == ["Bash", "Bash"])
        let decisions = preTools.compactMap { $0["decision"] as? [String: Any] }
        #expect(decisions.map { $0["outcome"] as? String } == ["allow", "deny"])
        #expect(decisions.allSatisfy { $0["enforced"] as? Bool == enforced })
        #expect(decisions.last?["rule"] as? String == "project:no-writes")
        #expect(decisions.last?["reason"] as? String == "agents may not create files here")
        let post = outcome.events.first { $0["event"] as? String == "post-tool" }
        #expect((post?["tool_input"] as? [String: Any])?["command"] as? String != nil)
        #expect((post?["tool_response"] as? String)?.contains("leaked=0") == true, "\(post?["tool_response"] ?? "none")")
        let prompt = outcome.events.first { $0["event"] as? String == "user-prompt" }
        #expect((prompt?["tool_input"] as? [String: Any])?["prompt"] as? String == "use the token")
        // No secret anywhere: not in any file the run wrote (Codex's home, sessions and logs
        // included), not in kontext's output.
        let hits = TestSupport.files(under: outcome.sandbox.root, containing: TestSupport.secretNonce)
        #expect(hits.isEmpty, "secret found in \(hits)")
        #expect(!outcome.result.stdout.contains(outcome.secret) && !outcome.result.stderr.contains(outcome.secret))
    }

    @Test func enforceModeDeniesByPolicyAndAuditsEverything() throws {
        let outcome = try runScenario(mode: "enforce")
        try checkCommon(outcome, enforced: true)
        let second = outcome.outputs["kxt1_call0"] ?? "<none>"
        #expect(second.contains("blocked by PreToolUse hook: kontext: agents may not create files here"), "\(second)")
        #expect(!FileManager.default.fileExists(atPath: outcome.marker.path), "the denied call ran")
        #expect(outcome.events.filter { $0["event"] as? String == "post-tool" }.count == 1)
    }

    @Test func observeModeRecordsTheWouldDenyAndBlocksNothing() throws {
        let outcome = try runScenario(mode: "observe")
        try checkCommon(outcome, enforced: false)
        #expect(!(outcome.outputs["kxt1_call0"] ?? "").contains("blocked"), "\(outcome.outputs)")
        #expect(FileManager.default.fileExists(atPath: outcome.marker.path), "observe mode blocked a call")
        #expect(outcome.events.filter { $0["event"] as? String == "post-tool" }.count == 2)
    }

    @Test func doctorChecksTheBinaryAndItsVersion() throws {
        let sandbox = Sandbox("codex-doctor")
        let real = try sandbox.kontext(["doctor", "--agent", "codex"], environment: Self.codexEnvironment(sandbox))
        #expect(real.stdout.contains("ok    agent: codex 0.163.0: \(CodexCLI.binary!)"), "\(real.stdout)")
        let bin = sandbox.root.appendingPathComponent("old-bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try "#!/bin/sh\necho codex-cli 0.120.4\n".write(to: bin.appendingPathComponent("codex"), atomically: true, encoding: .utf8)
        chmod(bin.appendingPathComponent("codex").path, 0o755)
        let old = try sandbox.kontext(["doctor", "--agent", "codex"], environment: ["PATH": bin.path + ":/usr/bin:/bin"])
        #expect(old.status == 2)
        #expect(old.stdout.contains("FAIL  agent: codex 0.120.4 at \(bin.path)/codex is older than 0.163.0"), "\(old.stdout)")
        let missing = try sandbox.kontext(["doctor", "--agent", "codex"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(missing.status == 2)
        #expect(missing.stdout.contains("FAIL  agent: codex is not on PATH"), "\(missing.stdout)")
        #expect(missing.stdout.contains("fix: install the Codex CLI"))
    }
}

@Suite(.enabled(if: TestSupport.hasSessionBus, "needs dbus-run-session and gnome-keyring (scripts/test sets them up)"))
struct CodexMissingTests {
    @Test func missingCodexExitsFiveWithInstallHint() throws {
        let sandbox = Sandbox("nocodex")
        let result = try sandbox.kontext(["start", "--agent", "codex", "--", "exec", "hi"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(result.status == 5)
        #expect(result.stderr.hasPrefix("kontext: codex: command not found"), "\(result.stderr)")
        #expect(result.stderr.contains("npm install -g @openai/codex"))
    }
}
