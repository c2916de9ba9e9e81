import KontextAgent
import KontextAudit
import KontextCore
import KontextHookWire
import KontextPolicy
import Synchronization

/// Whether the agent has called the session-start hook: a session whose agent should call
/// kontext's hooks but never did ran unchecked, and must be said so.
public final class HookActivity: Sendable {
    private let sessionStarted = Atomic<Bool>(false)

    init() {}

    func record(_ event: HookEvent) {
        if event == .sessionStart { sessionStarted.store(true, ordering: .relaxed) }
    }

    public var sawSessionStart: Bool { sessionStarted.load(ordering: .relaxed) }
}

/// Who and where a session is, stamped on each of its audit events.
public struct SessionInfo: Sendable {
    public var id: String
    public var agent: String
    public var actor: AuditActor
    public var host: String
    public var cwd: String

    public init(id: String, agent: String, actor: AuditActor, host: String, cwd: String) {
        self.id = id
        self.agent = agent
        self.actor = actor
        self.host = host
        self.cwd = cwd
    }
}

/// Turns one hook call into a policy decision and a durable audit event, in that order:
/// the event is committed before the answer goes back (SPEC section 7).
public struct HookHandler: Sendable {
    public var session: SessionInfo
    public var adapter: any AgentAdapter
    public var evaluator: PolicyEvaluator
    public var mode: PolicyMode
    public var redactor: Redactor
    public var writer: AuditWriter
    /// Shared by every copy of the handler (the sidecar's threads hold copies).
    public let activity = HookActivity()

    public static let malformedInputRule = "builtin:malformed-input"
    public static let hooksMissingRule = "builtin:hooks-missing"

    public init(session: SessionInfo, adapter: any AgentAdapter, evaluator: PolicyEvaluator, mode: PolicyMode,
                redactor: Redactor, writer: AuditWriter) {
        self.session = session
        self.adapter = adapter
        self.evaluator = evaluator
        self.mode = mode
        self.redactor = redactor
        self.writer = writer
    }

    public func handle(_ request: HookWire.Request) -> HookWire.Answer {
        guard let event = HookEvent(rawValue: request.event), request.agent == adapter.name else {
            return HookWire.Answer(exitCode: 2, stdout: "", stderr: "kontext: this session serves \(adapter.name) hooks; got \(request.event) for \(request.agent)\n")
        }
        activity.record(event)
        var record = AuditEvent(sessionID: session.id, agent: session.agent, event: AuditEventKind(event),
                                actor: session.actor, host: session.host, cwd: session.cwd)
        var agentDecision: PolicyDecision?
        var reason: String?
        var note = ""
        do throws(MalformedHookInput) {
            if request.truncated {
                // Too large to check, but not hidden: the record keeps the tool name and the
                // input up to the cut (redacted and bounded per string like any input).
                if let start = try? adapter.parsePrefix(event: event, payload: request.payload) {
                    record.toolName = start.toolName
                    record.toolInput = start.prompt.map(AuditEvent.promptInput) ?? start.toolInput
                    record.toolResponse = start.toolResponse
                }
                throw MalformedHookInput("hook input larger than \(HookWire.maximumInput) bytes")
            }
            let input = try adapter.parse(event: event, payload: request.payload)
            record.toolName = input.toolName
            record.toolInput = input.prompt.map(AuditEvent.promptInput) ?? input.toolInput
            record.toolResponse = input.toolResponse
            if event == .preTool, let tool = input.toolName {
                let verdict = evaluator.evaluate(toolName: tool, input: input.toolInput)
                record.decision = AuditDecision(outcome: outcome(verdict.decision), reason: verdict.reason,
                                                rule: verdict.rule, enforced: mode.enforces)
                agentDecision = mode.agentDecision(for: verdict)
                reason = verdict.reason.map { "kontext: \($0)" } ?? verdict.rule.map { "kontext: \($0)" }
            }
        } catch {
            // Bad input is recorded, never dropped; enforce mode blocks what it cannot check.
            let blocked = mode.enforces && (event == .preTool || event == .userPrompt)
            record.decision = AuditDecision(outcome: blocked ? .deny : .allow, reason: error.description,
                                            rule: Self.malformedInputRule, enforced: mode.enforces)
            agentDecision = blocked ? .deny : nil
            reason = "kontext: \(error.description)"
            note = "kontext: \(error.description)\n"
        }
        do {
            _ = try writer.append(record.sanitized(redactor: redactor))
        } catch {
            // An event that cannot be made durable is not acknowledged as if it were.
            let problem = "kontext: audit store write failed: \(redactor.redact(String(describing: error)))"
            if mode.enforces {
                return adapter.answer(event: event, decision: .deny, reason: problem).withNote(problem + "\n")
            }
            note += problem + "\n"
        }
        return adapter.answer(event: event, decision: agentDecision, reason: reason.map(redactor.redact)).withNote(note)
    }

    /// Records that the agent ran without calling kontext's hooks (no `session-start` came):
    /// nothing it did was checked or audited. A `session-start` event written by kontext,
    /// with a decision that says so.
    public func recordHooksMissing() throws {
        let record = AuditEvent(sessionID: session.id, agent: session.agent, event: .sessionStart,
                                decision: AuditDecision(outcome: .deny, reason: Self.hooksMissingReason,
                                                        rule: Self.hooksMissingRule, enforced: false),
                                actor: session.actor, host: session.host, cwd: session.cwd)
        _ = try writer.append(record)
    }

    public static let hooksMissingReason =
        "the agent never called kontext's session-start hook: its hooks were switched off or failed, so nothing it did was checked or audited"

    private func outcome(_ decision: PolicyDecision) -> AuditDecision.Outcome {
        AuditDecision.Outcome(rawValue: decision.rawValue)!
    }
}

extension HookWire.Answer {
    func withNote(_ note: String) -> HookWire.Answer {
        var copy = self
        copy.stderr += Array(note.utf8)
        return copy
    }
}
