import Foundation
import KontextTestSupport
import Testing

/// Runs `kontext ARGS` on a pseudo-terminal of its own (util-linux `script`), as a person in
/// another terminal would: `/dev/tty` opens there. Output is the terminal's (stdout and stderr).
func kontextOnTerminal(_ sandbox: Sandbox, _ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
    let command = ([TestSupport.kontextPath] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        .joined(separator: " ")
    return try sandbox.run("/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"], stdin: "", environment: environment, timeout: 60)
}

/// The approval ids (`apr_…`) in a text, in order of appearance.
func approvalIDs(in text: String) -> [String] {
    let regex = try! NSRegularExpression(pattern: "apr_[a-z0-9]{12}")
    return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { String(text[Range($0.range, in: text)!]) }
}

/// Waits (up to 60 s) until `body` returns a value.
func eventually<T>(_ what: String, _ body: () throws -> T?) throws -> T {
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
        if let value = try body() { return value }
        Thread.sleep(forTimeInterval: 0.1)
    }
    throw TimeoutError(seconds: 60, command: what)
}

/// SPEC section 12's approvals with the real Claude Code in `-p` mode: the destructive call
/// is denied with an approval id, the test approves it from outside the session on a
/// terminal, the identical retry runs once, and neither a third call, a different call nor
/// the agent's own `kontext approve` gets through.
@Suite(.enabled(if: ClaudeCode.available, "needs the claude binary (KONTEXT_CLAUDE_BIN) and a keyring: run scripts/test"))
struct ApprovalEndToEndTests {
    @Test func aDestructiveCallRunsOnceAfterTheUserApprovesIt() throws {
        let sandbox = Sandbox("approve")
        let build = sandbox.workingDirectory.appendingPathComponent("build")
        let other = sandbox.workingDirectory.appendingPathComponent("build-other")
        for directory in [build, other] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try "x".write(to: directory.appendingPathComponent("artifact"), atomically: true, encoding: .utf8)
        }
        let go1 = sandbox.root.appendingPathComponent("go1"), go2 = sandbox.root.appendingPathComponent("go2")
        let rm = #"{"name": "Bash", "input": {"command": "rm -rf build", "description": "clean the build"}}"#
        // The agent's own attempts: inside the session, and with the session's variables
        // removed (then it has no terminal); the id is a real pending one from --list.
        let selfApproval = #"kontext approve apr_aaaaaaaaaaaa; echo \"inside:$?\"; id=$(env -u KONTEXT_SESSION_ID -u KONTEXT_SOCKET kontext approve --list | awk 'NR==2{print $1}'); env -u KONTEXT_SESSION_ID -u KONTEXT_SOCKET kontext approve \"$id\" </dev/null; echo \"outside:$?:$id\""#
        let server = try ScriptedModelServer(.messages, script: """
            [{"tool_use": \(rm)},
             {"wait_for": "\(go1.path)", "tool_use": \(rm)},
             {"tool_use": \(rm)},
             {"wait_for": "\(go2.path)", "tool_use": {"name": "Bash", "input": {"command": "rm -rf build-other", "description": "clean"}}},
             {"tool_use": {"name": "Bash", "input": {"command": "\(selfApproval)", "description": "approve it myself"}}},
             {"text": "Done."}]
            """, in: sandbox.root)
        var claudeEnvironment = ClaudeEndToEndTests().claudeEnvironment(sandbox, server: server)
        claudeEnvironment["PATH"] = TestSupport.productsDirectory.path + ":" + (claudeEnvironment["PATH"] ?? "")
        let environment = claudeEnvironment
        nonisolated(unsafe) var session: Result<ProcessResult, any Error>?
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            session = Result {
                try sandbox.kontext(["start", "--agent", "claude", "--mode", "enforce", "--",
                                     "-p", "clean up", "--output-format", "json", "--setting-sources", "", "--allowedTools", "Bash"],
                                    stdin: "", environment: environment, timeout: 240)
            }
            finished.signal()
        }
        defer { try? "".write(to: go1, atomically: true, encoding: .utf8); try? "".write(to: go2, atomically: true, encoding: .utf8) }

        // 1. The first call was denied with an approval id (the model saw it).
        // The log appears with Claude's first request.
        let first = try eventually("the first denial") { (try? server.toolResults())?.first.flatMap { approvalIDs(in: $0).first } }
        #expect(FileManager.default.fileExists(atPath: build.path), "the destructive call ran before approval")
        // Without a terminal, the user's own approve is refused too (a script cannot approve):
        // setsid leaves it no controlling terminal even when the tests run in one.
        let headless = try sandbox.run("/usr/bin/setsid", ["-w", TestSupport.kontextPath, "approve", first])
        #expect(headless.status == 2 && headless.stderr.contains("needs a terminal"), "\(headless.stderr)")
        let listed = try sandbox.kontext(["approve", "--list"])
        #expect(listed.stdout.contains(first) && listed.stdout.contains("pending"), "\(listed.stdout)")
        let approved = try kontextOnTerminal(sandbox, ["approve", first])
        #expect(approved.status == 0 && approved.stdout.contains("approved \(first)"), "\(approved.stdout)")
        try "".write(to: go1, atomically: true, encoding: .utf8)

        // 2. The identical retry ran; 3. the third identical call is denied again, with a new id.
        let second = try eventually("the third call's denial") {
            (try? server.toolResults())?.flatMap(approvalIDs(in:)).first { $0 != first }
        }
        #expect(!FileManager.default.fileExists(atPath: build.path), "the approved retry did not run")
        // 4. Approving the second does not cover a different call.
        #expect(try kontextOnTerminal(sandbox, ["approve", second]).status == 0)
        let reused = try kontextOnTerminal(sandbox, ["approve", first])
        #expect(reused.status == 2 && reused.stdout.contains("already used"), "\(reused.stdout)")
        try "".write(to: go2, atomically: true, encoding: .utf8)

        finished.wait()
        let result = try #require(try session?.get())
        #expect(result.status == 0, "kontext start failed: \(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: other.path), "the approval of one call let a different one run")
        let results = try server.toolResults()
        var seen: [String] = []
        for id in results.flatMap(approvalIDs(in:)) where !seen.contains(id) && !id.hasPrefix("apr_aaaa") { seen.append(id) }
        #expect(seen.count == 3 && Array(seen.prefix(2)) == [first, second], "\(results)")
        let third = seen.count == 3 ? seen[2] : nil
        // 5. The agent's own approvals were refused: inside the session, and without a terminal.
        let selfResult = results.first { $0.contains("inside:") } ?? ""
        #expect(selfResult.contains("is refused inside a kontext session") && selfResult.contains("inside:2"), "\(selfResult)")
        #expect(selfResult.contains("needs a terminal") && selfResult.contains("outside:2:apr_"), "\(selfResult)")
        let stillWaiting = try sandbox.kontext(["approve", "--list"])
        #expect(stillWaiting.stdout.contains(third ?? "?") && stillWaiting.stdout.contains("pending"), "\(stillWaiting.stdout)")

        // Every step is in the audit.
        let events = try exportedEvents(sandbox)
        let preTools = events.filter { $0["event"] as? String == "pre-tool" }.compactMap { $0["decision"] as? [String: Any] }
        #expect(preTools.map { $0["outcome"] as? String ?? "?" } == ["deny", "allow", "deny", "deny", "allow"], "\(preTools)")
        #expect(preTools.map { $0["approval_id"] as? String } == [first, first, second, third, nil])
        #expect(preTools.prefix(4).allSatisfy { $0["risk"] as? String == "destructive" && $0["rule"] as? String == "builtin:destructive" })
        #expect(preTools.last?["risk"] as? String == "write")
        #expect((preTools[1]["reason"] as? String)?.contains("approved by local:") == true)
        let approvals = events.filter { $0["event"] as? String == "approval" }
        let steps = approvals.compactMap { ($0["tool_input"] as? [String: Any])?["state"] as? String }
        #expect(steps == ["approved", "approved"], "\(approvals)")
        #expect(approvals.map { ($0["decision"] as? [String: Any])?["approval_id"] as? String } == [first, second])
        #expect(approvals.allSatisfy { (($0["decision"] as? [String: Any])?["reason"] as? String)?.hasPrefix("approved by local:") == true })
        #expect(Set(events.compactMap { $0["session_id"] as? String }).count == 1)
    }

}

@Suite(.enabled(if: TestSupport.hasSessionBus, "needs dbus-run-session and gnome-keyring (scripts/test sets them up)"))
struct ApprovalExpiryTests {
    /// An approval not given within its TTL expires: `kontext approve` refuses it, and the
    /// agent's retry is denied with a new approval. Driven by a stand-in agent calling the
    /// real hook front, with KONTEXT_APPROVAL_TTL=1.
    @Test func anExpiredApprovalIsRefused() throws {
        let sandbox = Sandbox("approve-expired")
        let input = #"{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"rm -rf build","description":"d"},"tool_use_id":"t"}"#
        sandbox.write("agent.sh", """
            printf '%s' '\(input)' | "$KONTEXT_HOOK" hook pre-tool --agent claude > first.json
            while [ ! -f go ]; do sleep 0.05; done
            printf '%s' '\(input)' | "$KONTEXT_HOOK" hook pre-tool --agent claude > second.json
            """)
        nonisolated(unsafe) var session: Result<ProcessResult, any Error>?
        let finished = DispatchSemaphore(value: 0)
        let go = sandbox.workingDirectory.appendingPathComponent("go")
        Thread.detachNewThread {
            session = Result {
                try sandbox.kontext(["start", "--agent-command", "/bin/sh", "--agent", "claude", "--mode", "enforce", "--", "agent.sh"],
                                    environment: ["KONTEXT_HOOK": TestSupport.kontextPath, "KONTEXT_APPROVAL_TTL": "1"], timeout: 120)
            }
            finished.signal()
        }
        defer { try? "".write(to: go, atomically: true, encoding: .utf8) }
        let firstFile = sandbox.workingDirectory.appendingPathComponent("first.json")
        let first = try eventually("the first denial") { () -> String? in
            (try? String(contentsOf: firstFile, encoding: .utf8)).flatMap { approvalIDs(in: $0).first }
        }
        Thread.sleep(forTimeInterval: 1.5)
        let late = try kontextOnTerminal(sandbox, ["approve", first], environment: ["KONTEXT_APPROVAL_TTL": "1"])
        #expect(late.status == 2 && late.stdout.contains("expired"), "\(late.stdout)")
        try "".write(to: go, atomically: true, encoding: .utf8)
        finished.wait()
        #expect(try session?.get().status == 0)
        let second = try String(contentsOf: sandbox.workingDirectory.appendingPathComponent("second.json"), encoding: .utf8)
        #expect(second.contains("\"deny\""), "\(second)")
        #expect(approvalIDs(in: second).first.map { $0 != first } == true, "\(second)")
        let events = try exportedEvents(sandbox)
        let expired = events.filter { $0["event"] as? String == "approval" }
        #expect(expired.count == 1 && (expired.first?["tool_input"] as? [String: Any])?["state"] as? String == "expired", "\(expired)")
        #expect(((expired.first?["decision"] as? [String: Any])?["approval_id"] as? String) == first)
    }
}

/// `kontext policy check` and `kontext policy show`, for people writing policy.
@Suite struct PolicyCommandTests {
    @Test func checkPrintsDecisionLayerRuleAndRisk() throws {
        let sandbox = Sandbox("policy-check")
        try FileManager.default.createDirectory(at: sandbox.workingDirectory.appendingPathComponent(".kontext"), withIntermediateDirectories: true)
        sandbox.write(".kontext/policy.toml", """
            [[rule]]
            id = "no-curl"
            tool = "Bash"
            command = "curl *"
            decision = "deny"
            reason = "no network egress from agents"

            [[rule]]
            id = "db-tools"
            tool = "mcp__db__*"
            risk = "destructive"
            """)
        func check(_ input: String, _ arguments: [String] = []) throws -> ProcessResult {
            try sandbox.kontext(["policy", "check"] + arguments, stdin: input)
        }
        let curl = try check(#"{"tool_name":"Bash","tool_input":{"command":"curl https://example.com"}}"#)
        #expect(curl.status == 0, "\(curl.stderr)")
        #expect(curl.stdout == """
            decision: deny
            layer: project
            rule: project:no-curl
            risk: write (shell:command)
            reason: no network egress from agents

            """, "\(curl.stdout)")
        let rm = try check(#"{"tool_name":"Bash","tool_input":{"command":"rm -rf build"}}"#, ["--event", "pre-tool"])
        #expect(rm.stdout.hasPrefix("decision: approve\nlayer: builtin\nrule: builtin:destructive\nrisk: destructive (shell:rm-recursive)\n"),
                "\(rm.stdout)")
        let mcp = try check(#"{"tool_name":"mcp__db__frobnicate","tool_input":{}}"#)
        #expect(mcp.stdout.contains("risk: destructive (project:db-tools)") && mcp.stdout.contains("decision: approve"), "\(mcp.stdout)")
        let read = try check(#"{"tool_name":"Read","tool_input":{"file_path":"README.md"}}"#)
        #expect(read.stdout.hasPrefix("decision: allow (no rule matched)\nlayer: -\nrule: -\nrisk: read (tool:read-only)\n"), "\(read.stdout)")
        // Bad input: one line, exit 2.
        let garbage = try check("{not json")
        #expect(garbage.status == 2 && garbage.stderr.split(separator: "\n").count <= 2, "\(garbage.stderr)")
        let otherEvent = try check("{}", ["--event", "post-tool"])
        #expect(otherEvent.status == 2 && otherEvent.stderr.contains("only pre-tool events are judged by policy"))

        let show = try sandbox.kontext(["policy", "show"])
        #expect(show.status == 0, "\(show.stderr)")
        for line in ["[project] ", "  no-curl: deny tool=Bash command=\"curl *\" (no network egress from agents)",
                     "  db-tools: risk=destructive tool=mcp__db__*", "[builtin]", "  builtin:destructive: approve"] {
            #expect(show.stdout.contains(line), "no \(line) in \(show.stdout)")
        }
    }
}
