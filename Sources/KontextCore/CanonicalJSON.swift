/// The JSON Canonicalization Scheme (RFC 8785): the one text of a JSON value that a hash or
/// signature covers. Object members sorted by their keys' UTF-16 code units, no whitespace,
/// strings with only the escapes the RFC requires, numbers as ECMAScript prints them.
///
/// Duplicate keys (which the RFC forbids in its input) keep their document order, so a value
/// parsed from the same text always canonicalizes the same way.
extension JSONValue {
    public var canonical: String {
        var out = ""
        writeCanonical(to: &out)
        return out
    }

    public func writeCanonical(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += JSONValue.canonicalNumber(n)
        case .string(let s): JSONValue.writeCanonicalString(s, to: &out)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.writeCanonical(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, (key, value)) in JSONValue.canonicalOrder(members).enumerated() {
                if index > 0 { out += "," }
                JSONValue.writeCanonicalString(key, to: &out)
                out += ":"
                value.writeCanonical(to: &out)
            }
            out += "}"
        }
    }

    /// Members in RFC 8785 order (UTF-16 code units), stable for equal keys.
    public static func canonicalOrder(_ members: [(String, JSONValue)]) -> [(String, JSONValue)] {
        members.enumerated().sorted { left, right in
            if left.element.0 == right.element.0 { return left.offset < right.offset }
            return left.element.0.utf16.lexicographicallyPrecedes(right.element.0.utf16)
        }.map(\.element)
    }

    /// RFC 8785 section 3.2.2.2: `"` and `\` escaped, control characters as `\b \t \n \f \r`
    /// or `\u00xx` (lowercase hex), everything else as it is — serde_json's output too. `extra`
    /// may escape more scalars (TOML's basic strings forbid a raw DEL).
    public static func writeCanonicalString(_ s: String, to out: inout String, extra: ((UInt32) -> String?)? = nil) {
        out += "\""
        if extra == nil {
            // Every event's hash is taken over this form: copy the runs that need no escape
            // whole, by UTF-8 bytes (all the escaped scalars are ASCII, so a run ends on a
            // scalar boundary), instead of appending scalar by scalar.
            let bytes = s.utf8
            var run = bytes.startIndex
            var index = run
            while index != bytes.endIndex {
                let byte = bytes[index]
                if byte < 0x20 || byte == 0x22 || byte == 0x5c {
                    out += s[run..<index]
                    writeEscape(UInt32(byte), to: &out)
                    run = bytes.index(after: index)
                }
                index = bytes.index(after: index)
            }
            out += s[run...]
        } else {
            for scalar in s.unicodeScalars {
                if scalar.value < 0x20 || scalar.value == 0x22 || scalar.value == 0x5c {
                    writeEscape(scalar.value, to: &out)
                } else if let extra, let replacement = extra(scalar.value) {
                    out += replacement
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func writeEscape(_ value: UInt32, to out: inout String) {
        switch value {
        case 0x22: out += "\\\""
        case 0x5c: out += "\\\\"
        case 0x08: out += "\\b"
        case 0x09: out += "\\t"
        case 0x0a: out += "\\n"
        case 0x0c: out += "\\f"
        case 0x0d: out += "\\r"
        default:
            let hex = String(value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        }
    }

    /// ECMAScript's Number.prototype.toString (RFC 8785 section 3.2.2.3): the shortest digits
    /// that round-trip, positional from 1e-6 up to 1e21, exponent form outside. Non-finite
    /// numbers do not occur in parsed JSON and are written as null.
    public static func canonicalNumber(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == 0 { return "0" }
        // Swift's description already holds the shortest round-trip digits; only the layout
        // differs from ECMAScript's.
        var text = "\(value.magnitude)"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let integerPart = String(parts[0])
        let fractionPart = parts.count > 1 ? String(parts[1]) : ""
        var digits = Array(integerPart + fractionPart)
        // value = 0.d1d2… × 10^point
        var point = integerPart.count + exponent
        while digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        let k = digits.count
        let n = point
        var result = value < 0 ? "-" : ""
        if k <= n && n <= 21 {
            result += String(digits) + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            result += String(digits[..<n]) + "." + String(digits[n...])
        } else if -6 < n && n <= 0 {
            result += "0." + String(repeating: "0", count: -n) + String(digits)
        } else {
            let e = n - 1
            result += String(digits[0])
            if k > 1 { result += "." + String(digits[1...]) }
            result += "e" + (e < 0 ? "-" : "+") + String(e.magnitude)
        }
        return result
    }
}
