import Foundation
import KontextCore
import KontextTestSupport
import Testing

/// Organisation approvals kept in the broker's database (SPEC section 12): they outlive a
/// restart, every replica on one PostgreSQL sees the same ones, and using one is a single
/// conditional update, so of many attempts on several replicas exactly one succeeds.
@Suite(.serialized) struct OrganisationApprovalTests {
    static let approvers = #"approvers = ["user:*:carol"]"#
    static let command = #"{"command":"rm -rf build"}"#

    /// The session's registration, as its sidecar sends it.
    static func opening(_ id: String, session: String = "s1", expiresIn seconds: Double) -> String {
        let input = JSONValue.string(command).serialized
        return """
            {"approval_id":"\(id)","session_id":"\(session)","tool_name":"Bash","input":\(input),\
            "reason":"destructive","risk":"destructive","expires_at":\(Date().timeIntervalSince1970 + seconds)}
            """
    }

    /// The session's claim of an approved approval for its retry of the identical call.
    static func using(session: String = "s1", tool: String = "Bash", input: String = command) -> String {
        "{\"session_id\":\"\(session)\",\"tool_name\":\"\(tool)\",\"input\":\(JSONValue.string(input).serialized)}"
    }

    @Test func anApprovalOutlivesARestartAndIsUsedOnce() async throws {
        let setup = try await BrokerSetup.make("approvals-restart", topLevel: Self.approvers)
        let bob = try await setup.token(sub: "bob"), carol = try await setup.token(sub: "carol"), dave = try await setup.token(sub: "dave")
        let first = try BrokerProcess(config: setup.configPath, database: setup.database, environment: setup.environment)
        let opened = try await call("POST", first.baseURL + "/v1/approvals", token: bob, body: Self.opening("apr_restartrestar", expiresIn: 300))
        #expect(opened.status == 201, "\(opened.text)")
        #expect(first.stop().status == 0)

        // Another broker process on the same file: the approval is still there.
        let second = try BrokerProcess(config: setup.configPath, database: setup.database, environment: setup.environment)
        #expect(try await call("GET", second.baseURL + "/v1/approvals/apr_restartrestar", token: bob).body["state"] == .string("pending"))
        let approved = try await call("POST", second.baseURL + "/v1/approvals/apr_restartrestar", token: carol, body: #"{"decision":"approve"}"#)
        #expect(approved.status == 200, "\(approved.text)")
        #expect(approved.body["decided_by"] == .string(setup.user("carol")))
        #expect(second.stop().status == 0)

        let third = try BrokerProcess(config: setup.configPath, database: setup.database, environment: setup.environment)
        let base = third.baseURL + "/v1/approvals/apr_restartrestar"
        #expect(try await call("GET", base, token: bob).body["state"] == .string("approved"))
        // Bound to the call: another session, tool or input does not use it; nor does another principal.
        for wrong in [Self.using(session: "s2"), Self.using(tool: "Write"), Self.using(input: #"{"command":"rm -rf /"}"#)] {
            let refused = try await call("POST", base + "/use", token: bob, body: wrong)
            #expect(refused.status == 409, "\(wrong): \(refused.text)")
        }
        #expect(try await call("POST", base + "/use", token: dave, body: Self.using()).status == 404)
        let used = try await call("POST", base + "/use", token: bob, body: Self.using())
        #expect(used.status == 200 && used.body["state"] == .string("used"), "\(used.text)")
        #expect(used.body["decided_by"] == .string(setup.user("carol")))
        let again = try await call("POST", base + "/use", token: bob, body: Self.using())
        #expect(again.status == 409 && again.description.contains("used"), "\(again.text)")
        #expect(try await call("GET", base, token: bob).body["state"] == .string("used"))
        let (status, log) = third.stop()
        #expect(status == 0, "\(log)")
        // What the database holds of the call is its redacted text and hash, never a token.
        #expect(!databaseBytes(String(setup.database.dropFirst("sqlite:".count))).contains(Data(bob.utf8)))
        await setup.idp.stop()
    }

    @Test func anExpiredApprovalIsRefusedAfterARestart() async throws {
        let setup = try await BrokerSetup.make("approvals-expiry", topLevel: Self.approvers)
        let bob = try await setup.token(sub: "bob"), carol = try await setup.token(sub: "carol")
        let first = try BrokerProcess(config: setup.configPath, database: setup.database, environment: setup.environment)
        // One that nobody decides in time, and one approved whose retry comes too late.
        #expect(try await call("POST", first.baseURL + "/v1/approvals", token: bob, body: Self.opening("apr_undecidedund", expiresIn: 2)).status == 201)
        #expect(try await call("POST", first.baseURL + "/v1/approvals", token: bob, body: Self.opening("apr_latelatelate", expiresIn: 2)).status == 201)
        #expect(try await call("POST", first.baseURL + "/v1/approvals/apr_latelatelate", token: carol, body: #"{"decision":"approve"}"#).status == 200)
        #expect(first.stop().status == 0)
        try await Task.sleep(for: .seconds(3))

        let second = try BrokerProcess(config: setup.configPath, database: setup.database, environment: setup.environment)
        let late = try await call("POST", second.baseURL + "/v1/approvals/apr_undecidedund", token: carol, body: #"{"decision":"approve"}"#)
        #expect(late.status == 409 && late.error == "expired", "\(late.text)")
        #expect(try await call("GET", second.baseURL + "/v1/approvals/apr_undecidedund", token: bob).body["state"] == .string("expired"))
        let tooLate = try await call("POST", second.baseURL + "/v1/approvals/apr_latelatelate/use", token: bob, body: Self.using())
        #expect(tooLate.status == 409 && tooLate.error == "expired", "\(tooLate.text)")
        #expect(try await call("GET", second.baseURL + "/v1/approvals/apr_latelatelate", token: bob).body["state"] == .string("expired"))
        #expect(second.stop().status == 0)
        await setup.idp.stop()
    }

    /// Needs scripts/with-postgres (scripts/test runs the suite under it): fails, not skips, without it.
    @Test func twoReplicasOnOnePostgreSQLShareApprovalsAndLetOneUseThrough() async throws {
        let database = try TestSupport.makePostgresDatabase()
        let setup = try await BrokerSetup.make("approvals-replicas", database: database, topLevel: Self.approvers)
        let bob = try await setup.token(sub: "bob"), carol = try await setup.token(sub: "carol")
        let a = try BrokerProcess(config: setup.configPath, database: database, environment: setup.environment)
        let b = try BrokerProcess(config: setup.configPath, database: database, environment: setup.environment)

        // The session registers at A; the approver decides at B; the session sees it at A.
        #expect(try await call("POST", a.baseURL + "/v1/approvals", token: bob, body: Self.opening("apr_replicasrepl", expiresIn: 300)).status == 201)
        #expect(try await call("POST", b.baseURL + "/v1/approvals", token: bob, body: Self.opening("apr_replicasrepl", expiresIn: 300)).status == 409)
        let approved = try await call("POST", b.baseURL + "/v1/approvals/apr_replicasrepl", token: carol, body: #"{"decision":"approve"}"#)
        #expect(approved.status == 200, "\(approved.text)")
        #expect(try await call("GET", a.baseURL + "/v1/approvals/apr_replicasrepl", token: bob).body["state"] == .string("approved"))

        // Ten attempts to use it at once, alternating replicas: exactly one goes through.
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for attempt in 0..<10 {
                let base = (attempt % 2 == 0 ? a : b).baseURL
                group.addTask { try await call("POST", base + "/v1/approvals/apr_replicasrepl/use", token: bob, body: Self.using()).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 200 }.count == 1, "\(statuses)")
        #expect(statuses.filter { $0 == 409 }.count == 9, "\(statuses)")
        #expect(try await call("GET", b.baseURL + "/v1/approvals/apr_replicasrepl", token: bob).body["state"] == .string("used"))
        for replica in [a, b] {
            let (status, log) = replica.stop()
            #expect(status == 0, "\(log)")
        }
        await setup.idp.stop()
    }
}
