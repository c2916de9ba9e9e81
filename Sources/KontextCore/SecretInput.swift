#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a secret without it ever being an argument: from a no-echo prompt on the terminal
/// when stdin is one, otherwise all of stdin (one trailing newline dropped).
public func readSecret(prompt: String) throws -> String {
    if isatty(0) == 1 {
        writeAll(prompt, to: 2)
        var saved = termios()
        tcgetattr(0, &saved)
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(0, TCSAFLUSH, &silent)
        defer {
            tcsetattr(0, TCSAFLUSH, &saved)
            writeAll("\n", to: 2)
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(0, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        return try validSecret(bytes)
    }
    guard var bytes = readAll(from: 0, limit: 1 << 20) else {
        throw KontextError.usage("cannot read the secret from stdin (unreadable, or over 1 MiB)")
    }
    if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
    if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
    return try validSecret(bytes)
}

private func validSecret(_ bytes: [UInt8]) throws -> String {
    guard !bytes.isEmpty else {
        throw KontextError.usage("the secret is empty", hint: "pipe it in (`kontext provider add NAME < file`) or type it at the prompt")
    }
    guard let text = String(validating: bytes, as: UTF8.self), !text.contains("\0") else {
        throw KontextError.usage("the secret is not UTF-8 text")
    }
    return text
}
