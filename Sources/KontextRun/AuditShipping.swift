import KontextAudit
import KontextAuditShipping
import KontextCore
import KontextHTTP
import KontextOIDC

/// SPEC section 7's shipping, as `start` and every other command use it.
public enum AuditUpload {
    /// Where this run's sessions are recorded for: `KONTEXT_AUDIT_URL` with the login's (or
    /// CI job's) identity. nil when no backend is set or in local mode, whose audit stays
    /// local; a session keeps its destination for good (see `AuditShipper`).
    public static func destination(settings: Settings, identity: RunIdentity) -> AuditDestination? {
        guard let url = settings.auditURL, identity.bearer != nil,
              let principal = identity.principal else { return nil }
        return AuditDestination(url: url, issuer: principal.issuer, subject: principal.subject)
    }

    /// The shipper for this run's destination, or nil when it has none.
    public static func shipper(settings: Settings, store: AuditStore, identity: RunIdentity,
                               witnessing: AuditWitnessing? = nil) -> AuditShipper? {
        guard let destination = destination(settings: settings, identity: identity), let bearer = identity.bearer else { return nil }
        return AuditShipper(store: store, destination: destination,
                            http: HTTPClient(settings: settings), bearer: bearer, witnessing: witnessing)
    }

    /// What an earlier session left unsent (the backend was down, or kontext was killed),
    /// sent by whichever kontext command runs next, if it runs with the backend and identity
    /// those sessions were recorded for. Quiet unless something remains unsent, and never
    /// fails the command it rides on.
    public static func sendBacklog(settings: Settings, within seconds: Double = 10) async {
        await exportBacklog(settings: settings, within: seconds)
        // A CI job keeps no store between commands, so it has no backlog.
        guard let url = settings.auditURL, case .remote = Mode.detect(settings) else { return }
        let path = AuditStore.defaultPath(environment: settings.environment)
        guard AuditStore.exists(path: path), let store = try? AuditStore(path: path),
              ((try? store.pendingEventCount(auditURL: url)) ?? 0) > 0 || (try? store.hasPendingSessions(auditURL: url)) == true
        else { return }
        guard let identity = try? await RunIdentity.establish(settings: settings),
              let shipper = shipper(settings: settings, store: store, identity: identity) else { return }
        let destination = shipper.destination
        let pending = ((try? store.pendingEventCount(for: destination)) ?? 0)
            + ((try? store.pendingSessions(start: true, for: destination).count) ?? 0)
            + ((try? store.pendingSessions(start: false, for: destination).count) ?? 0)
        guard pending > 0 else { return }
        let problem = await shipper.shipPending(within: seconds)
        let unsent = shipper.pendingCount()
        if unsent > 0 {
            printError("kontext: \(unsent) audit event\(unsent == 1 ? "" : "s") still unsent to \(url)\(problem.map { " (\($0))" } ?? ""); kontext will try again")
        }
    }
}

extension AuditUpload {
    /// The OpenTelemetry exporter of this run's store, nil when no collector is configured.
    static func exporter(settings: Settings, store: AuditStore) -> BackgroundExporter? {
        guard let otlp = settings.otlp else { return nil }
        // Fixes where a new endpoint starts now, before this run's first event.
        _ = try? store.otlpPosition(endpoint: otlp.logsURL)
        let exporter = BackgroundExporter(exporter: OTLPExporter(store: store, settings: otlp, http: HTTPClient(settings: settings)))
        exporter.start()
        return exporter
    }

    /// Exports what is left (a few seconds at most); the rest goes with the next command.
    static func finishExport(_ exporter: BackgroundExporter?, settings: Settings) async {
        guard let exporter else { return }
        let (unsent, problem) = await exporter.finish(within: 5)
        AgentSession.reportUnsent(unsent, "exported to", settings.otlp?.logsURL ?? "the OpenTelemetry collector", problem)
    }

    /// Events an earlier run recorded but could not export, sent by the next command.
    static func exportBacklog(settings: Settings, within seconds: Double) async {
        guard let otlp = settings.otlp else { return }
        let path = AuditStore.defaultPath(environment: settings.environment)
        guard AuditStore.exists(path: path), let store = try? AuditStore(path: path) else { return }
        let exporter = OTLPExporter(store: store, settings: otlp, http: HTTPClient(settings: settings))
        guard await exporter.pendingCount() > 0 else { return }
        let problem = await exporter.exportPending(within: seconds)
        let unsent = await exporter.pendingCount()
        if unsent > 0 {
            printError("kontext: \(unsent) audit event\(unsent == 1 ? "" : "s") still not exported to \(otlp.logsURL)\(problem.map { " (\($0))" } ?? ""); kontext will try again")
        }
    }
}

/// `kontext audit … --remote`: the audit backend's query API, read with the run's identity.
public enum RemoteAudit {
    public static func get(_ pathAndQuery: String, settings: Settings) async throws -> JSONValue {
        try await BrokerCall.asCommand("GET", pathAndQuery, settings: settings, server: "the audit backend") { status, reason in
            KontextError(status == 401 ? .authentication : .usage, "the audit backend refused \(pathAndQuery): \(reason)")
        }
    }
}
