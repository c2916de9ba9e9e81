import KontextAudit
import KontextCore
import KontextPolicy

/// Who the session is, stamped on each egress event (as the sidecar stamps hook events).
public struct EgressSession: Sendable {
    public var id: String
    public var agent: String
    public var actor: AuditActor
    public var host: String?
    public var cwd: String?

    public init(id: String, agent: String, actor: AuditActor, host: String?, cwd: String?) {
        self.id = id
        self.agent = agent
        self.actor = actor
        self.host = host
        self.cwd = cwd
    }
}

/// One audit event per request to a bound host (SPEC section 11): `event: "egress"`,
/// `tool_name` the service, `tool_input` `{method, host, path}` (the path without its query,
/// which may carry tokens), `tool_response` `{status, bytes}` (bytes of the response body;
/// `error` too when the exchange failed). Written through the session's group-commit writer,
/// without waiting: the request goes on while the event commits.
public struct EgressAudit: Sendable {
    public var session: EgressSession
    public var writer: AuditWriter
    public var redactor: Redactor
    public var log: @Sendable (String) -> Void

    public init(session: EgressSession, writer: AuditWriter, redactor: Redactor, log: @escaping @Sendable (String) -> Void) {
        self.session = session
        self.writer = writer
        self.redactor = redactor
        self.log = log
    }

    public static let handleMisuseRule = "builtin:handle-misuse"

    func record(service: String, method: String, host: String, path: String, status: Int, bytes: Int,
                verdict: PolicyVerdict, enforced: Bool, error: String? = nil) {
        var response: [(String, JSONValue)] = [("status", .number(Double(status))), ("bytes", .number(Double(bytes)))]
        if let error { response.append(("error", .string(error))) }
        let event = AuditEvent(
            sessionID: session.id, agent: session.agent, event: .egress, toolName: service,
            toolInput: .object([("method", .string(method)), ("host", .string(host)), ("path", .string(path))]),
            toolResponse: .object(response),
            decision: AuditDecision(outcome: AuditDecision.Outcome(verdict.decision),
                                    reason: verdict.reason, rule: verdict.rule, enforced: enforced),
            actor: session.actor, host: session.host, cwd: session.cwd)
        let log = log
        writer.append(event.sanitized(redactor: redactor)) { result in
            if case .failure(let failure) = result { log("audit store write failed for an egress event: \(failure)") }
        }
    }
}
