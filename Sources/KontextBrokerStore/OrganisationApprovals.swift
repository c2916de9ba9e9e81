/// An organisation approval (SPEC section 12) as the broker keeps it: registered by the
/// session that wants the call approved, decided by an approver, used by that session's
/// retry. Times are Unix seconds by the database's clock, so replicas agree on expiry.
public struct OrganisationApproval: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        case pending, approved, denied, used
        /// Pending or approved past `expiresAt` (computed when read, never written).
        case expired
    }

    public var id: String
    /// The principal whose session asked.
    public var requester: String
    public var sessionID: String
    public var toolName: String
    /// The call's canonical input as the session redacted it (the text its audit events
    /// carry), for the approver to read.
    public var input: String
    /// `sha256:` of `input`: what a use must present.
    public var inputDigest: String
    public var reason: String?
    public var rule: String?
    public var risk: String?
    public var state: State
    public var decidedBy: String?
    public var createdAt: Double
    /// Pending: the decision must come by then; approved: the retry must.
    public var expiresAt: Double
    public var decidedAt: Double?
    public var usedAt: Double?
    /// Seconds it waits for a decision, and once approved for the retry.
    public var ttl: Double

    /// A new pending approval; the store sets its times.
    public init(id: String, requester: String, sessionID: String, toolName: String, input: String, inputDigest: String,
                reason: String?, rule: String?, risk: String?, ttl: Double) {
        self.init(id: id, requester: requester, sessionID: sessionID, toolName: toolName, input: input, inputDigest: inputDigest,
                  reason: reason, rule: rule, risk: risk, state: .pending, decidedBy: nil, createdAt: 0, expiresAt: 0,
                  decidedAt: nil, usedAt: nil, ttl: ttl)
    }

    public init(id: String, requester: String, sessionID: String, toolName: String, input: String, inputDigest: String,
                reason: String?, rule: String?, risk: String?, state: State, decidedBy: String?, createdAt: Double,
                expiresAt: Double, decidedAt: Double?, usedAt: Double?, ttl: Double) {
        self.id = id
        self.requester = requester
        self.sessionID = sessionID
        self.toolName = toolName
        self.input = input
        self.inputDigest = inputDigest
        self.reason = reason
        self.rule = rule
        self.risk = risk
        self.state = state
        self.decidedBy = decidedBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.decidedAt = decidedAt
        self.usedAt = usedAt
        self.ttl = ttl
    }
}

/// What registering an approval did.
public enum ApprovalOpening: Sendable, Equatable {
    case opened(OrganisationApproval)
    /// The id is taken.
    case exists
    /// The requester has `capacity` approvals open already.
    case full
}

/// The organisation's approvals in the broker's database. Every change is one conditional
/// UPDATE that checks state and expiry by the database's clock: of two replicas deciding or
/// using the same approval at once, exactly one changes it.
public protocol OrganisationApprovalStore: Sendable {
    /// Stores a pending approval that waits `approval.ttl` seconds, unless the id exists or
    /// the requester has `capacity` approvals not yet expired.
    func openApproval(_ approval: OrganisationApproval, capacity: Int) async throws -> ApprovalOpening
    func approval(id: String) async throws -> OrganisationApproval?
    /// Pending → approved (the retry then has `ttl` seconds) or denied, by anyone but the
    /// requester, before it expires. nil when nothing changed (`approval(id:)` says why).
    func decideApproval(id: String, approve: Bool, by decider: String) async throws -> OrganisationApproval?
    /// Approved → used, once, by the requester for the identical call before it expires.
    /// nil when nothing changed.
    func useApproval(id: String, requester: String, sessionID: String, toolName: String,
                     inputDigest: String) async throws -> OrganisationApproval?
    /// Deletes the approvals whose deadline passed more than `age` seconds ago; returns how many.
    func pruneApprovals(olderThan age: Double) async throws -> Int
}
