import ArgumentParser
import KontextAudit
import KontextBrokerService
import KontextCore
import KontextHTTP
import KontextProcess
import KontextRun

extension AuditCommand {
    /// `kontext audit ui [--remote]`: the audit as a read-only web page on loopback, at a URL
    /// with this run's random token (printed, and opened with `$BROWSER` unless --no-browser).
    struct UI: KontextCommand {
        static let configuration = CommandConfiguration(
            commandName: "ui", abstract: "Serve a read-only page of the audit on this machine (Ctrl-C stops it).")

        @Flag(name: .long, help: "Read the audit backend (KONTEXT_AUDIT_URL) with your login instead of the local store.")
        var remote = false

        @Flag(name: .customLong("no-browser"), help: "Print the address without opening a browser.")
        var noBrowser = false

        @Option(name: .long, help: ArgumentHelp("Loopback port to listen on (default: any free one).", valueName: "port"))
        var port: Int = 0

        func run(context: CommandContext) async throws {
            guard (0...65535).contains(port) else { throw KontextError.usage("--port must be 0…65535") }
            let settings = try context.settings()
            let source: any AuditPageSource
            if remote {
                guard settings.auditURL != nil else {
                    throw KontextError.usage("--remote needs \(Settings.Name.auditURL), the audit backend's base URL")
                }
                source = RemoteAuditPage(settings: settings)
            } else {
                let trustedKey = (try? AuditSigning.keyringSigner(settings: settings, create: false))?.publicKeyBase64
                source = LocalAuditPage(store: try AuditCommand.openStore(context), trustedKey: trustedKey)
            }
            let token = AuditIdentifier.random() + AuditIdentifier.random()
            let server = try await AuditPageServer.start(source: source, token: token, port: port, stopOnInterrupt: true)
            let url = server.baseURL + "/?token=" + token
            context.streams.print(url)
            context.streams.printError("kontext: the audit page is at the address above (read-only, this machine only); Ctrl-C stops it")
            if !noBrowser, !openInBrowser(url, environment: context.environment) {
                context.streams.printError("kontext: no browser could be started ($BROWSER or xdg-open); open the address yourself")
            }
            await server.wait()
        }
    }
}

/// The local store, checked like `kontext audit verify`.
struct LocalAuditPage: AuditPageSource {
    let store: AuditStore
    let trustedKey: String?

    func sessions() async throws -> [AuditPageSession] {
        let store = self.store, trustedKey = self.trustedKey
        return try await offload {
            try store.sessions(limit: 200).map { session in
                try LocalAuditPage.page(session, events: store.events(sessionID: session.id),
                                        objects: store.eventObjects(sessionID: session.id), trustedKey: trustedKey)
            }
        }
    }

    func session(id: String) async throws -> (AuditPageSession, [AuditEvent])? {
        let store = self.store, trustedKey = self.trustedKey
        return try await offload {
            guard let session = try store.session(id: id) else { return nil }
            let events = try store.events(sessionID: id)
            return (try LocalAuditPage.page(session, events: events, objects: store.eventObjects(sessionID: id), trustedKey: trustedKey), events)
        }
    }

    static func page(_ session: AuditSession, events: [AuditEvent], objects: [JSONValue], trustedKey: String?) throws -> AuditPageSession {
        AuditPageSession(id: session.id, agent: session.agent, user: session.actor.email ?? session.actor.sub, host: session.host,
                         startedAt: session.startedAt, endedAt: session.endedAt, events: events,
                         report: AuditChain.verify(sessionID: session.id, events: objects,
                                                   trustedKey: trustedKey))
    }
}

/// The audit backend's query API with the user's login: its sessions, events and verdicts.
struct RemoteAuditPage: AuditPageSource {
    let settings: Settings

    func sessions() async throws -> [AuditPageSession] {
        let answer = try await RemoteAudit.get("/v1/sessions?limit=100", settings: settings)
        var pages: [AuditPageSession] = []
        for item in answer["sessions"]?.arrayValue ?? [] {
            guard let id = item["session_id"]?.stringValue, let page = try await session(id: id, listed: item) else { continue }
            pages.append(page.0)
        }
        return pages
    }

    func session(id: String) async throws -> (AuditPageSession, [AuditEvent])? {
        let answer = try await RemoteAudit.get("/v1/sessions?limit=10000", settings: settings)
        guard let listed = (answer["sessions"]?.arrayValue ?? []).first(where: { $0["session_id"]?.stringValue == id }) else { return nil }
        return try await session(id: id, listed: listed)
    }

    private func session(id: String, listed: JSONValue) async throws -> (AuditPageSession, [AuditEvent])? {
        var events: [AuditEvent] = []
        var after = 0
        while true {
            let answer = try await RemoteAudit.get("/v1/audit/events?session_id=\(formEncode(id))&after=\(after)&limit=1000", settings: settings)
            let page = answer["events"]?.arrayValue ?? []
            for item in page {
                guard let event = try? AuditEvent(json: item) else { continue }
                events.append(event)
                after = max(after, event.seq)
            }
            if page.count < 1000 { break }
        }
        let verdict = try await RemoteAudit.get("/v1/sessions/\(formEncode(id))/verify", settings: settings)
        let verified = verdict["verified"] == .bool(true)
        let chain = verified ? "verified by the audit backend"
            : "FAILED: " + (verdict["findings"]?.arrayValue?.first?["message"]?.stringValue ?? "the backend does not verify it")
        let outcomes = events.compactMap { $0.decision?.outcome }
        let page = AuditPageSession(id: id, agent: listed["agent"]?.stringValue ?? "-", user: listed["owner"]?.stringValue,
                                    host: listed["host"]?.stringValue, startedAt: listed["started_at"]?.stringValue ?? "",
                                    endedAt: listed["ended_at"]?.stringValue, eventCount: events.count,
                                    denies: outcomes.filter { $0 == .deny }.count, asks: outcomes.filter { $0 == .ask }.count,
                                    chain: chain, verified: verified)
        return (page, events)
    }
}
