import KontextAudit
import KontextCore
import KontextHTTP
import Synchronization

/// Where an exporter takes its events from: the CLI's local store (a position per endpoint),
/// or the broker's store (its events marked as they go out).
public protocol OTLPEventSource: Sendable {
    /// Hands the next events the collector has yet to acknowledge (at most `limit`) to `send`
    /// and records them as acknowledged once it returns; when it throws they stay pending.
    /// Returns how many; 0 when none is pending.
    func exportNext(limit: Int, _ send: @escaping @Sendable ([AuditEvent]) async throws -> Void) async throws -> Int
    /// Events the collector has yet to acknowledge.
    func pendingExportCount() async -> Int
}

/// The local store's events after the position the store keeps for the endpoint.
struct LocalOTLPSource: OTLPEventSource {
    let store: AuditStore
    let endpoint: String

    func exportNext(limit: Int, _ send: @escaping @Sendable ([AuditEvent]) async throws -> Void) async throws -> Int {
        let (store, endpoint) = (self.store, self.endpoint)
        let batch = try await offload { try store.events(after: try store.otlpPosition(endpoint: endpoint), limit: limit) }
        guard let last = batch.last else { return 0 }
        try await send(batch.map(\.event))
        try await offload { try store.setOTLPPosition(endpoint: endpoint, position: last.position) }
        return batch.count
    }

    func pendingExportCount() async -> Int {
        guard let position = try? store.otlpPosition(endpoint: endpoint) else { return 0 }
        return (try? store.eventCount(after: position)) ?? 0
    }
}

/// Sends audit events to an OpenTelemetry collector as OTLP/HTTP log records (SPEC section
/// 12, `KONTEXT_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_*`). Like shipping, the event is durable
/// in a store first and exported after: a collector that is down only delays the export,
/// never a hook or an ingest, and the store records what the collector acknowledged, so
/// nothing is lost across outages and restarts.
public final class OTLPExporter: Sendable {
    public static let batchSize = 500

    public let source: any OTLPEventSource
    public let settings: OTLPSettings
    let http: HTTPClient

    public init(source: any OTLPEventSource, settings: OTLPSettings, http: HTTPClient) {
        self.source = source
        self.settings = settings
        self.http = http
    }

    /// The exporter of the local store's events (the CLI's sidecar and commands).
    public convenience init(store: AuditStore, settings: OTLPSettings, http: HTTPClient) {
        self.init(source: LocalOTLPSource(store: store, endpoint: settings.logsURL), settings: settings, http: http)
    }

    /// Exports until nothing is left; returns how many events went out, or throws at the
    /// first failure (what was not acknowledged is sent again next time).
    @discardableResult
    public func exportPending() async throws(AuditShipper.Failure) -> Int {
        guard let encoding = settings.encoding else {
            throw AuditShipper.Failure(description: "OTLP protocol \(settings.unsupportedProtocol ?? "?") is not supported: use http/protobuf or http/json")
        }
        let collectorFailure = CollectorFailure()
        var sent = 0
        while true {
            let count: Int
            do {
                count = try await source.exportNext(limit: Self.batchSize) { events in
                    guard !events.isEmpty else { return }
                    let body = AuditOTLP.request(events, encoding: encoding, serviceName: self.settings.serviceName,
                                                 resourceAttributes: self.settings.resourceAttributes)
                    do throws(AuditShipper.Failure) {
                        try await self.post(body, encoding: encoding)
                    } catch {
                        collectorFailure.value.withLock { $0 = error }
                        throw error
                    }
                }
            } catch {
                throw collectorFailure.value.withLock { $0 } ?? AuditShipper.Failure(description: "the audit store: \(error)")
            }
            if count == 0 { break }
            sent += count
        }
        return sent
    }

    /// `exportPending` given at most `seconds`; returns the problem that stopped it, if any.
    public func exportPending(within seconds: Double) async -> String? {
        await attempt(within: seconds) { try await self.exportPending() }
    }

    /// Events the collector has yet to acknowledge.
    public func pendingCount() async -> Int {
        await source.pendingExportCount()
    }

    private func post(_ body: [UInt8], encoding: OTLPSettings.Encoding) async throws(AuditShipper.Failure) {
        if Task.isCancelled { throw AuditShipper.Failure(description: "stopped before \(settings.logsURL) answered") }
        let contentType = encoding == .protobuf ? "application/x-protobuf" : "application/json"
        var headers: [(name: String, value: String)] = [(name: "Content-Type", value: contentType)]
        headers += settings.headers.map { (name: $0.0, value: $0.1) }
        let answer = await http.perform(HTTPRequest(method: "POST", url: settings.logsURL, headers: headers, body: body, timeout: 15))
        switch answer {
        case .failure(let error):
            Diagnostics.log("otlp: POST \(settings.logsURL) → \(error.reason)")
            throw AuditShipper.Failure(description: "cannot reach the OpenTelemetry collector at \(settings.logsURL): \(error.reason)")
        case .success(let response) where (200..<300).contains(response.status):
            return
        case .success(let response):
            Diagnostics.log("otlp: POST \(settings.logsURL) → HTTP \(response.status)")
            throw AuditShipper.Failure(description: "the OpenTelemetry collector at \(settings.logsURL) answered HTTP \(response.status)")
        }
    }
}

/// The collector's refusal, told apart from the store's failures (the source rethrows either).
private final class CollectorFailure: Sendable {
    let value = Mutex<AuditShipper.Failure?>(nil)
}

/// Exports in the background while a session runs, backing off while the collector is down.
public final class BackgroundExporter: Sendable {
    let exporter: OTLPExporter
    let timing: BackgroundShipper.Timing
    private let stopping = Atomic<Bool>(false)
    private let task = Mutex<Task<Void, Never>?>(nil)

    public init(exporter: OTLPExporter, timing: BackgroundShipper.Timing = BackgroundShipper.Timing()) {
        self.exporter = exporter
        self.timing = timing
    }

    public func start() {
        let loop = Task { [self] in
            var failures = 0
            while !stopping.load(ordering: .acquiring) {
                do {
                    try await exporter.exportPending()
                    failures = 0
                    try? await Task.sleep(for: timing.poll)
                } catch {
                    failures += 1
                    try? await Task.sleep(for: .seconds(BackgroundShipper.backoff(failures: failures, timing: timing)))
                }
            }
        }
        task.withLock { $0 = loop }
    }

    /// Stops the loop and tries to export what is left within `seconds`; returns how many
    /// events the collector has yet to receive and why, if any.
    public func finish(within seconds: Double) async -> (unsent: Int, problem: String?) {
        stopping.store(true, ordering: .releasing)
        let loop = task.withLock { $0 }
        loop?.cancel()
        await loop?.value
        let problem = await exporter.exportPending(within: seconds)
        let unsent = await exporter.pendingCount()
        return (unsent, unsent == 0 ? nil : problem)
    }
}
