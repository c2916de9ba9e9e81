import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import KontextAudit
import KontextCore
import KontextHTTP
import KontextRun

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read the local audit store.",
        subcommands: [Sessions.self, Tail.self, Show.self, Export.self, Verify.self, Key.self, UI.self])

    static func openStore(_ context: CommandContext) throws -> AuditStore {
        try AuditStore(environment: context.settings().environment)
    }

    struct Sessions: KontextCommand {
        static let configuration = CommandConfiguration(commandName: "sessions", abstract: "List sessions, newest first.")

        @Option(name: .long, help: "Show at most this many.")
        var limit: Int = 50

        @Flag(name: .long, help: "Read the audit backend (KONTEXT_AUDIT_URL) instead of the local store.")
        var remote = false

        func run(context: CommandContext) async throws {
            if remote {
                let settings = try context.settings()
                let answer = try await RemoteAudit.get("/v1/sessions?limit=\(limit)", settings: settings)
                var rows = [["SESSION", "STARTED", "AGENT", "EXIT", "OWNER"]]
                for session in answer["sessions"]?.arrayValue ?? [] {
                    func field(_ name: String) -> String {
                        switch session[name] {
                        case .string(let text)?: sanitized(text)
                        case .number(let number)?: String(Int(number))
                        default: "-"
                        }
                    }
                    rows.append([String(field("session_id").prefix(12)), field("started_at"), field("agent"),
                                 session["ended_at"]?.stringValue == nil ? "running" : field("exit_code"), field("owner")])
                }
                context.streams.print(formatTable(rows))
                return
            }
            let store = try AuditCommand.openStore(context)
            let sessions = try store.sessions(limit: limit)
            guard !sessions.isEmpty else {
                context.streams.printError("kontext: no sessions recorded yet; `kontext start --agent claude` records one")
                return
            }
            if let url = try context.settings().auditURL {
                // What the shipper has yet to deliver there (SPEC section 7); this command
                // sends it when it finishes, if logged in as the sessions were recorded.
                let pending = try store.pendingEventCount(auditURL: url)
                context.streams.printError(pending == 0 ? "kontext: every event has been sent to \(url)"
                           : "kontext: \(pending) event\(pending == 1 ? "" : "s") not yet sent to \(url)")
            }
            var rows = [["SESSION", "STARTED", "AGENT", "EVENTS", "EXIT", "ACTOR"]]
            for s in sessions {
                rows.append([String(s.id.prefix(12)), s.startedAt, sanitized(s.agent), String(s.eventCount),
                             s.exitCode.map(String.init) ?? (s.endedAt == nil ? "running" : "-"), s.actor.sub.map { sanitized($0) } ?? "-"])
            }
            context.streams.print(formatTable(rows))
        }
    }

    struct Tail: KontextCommand {
        static let configuration = CommandConfiguration(commandName: "tail", abstract: "Print the latest events; --follow keeps printing new ones.")

        @Option(name: .shortAndLong, help: "How many recent events to print first.")
        var lines: Int = 20

        @Flag(name: .shortAndLong, help: "Keep printing events as they are recorded.")
        var follow = false

        func run(context: CommandContext) async throws {
            let store = try AuditCommand.openStore(context)
            var position: Int64 = 0
            for record in try store.recentEvents(limit: lines) {
                context.streams.print(summary(record.event))
                position = max(position, record.position)
            }
            while follow {
                usleep(250_000)
                for record in try store.events(after: position) {
                    context.streams.print(summary(record.event))
                    position = max(position, record.position)
                }
            }
        }
    }

    struct Show: KontextCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one session and its events (ID or a unique prefix).")

        @Argument(help: ArgumentHelp("Session id or prefix (the whole id with --remote).", valueName: "id"))
        var id: String

        @Flag(name: .long, help: "Read the audit backend (KONTEXT_AUDIT_URL) instead of the local store.")
        var remote = false

        func run(context: CommandContext) async throws {
            if remote {
                let settings = try context.settings()
                var after = 0
                var shown = 0
                while true {
                    let answer = try await RemoteAudit.get("/v1/audit/events?session_id=\(formEncode(id))&after=\(after)&limit=1000",
                                                           settings: settings)
                    let page = answer["events"]?.arrayValue ?? []
                    for item in page {
                        guard let event = try? AuditEvent(jsonText: item.serialized) else { continue }
                        context.streams.print(summary(event))
                        after = max(after, event.seq)
                        shown += 1
                    }
                    if page.count < 1000 { break }
                }
                if shown == 0 { context.streams.printError("kontext: the audit backend has no events for session \(id)") }
                return
            }
            let store = try AuditCommand.openStore(context)
            let session = try store.resolveSession(id)
            // Recorded text (the agent's, the project's) is shown, never acted on by the terminal.
            func shown(_ text: String?) -> String { text.map { sanitized($0, limit: 4096) } ?? "-" }
            context.streams.print("""
                session  \(shown(session.id))
                agent    \(shown(session.agent))
                actor    \(shown(session.actor.sub))\(session.actor.email.map { " <\(shown($0))>" } ?? "")
                host     \(shown(session.host))
                cwd      \(shown(session.cwd))
                started  \(session.startedAt)
                ended    \(session.endedAt ?? "still running")\(session.exitCode.map { " (exit \($0))" } ?? "")
                """)
            for event in try store.events(sessionID: session.id) { context.streams.print(summary(event)) }
        }
    }

    struct Export: KontextCommand {
        static let configuration = CommandConfiguration(commandName: "export", abstract: "Print every event as JSON lines or CSV.")

        @Option(name: .long, help: ArgumentHelp("JSON lines or CSV.", valueName: "format"))
        var format = Choice(AuditExport.Format.jsonl)

        @Option(name: .long, help: ArgumentHelp("Only this session (id or prefix).", valueName: "id"))
        var session: String?

        func run(context: CommandContext) async throws {
            let chosen = try format.value(of: "--format")
            let store = try AuditCommand.openStore(context)
            if let session {
                let id = try store.resolveSession(session).id
                try AuditExport.write(events: try store.events(sessionID: id), format: chosen, to: context.streams.output)
            } else {
                try AuditExport.write(store: store, format: chosen, to: context.streams.output)
            }
        }
    }
}

/// One line per event for people: time, session, seq, event, tool, decision. The tool name
/// and rule are the agent's and the policy's words: sanitized so a terminal escape in them
/// is printed as text, not acted on (the remote backend's events are read the same way).
private func summary(_ event: AuditEvent) -> String {
    var parts = [sanitized(event.time), sanitized(String(event.sessionID.prefix(12))), "#\(event.seq)", event.event.rawValue]
    if let tool = event.toolName { parts.append(sanitized(tool)) }
    if let decision = event.decision {
        parts.append("\(decision.outcome.rawValue)\(decision.enforced ? "" : " (observe)")")
        if let rule = decision.rule { parts.append("[\(sanitized(rule))]") }
    }
    return parts.joined(separator: "  ")
}
