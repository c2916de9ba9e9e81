#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes text to a file descriptor without buffering, so messages and child output
/// interleave in the order they happen.
public func writeAll(_ text: String, to fd: Int32) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += n
    }
}

public func printError(_ text: String) {
    writeAll(text.hasSuffix("\n") ? text : text + "\n", to: 2)
}

public func printOutput(_ text: String) {
    writeAll(text.hasSuffix("\n") ? text : text + "\n", to: 1)
}

/// Reads everything from a file descriptor (used for secrets on stdin and hook input).
public func readAll(from fd: Int32, limit: Int = 64 << 20) -> [UInt8]? {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { return result }
        result.append(contentsOf: buffer[0..<n])
        if result.count > limit { return nil }
    }
}

/// Reads a whole file, or nil (with errno set) if it cannot be opened or is over `limit`.
public func readFile(_ path: String, limit: Int = 64 << 20) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return readAll(from: fd, limit: limit)
}
