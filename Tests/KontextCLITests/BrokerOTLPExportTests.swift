import Foundation
import KontextTestSupport
import Testing

/// A broker.toml trusting the device-flow issuers `issuers` (audience `kontext-test`, users
/// allowed), whose `[[policy]]` denies production deploys; `topLevel` goes before the first
/// table, `extra` at the end.
func organisationBrokerConfig(_ scratch: URL, issuers: [String], topLevel: String = "", extra: String = "") throws -> String {
    let config = scratch.appendingPathComponent("broker.toml")
    try (topLevel + "\n" + issuers.map { """
        [[issuer]]
        issuer = "\($0)"
        audiences = ["kontext-test"]
        users = true

        """ }.joined() + TestSupport.noProdDeployPolicy + "\n" + extra + "\n").write(to: config, atomically: true, encoding: .utf8)
    return config.path
}

/// The broker's environment: a fresh vault key.
func brokerEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["KONTEXT_BROKER_VAULT_KEYS"] = "k1:" + Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    return environment.merging(extra) { $1 }
}

/// A remote-mode session of `user` whose agent sends `commands` through the real hook front
/// (Claude's dialect, enforce mode); returns the session id. Each command is expanded by the
/// agent's shell first (`echo $GITHUB_TOKEN` sends the value).
func remoteSession(_ user: RemoteUser, commands: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    var script = #"hook() { printf '{"tool_name":"Bash","tool_input":{"command":"%s"}}' "$1" | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null; }"# + "\n"
    for command in commands {
        script += "hook \"\(command)\"\n"
    }
    script += "printf '%s' \"$KONTEXT_SESSION_ID\" > session-id\n"
    user.sandbox.write("agent.sh", script)
    let runtime = user.sandbox.root.appendingPathComponent("run")
    try? FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let run = try user.kontext(["start", "--agent-command", "/bin/sh", "--agent", "claude", "--mode", "enforce", "--", "agent.sh"],
                               extra: ["KONTEXT_HOOK": TestSupport.kontextPath, "XDG_RUNTIME_DIR": runtime.path], timeout: 120)
    #expect(run.status == 0, "\(run.stderr)", sourceLocation: sourceLocation)
    return try String(contentsOf: user.sandbox.workingDirectory.appendingPathComponent("session-id"), encoding: .utf8)
}

/// SPEC section 12's OpenTelemetry export from the broker's ingest: a real `kontext broker
/// serve` exports every event a remote-mode session ships, with the documented resource
/// attributes, across an outage of the collector and restarts of the broker, each once.
@Suite(.enabled(if: TestSupport.hasSessionBus, "needs a Secret Service: run scripts/test"))
struct BrokerOTLPExportTests {
    @Test func everyShippedEventReachesTheCollectorOnceAcrossAnOutageAndRestarts() throws {
        let scratch = TestSupport.makeTemporaryDirectory("broker-otlp")
        let issuer = try deviceIssuer(scratch, extra: ["--jwt-access-tokens"])
        let config = try organisationBrokerConfig(scratch, issuers: [issuer.baseURL])
        let collector = try LoopbackServer(script: "otlp_receiver.py", arguments: [
            "--store", scratch.appendingPathComponent("collector.jsonl").path,
        ], in: scratch)
        collector.stop()  // down until the broker has restarted once
        let environment = brokerEnvironment(["KONTEXT_OTLP_ENDPOINT": collector.baseURL])
        let database = "sqlite:" + scratch.appendingPathComponent("broker.db").path
        var broker: ServedBroker? = try ServedBroker(config: config, database: database, environment: environment,
                                                     log: scratch.appendingPathComponent("broker-1.log"))
        var user = RemoteUser("broker-otlp", issuer: issuer.baseURL, extra: ["KONTEXT_AUDIT_URL": broker!.baseURL])
        #expect(try user.kontext(["login", "--device"]).status == 0)
        func received() throws -> [[String: Any]] {
            try collector.getJSON("/control/records") as? [[String: Any]] ?? []
        }
        func receivedIDs() throws -> [String] {
            try received().compactMap { ($0["attributes"] as? [String: Any])?["kontext.event.id"] as? String }
        }
        func restartBroker(_ number: Int) throws {
            broker = nil  // SIGTERM, and waits for the exit
            broker = try ServedBroker(config: config, database: database, environment: environment,
                                      log: scratch.appendingPathComponent("broker-\(number).log"))
            user.environment["KONTEXT_AUDIT_URL"] = broker!.baseURL
        }
        func waitFor(_ ids: [String]) throws {
            let deadline = Date().addingTimeInterval(60)
            while try !Set(ids).isSubset(of: Set(receivedIDs())), Date() < deadline { usleep(200_000) }
        }

        // The collector is down: the session ships to the broker all the same.
        let first = try remoteSession(user, commands: ["ls", "./deploy prod --now", "echo done"])
        let firstIDs = try exportedEvents(user.sandbox).filter { $0["session_id"] as? String == first }.compactMap { $0["id"] as? String }
        #expect(firstIDs.count >= 4, "a start and three calls: \(firstIDs)")
        let verified = try user.kontext(["audit", "verify", "--remote", first])
        #expect(verified.status == 0, "the broker holds the session: \(verified.stdout)\(verified.stderr)")

        // The broker restarts while the events wait; then the collector comes back.
        try restartBroker(2)
        try collector.restart()
        try waitFor(firstIDs)

        // With the collector up, a second session; then a restart with nothing pending.
        let second = try remoteSession(user, commands: ["pwd"])
        let secondIDs = try exportedEvents(user.sandbox).filter { $0["session_id"] as? String == second }.compactMap { $0["id"] as? String }
        try waitFor(secondIDs)
        try restartBroker(3)
        sleep(3)  // a few polls of the restarted exporter

        let ids = try receivedIDs()
        #expect(Set(ids) == Set(firstIDs + secondIDs), "\(Set(firstIDs + secondIDs).subtracting(ids).count) events never exported")
        #expect(ids.count == Set(ids).count, "\(ids.count - Set(ids).count) events exported twice")
        let records = try received()
        for record in records {
            let resource = record["resource"] as? [String: Any] ?? [:]
            #expect(resource["service.name"] as? String == "kontext")
            // The broker principal (`user:ISSUER_HOST:SUB`), not what the client claimed.
            #expect((resource["user.id"] as? String).map { $0.hasPrefix("user:") && $0.hasSuffix(":bob") } == true, "\(resource)")
            #expect(resource["user.email"] as? String == "bob@example.test")
            #expect([first, second].contains(resource["session.id"] as? String ?? ""))
            #expect(resource["host.name"] as? String != nil && resource["kontext.agent"] as? String == "claude")
            #expect(record["scope"] as? String == "kontext.audit" && record["encoding"] as? String == "protobuf")
        }
        let denied = try #require(records.first { ($0["attributes"] as? [String: Any])?["kontext.decision.outcome"] as? String == "deny" })
        let attributes = denied["attributes"] as? [String: Any] ?? [:]
        #expect(attributes["kontext.decision.rule"] as? String == "org:no-prod-deploy", "\(attributes)")
        #expect(attributes["kontext.tool.input"] as? String == #"{"command":"./deploy prod --now"}"#)
        #expect(denied["severity_text"] as? String == "WARN" && denied["event_name"] as? String == "kontext.audit.pre-tool")
        #expect((attributes["kontext.hash"] as? String)?.count == 64)
        user.expectNoTokens(try user.storedTokens())
    }
}
