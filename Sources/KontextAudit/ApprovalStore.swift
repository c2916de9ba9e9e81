#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GRDB
import KontextCore
import KontextHookWire

/// One approval (SPEC section 12): a call a policy wants a person to approve, bound to the
/// session, its user, the tool and the call's canonical input.
public struct Approval: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        /// Waiting for `kontext approve` or `kontext deny`.
        case pending
        /// Approved and not yet used: the identical call passes once.
        case approved
        case denied
        /// Let one call through; never again.
        case used
        /// Neither approved nor used in time.
        case expired
    }

    public var id: String
    public var sessionID: String
    /// The session's user (`actor.sub`).
    public var actor: String?
    public var agent: String
    public var toolName: String
    /// The call's canonical input (`Approval.canonicalInput`), redacted like the audit's.
    public var input: String
    public var rule: String?
    public var reason: String?
    public var risk: RiskTier?
    public var host: String?
    public var cwd: String?
    /// The device of the session's controlling terminal (its `/dev/tty`), if it had one:
    /// an approval must come from another terminal than the agent's.
    public var terminal: Int64?
    /// Unix seconds.
    public var requestedAt: Double
    /// Pending: the user must decide by then; approved: the retry must come by then.
    public var expiresAt: Double
    public var state: State
    public var decidedBy: String?
    public var decidedAt: Double?
    public var usedAt: Double?

    /// The input an approval is bound to: object keys sorted at every depth, compact JSON.
    /// A shell tool's `description` is left out: it says why, it does not change what runs.
    public static func canonicalInput(toolName: String, input: JSONValue) -> String {
        var value = sortedKeys(input)
        if case .object(let members) = value, members.contains(where: { $0.0 == "command" || $0.0 == "cmd" }) {
            value = .object(members.filter { $0.0 != "description" })
        }
        return value.serialized
    }

    static func sortedKeys(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            return .object(members.map { ($0.0, sortedKeys($0.1)) }.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) })
        case .array(let items):
            return .array(items.map(sortedKeys))
        default:
            return value
        }
    }

    /// Ids people type: `apr_` and 12 characters of an alphabet without look-alikes.
    public static func newID() -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")
        var bytes = [UInt8](repeating: 0, count: 12)
        fillRandom(&bytes)
        return "apr_" + String(bytes.map { alphabet[Int($0) % alphabet.count] })
    }

    private static func fillRandom(_ bytes: inout [UInt8]) {
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...UInt8.max, using: &generator) }
    }
}

/// What the sidecar found for a call that needs approval.
public enum ApprovalLookup: Sendable, Equatable {
    /// An approval for exactly this call was granted: it is now used.
    case used(Approval)
    /// Nothing granted: this approval (new, or the one already waiting) is pending.
    case pending(Approval, isNew: Bool)
}

/// What `kontext approve` or `kontext deny` did.
public enum ApprovalDecisionResult: Sendable, Equatable {
    case decided(Approval)
    case notFound
    case expired(Approval)
    /// Already approved, denied, used or expired earlier.
    case alreadyDecided(Approval)
    /// Asked from the agent's own terminal.
    case sameTerminal(Approval)
}

/// The user's approvals, in `$XDG_STATE_HOME/kontext/approvals.db` (0600, like the audit
/// store): written by the session's sidecar, decided by `kontext approve` / `kontext deny` in
/// another terminal. Every state change is one conditional UPDATE, so two processes racing
/// (a retry and an expiry, two approvers) change a row once.
public final class ApprovalStore: Sendable {
    public let path: String
    let queue: DatabaseQueue

    public static func defaultPath(environment: [String: String]) -> String {
        XDGDirectories(environment: environment).state + "/kontext/approvals.db"
    }

    public convenience init(environment: [String: String]) throws {
        try self.init(path: Self.defaultPath(environment: environment))
    }

    public init(path: String) throws {
        self.path = path
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]), mode: 0o700)
        }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { fchmod(fd, 0o600); close(fd) }
        var configuration = Configuration()
        configuration.busyMode = .timeout(AuditStore.busyTimeoutSeconds)
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(queue)
        } catch {
            throw AuditStore.failure("cannot open the approvals store \(path)", error)
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: approvals") { db in
            try db.execute(sql: """
                CREATE TABLE approvals (
                    id TEXT PRIMARY KEY NOT NULL,
                    session_id TEXT NOT NULL,
                    actor TEXT,
                    agent TEXT NOT NULL,
                    tool_name TEXT NOT NULL,
                    input TEXT NOT NULL,
                    rule TEXT,
                    reason TEXT,
                    risk TEXT,
                    host TEXT,
                    cwd TEXT,
                    terminal INTEGER,
                    requested_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    state TEXT NOT NULL,
                    decided_by TEXT,
                    decided_at REAL,
                    used_at REAL
                );
                CREATE INDEX approvals_by_call ON approvals(session_id, tool_name, state);
                """)
        }
        return migrator
    }

    /// For a call that needs approval: uses a granted approval of exactly this call (session,
    /// user, tool, input) if there is one in time, else returns the one already waiting, else
    /// opens a new one. `expired` lists the approvals of this session that ran out since last
    /// looked at (each reported once, for the audit).
    public func useOrRequest(_ request: Approval, ttl: Int, now: Double = wallClock()) throws
        -> (lookup: ApprovalLookup, expired: [Approval]) {
        try write("look up the approval") { db in
            let expired = try Self.expire(db, sessionID: request.sessionID, now: now)
            let match = "session_id = ? AND actor IS ? AND tool_name = ? AND input = ?"
            let key: StatementArguments = [request.sessionID, request.actor, request.toolName, request.input]
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM approvals WHERE \(match) AND state = 'approved' ORDER BY decided_at LIMIT 1",
                                          arguments: key) {
                var approval = Self.approval(row)
                try db.execute(sql: "UPDATE approvals SET state = 'used', used_at = ? WHERE id = ? AND state = 'approved'",
                               arguments: [now, approval.id])
                if db.changesCount == 1 {
                    approval.state = .used
                    approval.usedAt = now
                    return (.used(approval), expired)
                }
            }
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM approvals WHERE \(match) AND state = 'pending' ORDER BY requested_at LIMIT 1",
                                          arguments: key) {
                return (.pending(Self.approval(row), isNew: false), expired)
            }
            var approval = request
            approval.requestedAt = now
            approval.expiresAt = now + Double(ttl)
            approval.state = .pending
            try db.execute(sql: """
                INSERT INTO approvals (id, session_id, actor, agent, tool_name, input, rule, reason, risk, host, cwd, terminal,
                                       requested_at, expires_at, state)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')
                """, arguments: [approval.id, approval.sessionID, approval.actor, approval.agent, approval.toolName, approval.input,
                                 approval.rule, approval.reason, approval.risk?.rawValue, approval.host, approval.cwd, approval.terminal,
                                 approval.requestedAt, approval.expiresAt])
            return (.pending(approval, isNew: true), expired)
        }
    }

    /// Approves (or denies) a pending approval; an approved one then has `ttl` seconds for
    /// the agent's retry.
    /// `terminal` is the decider's terminal device: the session's own is refused.
    public func decide(id: String, approve: Bool, by approver: String, terminal: Int64?, ttl: Int,
                       now: Double = wallClock()) throws -> ApprovalDecisionResult {
        try write("decide the approval") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM approvals WHERE id = ?", arguments: [id]) else { return .notFound }
            var approval = Self.approval(row)
            if let sessionTerminal = approval.terminal, sessionTerminal == terminal { return .sameTerminal(approval) }
            if approval.state == .pending, approval.expiresAt < now {
                try db.execute(sql: "UPDATE approvals SET state = 'expired' WHERE id = ? AND state = 'pending'", arguments: [id])
                approval.state = .expired
                return .expired(approval)
            }
            guard approval.state == .pending else { return .alreadyDecided(approval) }
            let state: Approval.State = approve ? .approved : .denied
            let expires = approve ? now + Double(ttl) : approval.expiresAt
            try db.execute(sql: """
                UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, expires_at = ? WHERE id = ? AND state = 'pending'
                """, arguments: [state.rawValue, approver, now, expires, id])
            guard db.changesCount == 1 else { return .alreadyDecided(approval) }
            approval.state = state
            approval.decidedBy = approver
            approval.decidedAt = now
            approval.expiresAt = expires
            return .decided(approval)
        }
    }

    /// Approvals still waiting for a person or for the agent's retry, oldest first; those
    /// that ran out are marked expired and returned apart (for the audit).
    public func waiting(now: Double = wallClock()) throws -> (open: [Approval], expired: [Approval]) {
        try write("list approvals") { db in
            let expired = try Self.expire(db, sessionID: nil, now: now)
            let open = try Row.fetchAll(db, sql: "SELECT * FROM approvals WHERE state IN ('pending', 'approved') ORDER BY requested_at")
                .map(Self.approval)
            return (open, expired)
        }
    }

    public func approval(id: String) throws -> Approval? {
        try write("read the approval") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM approvals WHERE id = ?", arguments: [id]).map(Self.approval)
        }
    }

    /// Marks what ran out (of one session, or all) expired and returns it.
    static func expire(_ db: Database, sessionID: String?, now: Double) throws -> [Approval] {
        let scope = sessionID == nil ? "" : " AND session_id = ?"
        var arguments: StatementArguments = [now]
        if let sessionID { arguments += [sessionID] }
        let rows = try Row.fetchAll(db, sql: "SELECT * FROM approvals WHERE state IN ('pending', 'approved') AND expires_at < ?\(scope)",
                                    arguments: arguments)
        var expired: [Approval] = []
        for row in rows {
            var approval = approval(row)
            try db.execute(sql: "UPDATE approvals SET state = 'expired' WHERE id = ? AND state IN ('pending', 'approved')",
                           arguments: [approval.id])
            if db.changesCount == 1 {
                approval.state = .expired
                expired.append(approval)
            }
        }
        return expired
    }

    static func approval(_ row: Row) -> Approval {
        Approval(id: row["id"], sessionID: row["session_id"], actor: row["actor"], agent: row["agent"], toolName: row["tool_name"],
                 input: row["input"], rule: row["rule"], reason: row["reason"], risk: (row["risk"] as String?).flatMap(RiskTier.init(rawValue:)),
                 host: row["host"], cwd: row["cwd"], terminal: row["terminal"], requestedAt: row["requested_at"], expiresAt: row["expires_at"],
                 state: Approval.State(rawValue: row["state"]) ?? .expired, decidedBy: row["decided_by"], decidedAt: row["decided_at"],
                 usedAt: row["used_at"])
    }

    private func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        do { return try queue.write(body) } catch {
            throw AuditStore.failure("cannot \(what) in \(path)", error)
        }
    }
}

extension Approval {
    /// A new approval to request for a call (times and state are set by `useOrRequest`).
    public init(sessionID: String, actor: String?, agent: String, toolName: String, input: String, rule: String?, reason: String?,
                risk: RiskTier?, host: String?, cwd: String?, terminal: Int64? = nil) {
        self.init(id: Approval.newID(), sessionID: sessionID, actor: actor, agent: agent, toolName: toolName, input: input, rule: rule,
                  reason: reason, risk: risk, host: host, cwd: cwd, terminal: terminal, requestedAt: 0, expiresAt: 0, state: .pending, decidedBy: nil,
                  decidedAt: nil, usedAt: nil)
    }

    /// The `approval` audit event for this approval's current state (approved, denied,
    /// expired): `tool_name` is the call's tool, `tool_input` says which approval and who.
    public func auditEvent(enforced: Bool = true) -> AuditEvent {
        var input: [(String, JSONValue)] = [("approval_id", .string(id)), ("state", .string(state.rawValue))]
        if let decidedBy { input.append(("by", .string(decidedBy))) }
        input.append(("call", (try? JSONValue.parse(self.input)) ?? .string(self.input)))
        let reason: String
        switch state {
        case .approved: reason = "approved by \(decidedBy ?? "?")"
        case .denied: reason = "denied by \(decidedBy ?? "?")"
        case .expired: reason = "expired unused"
        case .used: reason = "used"
        case .pending: reason = "requested"
        }
        return AuditEvent(sessionID: sessionID, agent: agent, event: .approval, toolName: toolName, toolInput: .object(input),
                          decision: AuditDecision(outcome: state == .approved || state == .used ? .allow : .deny, reason: reason,
                                                  rule: rule, enforced: enforced, risk: risk, approvalID: id),
                          actor: AuditActor(sub: actor), host: host, cwd: cwd)
    }
}

/// The device number of this process's controlling terminal, nil without one.
public func controllingTerminal() -> Int64? {
    let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { return nil }
    return Int64(bitPattern: UInt64(info.st_rdev))
}

/// Unix time in seconds.
public func wallClock() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
