import Hummingbird
import KontextCore
import KontextHTTP
import Logging
import ServiceLifecycle
import UnixSignals

/// The broker's HTTP face: the token endpoint (and later audit ingest) on Hummingbird.
public final class BrokerServer: Sendable {
    public static let tokenPath = "/oauth2/token"

    /// The base URL, e.g. `http://127.0.0.1:41235`.
    public let baseURL: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    public var tokenURL: String { baseURL + Self.tokenPath }

    private init(baseURL: String, group: ServiceGroup, task: Task<Void, any Error>) {
        self.baseURL = baseURL
        self.group = group
        self.task = task
    }

    /// Starts serving `service` on host:port (port 0: an ephemeral one) and returns once
    /// the socket is listening.
    ///
    /// `routes` adds more endpoints (the self-hosted broker's audit API, a deeper health
    /// check); `shutdownSignals` stop the server gracefully (none for the embedded broker).
    public static func start(service: TokenExchangeService, host: String = "127.0.0.1", port: Int = 0,
                             logger: Logger? = nil, shutdownSignals: [UnixSignal] = [],
                             routes: ((Router<BasicRequestContext>) -> Void)? = nil) async throws -> BrokerServer {
        var quiet = Logger(label: "kontext.broker")
        quiet.logLevel = .error
        let router = Router()
        if let routes {
            routes(router)
        } else {
            router.get("/healthz") { _, _ in "ok" }
        }
        router.post(RouterPath(tokenPath)) { request, _ -> Response in
            let body = try await request.body.collect(upTo: 64 * 1024)
            let form = formDecode(String(buffer: body))
            let answer = await service.handle(form: form)
            return Response(
                status: .init(code: answer.status),
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger ?? quiet)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: shutdownSignals,
                                                      logger: logger ?? quiet))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let bound = await iterator.next() else {
            do { try await task.value } catch {
                throw KontextError(.usage, "cannot listen on \(host):\(port): \(error)")
            }
            throw KontextError(.usage, "cannot listen on \(host):\(port)")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return BrokerServer(baseURL: "http://\(hostPart):\(bound)", group: group, task: task)
    }

    /// Returns when the server has stopped (after a shutdown signal, or a failure).
    public func wait() async throws {
        try await task.value
    }

    /// Stops accepting, finishes requests in flight, and returns when the server is down.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
