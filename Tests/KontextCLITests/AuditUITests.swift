import Foundation
import KontextTestSupport
import Testing

/// Debian's chromium, headless.
enum Chromium {
    static var binary: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// `kontext audit ui` (SPEC section 12) in a real headless browser: the session list, a
/// session's timeline with the denied call and its rule, the filter, the token, no secret.
@Suite(.enabled(if: TestSupport.hasSessionBus && Chromium.binary != nil, "needs a keyring and chromium: run scripts/test"))
struct AuditUITests {
    /// The DOM chromium built for `url` (and a screenshot of it).
    func render(_ url: String, in sandbox: Sandbox, screenshot: String? = nil) throws -> String {
        let profile = sandbox.root.appendingPathComponent("chromium-\(UUID().uuidString.prefix(8))").path
        var arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile)",
                         "--window-size=1400,1000"]
        arguments += screenshot.map { ["--screenshot=\($0)"] } ?? ["--dump-dom"]
        let result = try sandbox.run(Chromium.binary!, arguments + [url], timeout: 90)
        #expect(result.status == 0, "chromium: \(result.stderr.suffix(2000))")
        return result.stdout
    }

    func status(_ url: String, headers: [String] = [], in sandbox: Sandbox) throws -> String {
        let result = try sandbox.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}"] + headers.flatMap { ["-H", $0] } + [url])
        return result.stdout
    }

    @Test func thePageListsTheSessionShowsTheDenialFiltersAndKeepsOthersOut() throws {
        let sandbox = Sandbox("audit-ui")
        let runtime = sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let (service, secret) = try sandbox.guardedProject("audit-ui")
        // One call that would leak the token (recorded redacted), one harmless, one denied.
        sandbox.write("agent.sh", """
            hook() { printf '{"tool_name":"Bash","tool_input":{"command":"%s"}}' "$1" | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null; }
            hook "echo $GITHUB_TOKEN"
            hook "echo hello-from-the-agent"
            hook "touch notes.txt"
            printf '%s' "$KONTEXT_SESSION_ID" > session-id
            """)
        let run = try sandbox.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"],
                                      environment: ["KONTEXT_HOOK": TestSupport.kontextPath, "XDG_RUNTIME_DIR": runtime.path])
        #expect(run.status == 0, "\(run.stderr)")
        let session = try String(contentsOf: sandbox.workingDirectory.appendingPathComponent("session-id"), encoding: .utf8)

        let ui = Process()
        ui.executableURL = URL(fileURLWithPath: TestSupport.kontextPath)
        ui.arguments = ["audit", "ui", "--no-browser"]
        ui.currentDirectoryURL = sandbox.workingDirectory
        ui.environment = sandbox.environment
        let out = Pipe()
        ui.standardOutput = out
        ui.standardError = FileHandle.nullDevice
        try ui.run()
        defer {
            if ui.isRunning { ui.terminate() }
            ui.waitUntilExit()
        }
        var line = ""
        let deadline = Date().addingTimeInterval(30)
        while !line.contains("\n"), Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += String(decoding: chunk, as: UTF8.self)
        }
        let url = line.trimmingCharacters(in: .whitespacesAndNewlines)
        let base = try #require(url.components(separatedBy: "/?token=").first, "\(line)")
        let token = try #require(url.components(separatedBy: "/?token=").last)
        #expect(url.hasPrefix("http://127.0.0.1:") && token.count == 64, "\(url)")

        let screenshot = sandbox.root.appendingPathComponent("sessions.png").path
        _ = try render(url, in: sandbox, screenshot: screenshot)
        let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
        #expect(png.count > 5000 && png.prefix(4) == Data([0x89, 0x50, 0x4e, 0x47]), "a PNG screenshot")
        let list = try render(url, in: sandbox)
        #expect(list.contains("data-session=\"\(session)\""), "\(list.prefix(3000))")
        #expect(list.contains("verified, sealed"), "the chain's state is shown")

        let timeline = try render("\(base)/sessions/\(session)?token=\(token)", in: sandbox)
        #expect(timeline.contains("<td class=\"decision deny\">deny (observe)</td><td class=\"rule\">project:no-writes</td>"),
                "\(timeline.prefix(6000))")
        #expect(timeline.contains("hello-from-the-agent") && timeline.contains("[REDACTED:\(service)]"))

        let denied = try render("\(base)/sessions/\(session)?token=\(token)&decision=deny", in: sandbox)
        #expect(denied.contains("touch notes.txt") && !denied.contains("hello-from-the-agent"), "\(denied.prefix(6000))")
        let searched = try render("\(base)/sessions/\(session)?token=\(token)&q=hello-from", in: sandbox)
        #expect(searched.contains("hello-from-the-agent") && !searched.contains("touch notes.txt"))

        // Without the token, with a wrong one, or through another host name: 403.
        #expect(try status("\(base)/", in: sandbox) == "403")
        #expect(try status("\(base)/sessions/\(session)", in: sandbox) == "403")
        #expect(try status("\(base)/?token=\(String(repeating: "0", count: 64))", in: sandbox) == "403")
        #expect(try status("\(base)/", headers: ["Cookie: kontext_audit_ui=\(token)"], in: sandbox) == "200")
        let port = base.components(separatedBy: ":").last ?? ""
        #expect(try status("\(base)/", headers: ["Cookie: kontext_audit_ui=\(token)", "Host: attacker.example:\(port)"], in: sandbox) == "403")

        for page in [list, timeline, denied, searched] {
            #expect(!page.contains(secret) && !page.contains(TestSupport.secretNonce), "a secret on the page")
        }
        ui.terminate()
        ui.waitUntilExit()
        #expect(ui.terminationStatus == 0 || ui.terminationReason == .uncaughtSignal)
    }
}
