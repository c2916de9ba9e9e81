@testable import KontextAgent
import KontextConsent
import KontextCore
import KontextHookWire
import Testing

/// The Codex CLI's hook dialect and wiring. The trust hashes below are the `currentHash`
/// values Codex 0.163.0 itself reported (`codex app-server`, `hooks/list`) for those hooks.
@Suite struct CodexAdapterTests {
    let codex = CodexAdapter()

    func wiring(failClosed: Bool) -> HookWiring {
        HookWiring(command: { "'/opt/kontext/bin/kontext' hook \($0.rawValue) --agent codex" }, environment: [],
                   failClosed: failClosed, directory: "/run/s", digest: contentDigest)
    }

    @Test func hookInputReadsAsClaudesDoesWithTheResponseAsCodexSendsIt() throws {
        let pre = try codex.parse(event: .preTool, payload: Array(#"{"session_id":"t","turn_id":"u","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"},"tool_use_id":"c1"}"#.utf8))
        #expect(pre.toolName == "Bash" && pre.toolInput == .object([("command", .string("ls"))]))
        // Codex gives a shell call's output as one string.
        let post = try codex.parse(event: .postTool, payload: Array(#"{"tool_name":"Bash","tool_input":{"command":"ls"},"tool_response":"a\nb\n"}"#.utf8))
        #expect(post.toolResponse == .string("a\nb\n"))
        #expect(try codex.parse(event: .userPrompt, payload: Array(#"{"prompt":"go"}"#.utf8)).prompt == "go")
        #expect(throws: MalformedHookInput.self) { try codex.parse(event: .preTool, payload: Array(#"{"tool_input":{}}"#.utf8)) }
    }

    @Test func onlyDenyIsSaidAndAskBlocks() throws {
        let deny = codex.answer(event: .preTool, decision: .deny, reason: "kontext: no")
        let output = try JSONValue.parse(deny.stdout)["hookSpecificOutput"]
        #expect(deny.exitCode == 0)
        #expect(output?["permissionDecision"] == .string("deny") && output?["permissionDecisionReason"] == .string("kontext: no"))
        // Codex fails a hook that answers allow or ask, and runs the call: allow says nothing,
        // ask becomes a deny that says why.
        #expect(codex.answer(event: .preTool, decision: .allow, reason: "r") == HookWire.Answer(exitCode: 0))
        let ask = try JSONValue.parse(codex.answer(event: .preTool, decision: .ask, reason: "kontext: check").stdout)["hookSpecificOutput"]
        #expect(ask?["permissionDecision"] == .string("deny"))
        #expect(ask?["permissionDecisionReason"]?.stringValue?.hasPrefix("kontext: check (Codex hooks cannot ask") == true)
        let prompt = try JSONValue.parse(codex.answer(event: .userPrompt, decision: .deny, reason: "kontext: no").stdout)
        #expect(prompt == .object([("decision", .string("block")), ("reason", .string("kontext: no"))]))
        for event in [HookEvent.postTool, .sessionStart, .sessionEnd, .stop] {
            #expect(codex.answer(event: event, decision: .deny, reason: "r") == HookWire.Answer(exitCode: 0))
        }
    }

    @Test func theOverridesGoAfterASessionSubcommandOrFirst() {
        let launch = codex.hookedLaunch(wiring(failClosed: false), arguments: ["exec", "-c", "model=x", "hi"])
        #expect(launch.files.isEmpty, "nothing is written for Codex")
        #expect(launch.arguments.first == "exec")
        #expect(Array(launch.arguments.suffix(3)) == ["-c", "model=x", "hi"])
        let overrides = codex.configOverrides(wiring(failClosed: false))
        #expect(Array(launch.arguments.dropFirst().prefix(overrides.count * 2)) == overrides.flatMap { ["-c", $0] })
        let interactive = codex.hookedLaunch(wiring(failClosed: false), arguments: ["fix the bug"])
        #expect(interactive.arguments.last == "fix the bug" && interactive.arguments.first == "-c")
    }

    @Test func everyEventIsHookedAndTrustedForThisInvocationOnly() throws {
        let overrides = codex.configOverrides(wiring(failClosed: false))
        #expect(overrides.contains("features.hooks=true"))
        #expect(overrides.contains("shell_environment_policy.ignore_default_excludes=true"))
        #expect(overrides.contains("features.shell_snapshot=false"))
        let hooks = try #require(overrides.first { $0.hasPrefix("hooks={") })
        let state = try #require(overrides.first { $0.hasPrefix("hooks.state={") })
        for event in HookEvent.allCases {
            let (table, key) = CodexAdapter.configName(event)
            #expect(hooks.contains("\(table)=[{"), "\(table) missing")
            #expect(hooks.contains("command=\"'/opt/kontext/bin/kontext' hook \(event.rawValue) --agent codex\""))
            let identity = CodexAdapter.identity(event: key, matcher: event == .preTool || event == .postTool ? "*" : nil,
                                                 command: "'/opt/kontext/bin/kontext' hook \(event.rawValue) --agent codex",
                                                 timeout: event == .sessionEnd ? 3 : 30)
            #expect(state.contains("\"/<session-flags>/config.toml:\(key):0:0\"={trusted_hash=\"\(contentDigest(Array(identity.utf8)))\",enabled=true}"))
        }
        #expect(!hooks.contains("|| exit 2"))
    }

    @Test func enforceModeBlocksWhenTheBlockingHooksCannotRun() throws {
        let hooks = try #require(codex.configOverrides(wiring(failClosed: true)).first { $0.hasPrefix("hooks={") })
        #expect(hooks.contains("hook pre-tool --agent codex || exit 2\""))
        #expect(hooks.contains("hook user-prompt --agent codex || exit 2\""))
        #expect(!hooks.contains("hook post-tool --agent codex || exit 2") && !hooks.contains("hook stop --agent codex || exit 2"))
    }

    /// The hash must be Codex's to the byte, or Codex skips the hook without a word.
    @Test func theTrustHashIsTheOneCodexComputes() {
        #expect(contentDigest(Array(CodexAdapter.identity(event: "pre_tool_use", matcher: "*", command: "/tmp/codexexp/hook.sh pre", timeout: 30).utf8))
                == "sha256:25d185b955da12db491af4d24d88c3a20ea2c3747ce589a970e14db763945037")
        #expect(contentDigest(Array(CodexAdapter.identity(event: "stop", matcher: nil, command: "/tmp/codexexp/hook.sh stop", timeout: 600).utf8))
                == "sha256:3ad8070c22f577dc3c1253fb62efaff75ba9c59e2c81127b9d0fc511563e21b9")
        let awkward = "'/tmp/dir \"q\" é/kontext' hook pre-tool --agent codex\t\\x \u{01} \u{7f} || exit 2"
        #expect(contentDigest(Array(CodexAdapter.identity(event: "pre_tool_use", matcher: "*", command: awkward, timeout: 30).utf8))
                == "sha256:05307656fffa88ff527bb77031f3c8963a16b0eb7230b8d384c7b77ec5cf717f")
        #expect(CodexAdapter.toml(awkward) == #""'/tmp/dir \"q\" é/kontext' hook pre-tool --agent codex\t\\x \u0001 \u007f || exit 2""#)
    }

    @Test func versionsAreReadFromVersionLines() {
        #expect(versionNumber(in: "codex-cli 0.163.0\n") == [0, 163, 0])
        #expect(versionNumber(in: "2.1.330 (Claude Code)") == [2, 1, 330])
        #expect(versionNumber(in: "codex-cli 0.164.0-alpha.2") == [0, 164, 0])
        #expect(versionNumber(in: "no version here") == nil)
        #expect(version([0, 163, 0], isAtLeast: [0, 163, 0]) && version([1, 0], isAtLeast: [0, 163, 0]))
        #expect(!version([0, 162, 9], isAtLeast: [0, 163, 0]))
    }
}
