import Crypto
import Foundation
import NIOHTTP1

/// The worthless stand-ins the child gets instead of credentials (SPEC section 11): `kxh_`
/// and 43 URL-safe random characters (32 random bytes), one per service and session. A
/// placeholder with a resource (`github/admin`) is a credential of its own and gets a handle
/// of its own; hosts are bound to the service (`github`).
public struct HandleTable: Sendable {
    public static let prefix = "kxh_"
    /// handle → service
    let services: [String: String]
    /// service → handle
    public let handles: [String: String]

    /// A fresh handle for each service.
    public init(services: some Sequence<String>) {
        var handles: [String: String] = [:]
        for service in services where handles[service] == nil {
            handles[service] = Self.makeHandle()
        }
        self.handles = handles
        self.services = Dictionary(uniqueKeysWithValues: handles.map { ($0.value, $0.key) })
    }

    public static func makeHandle() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let text = bytes.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + text
    }

    public func service(ofHandle handle: String) -> String? { services[handle] }

    /// `github` of `github/admin`.
    public static func serviceName(_ target: String) -> String {
        String(target.prefix { $0 != "/" })
    }

    /// Every handle of this session in `text`, in order, with its range.
    func occurrences(in text: Substring) -> [(range: Range<String.Index>, service: String)] {
        var found: [(Range<String.Index>, String)] = []
        var rest = text[...]
        while let start = rest.range(of: Self.prefix) {
            var end = start.upperBound
            while end < rest.endIndex, Self.isHandleCharacter(rest[end]) { end = rest.index(after: end) }
            let candidate = String(rest[start.lowerBound..<end])
            if let service = services[candidate] { found.append((start.lowerBound..<end, service)) }
            rest = rest[end...]
        }
        return found
    }

    static func isHandleCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "-" || character == "_")
    }
}

/// What a request's headers and target carry: handles to swap, and handles that must not go
/// where the request goes.
struct HandleScan {
    /// Services whose handles appear where a swap is allowed (Authorization, named headers).
    var swappable: Set<String> = []
    /// Services whose handles appear anywhere in the headers or the request target.
    var present: Set<String> = []
}

enum HandleSwap {
    /// Where the handles are. `swapHeaders` are the lower-case names, besides
    /// `authorization`, whose values may be swapped.
    static func scan(_ head: HTTPRequestHead, table: HandleTable, swapHeaders: Set<String>) -> HandleScan {
        var scan = HandleScan()
        guard !table.handles.isEmpty else { return scan }
        for service in table.occurrences(in: head.uri[...]).map(\.service) { scan.present.insert(service) }
        for (name, value) in head.headers {
            let lower = name.lowercased()
            var services = table.occurrences(in: value[...]).map(\.service)
            if lower == "authorization" || lower == "proxy-authorization", let decoded = basicCredentials(value) {
                services += table.occurrences(in: decoded[...]).map(\.service)
            }
            scan.present.formUnion(services)
            if lower == "authorization" || swapHeaders.contains(lower) { scan.swappable.formUnion(services) }
        }
        return scan
    }

    /// The headers with each handle in Authorization (any scheme; inside Basic's
    /// `user:password` too) and in `swapHeaders` replaced by its service's credential.
    static func swapped(_ headers: HTTPHeaders, table: HandleTable, swapHeaders: Set<String>,
                        credentials: [String: String]) -> HTTPHeaders {
        var result = HTTPHeaders()
        for (name, value) in headers {
            let lower = name.lowercased()
            guard lower == "authorization" || swapHeaders.contains(lower) else {
                result.add(name: name, value: value)
                continue
            }
            if lower == "authorization", let decoded = basicCredentials(value), !table.occurrences(in: decoded[...]).isEmpty {
                let replaced = replace(decoded, table: table, credentials: credentials)
                result.add(name: name, value: "Basic " + Data(replaced.utf8).base64EncodedString())
            } else {
                result.add(name: name, value: replace(value, table: table, credentials: credentials))
            }
        }
        return result
    }

    static func replace(_ text: String, table: HandleTable, credentials: [String: String]) -> String {
        var output = ""
        var last = text.startIndex
        for (range, service) in table.occurrences(in: text[...]) {
            guard let credential = credentials[service] else { continue }
            output += text[last..<range.lowerBound]
            output += credential
            last = range.upperBound
        }
        output += text[last...]
        return output
    }

    /// The decoded `user:password` of a Basic Authorization value, if it is one.
    static func basicCredentials(_ value: String) -> String? {
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)) else { return nil }
        return String(data: data, encoding: .utf8)
    }
}
