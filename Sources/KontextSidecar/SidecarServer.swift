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
/// call. Each connection has a thread of its own, so concurrent hooks share one audit commit
/// (the writer groups them). Connections are capped and each must deliver its request
/// within a deadline, so idle or dribbling clients cannot pile up threads.
public final class SidecarServer: @unchecked Sendable {
    /// Concurrent connections served; one more is closed at once, and its hook falls back
    /// as when the sidecar is unreachable (observe allows, enforce denies). Far above the
    /// parallel tool calls an agent makes.
    public static let maximumConnections = 64
    /// Time a client has to send its whole request (a hook sends it at once).
    public static let requestDeadline = 5.0

    public let socketPath: String
    private let listener: Int32
    private let handler: @Sendable (HookWire.Request) -> HookWire.Answer
    private let inFlight = DispatchGroup()
    private let acceptThreadDone = DispatchSemaphore(value: 0)
    private let stopping = Mutex(false)
    private let connections = Atomic<Int>(0)

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
            guard connections.add(1, ordering: .relaxed).newValue <= Self.maximumConnections else {
                connections.subtract(1, ordering: .relaxed)
                close(connection)
                continue
            }
            // A thread per connection (an idle worker or a new one), not Dispatch's pool: on
            // Linux that pool does not grow past the core count while its threads block, and
            // each hook blocks until its group commit; more waiting callers means larger,
            // cheaper commits.
            inFlight.enter()
            WorkerThreads.shared.run { [self] in
                serve(connection)
                connections.subtract(1, ordering: .relaxed)
                inFlight.leave()
            }
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        // A client that does not read its answer must not hold the thread either.
        var timeout = timeval(tv_sec: Int(Self.requestDeadline), tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let received = Self.readRequest(connection), let request = HookWire.decodeRequest(received) else {
            Self.sendAnswer(connection, HookWire.encode(HookWire.Answer(exitCode: 1, stdout: "", stderr: "kontext: malformed or incomplete request to the session sidecar\n")))
            return
        }
        Self.sendAnswer(connection, HookWire.encode(handler(request)))
    }

    /// The whole request (up to the client's end of file) if it arrives within
    /// `requestDeadline` and fits the hook-input limit; nil otherwise. One deadline for the
    /// whole request, not per read: a byte now and then does not keep a client connected.
    private static func readRequest(_ fd: Int32) -> [UInt8]? {
        let limit = HookWire.maximumInput + 512
        let deadline = monotonicSeconds() + requestDeadline
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let remaining = deadline - monotonicSeconds()
            guard remaining > 0 else { return nil }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(remaining * 1000) + 1)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { return nil }
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR || errno == EAGAIN { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return bytes }
            guard bytes.count + count <= limit else { return nil }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    /// Writes the answer; a client that hung up is no signal to the session (MSG_NOSIGNAL:
    /// a SIGPIPE would end the whole kontext process).
    private static func sendAnswer(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0, errno == EINTR { continue }
            guard sent > 0 else { return }
            offset += sent
        }
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
