/// A `<<kontext:SERVICE>>` or `<<kontext:SERVICE/RESOURCE>>` reference (SPEC section 4).
public struct Placeholder: Hashable, Sendable, CustomStringConvertible {
    public var service: String
    public var resource: String?

    public init(service: String, resource: String? = nil) {
        self.service = service
        self.resource = resource
    }

    /// `SERVICE` or `SERVICE/RESOURCE`: the RFC 8693 `resource` and the credential store key.
    public var target: String { resource.map { "\(service)/\($0)" } ?? service }

    public var description: String { "<<kontext:\(target)>>" }

    /// Parses `SERVICE` or `SERVICE/RESOURCE` as given on a command line.
    public init?(target: String) {
        let parts = target.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let service = parts.first, Placeholder.isName(service) else { return nil }
        if parts.count == 2 {
            guard Placeholder.isName(parts[1]) else { return nil }
            self.init(service: String(service), resource: String(parts[1]))
        } else {
            self.init(service: String(service))
        }
    }

    static func isNameCharacter(_ c: Character) -> Bool {
        guard c.isASCII, let ascii = c.asciiValue else { return false }
        switch ascii {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    static func isName(_ text: Substring) -> Bool {
        !text.isEmpty && text.allSatisfy(isNameCharacter)
    }
}

/// One piece of a value: literal text or a placeholder to resolve.
public enum ValueSegment: Hashable, Sendable {
    case literal(String)
    case placeholder(Placeholder)
}
