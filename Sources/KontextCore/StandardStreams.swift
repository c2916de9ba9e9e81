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

/// Where a command's output and messages go: standard output and error, unless its caller
/// (a test, a program embedding the commands) gives other descriptors.
public struct OutputStreams: Sendable {
    public var output: Int32
    public var error: Int32

    public init(output: Int32, error: Int32) {
        self.output = output
        self.error = error
    }

    public static let standard = OutputStreams(output: 1, error: 2)

    /// A line of the command's result.
    public func print(_ text: String) {
        writeAll(text.hasSuffix("\n") ? text : text + "\n", to: output)
    }

    /// A line for the person: progress, warnings, errors.
    public func printError(_ text: String) {
        writeAll(text.hasSuffix("\n") ? text : text + "\n", to: error)
    }
}

public func printError(_ text: String) {
    OutputStreams.standard.printError(text)
}

public func printOutput(_ text: String) {
    OutputStreams.standard.print(text)
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
