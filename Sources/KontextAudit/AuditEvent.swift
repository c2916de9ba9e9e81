import KontextCore
import KontextHookWire

/// One audit event, exactly the object of SPEC section 7.
///
/// Wire shape (`json`, `kontext audit export --format jsonl`, the shipping body): every key is
/// always present, in this order: `id`, `session_id`, `seq`, `time`, `agent`, `event`,
/// `tool_name`, `tool_input`, `tool_response`, `decision`, `actor`, `host`, `cwd`,
/// `prev_hash`, `hash` (SPEC section 12: the session's hash chain, see `AuditChain`).
/// A value kontext does not have is JSON `null`, never a missing key: `tool_name`,
/// `tool_input` and `tool_response` for events without a tool, `decision` for events that
/// were not judged by policy (anything but `pre-tool`), `host` and `cwd` when unknown, and
/// `actor.sub` / `actor.email` when there is no identity (`actor` itself is always an object).
///
/// `user-prompt` events have no tool; their prompt text goes in `tool_input` as
/// `{"prompt": TEXT}` (redacted and truncated like any tool input, see `sanitized`), so the
/// SPEC's field list needs no extra key. `promptInput(_:)` builds that object.
public struct AuditEvent: Sendable, Equatable {
    public typealias Kind = AuditEventKind

    /// Unique across all sessions and machines (the backend de-duplicates on it); by default
    /// `AuditIdentifier.timeOrdered()`.
    public var id: String
    public var sessionID: String
    /// Position in the session, from 1, assigned by `AuditWriter` in commit order; 0 until then.
    public var seq: Int
    /// RFC 3339 UTC with milliseconds, as produced by `AuditTime`.
    public var time: String
    public var agent: String
    public var event: Kind
    public var toolName: String?
    /// `.null` when the event has no tool input.
    public var toolInput: JSONValue
    /// `.null` when the event has no tool response (everything but `post-tool`).
    public var toolResponse: JSONValue
    public var decision: AuditDecision?
    public var actor: AuditActor
    public var host: String?
    public var cwd: String?
    /// The `hash` of the session's previous event (the chain's genesis for `seq` 1), assigned
    /// by `AuditWriter` with `seq`; nil until then, and in events stored before chaining.
    public var prevHash: String?
    /// SHA-256 (lowercase hex) of the RFC 8785 canonical JSON of `json` without `hash`.
    public var hash: String?

    public init(
        id: String = AuditIdentifier.timeOrdered(),
        sessionID: String,
        seq: Int = 0,
        time: String = AuditTime.now(),
        agent: String,
        event: Kind,
        toolName: String? = nil,
        toolInput: JSONValue = .null,
        toolResponse: JSONValue = .null,
        decision: AuditDecision? = nil,
        actor: AuditActor = AuditActor(),
        host: String? = nil,
        cwd: String? = nil,
        prevHash: String? = nil,
        hash: String? = nil
    ) {
        self.id = id
        self.sessionID = sessionID
        self.seq = seq
        self.time = time
        self.agent = agent
        self.event = event
        self.toolName = toolName
        self.toolInput = toolInput
        self.toolResponse = toolResponse
        self.decision = decision
        self.actor = actor
        self.host = host
        self.cwd = cwd
        self.prevHash = prevHash
        self.hash = hash
    }

    /// The `tool_input` of a `user-prompt` event.
    public static func promptInput(_ prompt: String) -> JSONValue {
        .object([("prompt", .string(prompt))])
    }

    /// The keys of `json`, in order.
    public static let keys = [
        "id", "session_id", "seq", "time", "agent", "event", "tool_name", "tool_input",
        "tool_response", "decision", "actor", "host", "cwd", "prev_hash", "hash",
    ]
}

/// What an event records: the hook EVENT names of SPEC section 2 (`kontext hook EVENT`),
/// and `egress`, a request the credential proxy sent to a bound host (SPEC section 11).
public enum AuditEventKind: String, CaseIterable, Sendable {
    case preTool = "pre-tool"
    case postTool = "post-tool"
    case userPrompt = "user-prompt"
    case sessionStart = "session-start"
    case sessionEnd = "session-end"
    case stop = "stop"
    case egress = "egress"
    /// A signed checkpoint of the session's hash chain (`AuditCheckpoint`), written by kontext.
    case checkpoint = "checkpoint"
    /// A step of an approval (SPEC section 12) other than the request and the use, which are
    /// the `pre-tool` events that carry `decision.approval_id`: approved, denied, expired.
    case approval = "approval"

    public init(_ hook: HookEvent) {
        self.init(rawValue: hook.rawValue)!
    }
}

/// The policy verdict recorded with an event.
public struct AuditDecision: Sendable, Equatable {
    public enum Outcome: String, Sendable, CaseIterable {
        case allow, ask, deny
    }

    public var outcome: Outcome
    public var reason: String?
    /// The rule that matched (its name or position), nil when no rule matched.
    public var rule: String?
    /// False in observe mode: the outcome was recorded but not applied.
    public var enforced: Bool
    /// SPEC section 12's optional fields, written only when set: the call's risk tier, the
    /// organisation policy's version in force, and the approval the call opened or used.
    public var risk: RiskTier?
    public var policyVersion: String?
    public var approvalID: String?

    public init(outcome: Outcome, reason: String? = nil, rule: String? = nil, enforced: Bool,
                risk: RiskTier? = nil, policyVersion: String? = nil, approvalID: String? = nil) {
        self.outcome = outcome
        self.reason = reason
        self.rule = rule
        self.enforced = enforced
        self.risk = risk
        self.policyVersion = policyVersion
        self.approvalID = approvalID
    }
}

extension AuditDecision.Outcome {
    /// `approve` is recorded as the `deny` it is until approved (with `approval_id`).
    public init(_ decision: PolicyDecision) {
        self.init(rawValue: decision.forAgent.rawValue)!
    }
}

/// Who ran the session: the OIDC subject and email, or nils when there is no identity.
public struct AuditActor: Sendable, Equatable {
    public var sub: String?
    public var email: String?

    public init(sub: String? = nil, email: String? = nil) {
        self.sub = sub
        self.email = email
    }
}

// MARK: - JSON

extension AuditEvent {
    public var json: JSONValue {
        .object([
            ("id", .string(id)),
            ("session_id", .string(sessionID)),
            ("seq", .number(Double(seq))),
            ("time", .string(time)),
            ("agent", .string(agent)),
            ("event", .string(event.rawValue)),
            ("tool_name", JSONValue(optional: toolName)),
            ("tool_input", toolInput),
            ("tool_response", toolResponse),
            ("decision", decision?.json ?? .null),
            ("actor", actor.json),
            ("host", JSONValue(optional: host)),
            ("cwd", JSONValue(optional: cwd)),
            ("prev_hash", JSONValue(optional: prevHash)),
            ("hash", JSONValue(optional: hash)),
        ])
    }

    /// Parses an object written by `json`. Required: `id`, `session_id`, `seq`, `time`,
    /// `agent` and a known `event`; the other keys may be null or missing.
    public init(json: JSONValue) throws {
        guard json.objectValue != nil else { throw AuditEvent.invalid("not a JSON object") }
        func requiredString(_ key: String) throws -> String {
            guard let value = json[key]?.stringValue else { throw AuditEvent.invalid("\"\(key)\" must be a string") }
            return value
        }
        func optionalString(_ key: String, in object: JSONValue = json) throws -> String? {
            switch object[key] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            default: throw AuditEvent.invalid("\"\(key)\" must be a string or null")
            }
        }

        id = try requiredString("id")
        sessionID = try requiredString("session_id")
        guard case .number(let seqNumber)? = json["seq"], seqNumber >= 0, seqNumber < 9e15,
              seqNumber == seqNumber.rounded() else {
            throw AuditEvent.invalid("\"seq\" must be a non-negative integer")
        }
        seq = Int(seqNumber)
        time = try requiredString("time")
        agent = try requiredString("agent")
        let eventName = try requiredString("event")
        guard let kind = Kind(rawValue: eventName) else {
            throw AuditEvent.invalid("unknown event \"\(eventName)\" (expected one of "
                + Kind.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        event = kind
        toolName = try optionalString("tool_name")
        toolInput = json["tool_input"] ?? .null
        toolResponse = json["tool_response"] ?? .null

        switch json["decision"] {
        case nil, .null?:
            decision = nil
        case .object(_)?:
            let object = json["decision"]!
            let outcomeName = object["outcome"]?.stringValue ?? ""
            guard let outcome = AuditDecision.Outcome(rawValue: outcomeName) else {
                throw AuditEvent.invalid("\"decision.outcome\" must be allow, ask or deny")
            }
            guard case .bool(let enforced)? = object["enforced"] else {
                throw AuditEvent.invalid("\"decision.enforced\" must be true or false")
            }
            let riskName = try optionalString("risk", in: object)
            guard riskName.map({ RiskTier(rawValue: $0) != nil }) ?? true else {
                throw AuditEvent.invalid("\"decision.risk\" must be read, write or destructive")
            }
            decision = AuditDecision(outcome: outcome, reason: try optionalString("reason", in: object),
                                     rule: try optionalString("rule", in: object), enforced: enforced,
                                     risk: riskName.flatMap(RiskTier.init(rawValue:)),
                                     policyVersion: try optionalString("policy_version", in: object),
                                     approvalID: try optionalString("approval_id", in: object))
        default:
            throw AuditEvent.invalid("\"decision\" must be an object or null")
        }

        switch json["actor"] {
        case nil, .null?:
            actor = AuditActor()
        case .object(_)?:
            let object = json["actor"]!
            actor = AuditActor(sub: try optionalString("sub", in: object), email: try optionalString("email", in: object))
        default:
            throw AuditEvent.invalid("\"actor\" must be an object or null")
        }

        host = try optionalString("host")
        cwd = try optionalString("cwd")
        prevHash = try optionalString("prev_hash")
        hash = try optionalString("hash")
    }

    /// Parses one line of `kontext audit export --format jsonl`.
    public init(jsonText: String) throws {
        let value: JSONValue
        do { value = try JSONValue.parse(jsonText) } catch { throw AuditEvent.invalid("\(error)") }
        try self.init(json: value)
    }

    static func invalid(_ reason: String) -> KontextError {
        KontextError(.usage, "invalid audit event: \(reason)")
    }
}

extension AuditDecision {
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("outcome", .string(outcome.rawValue)),
            ("reason", JSONValue(optional: reason)),
            ("rule", JSONValue(optional: rule)),
            ("enforced", .bool(enforced)),
        ]
        if let risk { members.append(("risk", .string(risk.rawValue))) }
        if let policyVersion { members.append(("policy_version", .string(policyVersion))) }
        if let approvalID { members.append(("approval_id", .string(approvalID))) }
        return .object(members)
    }
}

extension AuditActor {
    public var json: JSONValue {
        .object([("sub", JSONValue(optional: sub)), ("email", JSONValue(optional: email))])
    }
}

extension JSONValue {
    /// A string, or null for nil.
    init(optional string: String?) {
        self = string.map(JSONValue.string) ?? .null
    }
}
