#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextCore

/// `/proc/<pid>/environ` in a shell script's words, after quote removal, however the path is
/// split: `cat /proc/self/env''iron`, `cd /proc/self && cat environ`, `cat /proc/1/e*`,
/// `cat /proc/self/$f`. A word naming the root's `proc` (`/proc`, `/proc/1`, `../proc/self`) opens the
/// watch; from then on any word naming `environ` (or a glob matching it) is a dump.
enum ProcPaths {
    static func namesEnviron(in commands: [ShellScanner.SimpleCommand]) -> Bool {
        var afterProc = false
        for command in commands {
            if namesEnviron(command.words, afterProc: &afterProc)
                || namesEnviron(command.redirectTargets, afterProc: &afterProc) {
                return true
            }
        }
        return false
    }

    private static func namesEnviron(_ words: [String], afterProc: inout Bool) -> Bool {
        for word in words {
            let found = withBytes(word) { bytes -> Bool in
                if afterProc, namesEnviron(component: bytes[...]) { return true }
                guard let rest = pathAfterProc(bytes) else { return false }
                afterProc = true
                // `/proc/<pid>/REST`: REST names environ, or is computed at run time.
                guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { return false }
                let remainder = rest[(slash + 1)...]
                return remainder.contains { $0 == UInt8(ascii: "$") || $0 == UInt8(ascii: "\\") }
                    || namesEnviron(component: remainder)
            }
            if found { return true }
        }
        return false
    }

    /// What follows `proc/` when the word names a path through `proc` (at its start or
    /// after a `/`); an empty slice for `/proc` itself; nil when the word names no such path.
    private static func pathAfterProc(_ bytes: UnsafeBufferPointer<UInt8>) -> Slice<UnsafeBufferPointer<UInt8>>? {
        var start = 0
        while let found = ByteSearch.firstIndex(of: proc, in: bytes, from: start) {
            start = found + 1
            // Only the root's `proc`: `/proc`, `//proc`, `proc` (from `/`), `../../proc`; not `src/proc`.
            let fromRoot = (found == 0 || bytes[found - 1] == UInt8(ascii: "/"))
                && bytes[..<found].allSatisfy { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ".") }
            let end = found + proc.count
            guard fromRoot else { continue }
            if end == bytes.count { return bytes[end...] }
            if bytes[end] == UInt8(ascii: "/") { return bytes[(end + 1)...] }
        }
        return nil
    }

    /// Whether the text names `environ` (not `environment`), or its last path component is a
    /// glob that matches `environ`.
    private static func namesEnviron(component text: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        let buffer = UnsafeBufferPointer(rebasing: text)
        var start = 0
        while let found = ByteSearch.firstIndex(of: environ, in: buffer, from: start) {
            let after = found + environ.count
            if after == buffer.count || !CodeWords.isWordByte(buffer[after]) { return true }
            start = found + 1
        }
        let last = text.lastIndex(of: UInt8(ascii: "/")).map { text[($0 + 1)...] } ?? text
        guard last.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[") }) else {
            return false
        }
        let pattern = String(decoding: last, as: UTF8.self)
        return fnmatch(pattern, "environ", 0) == 0
    }

    private static let proc = Array("proc".utf8)
    private static let environ = Array("environ".utf8)

    private static func withBytes<Result>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
        return Array(text.utf8).withUnsafeBufferPointer(body)
    }
}
