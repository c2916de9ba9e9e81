import ArgumentParser
import KontextAudit
import KontextCore
import KontextRun

struct ApproveCommand: KontextCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve a call a policy held for approval, or list the approvals waiting.",
        discussion: """
            A rule with decision = "approve" (and, in enforce mode, any destructive call no rule \
            decides) denies the call and opens an approval whose id the agent is told. \
            `kontext approve ID`, run by you in another terminal within KONTEXT_APPROVAL_TTL \
            seconds (default 300), lets the agent's retry of exactly that call (same session, tool \
            and input) through once. It refuses inside a kontext session (an agent cannot approve \
            its own calls) and without a terminal. Every step is an audit event.
            """)

    @Flag(name: .long, help: "List the approvals waiting for you or for the agent's retry.")
    var list = false

    @Flag(name: .long, help: "Approve through the broker (KONTEXT_AUDIT_URL) as one of its approvers: a teammate's agent's call.")
    var remote = false

    @Argument(help: ArgumentHelp("The approval id (apr_…) the denial named.", valueName: "id"))
    var id: String?

    func validate() throws {
        if list && id != nil { throw ValidationError("--list takes no ID") }
        if !list && id == nil { throw ValidationError("name the approval: kontext approve ID (or --list)") }
        if list && remote { throw ValidationError("--list shows this machine's approvals; --remote goes with an ID") }
    }

    func run(context: CommandContext) async throws {
        try ApprovalDecision.refuseInAgent(context, command: "approve")
        let settings = try context.settings()
        if remote { return try await ApprovalDecision.decideRemotely(id: id!, approve: true, settings: settings, streams: context.streams) }
        let store = try ApprovalStore(environment: settings.environment)
        if list { return try printList(store, settings: settings, streams: context.streams) }
        try ApprovalDecision.decide(id: id!, approve: true, store: store, settings: settings, streams: context.streams)
    }

    private func printList(_ store: ApprovalStore, settings: Settings, streams: OutputStreams) throws {
        let (open, expired) = try store.waiting()
        ApprovalDecision.record(expired, settings: settings)
        guard !open.isEmpty else { return streams.printError("kontext: no approval is waiting") }
        var rows: [[String]] = [["ID", "STATE", "EXPIRES", "SESSION", "TOOL", "CALL"]]
        for approval in open {
            rows.append([approval.id, approval.state.rawValue, AuditTime.format(epochSeconds: approval.expiresAt),
                         String(approval.sessionID.prefix(12)), sanitized(approval.toolName, limit: 64), sanitized(approval.input, limit: 120)])
        }
        streams.print(formatTable(rows))
    }
}

/// What `approve` and `deny` share: who may decide, and the audit of each decision.
enum ApprovalDecision {
    /// An agent runs commands as its user: inside a session (the session's variables set)
    /// or with no terminal to type at, a decision is refused.
    static func refuseInAgent(_ context: CommandContext, command: String) throws {
        try ProjectConsent.refuseInsideSession(context.environment, command: command, refusal: "is refused",
                                               hint: "an agent cannot decide its own approvals: the user runs `kontext \(command) ID` in another terminal")
    }

    /// The terminal's device, or the refusal: approvals are typed by a person.
    static func requireTerminal(command: String) throws -> Int64 {
        guard let terminal = controllingTerminal() else {
            throw KontextError.usage("kontext \(command) needs a terminal (/dev/tty cannot be opened)",
                                     hint: "run it yourself in a terminal; approvals are never given by scripts or agents")
        }
        return terminal
    }

    static func decide(id: String, approve: Bool, store: ApprovalStore, settings: Settings, streams: OutputStreams) throws {
        let command = approve ? "approve" : "deny"
        let terminal = try requireTerminal(command: command)
        let approver = localActor().sub ?? "local"
        switch try store.decide(id: id, approve: approve, by: approver, terminal: terminal, ttl: settings.approvalTTL) {
        case .decided(let approval):
            record([approval], settings: settings)
            let call = "\(sanitized(approval.toolName, limit: 64)) \(sanitized(approval.input, limit: 200))"
            streams.printError(approve
                ? "kontext: approved \(approval.id): \(call); the agent's identical retry passes once until \(AuditTime.format(epochSeconds: approval.expiresAt))"
                : "kontext: denied \(approval.id): \(call)")
        case .notFound:
            throw KontextError.usage("no approval '\(sanitized(id, limit: 64))'", hint: "`kontext approve --list` shows those waiting")
        case .expired(let approval):
            record([approval], settings: settings)
            throw KontextError.usage("approval \(approval.id) expired at \(AuditTime.format(epochSeconds: approval.expiresAt)); nothing was approved",
                                     hint: "the agent's next identical call opens a new approval")
        case .sameTerminal(let approval):
            throw KontextError.usage("approval \(approval.id) must be given from another terminal than the agent's session",
                                     hint: "open another terminal and run `kontext \(command) \(approval.id)` there")
        case .alreadyDecided(let approval):
            throw KontextError.usage("approval \(approval.id) is already \(approval.state.rawValue)",
                                     hint: approval.state == .used ? "an approval lets one call through; a new call opens a new approval" : nil)
        }
    }

    /// Through the broker, whose `approvers` say who may (no terminal needed: the broker knows
    /// who is asking).
    static func decideRemotely(id: String, approve: Bool, settings: Settings, streams: OutputStreams) async throws {
        let answer = try await RemoteApprovalDecision.decide(id: id, approve: approve, settings: settings)
        let call = [answer["tool_name"]?.stringValue, answer["input"]?.stringValue].compactMap { $0.map { sanitized($0, limit: 200) } }
            .joined(separator: " ")
        streams.printError("kontext: \(approve ? "approved" : "denied") \(sanitized(id, limit: 64)) at the broker"
                           + (answer["requester"]?.stringValue.map { " for \(sanitized($0, limit: 200))" } ?? "")
                           + (call.isEmpty ? "" : ": \(call)"))
    }

    /// Each step into the session's audit (the user's store): who approved or denied, what expired.
    static func record(_ approvals: [Approval], settings: Settings) {
        guard !approvals.isEmpty else { return }
        do {
            let writer = AuditWriter(store: try AuditStore(environment: settings.environment))
            defer { writer.close() }
            for approval in approvals { _ = try writer.append(approval.auditEvent()) }
        } catch {
            printError("kontext: warning: the approval's audit event was not recorded: \(error)")
        }
    }
}
