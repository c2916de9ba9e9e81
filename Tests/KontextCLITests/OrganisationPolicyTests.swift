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
    }

    /// Three users of three device-flow issuers (bob, carol, dave) with JWT access tokens,
    /// and a broker trusting all three whose approvers are carol.
    func fixture(_ label: String) throws -> Fixture {
        let scratch = TestSupport.makeTemporaryDirectory(label)
        var issuers: [String: LoopbackServer] = [:]
        for name in ["bob", "carol", "dave"] {
            issuers[name] = try deviceIssuer(scratch, subject: name, extra: ["--jwt-access-tokens"])
        }
        let config = try organisationBrokerConfig(scratch, issuers: issuers.values.map(\.baseURL), topLevel: "approvers = [\"user:*:carol\"]\n")
        let broker = try ServedBroker(config: config, database: "sqlite:" + scratch.appendingPathComponent("broker.db").path,
                                      environment: brokerEnvironment(), log: scratch.appendingPathComponent("broker.log"))
        return Fixture(scratch: scratch, issuers: issuers, broker: broker)
    }

    func user(_ f: Fixture, _ name: String) throws -> RemoteUser {
        let user = RemoteUser("org-\(name)", issuer: f.issuers[name]!.baseURL, extra: ["KONTEXT_AUDIT_URL": f.broker.baseURL])
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
}
