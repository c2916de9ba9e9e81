/// A JSON document, parsed and written without Foundation so the hook and sidecar paths
/// stay small and fast. Objects keep their keys in document order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    public var objectValue: [(String, JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// Every string in the document, keys excluded (for secret scanning).
    public func forEachString(_ body: (String) -> Void) {
        switch self {
        case .string(let s): body(s)
        case .array(let items): items.forEach { $0.forEachString(body) }
        case .object(let members): members.forEach { $0.1.forEachString(body) }
        default: break
        }
    }

    /// The same document with every string passed through `transform`, object keys
    /// included: a key is as free-form as a value (an agent may put a secret in either).
    public func mapStrings(_ transform: (String) -> String) -> JSONValue {
        switch self {
        case .string(let s): .string(transform(s))
        case .array(let items): .array(items.map { $0.mapStrings(transform) })
        case .object(let members): .object(members.map { (transform($0.0), $0.1.mapStrings(transform)) })
        default: self
        }
    }
}

// MARK: - Writing

extension JSONValue {
    /// Compact JSON text.
    public var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n):
            if n.isFinite, n == n.rounded(), abs(n) < 1e15 { out += String(Int64(n)) } else if n.isFinite { out += "\(n)" } else { out += "null" }
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(key, to: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    /// Appends `s` as a JSON string literal: runs of bytes that need no escape are copied in
    /// one piece (escapes are rare), instead of one Unicode scalar at a time.
    public static func writeString(_ s: String, to out: inout String) {
        appendJSONString(s, to: &out)
    }
}

// MARK: - Parsing

public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JSONValue {
    /// Parses a complete JSON text (RFC 8259); nesting is bounded so hostile input cannot
    /// exhaust the stack.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 128) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes, maxDepth: maxDepth)
        return try parser.parseDocument()
    }

    public static func parse(_ text: String) throws -> JSONValue { try parse(Array(text.utf8)) }

    /// Parses the start of a JSON text cut off at an arbitrary byte (a hook input read up to
    /// its size limit): what is open at the cut (strings, arrays, objects) is closed there,
    /// a member whose value had not begun is dropped, and a number or literal cut short is
    /// null. Anything that is not JSON before the cut is still an error.
    public static func parsePrefix(_ bytes: [UInt8], maxDepth: Int = 128) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes, maxDepth: maxDepth, acceptsCutOff: true)
        return try parser.parseDocument()
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    let maxDepth: Int
    /// `parsePrefix`: the end of the bytes is a cut, not the end of the document.
    let acceptsCutOff: Bool
    /// Set once a cut-off document has been read up to its cut.
    var reachedCut = false
    var index = 0
    var depth = 0

    init(bytes: [UInt8], maxDepth: Int, acceptsCutOff: Bool = false) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.acceptsCutOff = acceptsCutOff
    }

    mutating func parseDocument() throws -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        if reachedCut { return value }
        skipWhitespace()
        // Also in a cut-off document: what follows a complete document before the cut is not JSON.
        guard index == bytes.count else { throw fail("unexpected data after the document") }
        return value
    }

    /// True (and remembered) when a cut-off document ends here.
    mutating func atCut() -> Bool {
        guard acceptsCutOff, index >= bytes.count else { return false }
        reachedCut = true
        return true
    }

    func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: index, reason: reason) }

    mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0a || bytes[index] == 0x0d || bytes[index] == 0x09 {
            index += 1
        }
    }

    mutating func parseValue() throws -> JSONValue {
        if atCut() { return .null }
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return reachedCut ? .null : .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return reachedCut ? .null : .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        default:
            if acceptsCutOff, bytes[index...].allSatisfy(JSONParser.isNumberByte) {
                // A number running into the cut may be missing digits.
                index = bytes.count
                reachedCut = true
                return .null
            }
            return try parseNumber()
        }
    }

    mutating func expect(_ word: String) throws {
        for byte in word.utf8 {
            if atCut() { return }
            guard index < bytes.count, bytes[index] == byte else { throw fail("expected \(word)") }
            index += 1
        }
    }

    mutating func enter() throws {
        depth += 1
        guard depth <= maxDepth else { throw fail("nested deeper than \(maxDepth)") }
    }

    mutating func parseObject() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            if atCut() { return .object(members) }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a key") }
            let key = try parseString()
            skipWhitespace()
            // A member cut before its value began is left out.
            if reachedCut || atCut() { return .object(members) }
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipWhitespace()
            if atCut() { return .object(members) }
            members.append((key, try parseValue()))
            if reachedCut { return .object(members) }
            skipWhitespace()
            if atCut() { return .object(members) }
            guard index < bytes.count else { throw fail("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    mutating func parseArray() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
        while true {
            skipWhitespace()
            if atCut() { return .array(items) }
            items.append(try parseValue())
            if reachedCut { return .array(items) }
            skipWhitespace()
            if atCut() { return .array(items) }
            guard index < bytes.count else { throw fail("unterminated array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    mutating func parseString() throws -> String {
        index += 1
        let start = index
        // Most strings have no escape: they are validated straight from the input. Once an
        // escape appears, the text so far and every later run go into `decoded`, validated once.
        var decoded: [UInt8] = []
        var hasEscape = false
        var run = index
        while true {
            guard index < bytes.count else {
                guard atCut() else { throw fail("unterminated string") }
                // The cut may split a multi-byte character: keep only whole ones.
                return try makeString(start: start, end: endOfWholeCharacters(from: run), decoded: &decoded, hasEscape: hasEscape, run: run)
            }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let string = try makeString(start: start, end: index, decoded: &decoded, hasEscape: hasEscape, run: run)
                index += 1
                return string
            }
            if byte < 0x20 { throw fail("control character in string") }
            if byte != UInt8(ascii: "\\") { index += 1; continue }
            if !hasEscape { decoded.reserveCapacity(index - start + 16) }
            hasEscape = true
            decoded.append(contentsOf: bytes[run..<index])
            index += 1
            if atCut() { return try makeString(start: start, end: index, decoded: &decoded, hasEscape: true, run: index) }
            guard index < bytes.count else { throw fail("unterminated escape") }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if reachedCut { return try makeString(start: start, end: index, decoded: &decoded, hasEscape: true, run: index) }
                if (0xD800..<0xDC00).contains(code) {
                    // A surrogate pair; a lone surrogate becomes U+FFFD, and an escape after
                    // it that is not its low half is read on its own.
                    let high = code
                    code = 0xFFFD
                    if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                        let next = index
                        index += 2
                        let low = try hex4()
                        if reachedCut { return try makeString(start: start, end: index, decoded: &decoded, hasEscape: true, run: index) }
                        if (0xDC00..<0xE000).contains(low) {
                            code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            index = next
                        }
                    }
                }
                // A lone low surrogate is no scalar either.
                UTF8.encode(Unicode.Scalar(code) ?? "\u{FFFD}") { decoded.append($0) }
            default:
                index -= 1
                throw fail("invalid escape")
            }
            run = index
        }
    }

    /// The string's text: the input bytes `start..<end` when nothing was escaped, else
    /// `decoded` with the last run `run..<end` appended; either must be UTF-8.
    mutating func makeString(start: Int, end: Int, decoded: inout [UInt8], hasEscape: Bool, run: Int) throws -> String {
        let text: String?
        if hasEscape {
            if run < end { decoded.append(contentsOf: bytes[run..<end]) }
            text = String(validating: decoded, as: UTF8.self)
        } else {
            text = String(validating: bytes[start..<end], as: UTF8.self)
        }
        guard let text else { throw fail("invalid UTF-8") }
        return text
    }

    /// The end of the input without a multi-byte character that the cut split (never before
    /// `lowerBound`).
    func endOfWholeCharacters(from lowerBound: Int) -> Int {
        let end = bytes.count
        var lead = end
        while lead > lowerBound, end - lead < 4, bytes[lead - 1] & 0xC0 == 0x80 { lead -= 1 }
        guard lead > lowerBound, bytes[lead - 1] >= 0xC0 else { return end }
        let first = bytes[lead - 1]
        let length = first >= 0xF0 ? 4 : first >= 0xE0 ? 3 : 2
        return end - (lead - 1) < length ? lead - 1 : end
    }

    mutating func hex4() throws -> UInt32 {
        if acceptsCutOff, index + 4 > bytes.count {
            // A \u escape cut short: the string ends before it.
            index = bytes.count
            reachedCut = true
            return 0xFFFD
        }
        guard index + 4 <= bytes.count else { throw fail("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("bad hex digit")
            }
            value = value * 16 + UInt32(digit)
            index += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` and nothing looser: no `+1`,
    /// `01`, `.5` or `1.`.
    mutating func parseNumber() throws -> JSONValue {
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, JSONParser.isDigit(bytes[index]) else {
            if index == start { throw fail("unexpected character") }
            throw fail("expected a digit after '-'")
        }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, JSONParser.isDigit(bytes[index]) { throw fail("a number cannot start with 0") }
        } else {
            skipDigits()
        }
        var isInteger = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, JSONParser.isDigit(bytes[index]) else { throw fail("expected a digit after '.'") }
            skipDigits()
            isInteger = false
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, JSONParser.isDigit(bytes[index]) else { throw fail("expected a digit in the exponent") }
            skipDigits()
            isInteger = false
        }
        // Integers of up to 15 digits are exact in a Double: summed here without a String.
        if isInteger, index - start <= 15 {
            var magnitude: Int64 = 0
            for byte in bytes[(bytes[start] == UInt8(ascii: "-") ? start + 1 : start)..<index] {
                magnitude = magnitude * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return .number(bytes[start] == UInt8(ascii: "-") ? -Double(magnitude) : Double(magnitude))
        }
        guard let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)) else {
            throw fail("number out of range")
        }
        return .number(value)
    }

    mutating func skipDigits() {
        while index < bytes.count, JSONParser.isDigit(bytes[index]) { index += 1 }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    static func isNumberByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e")
            || byte == UInt8(ascii: "E") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
    }
}
