import Foundation
import KontextTestSupport
import Testing

/// SPEC sections 10 and 12 with a real `kontext broker serve`: the organisation's
/// `[[policy]]` is fetched at session start in remote mode, evaluated as the `org:` layer
/// (a user's allow cannot widen it), stamped as `decision.policy_version`, cached for when
/// the broker is down; and an approver approves a teammate's agent's call through the broker.
@Suite(.enabled(if: TestSupport.hasSessionBus, "needs dbus-run-session and gnome-keyring (scripts/test sets them up)"))
struct OrganisationPolicyTests {
    struct Fixture {
        let scratch: URL
        let issuers: [String: LoopbackServer]
        let broker: ServedBroker
        let config: String
        let database: String
        let environment: [String: String]

        /// Another `broker serve` on the same configuration and database: a replica, or with
        /// `listen` the same broker restarted at its former address.
        func replica(_ name: String, listen: String = "127.0.0.1:0") throws -> ServedBroker {
            try ServedBroker(config: config, database: database, environment: environment,
                             log: scratch.appendingPathComponent("broker-\(name).log"), listen: listen)
        }

        /// Stops the fixture's broker and starts it again at the same address on the same database.
        func restartBroker() throws -> ServedBroker {
            broker.process.terminate()
            broker.process.waitUntilExit()
            return try replica("restarted", listen: String(broker.baseURL.dropFirst("http://".count)))
        }
    }

    /// Three users of three device-flow issuers (bob, carol, dave) with JWT access tokens,
    /// and a broker trusting all three whose approvers are carol; its database is a SQLite
    /// file unless `database` names another.
    func fixture(_ label: String, database: String? = nil) throws -> Fixture {
        let scratch = TestSupport.makeTemporaryDirectory(label)
        var issuers: [String: LoopbackServer] = [:]
        for name in ["bob", "carol", "dave"] {
            issuers[name] = try deviceIssuer(scratch, subject: name, extra: ["--jwt-access-tokens"])
        }
        let config = try organisationBrokerConfig(scratch, issuers: issuers.values.map(\.baseURL), topLevel: "approvers = [\"user:*:carol\"]\n")
        let environment = brokerEnvironment()
        let database = database ?? "sqlite:" + scratch.appendingPathComponent("broker.db").path
        let broker = try ServedBroker(config: config, database: database, environment: environment,
                                      log: scratch.appendingPathComponent("broker.log"))
        return Fixture(scratch: scratch, issuers: issuers, broker: broker, config: config, database: database, environment: environment)
    }

    /// `name`'s login, with `broker` (the fixture's by default) as the audit backend.
    func user(_ f: Fixture, _ name: String, broker: ServedBroker? = nil) throws -> RemoteUser {
        let user = RemoteUser("org-\(name)", issuer: f.issuers[name]!.baseURL, extra: ["KONTEXT_AUDIT_URL": (broker ?? f.broker).baseURL])
        let login = try user.kontext(["login", "--device"])
        #expect(login.status == 0, "\(login.stderr)")
        return user
    }

    /// A session whose agent sends one pre-tool call per line of `commands` through the real
    /// hook front, each answer to `answer-N.json`; before call N it waits for `go-N` if the
    /// test asks it to (`waits`).
    func session(_ user: RemoteUser, commands: [String], waits: Set<Int> = []) -> (run: @Sendable () throws -> ProcessResult, directory: URL) {
        var script = ""
        for (index, command) in commands.enumerated() {
            if waits.contains(index) { script += "while [ ! -f go-\(index) ]; do sleep 0.05; done\n" }
            script += "printf '%s' '{\"session_id\":\"s\",\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"\(command)\"}}'"
                + " | \"$KONTEXT_HOOK\" hook pre-tool --agent claude > answer-\(index).json\n"
        }
        user.sandbox.write("agent.sh", script)
        let runtime = user.sandbox.root.appendingPathComponent("run")
        try? FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return ({
            try user.kontext(["start", "--agent-command", "/bin/sh", "--agent", "claude", "--mode", "enforce", "--", "agent.sh"],
                             extra: ["KONTEXT_HOOK": TestSupport.kontextPath, "XDG_RUNTIME_DIR": runtime.path], timeout: 120)
        }, user.sandbox.workingDirectory)
    }

    @Test func theOrganisationsDenyBeatsTheUsersAllowAndIsCachedForOffline() throws {
        let f = try fixture("org-policy")
        var bob = try user(f, "bob")
        let userPolicy = bob.sandbox.root.appendingPathComponent("user-policy.toml")
        try "[[rule]]\nid = \"deploys-ok\"\ntool = \"Bash\"\ncommand = \"./deploy *\"\ndecision = \"allow\"\n"
            .write(to: userPolicy, atomically: true, encoding: .utf8)
        bob.environment["KONTEXT_POLICY"] = userPolicy.path
        let (run, directory) = session(bob, commands: ["./deploy prod --now", "./deploy staging"])
        let first = try run()
        #expect(first.status == 0, "\(first.stderr)")
        let answer = try String(contentsOf: directory.appendingPathComponent("answer-0.json"), encoding: .utf8)
        #expect(answer.contains("\"deny\"") && answer.contains("production deploys go through the pipeline"), "\(answer)")
        #expect(try String(contentsOf: directory.appendingPathComponent("answer-1.json"), encoding: .utf8).contains("\"allow\""))

        let cachePath = bob.sandbox.home.appendingPathComponent(".local/state/kontext/org-policy.json")
        let cache = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: cachePath)) as? [String: Any])
        let version = try #require(cache["version"] as? String)
        #expect(version == "sha256:" + (try sha256Hex(cache["policy"] as? String ?? "")))
        #expect(try FileManager.default.attributesOfItem(atPath: cachePath.path)[.posixPermissions] as? Int == 0o600)
        func preTools() throws -> [[String: Any]] {
            try exportedEvents(bob.sandbox).filter { $0["event"] as? String == "pre-tool" }.compactMap { $0["decision"] as? [String: Any] }
        }
        let decisions = try preTools()
        #expect(decisions.count == 2)
        #expect(decisions.first?["rule"] as? String == "org:no-prod-deploy" && decisions.first?["outcome"] as? String == "deny")
        #expect(decisions.last?["rule"] as? String == "user:deploys-ok")
        #expect(decisions.allSatisfy { $0["policy_version"] as? String == version }, "\(decisions)")
        let show = try bob.kontext(["policy", "show"])
        #expect(show.stdout.contains("[org]") && show.stdout.contains("no-prod-deploy: deny"), "\(show.stdout)")

        // The broker is down: the cached copy still denies, and says so.
        f.broker.process.terminate()
        f.broker.process.waitUntilExit()
        let offline = try run()
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(offline.stderr.contains("using the copy cached"), "\(offline.stderr)")
        #expect(try String(contentsOf: directory.appendingPathComponent("answer-0.json"), encoding: .utf8).contains("\"deny\""))
        let again = try preTools().suffix(2)
        #expect(again.first?["rule"] as? String == "org:no-prod-deploy" && again.allSatisfy { $0["policy_version"] as? String == version })
    }

    @Test func anApproverApprovesATeammatesCallThroughTheBroker() throws {
        let f = try fixture("org-approval")
        let bob = try user(f, "bob"), carol = try user(f, "carol"), dave = try user(f, "dave")
        let (run, directory) = session(bob, commands: ["rm -rf build", "rm -rf build"], waits: [1])
        nonisolated(unsafe) var outcome: Result<ProcessResult, any Error>?
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            outcome = Result { try run() }
            finished.signal()
        }
        let go = directory.appendingPathComponent("go-1")
        defer { try? "".write(to: go, atomically: true, encoding: .utf8) }
        let id = try eventually("the denial") { () -> String? in
            (try? String(contentsOf: directory.appendingPathComponent("answer-0.json"), encoding: .utf8)).flatMap { approvalIDs(in: $0).first }
        }
        let refused = try dave.kontext(["approve", id, "--remote"])
        #expect(refused.status == 3 && refused.stderr.contains("is not an approver"), "\(refused.stderr)")
        let ownApproval = try bob.kontext(["approve", id, "--remote"])
        #expect(ownApproval.status == 3, "\(ownApproval.stderr)")
        let approved = try carol.kontext(["approve", id, "--remote"])
        #expect(approved.status == 0 && approved.stderr.contains("approved \(id) at the broker"), "\(approved.stderr)")
        try "".write(to: go, atomically: true, encoding: .utf8)
        finished.wait()
        #expect(try outcome?.get().status == 0)
        let retry = try String(contentsOf: directory.appendingPathComponent("answer-1.json"), encoding: .utf8)
        #expect(retry.contains("\"allow\"") && retry.contains("approved by broker:user:"), "\(retry)")
        let events = try exportedEvents(bob.sandbox)
        let step = events.first { $0["event"] as? String == "approval" }
        #expect(((step?["decision"] as? [String: Any])?["reason"] as? String)?.hasSuffix(":carol") == true, "\(String(describing: step))")
    }

    /// Runs `session` on a thread of its own; the returned function waits for its result.
    func inBackground(_ run: @escaping @Sendable () throws -> ProcessResult) -> () throws -> ProcessResult {
        nonisolated(unsafe) var outcome: Result<ProcessResult, any Error>?
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            outcome = Result { try run() }
            finished.signal()
        }
        return {
            finished.wait()
            return try outcome!.get()
        }
    }

    func answer(_ directory: URL, _ index: Int) throws -> String {
        try String(contentsOf: directory.appendingPathComponent("answer-\(index).json"), encoding: .utf8)
    }

    /// Bob's session makes the same destructive call three times. After the first is denied,
    /// `meanwhile` runs (a broker restart, say) and carol approves through her broker; the
    /// second call must pass and the third be denied with a new approval. Returns the id.
    func expectApprovedCallPassesOnce(_ bob: RemoteUser, approver carol: RemoteUser, meanwhile: () throws -> Void = {},
                                      sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (run, directory) = session(bob, commands: ["rm -rf build", "rm -rf build", "rm -rf build"], waits: [1])
        let go = directory.appendingPathComponent("go-1")
        defer { try? "".write(to: go, atomically: true, encoding: .utf8) }
        let finished = inBackground(run)
        let id = try eventually("the denial") { (try? answer(directory, 0)).flatMap { approvalIDs(in: $0).first } }
        try meanwhile()
        let approved = try carol.kontext(["approve", id, "--remote"])
        #expect(approved.status == 0 && approved.stderr.contains("approved \(id) at the broker"), "\(approved.stderr)",
                sourceLocation: sourceLocation)
        try "".write(to: go, atomically: true, encoding: .utf8)
        #expect(try finished().status == 0, sourceLocation: sourceLocation)
        let retry = try answer(directory, 1)
        #expect(retry.contains("\"allow\"") && retry.contains("approved by broker:user:"), "\(retry)", sourceLocation: sourceLocation)
        let third = try answer(directory, 2)
        #expect(third.contains("\"deny\"") && !approvalIDs(in: third).contains(id), "single use: \(third)", sourceLocation: sourceLocation)
        return id
    }

    /// The broker keeps approvals in its database: one opened before a restart is approved
    /// after it, and the agent's retry goes through once.
    @Test func anOrganisationApprovalOutlivesABrokerRestart() throws {
        let f = try fixture("org-approval-restart")
        let bob = try user(f, "bob"), carol = try user(f, "carol")
        var restarted: ServedBroker?
        _ = try expectApprovedCallPassesOnce(bob, approver: carol) { restarted = try f.restartBroker() }
        #expect(restarted?.baseURL == f.broker.baseURL)
    }

    /// With the broker's database shared, an approval expired before a restart stays refused after it.
    @Test func anOrganisationApprovalThatExpiredIsRefusedAfterARestart() throws {
        let f = try fixture("org-approval-expired")
        var bob = try user(f, "bob")
        bob.environment["KONTEXT_APPROVAL_TTL"] = "2"
        let carol = try user(f, "carol")
        let (run, directory) = session(bob, commands: ["rm -rf build"])
        #expect(try run().status == 0)
        let id = try #require(approvalIDs(in: try answer(directory, 0)).first)
        Thread.sleep(forTimeInterval: 3)
        let restarted = try f.restartBroker()
        let late = try carol.kontext(["approve", id, "--remote"])
        #expect(late.status != 0 && late.stderr.contains("expired"), "\(late.stderr)")
        #expect(restarted.baseURL == f.broker.baseURL)
    }

    /// Two replicas on one PostgreSQL: the session's calls go to A, the approver approves at
    /// B, and the retry through A goes through exactly once. Needs scripts/with-postgres.
    @Test func anApprovalGivenAtOneReplicaIsUsedOnceThroughTheOther() throws {
        let f = try fixture("org-approval-replicas", database: try TestSupport.makePostgresDatabase())
        let b = try f.replica("b")
        let bob = try user(f, "bob"), carol = try user(f, "carol", broker: b)
        let id = try expectApprovedCallPassesOnce(bob, approver: carol)
        // Used at the broker too: approving it again is refused at either replica.
        let again = try carol.kontext(["approve", id, "--remote"])
        #expect(again.status != 0 && again.stderr.contains("already used"), "\(again.stderr)")
    }
}
