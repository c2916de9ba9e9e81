import Hummingbird
import KontextCore
import Logging
import UnixSignals

/// A small Hummingbird server on 127.0.0.1 (the `kontext audit ui` page, the tests' identity
/// provider): started, and returned once its socket listens, with the port it got.
public struct LoopbackApplication: Sendable {
    public let port: Int
    /// Serves until cancelled, or until one of the shutdown signals arrives.
    public let task: Task<Void, any Error>

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// `port` 0 asks for an ephemeral one.
    public static func start<ResponderBuilder: HTTPResponderBuilder>(
        _ router: ResponderBuilder, port: Int = 0, logger: Logger, shutdownSignals: [UnixSignal] = []
    ) async throws(KontextError) -> LoopbackApplication
    where ResponderBuilder.Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger)
        let task = Task {
            defer { continuation.finish() }
            try await app.runService(gracefulShutdownSignals: shutdownSignals)
        }
        var iterator = ports.makeAsyncIterator()
        guard let bound = await iterator.next(), bound != 0 else {
            task.cancel()
            let reason: String
            do { try await task.value; reason = "" } catch { reason = ": \(error)" }
            throw KontextError(.usage, "cannot listen on 127.0.0.1:\(port)\(reason)")
        }
        return LoopbackApplication(port: bound, task: task)
    }
}
