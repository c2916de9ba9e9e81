import Foundation
import KontextBrokerService
import KontextCore
import KontextTestSupport
import Testing

/// SPEC section 12 at the broker: `[[policy]]` served at `GET /v1/policy` with its content
/// hash as version, and organisation approvals decided only by `approvers`, never by the
/// principal whose session asked.
@Suite struct PolicyAPITests {
    static let approvers = #"approvers = ["user:*:carol"]"#
    static let policy = TestSupport.noProdDeployPolicy + """


        [[policy]]
        risk = "destructive"
        decision = "approve"
        """

    @Test func thePolicyIsServedWithItsVersion() async throws {
        let setup = try await BrokerSetup.make("policy-api", topLevel: Self.approvers, extraConfig: Self.policy)
        let broker = try await setup.serve()
        defer { Task { await broker.stop() } }
        let unauthenticated = try await call("GET", broker.baseURL + "/v1/policy", token: nil)
        #expect(unauthenticated.status == 401)
        let served = try await call("GET", broker.baseURL + "/v1/policy", token: try await setup.token(sub: "bob"))
        #expect(served.status == 200, "\(served.text)")
        let text = try #require(served.body["policy"]?.stringValue)
        #expect(served.body["version"]?.stringValue == "sha256:" + (try sha256(text)))
        #expect(text.contains("[[rule]]") && text.contains("no-prod-deploy"))
        #expect(served.body["rules"]?.arrayValue?.count == 2)
        #expect(served.body["rules"]?.arrayValue?.first?["id"] == .string("no-prod-deploy"))
        let again = try await call("GET", broker.baseURL + "/v1/policy", token: try await setup.token(sub: "dave"))
        #expect(again.body["version"] == served.body["version"], "the version is the content's, not the request's")
    }

    @Test func aBadPolicyRuleStopsTheBrokerFromStarting() async throws {
        let setup = try await BrokerSetup.make("policy-bad", extraConfig: "[[policy]]\ntool = \"Bash\"\ndecision = \"maybe\"\n")
        await #expect(throws: KontextError.self) { _ = try await setup.serve() }
    }

    @Test func onlyAnApproverWhoDidNotAskMayDecide() async throws {
        let setup = try await BrokerSetup.make("approvals-api", topLevel: Self.approvers, extraConfig: Self.policy)
        let broker = try await setup.serve()
        defer { Task { await broker.stop() } }
        let bob = try await setup.token(sub: "bob"), carol = try await setup.token(sub: "carol"), dave = try await setup.token(sub: "dave")
        let expires = Date().timeIntervalSince1970 + 300
        let opened = try await call("POST", broker.baseURL + "/v1/approvals", token: bob, body: """
            {"approval_id":"apr_abcdefghjkmn","session_id":"s1","tool_name":"Bash","input":"{\\"command\\":\\"rm -rf build\\"}","expires_at":\(expires)}
            """)
        #expect(opened.status == 201, "\(opened.text)")
        // A non-approver is refused; so is an approver deciding their own session's call.
        let byDave = try await call("POST", broker.baseURL + "/v1/approvals/apr_abcdefghjkmn", token: dave, body: #"{"decision":"approve"}"#)
        #expect(byDave.status == 403 && byDave.error == "forbidden", "\(byDave.text)")
        let carolsOwn = try await call("POST", broker.baseURL + "/v1/approvals", token: carol, body: """
            {"approval_id":"apr_ownownownown","session_id":"s2","tool_name":"Bash","input":"{}","expires_at":\(expires)}
            """)
        #expect(carolsOwn.status == 201)
        let selfApproval = try await call("POST", broker.baseURL + "/v1/approvals/apr_ownownownown", token: carol, body: #"{"decision":"approve"}"#)
        #expect(selfApproval.status == 403, "\(selfApproval.text)")
        // The requester cannot read another's approval state; dave cannot read bob's.
        #expect(try await call("GET", broker.baseURL + "/v1/approvals/apr_abcdefghjkmn", token: dave).status == 404)
        #expect(try await call("GET", broker.baseURL + "/v1/approvals/apr_abcdefghjkmn", token: bob).body["state"] == .string("pending"))
        let byCarol = try await call("POST", broker.baseURL + "/v1/approvals/apr_abcdefghjkmn", token: carol, body: #"{"decision":"approve"}"#)
        #expect(byCarol.status == 200, "\(byCarol.text)")
        #expect(byCarol.body["decided_by"] == .string(setup.user("carol")))
        let seen = try await call("GET", broker.baseURL + "/v1/approvals/apr_abcdefghjkmn", token: bob)
        #expect(seen.body["state"] == .string("approved") && seen.body["decided_by"] == .string(setup.user("carol")))
        let twice = try await call("POST", broker.baseURL + "/v1/approvals/apr_abcdefghjkmn", token: carol, body: #"{"decision":"deny"}"#)
        #expect(twice.status == 409)
        #expect(try await call("POST", broker.baseURL + "/v1/approvals/apr_nonexistent0", token: carol, body: "{}").status == 404)
    }
}

func sha256(_ text: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    return String(try runProcess(process, stdin: text, timeout: 10).stdout.prefix(64))
}
