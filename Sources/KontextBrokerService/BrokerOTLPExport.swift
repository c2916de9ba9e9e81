import KontextAudit
import KontextAuditShipping
import KontextBrokerStore
import KontextCore
import KontextHTTP
import Logging

/// The broker's OpenTelemetry export (SPEC section 12): every event ingested through
/// `POST /v1/audit/events` is stored first and goes out after, by the same exporter and the
/// same record mapping as the CLI's. Its cursor is in the broker store (each event marked
/// once exported), so an outage of the collector or a restart of the broker loses nothing,
/// and replicas on one PostgreSQL database never export the same event.
struct BrokerOTLPSource: OTLPEventSource {
    let store: any BrokerStore
    let logger: Logger

    func exportNext(limit: Int, _ send: @escaping @Sendable ([AuditEvent]) async throws -> Void) async throws -> Int {
        let logger = self.logger
        return try await store.exportPendingEvents(limit: limit, at: AuditTime.now()) { texts in
            // Stored as ingested (`actor` is the authenticated principal), so each parses;
            // one that would not is left out rather than holding up the others for good.
            let events = texts.compactMap { text -> AuditEvent? in
                guard let event = try? AuditEvent(json: JSONValue.parse(text)) else {
                    logger.error("audit event not exportable", metadata: ["length": "\(text.utf8.count)"])
                    return nil
                }
                return event
            }
            try await send(events)
        }
    }

    func pendingExportCount() async -> Int {
        (try? await store.pendingExportCount()) ?? 0
    }
}

extension BrokerServe {
    /// The background exporter of `store`'s events to `otlp`'s collector; ingest never waits
    /// on it.
    static func startExport(_ otlp: OTLPSettings, store: any BrokerStore, http: HTTPClient, logger: Logger) throws(KontextError) -> BackgroundExporter {
        guard otlp.encoding != nil else {
            throw KontextError.usage("\(otlp.unsupportedProtocol ?? "?") is not an OTLP protocol kontext speaks",
                                     hint: "set OTEL_EXPORTER_OTLP_PROTOCOL to http/protobuf (the default) or http/json")
        }
        var timing = BackgroundShipper.Timing()
        timing.poll = .seconds(1)
        let exporter = BackgroundExporter(exporter: OTLPExporter(source: BrokerOTLPSource(store: store, logger: logger), settings: otlp, http: http),
                                          timing: timing)
        exporter.start()
        logger.info("exporting audit events", metadata: ["otlp_endpoint": "\(otlp.logsURL)", "source": "\(otlp.source)"])
        return exporter
    }
}
