#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import KontextCore
import KontextHookWire
import Synchronization

/// The session's sidecar: a Unix socket in a 0700 directory, one short connection per hook
/// call. Each connection has its own thread, so concurrent hooks share one audit commit
/// (the writer groups them).
public final class SidecarServer: @unchecked Sendable {
    public let socketPath: String
    private let listener: Int32
    private let handler: @Sendable (HookWire.Request) -> HookWire.Answer
    private let inFlight = DispatchGroup()
    private let acceptThreadDone = DispatchSemaphore(value: 0)
    private let stopping = Mutex(false)

    private init(socketPath: String, listener: Int32, handler: @escaping @Sendable (HookWire.Request) -> HookWire.Answer) {
        self.socketPath = socketPath
        self.listener = listener
        self.handler = handler
    }

    public static func start(socketPath: String,
                             handler: @escaping @Sendable (HookWire.Request) -> HookWire.Answer) throws -> SidecarServer {
        guard var address = unixSocketAddress(socketPath) else {
            throw KontextError(.usage, "session socket path too long: \(socketPath)", hint: "set XDG_RUNTIME_DIR to a shorter directory")
        }
        unlink(socketPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw KontextError(.usage, "cannot create the session socket: \(String(cString: strerror(errno)))") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(socketPath, 0o600) == 0, listen(fd, 256) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw KontextError(.usage, "cannot listen on \(socketPath): \(reason)")
        }
        let server = SidecarServer(socketPath: socketPath, listener: fd, handler: handler)
        startThread { server.acceptLoop() }
        return server
    }

    private func acceptLoop() {
        defer { acceptThreadDone.signal() }
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if stopping.withLock({ $0 }) { return }
                if errno == EMFILE || errno == ENFILE { usleep(10_000); continue }
                return
            }
            // A thread per connection, not Dispatch's pool: on Linux that pool does not grow
            // past the core count while its threads block, and each hook blocks until its
            // group commit; more waiting callers means larger, cheaper commits.
            inFlight.enter()
            startThread { [self] in
                serve(connection)
                inFlight.leave()
            }
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        // A client that never finishes its request must not hold a thread for long.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let received = readToEnd(connection, limit: HookWire.maximumInput + 512), !received.truncated,
              let request = HookWire.decodeRequest(received.bytes) else {
            writeFully(connection, HookWire.encode(HookWire.Answer(exitCode: 1, stdout: "", stderr: "kontext: malformed request to the session sidecar\n")))
            return
        }
        writeFully(connection, HookWire.encode(handler(request)))
    }

    /// Stops accepting, waits for calls in progress, removes the socket.
    public func stop() {
        stopping.withLock { $0 = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        acceptThreadDone.wait()
        inFlight.wait()
        unlink(socketPath)
    }
}
