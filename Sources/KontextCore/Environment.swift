#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process environment as a dictionary, read once per call.
public func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let eq = text.firstIndex(of: "=") {
            result[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        pointer += 1
    }
    return result
}

/// XDG base directories (with their documented fallbacks under HOME).
public struct XDGDirectories: Sendable {
    public var config: String
    public var data: String
    public var state: String
    public var runtime: String?

    public init(environment: [String: String]) {
        let home = environment["HOME"] ?? "/tmp"
        func pick(_ name: String, _ fallback: String) -> String {
            if let value = environment[name], value.hasPrefix("/") { return value }
            return home + "/" + fallback
        }
        config = pick("XDG_CONFIG_HOME", ".config")
        data = pick("XDG_DATA_HOME", ".local/share")
        state = pick("XDG_STATE_HOME", ".local/state")
        runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.hasPrefix("/") ? $0 : nil }
    }
}

/// Creates a directory and its parents with the given mode for the ones it creates.
public func makeDirectories(_ path: String, mode: mode_t = 0o700) throws {
    var current = ""
    for component in path.split(separator: "/", omittingEmptySubsequences: true) {
        current += "/" + component
        if mkdir(current, mode) != 0 && errno != EEXIST {
            throw KontextError(.usage, "cannot create directory \(current): \(String(cString: strerror(errno)))")
        }
    }
}

public func currentWorkingDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buffer, buffer.count) != nil else { return "." }
    return String(cString: buffer)
}

/// The canonical absolute path (symlinks and `..` resolved), or nil when it does not exist.
public func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
