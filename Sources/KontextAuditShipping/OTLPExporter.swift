import KontextAudit
import KontextCore
import KontextHTTP
import Synchronization

/// Sends the local store's events to an OpenTelemetry collector as OTLP/HTTP log records
/// (SPEC section 12, `KONTEXT_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_*`). Like shipping, the
/// event is durable in the store first and exported after: a collector that is down only
/// delays the export, never a hook, and the store keeps, per endpoint, the position of the
/// last event the collector acknowledged, so nothing is lost across outages and restarts.
public final class OTLPExporter: Sendable {
    public static let batchSize = 500

    public let store: AuditStore
    public let settings: OTLPSettings
    let http: HTTPClient

    public init(store: AuditStore, settings: OTLPSettings, http: HTTPClient) {
        self.store = store
        self.settings = settings
        self.http = http
    }

    /// Exports until nothing is left; returns how many events went out, or throws at the
    /// first failure (what was not acknowledged is sent again next time).
    @discardableResult
    public func exportPending() async throws(AuditShipper.Failure) -> Int {
        guard let encoding = settings.encoding else {
            throw AuditShipper.Failure(description: "OTLP protocol \(settings.unsupportedProtocol ?? "?") is not supported: use http/protobuf or http/json")
        }
        let (store, endpoint) = (self.store, settings.logsURL)
        var position = try await storing { try store.otlpPosition(endpoint: endpoint) }
        var sent = 0
        while true {
            let after = position
            let batch = try await storing { try store.events(after: after, limit: Self.batchSize) }
            guard let last = batch.last else { break }
            let body = AuditOTLP.request(batch.map(\.event), encoding: encoding, serviceName: settings.serviceName,
                                         resourceAttributes: settings.resourceAttributes)
            try await post(body, encoding: encoding)
            try await storing { try store.setOTLPPosition(endpoint: endpoint, position: last.position) }
            position = last.position
            sent += batch.count
        }
        return sent
    }

    /// `exportPending` given at most `seconds`; returns the problem that stopped it, if any.
    public func exportPending(within seconds: Double) async -> String? {
        await attempt(within: seconds) { try await self.exportPending() }
    }

    /// Events the collector has yet to acknowledge.
    public func pendingCount() -> Int {
        guard let position = try? store.otlpPosition(endpoint: settings.logsURL) else { return 0 }
        return (try? store.eventCount(after: position)) ?? 0
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

    private func storing<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws(AuditShipper.Failure) -> T {
        do {
            return try await offload(body)
        } catch {
            throw AuditShipper.Failure(description: "the local audit store: \(error)")
        }
    }
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
        let unsent = exporter.pendingCount()
        return (unsent, unsent == 0 ? nil : problem)
    }
}
