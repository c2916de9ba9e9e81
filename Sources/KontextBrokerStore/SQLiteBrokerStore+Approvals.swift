import GRDB

/// `OrganisationApprovalStore` (through `BrokerStore`) in the SQLite file: one broker process
/// per file, so a write transaction already serialises every change; the conditional
/// UPDATEs keep it so anyway.
extension SQLiteBrokerStore {
    /// Unix seconds by SQLite's clock ('now' is fixed for the whole statement).
    static let now = "((julianday('now') - 2440587.5) * 86400.0)"

    static func registerApprovalMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("organisation approvals") { db in
            try db.execute(sql: """
                CREATE TABLE org_approvals (
                    id TEXT PRIMARY KEY NOT NULL,
                    requester TEXT NOT NULL,
                    session_id TEXT NOT NULL,
                    tool_name TEXT NOT NULL,
                    input TEXT NOT NULL,
                    input_digest TEXT NOT NULL,
                    reason TEXT,
                    rule TEXT,
                    risk TEXT,
                    state TEXT NOT NULL,
                    decided_by TEXT,
                    created_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    decided_at REAL,
                    used_at REAL,
                    ttl REAL NOT NULL
                );
                CREATE INDEX org_approvals_by_expiry ON org_approvals(expires_at);
                CREATE INDEX org_approvals_by_requester ON org_approvals(requester, expires_at);
                """)
        }
    }

    static let approvalColumns = """
        id, requester, session_id, tool_name, input, input_digest, reason, rule, risk,
        CASE WHEN state IN ('pending', 'approved') AND expires_at <= \(now) THEN 'expired' ELSE state END AS state,
        decided_by, created_at, expires_at, decided_at, used_at, ttl
        """

    static func approval(_ row: Row) -> OrganisationApproval {
        OrganisationApproval(id: row["id"], requester: row["requester"], sessionID: row["session_id"], toolName: row["tool_name"],
                             input: row["input"], inputDigest: row["input_digest"], reason: row["reason"], rule: row["rule"],
                             risk: row["risk"], state: OrganisationApproval.State(rawValue: row["state"]) ?? .expired,
                             decidedBy: row["decided_by"], createdAt: row["created_at"], expiresAt: row["expires_at"],
                             decidedAt: row["decided_at"], usedAt: row["used_at"], ttl: row["ttl"])
    }

    static func approval(_ db: Database, id: String) throws -> OrganisationApproval? {
        try Row.fetchOne(db, sql: "SELECT \(approvalColumns) FROM org_approvals WHERE id = ?", arguments: [id]).map(approval)
    }

    public func openApproval(_ a: OrganisationApproval, capacity: Int) async throws -> ApprovalOpening {
        try await pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM org_approvals WHERE id = ?", arguments: [a.id]) != nil { return .exists }
            let open = try Int.fetchOne(db, sql: "SELECT count(*) FROM org_approvals WHERE requester = ? AND expires_at > \(Self.now)",
                                        arguments: [a.requester]) ?? 0
            guard open < capacity else { return .full }
            try db.execute(sql: """
                INSERT INTO org_approvals (id, requester, session_id, tool_name, input, input_digest, reason, rule, risk, state,
                                           created_at, expires_at, ttl)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', \(Self.now), \(Self.now) + ?, ?)
                """, arguments: [a.id, a.requester, a.sessionID, a.toolName, a.input, a.inputDigest, a.reason, a.rule, a.risk,
                                 a.ttl, a.ttl])
            return try Self.approval(db, id: a.id).map(ApprovalOpening.opened) ?? .exists
        }
    }

    public func approval(id: String) async throws -> OrganisationApproval? {
        try await pool.read { db in try Self.approval(db, id: id) }
    }

    public func decideApproval(id: String, approve: Bool, by decider: String) async throws -> OrganisationApproval? {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE org_approvals SET state = ?, decided_by = ?, decided_at = \(Self.now),
                    expires_at = CASE WHEN ? THEN \(Self.now) + ttl ELSE expires_at END
                WHERE id = ? AND state = 'pending' AND expires_at > \(Self.now) AND requester <> ?
                """, arguments: [approve ? "approved" : "denied", decider, approve, id, decider])
            return db.changesCount == 1 ? try Self.approval(db, id: id) : nil
        }
    }

    public func useApproval(id: String, requester: String, sessionID: String, toolName: String,
                            inputDigest: String) async throws -> OrganisationApproval? {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE org_approvals SET state = 'used', used_at = \(Self.now)
                WHERE id = ? AND requester = ? AND session_id = ? AND tool_name = ? AND input_digest = ?
                    AND state = 'approved' AND expires_at > \(Self.now)
                """, arguments: [id, requester, sessionID, toolName, inputDigest])
            return db.changesCount == 1 ? try Self.approval(db, id: id) : nil
        }
    }

    public func pruneApprovals(olderThan age: Double) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM org_approvals WHERE expires_at < \(Self.now) - ?", arguments: [age])
            return db.changesCount
        }
    }
}
