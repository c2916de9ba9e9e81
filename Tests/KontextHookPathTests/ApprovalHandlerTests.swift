import Foundation
import KontextAgent
@testable import KontextAudit
import KontextCore
import KontextHookWire
import KontextPolicy
import KontextSidecar
import KontextTestSupport
import Testing

/// SPEC section 12's approvals through the sidecar's handler, over real SQLite stores: an
/// approval covers exactly one call of exactly that input, once, in time, in this session.
@Suite struct ApprovalHandlerTests {
    final class Fixture {
        let base = try! HandlerFixture()
        let approvals: ApprovalStore

        init() throws {
            approvals = try ApprovalStore(path: base.directory.appendingPathComponent("approvals.db").path)
        }

        func handler(_ mode: PolicyMode = .enforce, ttl: Int = 300, session: SessionInfo? = nil) throws -> HookHandler {
            var handler = try base.handler(mode)
            if let session { handler.session = session }
            handler.approvals = ApprovalGate(store: approvals, ttl: ttl)
            return handler
        }

        func call(_ command: String, handler: HookHandler? = nil) throws -> (decision: String?, reason: String?, id: String?) {
            let answer = try (handler ?? self.handler()).handle(request(.preTool, toolCall(command)))
            let decision = try preToolDecision(answer)
            let id = decision?.reason.flatMap { reason in
                reason.range(of: "apr_[a-z0-9]{12}", options: .regularExpression).map { String(reason[$0]) }
            }
            return (decision?.decision, decision?.reason, id)
        }

        func approve(_ id: String, at now: Double = wallClock(), terminal: Int64? = 7) throws -> ApprovalDecisionResult {
            try approvals.decide(id: id, approve: true, by: "local:tester", terminal: terminal, ttl: 300, now: now)
        }
    }

    @Test func anApprovedCallPassesOnceAndOnlyThatCall() throws {
        let fixture = try Fixture()
        let first = try fixture.call("rm -rf build")
        #expect(first.decision == "deny")
        let id = try #require(first.id, "no approval id in \(first.reason ?? "nil")")
        #expect(first.reason?.contains("kontext approve \(id)") == true)
        // Asking again before approval names the same approval.
        #expect(try fixture.call("rm -rf build").id == id)
        guard case .decided(let approval) = try fixture.approve(id) else { Issue.record("not approved"); return }
        #expect(approval.state == .approved && approval.decidedBy == "local:tester")
        // A different call is not covered (and opens its own approval).
        let other = try fixture.call("rm -rf build2")
        #expect(other.decision == "deny" && other.id != id)
        // The identical call passes once …
        let retry = try fixture.call("rm -rf build")
        #expect(retry.decision == "allow" && retry.reason?.contains("approved by local:tester") == true, "\(retry)")
        // … and only once.
        let third = try fixture.call("rm -rf build")
        #expect(third.decision == "deny" && third.id != nil && third.id != id)
        guard case .alreadyDecided(let used) = try fixture.approve(id) else { Issue.record("a used approval was approved again"); return }
        #expect(used.state == .used)
        let decisions = try fixture.base.events().compactMap(\.decision)
        #expect(decisions.map(\.outcome) == [.deny, .deny, .deny, .allow, .deny])
        #expect(decisions.map(\.approvalID) == [id, id, other.id, id, third.id])
        #expect(decisions.allSatisfy { $0.risk == .destructive && $0.rule == PolicyEvaluator.destructiveRule })
    }

    @Test func theApprovalIsBoundToTheSessionAndItsUser() throws {
        let fixture = try Fixture()
        let id = try #require(try fixture.call("git push --force").id)
        _ = try fixture.approve(id)
        var otherSession = fixture.base.session
        otherSession.id = "another-\(UUID().uuidString)"
        #expect(try fixture.call("git push --force", handler: fixture.handler(session: otherSession)).decision == "deny")
        var otherUser = fixture.base.session
        otherUser.actor = AuditActor(sub: "someone-else")
        #expect(try fixture.call("git push --force", handler: fixture.handler(session: otherUser)).decision == "deny")
        #expect(try fixture.call("git push --force").decision == "allow")
    }

    @Test func anExpiredApprovalIsRefusedAndAudited() throws {
        let fixture = try Fixture()
        let id = try #require(try fixture.call("terraform destroy", handler: fixture.handler(ttl: 1)).id)
        guard case .expired(let approval) = try fixture.approve(id, at: wallClock() + 2) else {
            Issue.record("a late approval was accepted"); return
        }
        #expect(approval.state == .expired)
        // Approved in time but not used in time: the retry finds it expired, says so in the audit.
        let second = try #require(try fixture.call("terraform destroy", handler: fixture.handler(ttl: 1)).id)
        #expect(second != id)
        _ = try fixture.approve(second)
        try fixture.approvals.queue.write { db in
            try db.execute(sql: "UPDATE approvals SET expires_at = expires_at - 1000 WHERE id = ?", arguments: [second])
        }
        let late = try fixture.call("terraform destroy")
        #expect(late.decision == "deny" && late.id != second)
        let expired = try fixture.base.events().filter { $0.event == .approval }
        #expect(expired.map(\.decision?.approvalID) == [second])
        #expect(expired.first?.toolInput["state"] == .string("expired"))
    }

    @Test func theAgentsTerminalCannotApprove() throws {
        let fixture = try Fixture()
        var handler = try fixture.handler()
        handler.approvals?.terminal = 42
        let id = try #require(try fixture.call("kubectl delete ns prod", handler: handler).id)
        guard case .sameTerminal = try fixture.approve(id, terminal: 42) else { Issue.record("approved from the agent's terminal"); return }
        guard case .decided = try fixture.approve(id, terminal: 43) else { Issue.record("not approved from another terminal"); return }
    }

    /// Observe mode records the would-be approval and opens none; interactive Claude asks.
    @Test func observeModeOpensNoApprovalAndInteractiveClaudeAsks() throws {
        let fixture = try Fixture()
        #expect(try fixture.call("rm -rf build", handler: fixture.handler(.observe)).decision == nil)
        #expect(try fixture.approvals.waiting().open.isEmpty)
        var interactive = try fixture.handler()
        interactive.approvals?.interactive = true
        #expect(try fixture.call("rm -rf build", handler: interactive).decision == "ask")
        let decisions = try fixture.base.events().compactMap(\.decision)
        #expect(decisions.map(\.outcome) == [.deny, .ask] && decisions.allSatisfy { $0.approvalID == nil })
    }

    /// Only an interactive Claude on a terminal asks its user; `-p` and Codex never can.
    @Test func whoCanAskItsUser() {
        #expect(ClaudeAdapter().asksItsUser(arguments: ["--model", "x"], onTerminal: true))
        #expect(!ClaudeAdapter().asksItsUser(arguments: ["-p", "do it"], onTerminal: true))
        #expect(!ClaudeAdapter().asksItsUser(arguments: ["--print", "do it"], onTerminal: true))
        #expect(!ClaudeAdapter().asksItsUser(arguments: [], onTerminal: false))
        #expect(!CodexAdapter().asksItsUser(arguments: [], onTerminal: true))
    }
}
