import Foundation
import KontextTestSupport
import Testing

/// SPEC section 12's OpenTelemetry export: every event of a real Claude Code session reaches
/// an OTLP/HTTP receiver that decodes it with opentelemetry-proto (PyPI), with the documented
/// attributes, although the receiver is down for the session's first half.
@Suite(.enabled(if: ClaudeCode.available, "needs the claude binary (KONTEXT_CLAUDE_BIN) and a keyring: run scripts/test"))
struct OTLPExportTests {
    func records(_ collector: LoopbackServer) throws -> [[String: Any]] {
        try collector.getJSON("/control/records") as? [[String: Any]] ?? []
    }

    @Test func everyEventOfAClaudeSessionReachesTheCollectorAcrossItsOutage() throws {
        let sandbox = Sandbox("otlp")
        let collector = try LoopbackServer(script: "otlp_receiver.py", arguments: [
            "--store", sandbox.root.appendingPathComponent("collector.jsonl").path,
        ], in: sandbox.root)
        collector.stop()  // down for the first half
        let (service, secret) = try sandbox.guardedProject("otlp")
        let half = sandbox.root.appendingPathComponent("half")
        let resume = sandbox.root.appendingPathComponent("resume")
        let server = try ScriptedModelServer(.messages, script: """
            [{"tool_use": {"name": "Bash", "input": {"command": "printf %s \\"$GITHUB_TOKEN\\" | sha256sum; : > \(half.path); while [ ! -f \(resume.path) ]; do sleep 0.1; done", "description": "wait"}}},
             {"tool_use": {"name": "Bash", "input": {"command": "touch \(sandbox.root.appendingPathComponent("denied").path)", "description": "create a file"}}},
             {"text": "All done."}]
            """, in: sandbox.root)
        var environment = ClaudeEndToEndTests().claudeEnvironment(sandbox, server: server)
        environment["KONTEXT_OTLP_ENDPOINT"] = collector.baseURL
        environment["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=test,team=platform%20security"
        let session = Process()
        session.executableURL = URL(fileURLWithPath: TestSupport.kontextPath)
        session.arguments = ["start", "--agent", "claude", "--mode", "enforce", "--",
                             "-p", "use the token", "--output-format", "json", "--setting-sources", "", "--allowedTools", "Bash"]
        session.currentDirectoryURL = sandbox.workingDirectory
        session.environment = sandbox.environment.merging(environment) { $1 }
        let stderrFile = sandbox.root.appendingPathComponent("session.err")
        FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        session.standardError = try FileHandle(forWritingTo: stderrFile)
        session.standardOutput = FileHandle.nullDevice
        session.standardInput = FileHandle.nullDevice
        try session.run()
        let deadline = Date().addingTimeInterval(90)
        while !FileManager.default.fileExists(atPath: half.path), Date() < deadline, session.isRunning { usleep(50_000) }
        #expect(FileManager.default.fileExists(atPath: half.path), "the first tool call did not run")
        try collector.restart()
        FileManager.default.createFile(atPath: resume.path, contents: nil)
        session.waitUntilExit()
        let stderr = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
        #expect(session.terminationStatus == 0, "\(stderr)")

        let local = try exportedEvents(sandbox)
        let received = try records(collector)
        // Every event, once, in protobuf (the default protocol).
        let ids = received.compactMap { ($0["attributes"] as? [String: Any])?["kontext.event.id"] as? String }
        #expect(Set(ids) == Set(local.compactMap { $0["id"] as? String }), "\(ids.count) received, \(local.count) recorded")
        #expect(ids.count == local.count, "duplicates: \(ids.count) received for \(local.count) events")
        #expect(received.allSatisfy { $0["encoding"] as? String == "protobuf" && $0["scope"] as? String == "kontext.audit" })
        let sessionID = try #require(local.first?["session_id"] as? String)
        for record in received {
            let resource = record["resource"] as? [String: Any] ?? [:]
            #expect(resource["service.name"] as? String == "kontext")
            #expect(resource["session.id"] as? String == sessionID)
            #expect(resource["kontext.agent"] as? String == "claude")
            #expect(resource["host.name"] as? String != nil && resource["user.id"] as? String != nil)
            #expect(resource["deployment.environment"] as? String == "test" && resource["team"] as? String == "platform security")
            #expect((record["time_unix_nano"] as? Int ?? 0) > 1_700_000_000_000_000_000)
        }
        // The denied call: its decision as attributes, WARN severity.
        let denied = try #require(received.first {
            ($0["attributes"] as? [String: Any])?["kontext.decision.outcome"] as? String == "deny"
        }, "no deny record")
        let attributes = denied["attributes"] as? [String: Any] ?? [:]
        #expect(denied["event_name"] as? String == "kontext.audit.pre-tool")
        #expect(denied["severity_number"] as? Int == 13 && denied["severity_text"] as? String == "WARN")
        #expect(attributes["kontext.tool.name"] as? String == "Bash")
        #expect(attributes["kontext.decision.rule"] as? String == "project:no-writes")
        #expect(attributes["kontext.decision.reason"] as? String == "agents may not create files here")
        #expect(attributes["kontext.decision.enforced"] as? Bool == true)
        #expect((attributes["kontext.tool.input"] as? String)?.contains("touch ") == true)
        #expect((attributes["kontext.hash"] as? String)?.count == 64 && (attributes["kontext.prev_hash"] as? String)?.count == 64)
        let localDenied = local.first { $0["id"] as? String == attributes["kontext.event.id"] as? String }
        #expect(attributes["kontext.seq"] as? Int == localDenied?["seq"] as? Int)
        let names = Set(received.compactMap { $0["event_name"] as? String })
        for event in ["session-start", "user-prompt", "pre-tool", "post-tool", "session-end"] {
            #expect(names.contains("kontext.audit.\(event)"), "\(names)")
        }
        // No secret reached the collector.
        let stored = try String(contentsOf: sandbox.root.appendingPathComponent("collector.jsonl"), encoding: .utf8)
        #expect(!stored.contains(secret) && !stored.contains(TestSupport.secretNonce))

        // OTLP's JSON encoding, chosen the standard way, for a second session.
        let runtime = sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        sandbox.write("agent.sh", """
            printf '{"tool_name":"Bash","tool_input":{"command":"echo json"}}' | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null || exit 9
            """)
        let jsonRun = try sandbox.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"], environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.baseURL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_SERVICE_NAME": "kontext-ci", "KONTEXT_HOOK": TestSupport.kontextPath, "XDG_RUNTIME_DIR": runtime.path,
        ])
        #expect(jsonRun.status == 0, "\(jsonRun.stderr)")
        let viaJSON = try records(collector).filter { $0["encoding"] as? String == "json" }
        let call = viaJSON.first { ($0["attributes"] as? [String: Any])?["kontext.tool.input"] as? String == #"{"command":"echo json"}"# }
        #expect(call != nil, "\(viaJSON)")
        #expect((call?["attributes"] as? [String: Any])?["kontext.seq"] as? Int == 1)
        #expect(viaJSON.allSatisfy { ($0["resource"] as? [String: Any])?["service.name"] as? String == "kontext-ci" })
    }
}
