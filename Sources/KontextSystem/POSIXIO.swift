#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// File-descriptor I/O with nothing but libc, shared by the hook front (which must stay
// small), the sidecar and the rest of kontext: one way to read to the end and write fully.


/// Reads until end of file or `limit` bytes; returns the bytes and whether more remained.
public func readToEnd(_ fd: Int32, limit: Int) -> (bytes: [UInt8], truncated: Bool)? {
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { return (result, false) }
        if result.count + n > limit {
            result.append(contentsOf: chunk[0..<(limit - result.count)])
            return (result, true)
        }
        result.append(contentsOf: chunk[0..<n])
    }
}

/// Writes every byte; false on error (e.g. the peer went away).
@discardableResult
public func writeFully(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += n
    }
    return true
}

/// Fills a `sockaddr_un` for `path`; nil if the path does not fit.
public func unixSocketAddress(_ path: String) -> sockaddr_un? {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, byte) in bytes.enumerated() { raw[i] = byte }
        raw[bytes.count] = 0
    }
    return address
}
