import KontextAgent
@testable import KontextHookWire
import KontextCore
import Testing

/// What `kontext hook` answers by itself when the sidecar cannot (SPEC section 7): observe
/// mode lets the call through and says so, enforce mode blocks what the agent lets it block,
/// with the agent's own deny answer.
@Suite struct HookFallbackTests {
    static let claude = ClaudeAdapter()

    static let problem = "cannot reach the kontext sidecar at /run/x.sock: No such file or directory"

    @Test func observeModeLetsEveryEventThroughAndSaysSo() {
        for event in HookEvent.allCases {
            let answer = HookFallback.answer(event: event.rawValue, dialect: Self.claude, enforce: false, problem: Self.problem)
            #expect(answer.exitCode == 0)
            #expect(answer.stdout.isEmpty)
            #expect(String(decoding: answer.stderr, as: UTF8.self) == "kontext: \(Self.problem); observe mode lets this through\n")
        }
    }

    @Test func enforceModeDeniesAToolCallInClaudesFormat() throws {
        let problem = #"a "quoted" \ problem"#
        let answer = HookFallback.answer(event: "pre-tool", dialect: Self.claude, enforce: true, problem: problem)
        #expect(answer.exitCode == 0)
        let output = try JSONValue.parse(answer.stdout)["hookSpecificOutput"]
        #expect(output?["hookEventName"] == .string("PreToolUse"))
        #expect(output?["permissionDecision"] == .string("deny"))
        #expect(output?["permissionDecisionReason"]
                == .string("kontext cannot check this call (\(problem)); enforce mode blocks it"))
        #expect(String(decoding: answer.stderr, as: UTF8.self) == "kontext: \(problem)\n")
    }

    @Test func enforceModeBlocksAPromptAsTheAgentWouldBeToldTo() throws {
        let answer = HookFallback.answer(event: "user-prompt", dialect: Self.claude, enforce: true, problem: Self.problem)
        #expect(answer.exitCode == 0)
        #expect(try JSONValue.parse(answer.stdout) == .object([
            ("decision", .string("block")),
            ("reason", .string("kontext cannot check this call (\(Self.problem)); enforce mode blocks it")),
        ]))
        #expect(String(decoding: answer.stderr, as: UTF8.self) == "kontext: \(Self.problem)\n")
    }

    /// Every agent's fallback is its adapter's own deny answer, not a copy of it.
    @Test(arguments: AgentAdapters.names)
    func eachAgentsFallbackIsItsOwnDenyAnswer(_ name: String) throws {
        let adapter = try #require(AgentAdapters.named(name))
        for event in HookEvent.allCases {
            let answer = HookFallback.answer(event: event.rawValue, dialect: adapter, enforce: true, problem: Self.problem)
            var expected = adapter.answer(event: event, decision: .deny,
                                          reason: "kontext cannot check this call (\(Self.problem)); enforce mode blocks it")
            expected.stderr += Array("kontext: \(Self.problem)\n".utf8)
            #expect(answer == expected, "\(name) \(event.rawValue)")
        }
    }

    /// Events Claude cannot block are let through in enforce mode too, with the problem said.
    @Test func enforceModeCannotBlockTheOtherEvents() {
        for event in [HookEvent.postTool, .sessionStart, .sessionEnd, .stop] {
            let answer = HookFallback.answer(event: event.rawValue, dialect: Self.claude, enforce: true, problem: Self.problem)
            #expect(answer == HookWire.Answer(exitCode: 0, stdout: "", stderr: "kontext: \(Self.problem)\n"))
        }
    }

    /// The front's own failure paths that need no stdin: no sidecar socket to reach.
    @Test func anUnreachableSidecarIsAProblemNotACrash() {
        let request = HookWire.Request(event: "pre-tool", agent: "claude", truncated: false, payload: Array("{}".utf8))
        guard case .failure(let problem) = HookClient.exchange(request, socketPath: "/nonexistent/kontext-test.sock") else {
            Issue.record("exchange with a missing socket succeeded")
            return
        }
        #expect(problem.text.hasPrefix("cannot reach the kontext sidecar at /nonexistent/kontext-test.sock"))
        let long = "/tmp/" + String(repeating: "d", count: 200) + ".sock"
        guard case .failure(let tooLong) = HookClient.exchange(request, socketPath: long) else {
            Issue.record("exchange with a too-long socket path succeeded")
            return
        }
        #expect(tooLong.text == "socket path too long: \(long)")
    }

    /// Arguments are checked before stdin is read: a bad command line is a usage error (2).
    @Test(arguments: [[], ["pre-tool"], ["launch", "--agent", "claude"], ["pre-tool", "--agent", "cursor"],
                      ["pre-tool", "--agent", "claude", "extra"], ["--verbose"]])
    func aBadCommandLineIsAUsageError(_ arguments: [String]) {
        #expect(HookClient.run(arguments: arguments, agents: AgentAdapters.all, environment: { _ in nil }) == 2)
    }
}
