import Foundation
import Hummingbird
import KontextAudit
import KontextBroker
import KontextCore
import KontextHTTP
import Logging
import Synchronization
import UnixSignals

/// A session as `kontext audit ui` lists it.
public struct AuditPageSession: Sendable {
    public var id: String
    public var agent: String
    public var user: String?
    public var host: String?
    public var startedAt: String
    public var endedAt: String?
    public var eventCount: Int
    public var denies: Int
    public var asks: Int
    /// The chain's state in words ("verified, sealed", or the first problem).
    public var chain: String
    public var verified: Bool

    public init(id: String, agent: String, user: String?, host: String?, startedAt: String, endedAt: String?,
                eventCount: Int, denies: Int, asks: Int, chain: String, verified: Bool) {
        self.id = id
        self.agent = agent
        self.user = user
        self.host = host
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.eventCount = eventCount
        self.denies = denies
        self.asks = asks
        self.chain = chain
        self.verified = verified
    }

    /// The counts and chain state of `events` (one session's, in seq order), checked with
    /// `trustedKey` like `kontext audit verify`.
    public init(id: String, agent: String, user: String?, host: String?, startedAt: String, endedAt: String?,
                events: [AuditEvent], report: AuditChainReport) {
        let outcomes = events.compactMap { $0.decision?.outcome }
        let chain: String
        if report.verified {
            chain = "verified" + (report.sealed ? ", sealed" : report.signedThrough.map { ", signed through #\($0)" } ?? ", unsigned")
        } else {
            chain = "FAILED: " + (report.findings.first?.message ?? "")
        }
        self.init(id: id, agent: agent, user: user, host: host, startedAt: startedAt, endedAt: endedAt, eventCount: events.count,
                  denies: outcomes.filter { $0 == .deny }.count, asks: outcomes.filter { $0 == .ask }.count,
                  chain: chain, verified: report.verified)
    }
}

/// Where the page reads: the local store, or the audit backend's query API (`--remote`).
public protocol AuditPageSource: Sendable {
    func sessions() async throws -> [AuditPageSession]
    /// The session and its events in seq order; nil when there is no such session.
    func session(id: String) async throws -> (AuditPageSession, [AuditEvent])?
}

/// `kontext audit ui`: a read-only page on loopback. Every request needs the run's random
/// token, given once in the URL (it then lives in a same-site, HTTP-only cookie, and the URL
/// is cleaned of it) or as that cookie; anything else is 403. Requests for another host name
/// (DNS rebinding) are 403 too. Server-rendered HTML with a little inline CSS, no script.
public final class AuditPageServer: Sendable {
    public let baseURL: String
    private let task: Task<Void, any Error>

    static let cookieName = "kontext_audit_ui"

    private init(baseURL: String, task: Task<Void, any Error>) {
        self.baseURL = baseURL
        self.task = task
    }

    /// Serves until `stop`, or with `stopOnInterrupt` until SIGINT or SIGTERM (then `wait` returns).
    public static func start(source: any AuditPageSource, token: String, port: Int = 0,
                             stopOnInterrupt: Bool = false) async throws -> AuditPageServer {
        let shutdownSignals: [UnixSignal] = stopOnInterrupt ? [.sigint, .sigterm] : []
        var quiet = Logger(label: "kontext.audit-ui")
        quiet.logLevel = .error
        let router = Router()
        let boundPort = PortBox()
        router.get("/") { request, _ in
            try await guarded(request, token: token, port: boundPort) { try await sessionsPage(source) }
        }
        router.get("/sessions/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await guarded(request, token: token, port: boundPort) {
                try await sessionPage(source, id: id, filter: Filter(request))
            }
        }
        let listening = try await LoopbackApplication.start(router, port: port, logger: quiet, shutdownSignals: shutdownSignals)
        boundPort.set(listening.port)
        return AuditPageServer(baseURL: listening.baseURL, task: listening.task)
    }

    /// Returns when the server has stopped.
    public func wait() async {
        _ = try? await task.value
    }

    public func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    // MARK: Access

    private static func guarded(_ request: Request, token: String, port: PortBox,
                                _ page: () async throws -> (Int, String)) async throws -> Response {
        // Only this loopback address by its number: a page of another origin cannot reach
        // the server through a host name it controls.
        guard request.head.authority == "127.0.0.1:\(port.get())" else {
            return html(403, document(title: "Forbidden", body: "<p>Use the address kontext printed.</p>"))
        }
        let query = request.uri.queryParameters
        if let given = query.get("token") {
            guard constantTimeEqual(given, token) else {
                return html(403, document(title: "Forbidden", body: "<p>This link is not valid. Use the one kontext printed.</p>"))
            }
            var kept = request.uri.path
            let rest = query.filter { $0.key != "token" }.map { "\(formEncode(String($0.key)))=\(formEncode(String($0.value)))" }
            if !rest.isEmpty { kept += "?" + rest.joined(separator: "&") }
            var response = Response(status: .seeOther, headers: securityHeaders)
            response.headers[.location] = kept
            response.headers[.setCookie] = "\(cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict"
            return response
        }
        let cookies = request.headers[values: .cookie].flatMap { $0.split(separator: ";") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard cookies.contains(where: { $0.hasPrefix(cookieName + "=") && constantTimeEqual(String($0.dropFirst(cookieName.count + 1)), token) }) else {
            return html(403, document(title: "Forbidden", body: "<p>Open the address kontext printed (it carries this run's token).</p>"))
        }
        let (status, body) = try await page()
        return html(status, body)
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static let securityHeaders: HTTPFields = [
        .cacheControl: "no-store",
        .init("Content-Security-Policy")!: "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        .init("X-Content-Type-Options")!: "nosniff",
        .init("Referrer-Policy")!: "no-referrer",
    ]

    private static func html(_ status: Int, _ body: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    // MARK: Pages

    struct Filter {
        var decision: String
        var tool: String
        var text: String

        init(_ request: Request) {
            let query = request.uri.queryParameters
            decision = query.get("decision") ?? ""
            tool = query.get("tool") ?? ""
            text = query.get("q") ?? ""
        }

        func admits(_ event: AuditEvent) -> Bool {
            if !decision.isEmpty, event.decision?.outcome.rawValue != decision { return false }
            if !tool.isEmpty, event.toolName?.lowercased().contains(tool.lowercased()) != true { return false }
            if !text.isEmpty {
                let haystack = [event.toolInput.serialized, event.toolResponse.serialized, event.decision?.reason ?? "",
                                event.decision?.rule ?? "", event.toolName ?? "", event.event.rawValue].joined(separator: " ")
                if !haystack.lowercased().contains(text.lowercased()) { return false }
            }
            return true
        }
    }

    static func sessionsPage(_ source: any AuditPageSource) async throws -> (Int, String) {
        let sessions = try await source.sessions()
        var rows = ""
        for session in sessions {
            rows += "<tr class=\"session\" data-session=\"\(escape(session.id))\">"
            rows += "<td><a href=\"/sessions/\(escape(formEncode(session.id)))\">\(escape(String(session.id.prefix(12))))</a></td>"
            rows += "<td>\(escape(session.agent))</td><td>\(escape(session.user ?? "-"))</td><td>\(escape(session.host ?? "-"))</td>"
            rows += "<td>\(escape(session.startedAt))</td><td>\(escape(duration(session.startedAt, session.endedAt)))</td>"
            rows += "<td class=\"num\">\(session.eventCount)</td><td class=\"num deny\">\(session.denies)</td><td class=\"num ask\">\(session.asks)</td>"
            rows += "<td class=\"\(session.verified ? "ok" : "bad")\">\(escape(session.chain))</td></tr>\n"
        }
        let body = """
            <h1>kontext audit</h1>
            <table id="sessions"><thead><tr><th>session</th><th>agent</th><th>user</th><th>host</th><th>started</th>\
            <th>duration</th><th>events</th><th>deny</th><th>ask</th><th>chain</th></tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"10\">No sessions recorded yet.</td></tr>" : rows)</tbody></table>
            """
        return (200, document(title: "kontext audit", body: body))
    }

    static func sessionPage(_ source: any AuditPageSource, id: String, filter: Filter) async throws -> (Int, String) {
        guard let found = try await source.session(id: id) else {
            return (404, document(title: "No such session", body: "<p>No session \(escape(id)). <a href=\"/\">All sessions</a></p>"))
        }
        let (session, events) = found
        func option(_ value: String) -> String {
            "<option value=\"\(value)\"\(filter.decision == value ? " selected" : "")>\(value.isEmpty ? "any decision" : value)</option>"
        }
        var rows = ""
        for event in events where filter.admits(event) {
            let outcome = event.decision?.outcome.rawValue ?? ""
            rows += "<tr class=\"event \(escape(event.event.rawValue)) \(outcome)\" data-seq=\"\(event.seq)\">"
            rows += "<td class=\"num\">\(event.seq)</td><td>\(escape(event.time))</td><td>\(escape(event.event.rawValue))</td>"
            rows += "<td>\(escape(event.toolName ?? ""))</td>"
            let input = event.event == .userPrompt ? (event.toolInput["prompt"]?.stringValue ?? "") : (event.toolInput == .null ? "" : event.toolInput.serialized)
            rows += "<td class=\"input\"><code>\(escape(clip(input, 2000)))</code></td>"
            if let decision = event.decision {
                rows += "<td class=\"decision \(outcome)\">\(escape(outcome))\(decision.enforced ? "" : " (observe)")</td>"
                rows += "<td class=\"rule\">\(escape(decision.rule ?? ""))</td><td>\(escape(decision.reason ?? ""))</td>"
            } else {
                rows += "<td></td><td></td><td></td>"
            }
            rows += "<td>\(escape(risk(of: event)))</td>"
            rows += "<td class=\"num\">\(event.toolResponse == .null ? "" : String(event.toolResponse.serialized.utf8.count))</td></tr>\n"
        }
        let body = """
            <p><a href="/">All sessions</a></p>
            <h1>Session \(escape(session.id))</h1>
            <p>\(escape(session.agent)) · \(escape(session.user ?? "-")) · \(escape(session.host ?? "-")) · started \(escape(session.startedAt)) \
            · \(escape(duration(session.startedAt, session.endedAt))) · \(session.eventCount) events · \(session.denies) deny · \(session.asks) ask</p>
            <p id="chain" class="\(session.verified ? "ok" : "bad")">Hash chain: \(escape(session.chain))</p>
            <form method="get" action="/sessions/\(escape(formEncode(session.id)))">
            <select name="decision">\(["", "allow", "ask", "deny"].map(option).joined())</select>
            <input name="tool" placeholder="tool" value="\(escape(filter.tool))">
            <input name="q" placeholder="text" value="\(escape(filter.text))">
            <button type="submit">Filter</button></form>
            <table id="timeline"><thead><tr><th>#</th><th>time</th><th>event</th><th>tool</th><th>input</th><th>decision</th>\
            <th>rule</th><th>reason</th><th>risk</th><th>response bytes</th></tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"10\">No event matches.</td></tr>" : rows)</tbody></table>
            """
        return (200, document(title: "kontext audit: \(String(session.id.prefix(12)))", body: body))
    }

    /// SPEC section 12's optional `decision.risk`, when the event carries one.
    static func risk(of event: AuditEvent) -> String {
        event.decision == nil ? "" : (event.json["decision"]?["risk"]?.stringValue ?? "")
    }

    static func duration(_ start: String, _ end: String?) -> String {
        guard let end, let from = AuditTime.epochMilliseconds(start), let to = AuditTime.epochMilliseconds(end), to >= from else {
            return end == nil ? "running" : "-"
        }
        let seconds = (to - from) / 1000
        return seconds >= 3600 ? "\(seconds / 3600) h \(seconds % 3600 / 60) min" : seconds >= 60 ? "\(seconds / 60) min \(seconds % 60) s" : "\(seconds) s"
    }

    static func clip(_ text: String, _ limit: Int) -> String {
        text.count > limit ? String(text.prefix(limit)) + "…" : text
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    static func document(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>
        body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
        table { border-collapse: collapse; width: 100%; }
        th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
        th { background: #f4f4f4; }
        td.num { text-align: right; }
        td.input code { white-space: pre-wrap; word-break: break-all; font-size: 12px; }
        .deny { color: #b00020; font-weight: 600; } .ask { color: #a15c00; } .ok { color: #116611; } .bad { color: #b00020; font-weight: 600; }
        form { margin: 1em 0; } input, select, button { font: inherit; margin-right: .5em; }
        </style></head>
        <body>
        \(body)
        </body></html>
        """
    }
}

/// The port the server bound, known only after it started (for the Host check).
private final class PortBox: Sendable {
    private let port = Mutex(0)

    func set(_ value: Int) { port.withLock { $0 = value } }
    func get() -> Int { port.withLock { $0 } }
}
