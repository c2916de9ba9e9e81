#if canImport(Glibc)
import Glibc
#endif
import KontextCore
import KontextPattern
import TOMLKit

/// Which hosts each service's credential may be sent to (SPEC section 11). Only trusted
/// configuration binds hosts: the built-in defaults and the user's
/// `$XDG_CONFIG_HOME/kontext/hosts.toml`; nothing a repository ships is read here.
public struct HostBindings: Sendable {
    public struct Binding: Sendable {
        public var service: String
        /// Host name patterns (globs, matched case-insensitively; `*` spans dots).
        public var hosts: [String]
        /// Headers besides `Authorization` whose handle is swapped (lower case).
        public var headers: [String]
        let patterns: [MatchPattern]

        public init(service: String, hosts: [String], headers: [String] = []) throws {
            self.service = service
            self.hosts = hosts.map { $0.lowercased() }
            self.headers = headers.map { $0.lowercased() }
            patterns = try self.hosts.map { try MatchPattern($0) }
        }

        func matches(_ host: String) -> Bool { patterns.contains { $0.matches(host) } }
    }

    /// Which `CONNECT`s the proxy decrypts (hosts.toml's `inspect`).
    public enum Inspection: String, Sendable {
        /// Only bound hosts' (SPEC section 11); any other host gets a blind tunnel.
        case bound
        /// Every host named by name: a handle on its way to an unbound host is then refused
        /// and audited too, at the cost of decrypting all of the agent's HTTPS.
        case all
    }

    public private(set) var bindings: [Binding]
    public var inspection: Inspection

    public init(_ bindings: [Binding], inspection: Inspection = .bound) {
        self.bindings = bindings
        self.inspection = inspection
    }

    /// Well-known services' API hosts, and the headers their clients put a key in.
    public static let builtIn: HostBindings = {
        let table: [(String, [String], [String])] = [
            ("github", ["api.github.com", "github.com", "uploads.github.com"], []),
            ("gitlab", ["gitlab.com"], ["private-token"]),
            ("openai", ["api.openai.com"], []),
            ("anthropic", ["api.anthropic.com"], ["x-api-key"]),
            ("stripe", ["api.stripe.com", "files.stripe.com"], []),
            ("linear", ["api.linear.app"], []),
            ("slack", ["slack.com", "*.slack.com"], []),
            ("npm", ["registry.npmjs.org"], []),
            ("pypi", ["upload.pypi.org"], []),
        ]
        return HostBindings(table.map { try! Binding(service: $0.0, hosts: $0.1, headers: $0.2) })
    }()

    /// The services bound to `host`, in binding order.
    public func services(for host: String) -> [Binding] {
        let name = Self.normalized(host)
        return bindings.filter { $0.matches(name) }
    }

    public func binding(for service: String) -> Binding? {
        bindings.first { $0.service == service }
    }

    /// Lower case, no trailing dot, no IPv6 brackets.
    public static func normalized(_ host: String) -> String {
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        return name
    }

    /// `$XDG_CONFIG_HOME/kontext/hosts.toml`.
    public static func userFile(environment: [String: String]) -> String {
        XDGDirectories(environment: environment).config + "/kontext/hosts.toml"
    }

    /// The built-in defaults, what the token service bound (`supplied`, remote and CI mode)
    /// over them, and the user's file over both: a service a later source names is bound to
    /// exactly that source's hosts (so the user can narrow a binding as well as add one).
    public static func load(environment: [String: String], supplied: [Binding] = []) throws -> HostBindings {
        let path = userFile(environment: environment)
        let merged = builtIn.overridden(by: supplied)
        errno = 0
        guard let bytes = readFile(path, limit: 1 << 20) else {
            if errno == ENOENT || errno == ENOTDIR { return merged }
            let why = errno == 0 ? "larger than 1 MiB" : String(cString: strerror(errno))
            throw KontextError.usage("\(path): cannot read the host bindings: \(why)")
        }
        let file = try parse(bytes: bytes, path: path)
        var loaded = merged.overridden(by: file.bindings)
        loaded.inspection = file.inspection ?? .bound
        return loaded
    }

    /// These bindings with `others` over them: a service `others` names is bound to exactly
    /// their hosts.
    public func overridden(by others: [Binding]) -> HostBindings {
        let named = Set(others.map(\.service))
        return HostBindings(others + bindings.filter { !named.contains($0.service) }, inspection: inspection)
    }

    /// `[[service]]` tables with `name`, `hosts` (non-empty) and optional `headers`, and an
    /// optional top-level `inspect = "bound" | "all"`.
    public static func parse(bytes: [UInt8], path: String) throws -> (bindings: [Binding], inspection: Inspection?) {
        guard let text = String(validating: bytes, as: UTF8.self), !text.utf8.contains(0) else {
            throw KontextError.usage("\(path): not UTF-8 text")
        }
        let hint = #"write [[service]] tables: name = "github", hosts = ["api.github.com"], optional headers = ["x-api-key"]; optionally inspect = "all" at the top"#
        let document: TOMLTable
        do {
            document = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw KontextError.usage("\(path):\(error.source.begin.line):\(error.source.begin.column): invalid TOML: \(error.description)", hint: hint)
        }
        var bindings: [Binding] = []
        var inspection: Inspection?
        for (key, value) in document {
            if key == "inspect" {
                guard let text = value.string, let chosen = Inspection(rawValue: text) else {
                    throw KontextError.usage(#"\#(path): "inspect" must be "bound" (the default) or "all""#, hint: hint)
                }
                inspection = chosen
                continue
            }
            guard key == "service", let array = value.array else {
                throw KontextError.usage("\(path): unknown top-level key \"\(key)\"", hint: hint)
            }
            bindings += try serviceTables(array, path: path, hint: hint)
        }
        return (bindings, inspection)
    }

    /// `[[service]]` tables, in hosts.toml and in broker.toml: `name`, `hosts` (non-empty) and
    /// optional `headers`.
    public static func serviceTables(_ array: TOMLArray, path: String, hint: String) throws -> [Binding] {
        var bindings: [Binding] = []
        for (offset, element) in array.enumerated() {
            let at = "\(path): service \(offset + 1)"
            guard let table = element.table else { throw KontextError.usage("\(at) is not a table", hint: hint) }
            func strings(_ name: String) throws -> [String]? {
                guard let value = table[name] else { return nil }
                guard let items = value.array, items.allSatisfy({ $0.string != nil }) else {
                    throw KontextError.usage("\(at): \"\(name)\" must be an array of strings", hint: hint)
                }
                return items.map { $0.string! }
            }
            for name in table.keys where !["name", "hosts", "headers"].contains(name) {
                throw KontextError.usage("\(at): unknown key \"\(name)\"", hint: hint)
            }
            let name = table["name"]?.string ?? ""
            do {
                bindings.append(try checked(service: name, hosts: try strings("hosts") ?? [], headers: try strings("headers") ?? []))
            } catch let error as KontextError {
                throw KontextError.usage("\(at)\(name.isEmpty ? "" : " (\(name))"): \(error.message)", hint: hint)
            }
        }
        return bindings
    }

    /// A binding from untrusted-shape input (a file, a token service's answer), every part
    /// checked: a service name, at least one host pattern, header names.
    public static func checked(service: String, hosts: [String], headers: [String]) throws -> Binding {
        guard !service.isEmpty, service.utf8.allSatisfy({ serviceCharacters.contains($0) }) else {
            throw KontextError.usage("\"name\" must be a service name ([A-Za-z0-9._-]+)")
        }
        guard !hosts.isEmpty, hosts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f } }) else {
            throw KontextError.usage("\"hosts\" must be a non-empty array of host names")
        }
        for header in headers where header.isEmpty || !header.utf8.allSatisfy(isTokenCharacter) {
            throw KontextError.usage("\"\(header)\" is not a header name")
        }
        return try Binding(service: service, hosts: hosts, headers: headers)
    }

    static let serviceCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-".utf8)

    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
