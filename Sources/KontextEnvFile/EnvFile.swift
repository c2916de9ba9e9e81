#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextCore

/// A parsed `.env.kontext` file. Variables keep the order of their first definition; a key
/// defined twice takes its last value, as dotenv tools do.
public struct EnvFile: Sendable {
    public var path: String
    public var variables: [Variable]

    public struct Variable: Sendable, Equatable {
        public var key: String
        public var segments: [ValueSegment]
        public var line: Int

        public var placeholders: [Placeholder] {
            segments.compactMap { if case .placeholder(let p) = $0 { p } else { nil } }
        }

        /// The value with each placeholder replaced by `lookup`'s answer.
        public func value(resolving lookup: (Placeholder) -> String) -> String {
            segments.map { segment in
                switch segment {
                case .literal(let text): text
                case .placeholder(let placeholder): lookup(placeholder)
                }
            }.joined()
        }
    }

    /// Every distinct placeholder, in order of first appearance.
    public var placeholders: [Placeholder] {
        var seen = Set<Placeholder>()
        return variables.flatMap(\.placeholders).filter { seen.insert($0).inserted }
    }

    public init(path: String, variables: [Variable]) {
        self.path = path
        self.variables = variables
    }

    /// Reads and parses a file; a missing or unreadable file is a usage error (exit 2).
    public static func load(path: String) throws -> EnvFile {
        try parse(bytes: try readBytes(path: path), path: path)
    }

    /// The file's bytes (at most 16 MiB); a missing or unreadable file is a usage error.
    public static func readBytes(path: String) throws -> [UInt8] {
        guard let bytes = readFile(path, limit: 16 << 20) else {
            let reason = errno == 0 ? "larger than 16 MiB" : String(cString: strerror(errno))
            throw KontextError(.usage, "cannot read env file \(path): \(reason)",
                               hint: "create it, or name another with --env-file")
        }
        return bytes
    }

    /// Parses a file's bytes as read (so a digest of the same bytes describes exactly what
    /// is injected).
    public static func parse(bytes: [UInt8], path: String) throws -> EnvFile {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw KontextError(.usage, "\(path): not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String = ".env.kontext") throws -> EnvFile {
        var parser = EnvFileParser(path: path, text: text)
        return try parser.parse()
    }
}

/// A syntax error at a place in the file (SPEC section 4: file, line and column).
public struct EnvFileSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var column: Int
    public var reason: String
    /// What to do about it; every error says nothing was launched.
    public var hint = "fix the file; nothing was launched"

    public var description: String { "\(path):\(line):\(column): \(reason)" }

    public var kontextError: KontextError {
        KontextError(.usage, description, hint: hint)
    }
}
