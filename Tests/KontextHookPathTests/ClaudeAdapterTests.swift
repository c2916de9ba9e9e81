import KontextAgent
import KontextCore
import KontextHookWire
import KontextPolicy
import Testing

/// Claude Code's hook dialect: what its hook input gives kontext, and what kontext writes back.
@Suite struct ClaudeAdapterTests {
    let claude = ClaudeAdapter()

    func parse(_ event: HookEvent, _ text: String) throws(MalformedHookInput) -> HookInput {
        try claude.parse(event: event, payload: Array(text.utf8))
    }

    @Test func toolEventsGiveTheToolAndItsInput() throws {
        let pre = try parse(.preTool, #"{"session_id":"s","tool_name":"Bash","tool_input":{"command":"ls -la"},"tool_response":{"x":1}}"#)
        #expect(pre.toolName == "Bash")
        #expect(pre.toolInput == .object([("command", .string("ls -la"))]))
        // A pre-tool call has no response yet, whatever the input says.
        #expect(pre.toolResponse == .null)
        let post = try parse(.postTool, #"{"tool_name":"Bash","tool_input":{"command":"ls"},"tool_response":{"stdout":"a"}}"#)
        #expect(post.toolResponse == .object([("stdout", .string("a"))]))
        #expect(try parse(.preTool, #"{"tool_name":"Read"}"#).toolInput == .null)
    }

    @Test func promptAndSessionEvents() throws {
        #expect(try parse(.userPrompt, #"{"prompt":"hello"}"#).prompt == "hello")
        #expect(try parse(.userPrompt, #"{}"#).prompt == "")
        for event in [HookEvent.sessionStart, .sessionEnd, .stop] {
            let input = try parse(event, #"{"session_id":"s"}"#)
            #expect(input.toolName == nil && input.prompt == nil && input.toolInput == .null)
        }
    }

    @Test(arguments: ["", "not json", "[1,2]", "\"text\"", #"{"tool_name":"Bash""#, #"{"tool_name":""}"#,
                      #"{"tool_name":7}"#, #"{"tool_input":{}}"#, #"{"tool_name":"Bash","n":01}"#])
    func malformedToolInputIsRefused(_ text: String) {
        #expect(throws: MalformedHookInput.self) { try parse(.preTool, text) }
    }

    @Test func theStartOfACutInputStillNamesTheTool() throws {
        let input = try claude.parsePrefix(event: .preTool, payload: Array(#"{"tool_name":"Write","tool_input":{"content":"abc"#.utf8))
        #expect(input.toolName == "Write")
        #expect(input.toolInput == .object([("content", .string("abc"))]))
        #expect(throws: MalformedHookInput.self) { try claude.parsePrefix(event: .preTool, payload: Array("garbage".utf8)) }
    }

    @Test func aPreToolDecisionIsHookSpecificOutput() throws {
        for decision in PolicyDecision.allCases {
            let answer = claude.answer(event: .preTool, decision: decision, reason: "kontext: \"why\"")
            #expect(answer.exitCode == 0)
            #expect(answer.stderr.isEmpty)
            #expect(answer.stdout.last == 10)
            let output = try JSONValue.parse(answer.stdout)["hookSpecificOutput"]
            #expect(output?["hookEventName"] == .string("PreToolUse"))
            #expect(output?["permissionDecision"] == .string(decision.rawValue))
            #expect(output?["permissionDecisionReason"] == .string("kontext: \"why\""))
        }
        let withoutReason = try JSONValue.parse(claude.answer(event: .preTool, decision: .deny, reason: nil).stdout)
        #expect(withoutReason["hookSpecificOutput"]?["permissionDecisionReason"] == nil)
    }

    @Test func aDeniedPromptIsBlocked() throws {
        let answer = claude.answer(event: .userPrompt, decision: .deny, reason: "kontext: no")
        #expect(answer.exitCode == 0)
        let output = try JSONValue.parse(answer.stdout)
        #expect(output == .object([("decision", .string("block")), ("reason", .string("kontext: no"))]))
        #expect(try JSONValue.parse(claude.answer(event: .userPrompt, decision: .deny, reason: nil).stdout)["reason"]
                == .string("blocked by kontext"))
    }

    /// No decision, or one Claude has no way to take for that event, says nothing.
    @Test func otherwiseTheAnswerIsSilent() {
        let silent = HookWire.Answer(exitCode: 0)
        for event in HookEvent.allCases {
            #expect(claude.answer(event: event, decision: nil, reason: "r") == silent)
        }
        for event in [HookEvent.postTool, .sessionStart, .sessionEnd, .stop] {
            #expect(claude.answer(event: event, decision: .deny, reason: "r") == silent)
        }
        #expect(claude.answer(event: .userPrompt, decision: .allow, reason: "r") == silent)
        #expect(claude.answer(event: .userPrompt, decision: .ask, reason: "r") == silent)
    }

    @Test func adaptersAreFoundByName() {
        #expect(AgentAdapters.named("claude")?.name == "claude")
        #expect(AgentAdapters.named("cursor") == nil)
        #expect(AgentAdapters.names.allSatisfy { AgentAdapters.named($0) != nil })
        #expect(Set(AgentAdapters.names).count == AgentAdapters.all.count, "two adapters share a name")
    }

    @Test func theSettingsFileGoesIntoTheSessionDirectoryAndIsPassedWithSettings() throws {
        let wiring = HookWiring(command: { "kontext hook \($0.rawValue) --agent claude" }, environment: [("KONTEXT_MODE", "enforce")],
                                failClosed: true, directory: "/run/s", digest: { _ in "unused" })
        let launch = claude.hookedLaunch(wiring, arguments: ["-p", "hi"])
        #expect(launch.arguments == ["--settings", "/run/s/claude-settings.json", "-p", "hi"])
        #expect(launch.files.count == 1 && launch.files.first?.path == "/run/s/claude-settings.json")
        let settings = try JSONValue.parse(Array(try #require(launch.files.first).contents.utf8))
        #expect(settings["env"]?["KONTEXT_MODE"] == .string("enforce"))
        #expect(settings["hooks"]?["PreToolUse"]?.arrayValue?.first?["hooks"]?.arrayValue?.first?["onFailure"] == .string("block"))
    }
}
