import Foundation
import KontextAgent
@testable import KontextAudit
import KontextCore
import KontextHookWire
import KontextPolicy
import KontextSidecar
import KontextTestSupport
import Testing

/// One sidecar pipeline over a real audit store on a temporary SQLite file: the policy's
/// decision, what the agent is told in each mode, and what is made durable first.
final class HandlerFixture {
    static let policy = """
        [[rule]]
        id = "no-curl"
        tool = "Bash"
        command = "curl *"
        decision = "deny"
        reason = "no network egress from agents"
        """
    let directory: URL
    let store: AuditStore
    let writer: AuditWriter
    let secret = TestSupport.secret("hook-handler")
    let session = SessionInfo(id: "hookpath-\(UUID().uuidString)", agent: "claude",
                              actor: AuditActor(sub: "user-1", email: "dev@example.com"), host: "devbox", cwd: "/work/project")

    init() throws {
        directory = TestSupport.makeTemporaryDirectory("hook-handler")
        store = try AuditStore(path: directory.appendingPathComponent("audit.db").path)
        writer = AuditWriter(store: store)
    }

    deinit {
        writer.close()
        try? FileManager.default.removeItem(at: directory)
    }

    func handler(_ mode: PolicyMode) throws -> HookHandler {
        let secrets = [(service: "github", value: secret)]
        let layers = PolicyLayers([PolicyLayer(kind: .user, policy: try Policy.parse(Self.policy, path: "policy.toml"))])
        return HookHandler(session: session, adapter: ClaudeAdapter(),
                           evaluator: PolicyEvaluator(layers: layers, secretGuard: SecretGuard(secrets: secrets)),
                           mode: mode, redactor: Redactor(secrets: secrets), writer: writer)
    }

    func events() throws -> [AuditEvent] { try store.events(sessionID: session.id) }

    /// The disk is full for this store: SQLite may not grow the file by a single page, so
    /// any event that needs a new page fails to commit.
    func fillTheDisk() throws {
        try store.pool.write { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 1
            try db.execute(sql: "PRAGMA max_page_count = \(pages)")
        }
    }
}

func request(_ event: HookEvent, _ payload: String, truncated: Bool = false) -> HookWire.Request {
    HookWire.Request(event: event.rawValue, agent: "claude", truncated: truncated, payload: Array(payload.utf8))
}

func toolCall(_ command: String) -> String {
    var text = #"{"session_id":"s","tool_name":"Bash","tool_input":{"command":"#
    appendJSONString(command, to: &text)
    return text + "}}"
}

/// The `hookSpecificOutput` of a pre-tool answer, nil when the answer says nothing.
func preToolDecision(_ answer: HookWire.Answer) throws -> (decision: String?, reason: String?)? {
    guard !answer.stdout.isEmpty else { return nil }
    let output = try JSONValue.parse(answer.stdout)["hookSpecificOutput"]
    #expect(output?["hookEventName"] == .string("PreToolUse"))
    return (output?["permissionDecision"]?.stringValue, output?["permissionDecisionReason"]?.stringValue)
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@Suite struct HookHandlerTests {
    @Test func aPolicyDenyInEnforceModeIsAnsweredAsClaudesDeny() throws {
        let fixture = try HandlerFixture()
        let answer = try fixture.handler(.enforce).handle(request(.preTool, toolCall("curl https://example.com")))
        #expect(answer.exitCode == 0)
        #expect(answer.stderr.isEmpty)
        let decision = try preToolDecision(answer)
        #expect(decision?.decision == "deny")
        #expect(decision?.reason == "kontext: no network egress from agents")
        let events = try fixture.events()
        #expect(events.count == 1)
        #expect(events.first?.toolName == "Bash")
        #expect(events.first?.decision == AuditDecision(outcome: .deny, reason: "no network egress from agents",
                                                         rule: "user:no-curl", enforced: true, risk: .write))
        // A call no rule matches is left to Claude's own permissions, and still recorded.
        let unmatched = try fixture.handler(.enforce).handle(request(.preTool, toolCall("ls")))
        #expect(unmatched == HookWire.Answer(exitCode: 0))
        #expect(try fixture.events().count == 2)
    }

    @Test func theCredentialGuardDeniesInEnforceModeAndTheSecretIsNeverStored() throws {
        let fixture = try HandlerFixture()
        let answer = try fixture.handler(.enforce).handle(request(.preTool, toolCall("echo \(fixture.secret)")))
        #expect(try preToolDecision(answer)?.decision == "deny")
        #expect(!text(answer.stdout + answer.stderr).contains(fixture.secret))
        let stored = try fixture.events()
        #expect(stored.first?.decision?.outcome == .deny)
        let storedText = try #require(stored.first).json.serialized
        #expect(storedText.contains("[REDACTED:github]"))
        #expect(!storedText.contains(fixture.secret))
    }

    /// Observe mode records what enforce mode would do but never changes what the agent does.
    @Test func observeModeNeverAnswers() throws {
        let fixture = try HandlerFixture()
        let handler = try fixture.handler(.observe)
        let calls = [
            request(.preTool, toolCall("curl https://example.com")),
            request(.preTool, toolCall("echo \(fixture.secret)")),
            request(.preTool, toolCall("ls")),
            request(.postTool, toolCall("curl https://example.com")),
            request(.userPrompt, #"{"prompt":"hello"}"#),
            request(.sessionStart, "{}"),
            request(.stop, "{}"),
        ]
        for call in calls {
            let answer = handler.handle(call)
            #expect(answer == HookWire.Answer(exitCode: 0), "\(call.event)")
        }
        let events = try fixture.events()
        #expect(events.count == calls.count)
        #expect(events.allSatisfy { $0.decision?.enforced != true })
        #expect(events[0].decision == AuditDecision(outcome: .deny, reason: "no network egress from agents",
                                                     rule: "user:no-curl", enforced: false, risk: .write))
        #expect(events[1].decision?.outcome == .deny)
    }

    @Test func malformedInputIsDeniedOnlyWhenEnforcing() throws {
        let fixture = try HandlerFixture()
        let enforcing = try fixture.handler(.enforce)
        // Not JSON under RFC 8259 (a leading '+'), so not checked, so blocked.
        for payload in ["not json", #"{"tool_name":"Bash","tool_input":{"n":+1}}"#, #"{"tool_input":{}}"#, ""] {
            let answer = enforcing.handle(request(.preTool, payload))
            let decision = try preToolDecision(answer)
            #expect(decision?.decision == "deny", "\(payload)")
            #expect(decision?.reason?.hasPrefix("kontext: ") == true)
            #expect(text(answer.stderr).hasPrefix("kontext: "))
        }
        let prompt = enforcing.handle(request(.userPrompt, "{"))
        #expect(try JSONValue.parse(prompt.stdout)["decision"] == .string("block"))
        // Claude cannot block a post-tool call: the problem is only said.
        let post = enforcing.handle(request(.postTool, "{"))
        #expect(post.stdout.isEmpty && post.exitCode == 0 && !post.stderr.isEmpty)

        let observing = try fixture.handler(.observe)
        for event in [HookEvent.preTool, .userPrompt, .postTool] {
            let answer = observing.handle(request(event, "not json"))
            #expect(answer.exitCode == 0 && answer.stdout.isEmpty, "\(event)")
            #expect(text(answer.stderr).hasPrefix("kontext: hook input is not JSON"))
        }

        let events = try fixture.events()
        #expect(events.count == 9)
        #expect(events.allSatisfy { $0.decision?.rule == HookHandler.malformedInputRule })
        #expect(events.prefix(5).allSatisfy { $0.decision?.outcome == .deny && $0.decision?.enforced == true })
        #expect(events[5].decision?.outcome == .allow)
        #expect(events.suffix(3).allSatisfy { $0.decision?.outcome == .allow && $0.decision?.enforced == false })
    }

    /// Input cut at the size limit cannot be checked: denied when enforcing, and the record
    /// keeps the tool name and the input up to the cut.
    @Test func aCutInputIsDeniedWhenEnforcingAndKeepsItsStart() throws {
        let fixture = try HandlerFixture()
        let start = #"{"tool_name":"Write","tool_input":{"file_path":"/a","content":"abc"#
        let answer = try fixture.handler(.enforce).handle(request(.preTool, start, truncated: true))
        #expect(try preToolDecision(answer)?.decision == "deny")
        let observed = try fixture.handler(.observe).handle(request(.preTool, start, truncated: true))
        #expect(observed.stdout.isEmpty)
        let events = try fixture.events()
        #expect(events.map(\.toolName) == ["Write", "Write"])
        #expect(events.first?.toolInput["file_path"] == .string("/a"))
        #expect(events.map { $0.decision?.outcome } == [.deny, .allow])
    }

    @Test func anAuditWriteFailureIsDeniedWhenEnforcingAndNotedWhenObserving() throws {
        let fixture = try HandlerFixture()
        try fixture.fillTheDisk()
        // Each call carries more than fits in the pages the store already has.
        let large = toolCall("ls " + String(repeating: "x", count: 60_000))

        let enforced = try fixture.handler(.enforce).handle(request(.preTool, large))
        let decision = try preToolDecision(enforced)
        #expect(decision?.decision == "deny")
        #expect(decision?.reason?.hasPrefix("kontext: audit store write failed: ") == true)
        #expect(text(enforced.stderr).hasPrefix("kontext: audit store write failed: "))
        let prompt = try fixture.handler(.enforce).handle(request(.userPrompt, #"{"prompt":"\#(String(repeating: "y", count: 60_000))"}"#))
        #expect(try JSONValue.parse(prompt.stdout)["decision"] == .string("block"))

        let observed = try fixture.handler(.observe).handle(request(.preTool, large))
        #expect(observed.exitCode == 0)
        #expect(observed.stdout.isEmpty)
        #expect(text(observed.stderr).hasPrefix("kontext: audit store write failed: "))
        #expect(try fixture.events().isEmpty)
    }

    @Test func aRequestForAnotherAgentOrEventIsRefused() throws {
        let fixture = try HandlerFixture()
        let handler = try fixture.handler(.enforce)
        let otherAgent = handler.handle(HookWire.Request(event: "pre-tool", agent: "cursor", truncated: false, payload: Array("{}".utf8)))
        #expect(otherAgent.exitCode == 2)
        let unknownEvent = handler.handle(HookWire.Request(event: "launch", agent: "claude", truncated: false, payload: Array("{}".utf8)))
        #expect(unknownEvent.exitCode == 2)
        #expect(try fixture.events().isEmpty)
    }
}
