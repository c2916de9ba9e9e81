#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@_exported import KontextSystem

/// Writes text to a file descriptor without buffering, so messages and child output
/// interleave in the order they happen.
public func writeAll(_ text: String, to fd: Int32) {
    writeFully(fd, Array(text.utf8))
}

public func printError(_ text: String) {
    writeAll(text.hasSuffix("\n") ? text : text + "\n", to: 2)
}

public func printOutput(_ text: String) {
    writeAll(text.hasSuffix("\n") ? text : text + "\n", to: 1)
}

/// Reads everything from a file descriptor (secrets on stdin, files); nil if unreadable or
/// over `limit`.
public func readAll(from fd: Int32, limit: Int = 64 << 20) -> [UInt8]? {
    guard let result = readToEnd(fd, limit: limit), !result.truncated else { return nil }
    return result.bytes
}

/// Reads a whole file, or nil (with errno set) if it cannot be opened or is over `limit`.
public func readFile(_ path: String, limit: Int = 64 << 20) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return readAll(from: fd, limit: limit)
}
