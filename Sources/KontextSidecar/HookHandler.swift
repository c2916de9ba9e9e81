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

/// The organisation's approvals at the broker (SPEC section 12): the session registers each
/// approval it opens, so that a principal in broker.toml's `approvers` can decide it, and
/// asks for the decision when the agent retries; an approved one is used at the broker, so
/// it lets one call through however many processes or broker replicas take part. Blocking
/// calls, made on the sidecar's own threads.
public protocol RemoteApprovals: Sendable {
    /// nil when registered; otherwise why not (the approval then stays local only).
    func register(_ approval: Approval) -> String?
    /// The broker's decision on `approval`: denied, or approved and now used at the broker
    /// (by whom either way); nil while there is none, when the broker cannot be reached, or
    /// when the broker would not let this call use it (already used, expired).
    func decision(of approval: Approval) -> (approved: Bool, by: String)?
}

/// Where a session's `approve` decisions go (SPEC section 12).
public struct ApprovalGate: Sendable {
    public var store: ApprovalStore
    /// Seconds an approval waits for the user, and once approved for the retry.
    public var ttl: Int
    /// An interactive agent asks its own user: `approve` is answered as `ask` there.
    public var interactive: Bool
    /// The session's controlling terminal: approvals must come from another one.
    public var terminal: Int64?
    /// The broker's approvals, in remote and CI mode with a broker.
    public var remote: (any RemoteApprovals)?

    public init(store: ApprovalStore, ttl: Int, interactive: Bool = false, terminal: Int64? = nil,
                remote: (any RemoteApprovals)? = nil) {
        self.remote = remote
        self.store = store
        self.ttl = ttl
        self.interactive = interactive
        self.terminal = terminal
    }

    /// "5 minutes", "90 s".
    var ttlText: String { ttl % 60 == 0 ? "\(ttl / 60) minute\(ttl == 60 ? "" : "s")" : "\(ttl) s" }
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
    /// nil: `approve` decisions are plain denials (nowhere to record an approval).
    public var approvals: ApprovalGate?
    /// Shared by every copy of the handler (the sidecar's threads hold copies).
    public let activity = HookActivity()

    public static let malformedInputRule = "builtin:malformed-input"
    public static let hooksMissingRule = "builtin:hooks-missing"

    public init(session: SessionInfo, adapter: any AgentAdapter, evaluator: PolicyEvaluator, mode: PolicyMode,
                redactor: Redactor, writer: AuditWriter, approvals: ApprovalGate? = nil) {
        self.approvals = approvals
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
                var verdict = evaluator.evaluate(toolName: tool, input: input.toolInput)
                var approvalID: String?
                if verdict.decision == .approve {
                    approvalID = settleApproval(&verdict, toolName: tool, input: input.toolInput)
                }
                record.decision = AuditDecision(outcome: AuditDecision.Outcome(verdict.decision), reason: verdict.reason,
                                                rule: verdict.rule, enforced: mode.enforces, risk: verdict.risk,
                                                policyVersion: evaluator.policyVersion, approvalID: approvalID)
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

    /// A call the policy wants approved: in enforce mode it uses a granted approval of
    /// exactly this call (then it is allowed, once) or opens one (or names the one already
    /// waiting) and stays denied; returns the approval's id. Interactive agents ask instead.
    private func settleApproval(_ verdict: inout PolicyVerdict, toolName: String, input: JSONValue) -> String? {
        let why = verdict.reason ?? "this call needs approval"
        guard mode.enforces else {
            verdict.reason = why + " (approval needed in enforce mode)"
            return nil
        }
        guard let approvals else {
            verdict.decision = .deny
            return nil
        }
        if approvals.interactive {
            verdict.decision = .ask
            return nil
        }
        let request = Approval(sessionID: session.id, actor: session.actor.sub, agent: session.agent, toolName: toolName,
                               input: redactor.redact(Approval.canonicalInput(toolName: toolName, input: input)),
                               rule: verdict.rule, reason: verdict.reason.map(redactor.redact), risk: verdict.risk,
                               host: session.host, cwd: session.cwd, terminal: approvals.terminal)
        do {
            var (lookup, expired) = try approvals.store.useOrRequest(request, ttl: approvals.ttl)
            for approval in expired { _ = try? writer.append(approval.auditEvent()) }
            var remoteNote = ""
            if let remote = approvals.remote, case .pending(let approval, let isNew) = lookup {
                if isNew {
                    if let problem = remote.register(approval) { remoteNote = " (the broker was not told: \(problem))" }
                } else if let decision = remote.decision(of: approval),
                          case .decided(let decided) = try approvals.store.decide(id: approval.id, approve: decision.approved,
                                                                                   by: "broker:" + decision.by, terminal: nil,
                                                                                   ttl: approvals.ttl) {
                    _ = try? writer.append(decided.auditEvent())
                    // Approved: this call uses it. Denied: the call opens a new approval.
                    lookup = try approvals.store.useOrRequest(request, ttl: approvals.ttl).lookup
                    if case .pending(let fresh, true) = lookup, let problem = remote.register(fresh) {
                        remoteNote = " (the broker was not told: \(problem))"
                    }
                }
            }
            switch lookup {
            case .used(let approval):
                verdict.decision = .allow
                verdict.reason = "approved by \(approval.decidedBy ?? "?") (\(approval.id)); used once"
                return approval.id
            case .pending(let approval, _):
                verdict.reason = "\(why): approval \(approval.id) is waiting. Do not try to approve it yourself: ask the user to run "
                    + "`kontext approve \(approval.id)` in another terminal within \(approvals.ttlText); then retry exactly the same call"
                    + remoteNote
                return approval.id
            }
        } catch {
            verdict.decision = .deny
            verdict.reason = "\(why); no approval could be opened (\(redactor.redact(String(describing: error))))"
            return nil
        }
    }
}

extension HookWire.Answer {
    func withNote(_ note: String) -> HookWire.Answer {
        var copy = self
        copy.stderr += Array(note.utf8)
        return copy
    }
}
