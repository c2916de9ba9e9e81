// Callers that start a BrokerServer hand it an exchange core's service, verifier and vault.
@_exported import KontextExchangeCore
import Hummingbird
import KontextCore
import KontextHTTP
import Logging
import ServiceLifecycle
import UnixSignals

/// A request's context with the address of the client that sent it.
public struct BrokerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address (the reverse proxy's, behind one).
    public let peerAddress: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress?.ipAddress
    }
}

/// What one client may cost the server.
public struct BrokerLimits: Sendable {
    /// A connection that completes no request part for this long is closed (a half-sent
    /// header included); nil: never.
    public var idleTimeout: Duration?
    /// Token requests per client address; nil: unlimited.
    public var tokenRate: TokenRateLimiter?
    /// When the connection comes from loopback (a reverse proxy on this host), the client's
    /// address is the last entry of this header (e.g. `X-Forwarded-For`).
    public var clientAddressHeader: String?

    public init(idleTimeout: Duration? = .seconds(30), tokenRate: TokenRateLimiter? = nil, clientAddressHeader: String? = nil) {
        self.idleTimeout = idleTimeout
        self.tokenRate = tokenRate
        self.clientAddressHeader = clientAddressHeader
    }

    /// The address the rate limit and the refusal counters go by.
    public func client(of request: Request, context: BrokerRequestContext) -> String {
        let peer = context.peerAddress ?? "unknown"
        if let name = clientAddressHeader?.lowercased(), Transport.isLoopbackHost(peer),
           let value = request.headers.last(where: { $0.name.canonicalName == name })?.value,
           let last = value.split(separator: ",").last {
            let forwarded = last.trimmingCharacters(in: .whitespaces)
            if !forwarded.isEmpty { return String(forwarded.prefix(64)) }
        }
        return peer
    }
}

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
                             logger: Logger? = nil, shutdownSignals: [UnixSignal] = [], limits: BrokerLimits = BrokerLimits(),
                             routes: ((Router<BrokerRequestContext>) -> Void)? = nil) async throws -> BrokerServer {
        var quiet = Logger(label: "kontext.broker")
        quiet.logLevel = .error
        let router = Router(context: BrokerRequestContext.self)
        if let routes {
            routes(router)
        } else {
            router.get("/healthz") { _, _ in "ok" }
        }
        router.post(RouterPath(tokenPath)) { request, context -> Response in
            let client = limits.client(of: request, context: context)
            if let wait = limits.tokenRate?.admit(client) {
                let body = #"{"error":"temporarily_unavailable","error_description":"too many token requests from this address; retry in "#
                    + String(wait) + #" s"}"#
                return Response(status: .tooManyRequests,
                                headers: [.contentType: "application/json", .cacheControl: "no-store", .retryAfter: String(wait)],
                                body: .init(byteBuffer: ByteBuffer(string: body)))
            }
            let body = try await request.body.collect(upTo: 64 * 1024)
            let form = formDecode(String(buffer: body))
            let answer = await service.handle(form: form, client: client)
            return Response(
                status: .init(code: answer.status),
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: limits.idleTimeout.map { .nanoseconds(Int64($0 / .nanoseconds(1))) })),
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
