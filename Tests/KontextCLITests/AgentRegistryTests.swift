import Foundation
import KontextAgent
import KontextTestSupport
import Testing

/// Every place that enumerates agents, checked against the one list, `AgentAdapters.all`:
/// help texts, `--agent` checks of `start`, `doctor` and `hook`, the shell completions, the
/// hook front's fallback answers, and no agent name written anywhere else in the sources.
@Suite struct AgentRegistryTests {
    let names = AgentAdapters.names
    var listed: String { names.joined(separator: ", ") }

    @Test func theListHasEveryAgentOnce() {
        #expect(names.count >= 2 && Set(names).count == names.count, "\(names)")
        for adapter in AgentAdapters.all {
            #expect(AgentAdapters.named(adapter.name)?.executableName == adapter.executableName)
            #expect(!adapter.installHint.isEmpty)
        }
    }

    @Test(arguments: [["start", "--help"], ["doctor", "--help"], ["hook", "--help"]])
    func helpNamesExactlyTheListedAgents(_ arguments: [String]) throws {
        let help = try Sandbox("registry-help").kontext(arguments)
        #expect(help.status == 0, "\(help.stderr)")
        // ArgumentParser wraps long lines; compare with the whitespace folded.
        let text = help.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        #expect(text.contains(": \(listed)."), "\(arguments) help does not list \(listed): \(text)")
    }

    /// The committed completions are the generated ones (`HelpAndDocumentationTests`); here,
    /// each shell offers exactly the listed agents for `--agent` of start, doctor, hook and
    /// policy check.
    @Test func completionsOfferExactlyTheListedAgents() throws {
        let root = HelpAndDocumentationTests.repository
        func read(_ path: String) throws -> String {
            try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
        }
        let forms = [
            ("completions/kontext.bash", "-W " + names.map { "'\($0)'" }.joined(separator: "$'\\n'")),
            ("completions/_kontext", "___agent=(\(names.map { "'\($0)'" }.joined(separator: " ")))"),
            ("completions/kontext.fish", "-rfka '\(names.joined(separator: " "))'"),
        ]
        for (path, form) in forms {
            let text = try read(path)
            #expect(text.components(separatedBy: form).count - 1 == 4, "\(path): \(form) is not offered for start, doctor, hook and policy check")
        }
    }

    /// The front (no sidecar, enforce mode) answers each listed agent with that agent's own
    /// deny, and refuses any other name, naming the list.
    @Test func theFrontSpeaksEachListedDialectAndNoOther() throws {
        let sandbox = Sandbox("registry-front")
        let call = #"{"tool_name":"Bash","tool_input":{"command":"ls"}}"#
        for adapter in AgentAdapters.all {
            let result = try sandbox.run(TestSupport.kontextPath, ["hook", "pre-tool", "--agent", adapter.name],
                                         stdin: call, environment: ["KONTEXT_MODE": "enforce"])
            let expected = adapter.answer(event: .preTool, decision: .deny, reason:
                "kontext cannot check this call (KONTEXT_SOCKET is not set (is this agent running under `kontext start`?)); enforce mode blocks it")
            #expect(result.status == expected.exitCode)
            #expect(result.stdout == String(decoding: expected.stdout, as: UTF8.self), "\(adapter.name): \(result.stdout)")
        }
        let unknown = try sandbox.run(TestSupport.kontextPath, ["hook", "pre-tool", "--agent", "vim"], stdin: call)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.hasPrefix("kontext hook: unknown agent 'vim' (supported: \(listed))"), "\(unknown.stderr)")
    }

    @Test func startAndDoctorNameTheListedAgents() throws {
        let sandbox = Sandbox("registry-start")
        let start = try sandbox.kontext(["start", "--agent", "vim"])
        #expect(start.status == 2)
        #expect(start.stderr.contains("supported: \(listed); or launch any program with --agent-command PATH"), "\(start.stderr)")
        let doctor = try sandbox.kontext(["doctor", "--agent", "vim"])
        #expect(doctor.stdout.contains("FAIL  agent: no adapter for 'vim'\n      fix: supported: \(listed)"), "\(doctor.stdout)")
    }

    /// Outside `Sources/KontextAgent`, no source names an agent: everything reads the list.
    @Test func noOtherSourceNamesAnAgent() throws {
        let sources = HelpAndDocumentationTests.repository.appendingPathComponent("Sources")
        let enumerator = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        var offenders: [String] = []
        for case let url as URL in enumerator where url.pathExtension == "swift" && !url.path.contains("/Sources/KontextAgent/") {
            let text = try String(contentsOf: url, encoding: .utf8)
            for name in names where text.contains("\"\(name)\"") || text.contains("\(name.prefix(1).uppercased() + name.dropFirst())Adapter") {
                offenders.append("\(url.lastPathComponent) names \(name)")
            }
        }
        #expect(offenders.isEmpty, "\(offenders)")
    }
}
