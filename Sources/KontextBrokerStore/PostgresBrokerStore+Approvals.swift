import PostgresNIO

/// `OrganisationApprovalStore` (through `BrokerStore`), shared by every replica: each change
/// is one UPDATE … WHERE state … AND expires_at > now() RETURNING, so of two replicas racing
/// exactly one gets the row.
extension PostgresBrokerStore {
    /// Unix seconds by the database's clock: replicas' own clocks never decide expiry.
    static let now = "extract(epoch from now())::float8"

    static let approvalStatements = [
        """
        CREATE TABLE org_approvals (
            id TEXT PRIMARY KEY, requester TEXT NOT NULL, session_id TEXT NOT NULL, tool_name TEXT NOT NULL,
            input TEXT NOT NULL, input_digest TEXT NOT NULL, reason TEXT, rule TEXT, risk TEXT, state TEXT NOT NULL,
            decided_by TEXT, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
            decided_at DOUBLE PRECISION, used_at DOUBLE PRECISION, ttl DOUBLE PRECISION NOT NULL)
        """,
        "CREATE INDEX org_approvals_by_expiry ON org_approvals(expires_at)",
        "CREATE INDEX org_approvals_by_requester ON org_approvals(requester, expires_at)",
    ]

    static let approvalColumns = """
        id, requester, session_id, tool_name, input, input_digest, reason, rule, risk,
        CASE WHEN state IN ('pending', 'approved') AND expires_at <= \(now) THEN 'expired' ELSE state END,
        decided_by, created_at, expires_at, decided_at, used_at, ttl
        """

    private typealias ApprovalRow = (String, String, String, String, String, String, String?, String?, String?, String,
                                     String?, Double, Double, Double?, Double?, Double)

    /// The rows `query` returns (its columns `approvalColumns`).
    private func approvals(_ what: String, _ query: PostgresQuery) async throws -> [OrganisationApproval] {
        try await rows(what) { client, logger in
            var result: [OrganisationApproval] = []
            for try await r in try await client.query(query, logger: logger).decode(ApprovalRow.self) {
                result.append(OrganisationApproval(id: r.0, requester: r.1, sessionID: r.2, toolName: r.3, input: r.4, inputDigest: r.5,
                                                   reason: r.6, rule: r.7, risk: r.8, state: OrganisationApproval.State(rawValue: r.9) ?? .expired,
                                                   decidedBy: r.10, createdAt: r.11, expiresAt: r.12, decidedAt: r.13, usedAt: r.14, ttl: r.15))
            }
            return result
        }
    }

    public func openApproval(_ a: OrganisationApproval, capacity: Int) async throws -> ApprovalOpening {
        let opened = try await approvals("store an approval", """
            INSERT INTO org_approvals (id, requester, session_id, tool_name, input, input_digest, reason, rule, risk, state,
                                       created_at, expires_at, ttl)
            SELECT \(a.id), \(a.requester), \(a.sessionID), \(a.toolName), \(a.input), \(a.inputDigest), \(a.reason), \(a.rule),
                   \(a.risk), 'pending', \(unescaped: Self.now), \(unescaped: Self.now) + \(a.ttl), \(a.ttl)
            WHERE (SELECT count(*) FROM org_approvals WHERE requester = \(a.requester) AND expires_at > \(unescaped: Self.now)) < \(capacity)
            ON CONFLICT (id) DO NOTHING
            RETURNING \(unescaped: Self.approvalColumns)
            """)
        if let approval = opened.first { return .opened(approval) }
        return try await approval(id: a.id) == nil ? .full : .exists
    }

    public func approval(id: String) async throws -> OrganisationApproval? {
        try await approvals("read an approval", "SELECT \(unescaped: Self.approvalColumns) FROM org_approvals WHERE id = \(id)").first
    }

    public func decideApproval(id: String, approve: Bool, by decider: String) async throws -> OrganisationApproval? {
        try await approvals("decide an approval", """
            UPDATE org_approvals SET state = \(approve ? "approved" : "denied"), decided_by = \(decider), decided_at = \(unescaped: Self.now),
                expires_at = CASE WHEN \(approve) THEN \(unescaped: Self.now) + ttl ELSE expires_at END
            WHERE id = \(id) AND state = 'pending' AND expires_at > \(unescaped: Self.now) AND requester <> \(decider)
            RETURNING \(unescaped: Self.approvalColumns)
            """).first
    }

    public func useApproval(id: String, requester: String, sessionID: String, toolName: String,
                            inputDigest: String) async throws -> OrganisationApproval? {
        try await approvals("use an approval", """
            UPDATE org_approvals SET state = 'used', used_at = \(unescaped: Self.now)
            WHERE id = \(id) AND requester = \(requester) AND session_id = \(sessionID) AND tool_name = \(toolName)
                AND input_digest = \(inputDigest) AND state = 'approved' AND expires_at > \(unescaped: Self.now)
            RETURNING \(unescaped: Self.approvalColumns)
            """).first
    }

    public func pruneApprovals(olderThan age: Double) async throws -> Int {
        try await count("prune approvals", "DELETE FROM org_approvals WHERE expires_at < \(unescaped: Self.now) - \(age) RETURNING 1")
    }
}
