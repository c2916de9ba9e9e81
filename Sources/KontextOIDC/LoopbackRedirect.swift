#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextCore
import KontextSystem
import KontextHTTP

/// RFC 8252 section 7.3: the browser brings the authorization response to a listener on
/// the loopback interface. It binds 127.0.0.1 only, answers one request on the redirect
/// path, and refuses everything else.
public final class LoopbackRedirect: Sendable {
    public let redirectURI: String
    let path: String
    private let socket: Int32

    /// `registered`: an exact `http://127.0.0.1:PORT/PATH` from KONTEXT_REDIRECT_URI; nil
    /// picks an ephemeral port and `/callback`.
    public init(registered: String?) throws {
        var port: UInt16 = 0
        var path = "/callback"
        var host = "127.0.0.1"
        if let registered {
            guard let parsed = Self.parseLoopback(registered) else {
                throw KontextError.usage("\(Settings.Name.redirectURI) must be a loopback http URI such as http://127.0.0.1:53682/callback (got \(registered))")
            }
            (host, port, path) = parsed
        }
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw KontextError.usage("cannot open a loopback socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw KontextError.usage("cannot listen on 127.0.0.1:\(port) for the login redirect: \(reason)",
                                     hint: port == 0 ? nil : "another program uses that port; free it or change KONTEXT_REDIRECT_URI")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        socket = fd
        self.path = path
        redirectURI = "http://\(host):\(UInt16(bigEndian: address.sin_port))\(path)"
    }

    deinit { close(socket) }

    static func parseLoopback(_ uri: String) -> (host: String, port: UInt16, path: String)? {
        guard uri.hasPrefix("http://") else { return nil }
        let rest = uri.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        let parts = authority.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, ["127.0.0.1", "localhost"].contains(String(parts[0])),
              let port = UInt16(parts[1]), port > 0 else { return nil }
        return (String(parts[0]), port, path.isEmpty ? "/" : String(path))
    }

    /// Waits for the redirect and returns its query parameters. Other requests (a favicon,
    /// a scanner) get 404 and are ignored.
    public func waitForResponse(timeout seconds: Double) throws -> [String: String] {
        let deadline = monotonicSeconds() + seconds
        while true {
            let remaining = deadline - monotonicSeconds()
            guard remaining > 0 else {
                throw KontextError(.authentication, "no answer from the browser within \(Int(seconds)) seconds",
                                   hint: "run `kontext login` again, or `kontext login --device` where no browser can reach this machine")
            }
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining, 1) * 1000))
            guard ready > 0 else { continue }
            let connection = accept(socket, nil, nil)
            guard connection >= 0 else { continue }
            defer { close(connection) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            guard let target = Self.readRequestTarget(connection) else { continue }
            let pathPart = target.prefix { $0 != "?" }
            guard pathPart == path else {
                respond(connection, status: "404 Not Found", text: "Not found.")
                continue
            }
            let query = target.dropFirst(pathPart.count + (target.count > pathPart.count ? 1 : 0))
            let parameters = formDecode(String(query))
            let failed = parameters["error"] != nil
            respond(connection, status: "200 OK", text: failed
                ? "kontext: the sign-in did not complete. You can close this window and return to the terminal."
                : "kontext: you are signed in. You can close this window and return to the terminal.")
            return parameters
        }
    }

    /// The request target of a GET, from at most 8 KiB of request head.
    static func readRequestTarget(_ fd: Int32) -> String? {
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while head.count < 8192 {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            head += buffer[0..<count]
            if head.contains(10) { break }
        }
        guard let lineEnd = head.firstIndex(of: 10) else { return nil }
        let line = String(decoding: head[..<lineEnd], as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0] == "GET" else { return nil }
        return String(parts[1])
    }

    private func respond(_ fd: Int32, status: String, text: String) {
        let body = "<!doctype html><meta charset=utf-8><title>kontext</title><p>\(text)</p>\n"
        let head = "HTTP/1.1 \(status)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        writeAll(head + body, to: fd)
    }
}
