/// Appends `s` as a JSON string literal (RFC 8259), copying runs that need no escaping in
/// one piece. Lives here, below everything, so the Foundation-free hook front and the JSON
/// writer share it.
public func appendJSONString(_ s: String, to out: inout String) {
    out += "\""
    var text = s
    text.makeContiguousUTF8()
    let utf8 = text.utf8
    utf8.withContiguousStorageIfAvailable { bytes in
        var runStart = 0
        var offset = 0
        func flushRun(upTo end: Int) {
            guard runStart < end else { return }
            out += text[utf8.index(utf8.startIndex, offsetBy: runStart)..<utf8.index(utf8.startIndex, offsetBy: end)]
        }
        while offset < bytes.count {
            let byte = bytes[offset]
            var escape: String?
            var width = 1
            switch byte {
            case UInt8(ascii: "\""): escape = "\\\""
            case UInt8(ascii: "\\"): escape = "\\\\"
            case 0x0a: escape = "\\n"
            case 0x0d: escape = "\\r"
            case 0x09: escape = "\\t"
            case 0x00..<0x20, 0x7f:
                let hex = String(byte, radix: 16)
                escape = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            case 0xe2 where offset + 2 < bytes.count && bytes[offset + 1] == 0x80
                && (bytes[offset + 2] == 0xa8 || bytes[offset + 2] == 0xa9):
                // U+2028 and U+2029 end lines in JavaScript.
                escape = bytes[offset + 2] == 0xa8 ? "\\u2028" : "\\u2029"
                width = 3
            default:
                break
            }
            if let escape {
                flushRun(upTo: offset)
                out += escape
                runStart = offset + width
            }
            offset += width
        }
        flushRun(upTo: bytes.count)
    }
    out += "\""
}
