import Foundation
import KontextBrokerStore
import KontextTestSupport
import Testing

/// Both broker stores' organisation approvals: two store instances on one database stand
/// for two replicas; of many simultaneous decisions or uses exactly one changes the row.
@Suite struct OrganisationApprovalStoreTests {
    /// Two stores on one database, migrated.
    func stores(_ kind: String) async throws -> [any BrokerStore] {
        let url = kind == "postgres" ? try TestSupport.makePostgresDatabase()
            : "sqlite:" + TestSupport.makeTemporaryDirectory("approval-store").appendingPathComponent("broker.db").path
        var result: [any BrokerStore] = []
        for _ in 0..<2 {
            let store = try await BrokerStores.open(url)
            try await store.migrate()
            result.append(store)
        }
        return result
    }

    func pending(_ id: String, ttl: Double = 300) -> OrganisationApproval {
        OrganisationApproval(id: id, requester: "user:idp:bob", sessionID: "s1", toolName: "Bash", input: #"{"command":"rm -rf build"}"#,
                             inputDigest: "sha256:00", reason: nil, rule: "builtin:destructive", risk: "destructive", ttl: ttl)
    }

    @Test(arguments: ["sqlite", "postgres"]) func anApprovalIsDecidedOnceAndUsedOnceUnderConcurrency(_ kind: String) async throws {
        let stores = try await stores(kind)
        guard case .opened(let opened) = try await stores[0].openApproval(pending("apr_concurrent01"), capacity: 10) else {
            Issue.record("not opened"); return
        }
        #expect(opened.state == .pending && abs(opened.expiresAt - opened.createdAt - 300) < 0.01)
        #expect(try await stores[1].openApproval(pending("apr_concurrent01"), capacity: 10) == .exists)
        #expect(try await stores[1].decideApproval(id: "apr_concurrent01", approve: true, by: "user:idp:bob") == nil, "the requester decided")

        let decisions = try await withThrowingTaskGroup(of: OrganisationApproval?.self) { group in
            for attempt in 0..<10 {
                let store = stores[attempt % 2]
                group.addTask { try await store.decideApproval(id: "apr_concurrent01", approve: attempt % 3 != 0, by: "user:idp:carol\(attempt)") }
            }
            return try await group.reduce(into: [OrganisationApproval]()) { changed, approval in if let approval { changed.append(approval) } }
        }
        #expect(decisions.count == 1, "\(decisions)")
        guard decisions.first?.state == .approved else {
            // A denial won the race: nothing to use.
            #expect(try await stores[0].useApproval(id: "apr_concurrent01", requester: "user:idp:bob", sessionID: "s1", toolName: "Bash",
                                                    inputDigest: "sha256:00") == nil)
            return
        }
        #expect(try await stores[0].useApproval(id: "apr_concurrent01", requester: "user:idp:bob", sessionID: "s1", toolName: "Bash",
                                                inputDigest: "sha256:ff") == nil, "another call")
        #expect(try await stores[0].useApproval(id: "apr_concurrent01", requester: "user:idp:dave", sessionID: "s1", toolName: "Bash",
                                                inputDigest: "sha256:00") == nil, "another principal")
        let uses = try await withThrowingTaskGroup(of: OrganisationApproval?.self) { group in
            for attempt in 0..<20 {
                let store = stores[attempt % 2]
                group.addTask {
                    try await store.useApproval(id: "apr_concurrent01", requester: "user:idp:bob", sessionID: "s1", toolName: "Bash",
                                                inputDigest: "sha256:00")
                }
            }
            return try await group.reduce(into: [OrganisationApproval]()) { changed, approval in if let approval { changed.append(approval) } }
        }
        #expect(uses.count == 1 && uses.first?.state == .used, "\(uses)")
        #expect(try await stores[1].approval(id: "apr_concurrent01")?.state == .used)
        for store in stores { await store.close() }
    }

    @Test(arguments: ["sqlite", "postgres"]) func expiredApprovalsAreRefusedAndOldOnesPruned(_ kind: String) async throws {
        let stores = try await stores(kind)
        #expect(try await stores[0].openApproval(pending("apr_longlived001"), capacity: 10) != .full)
        #expect(try await stores[0].openApproval(pending("apr_overcapacity"), capacity: 1) == .full, "one is open already")
        #expect(try await stores[0].openApproval(pending("apr_shortlived01", ttl: 1), capacity: 10) != .full)
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await stores[1].approval(id: "apr_shortlived01")?.state == .expired)
        #expect(try await stores[1].decideApproval(id: "apr_shortlived01", approve: true, by: "user:idp:carol") == nil)
        #expect(try await stores[1].pruneApprovals(olderThan: 24 * 3600) == 0, "expired less than a day ago")
        #expect(try await stores[1].pruneApprovals(olderThan: 0) == 1)
        #expect(try await stores[0].approval(id: "apr_shortlived01") == nil)
        #expect(try await stores[0].approval(id: "apr_longlived001")?.state == .pending)
        for store in stores { await store.close() }
    }
}
