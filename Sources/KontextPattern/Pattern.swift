import KontextCore

/// One pattern of a policy rule, compiled once when the policy loads so that evaluating a
/// tool call parses nothing (SPEC section 7).
///
/// Syntax:
/// - `re:REGEX` — a regular expression searched anywhere in the value (anchor with `^`/`$`);
///   see `SearchRegex` for the dialect.
/// - otherwise a glob matched against the whole value: `*` spans any text (spaces and `/`
///   included), `?` is exactly one character (Unicode scalar), `|` separates alternatives,
///   and `\` makes the next character literal (`\*`, `\?`, `\|`, `\\`). Everything else,
///   `[` included, is literal: regular expressions cover character classes.
package enum Pattern: Sendable {
    case glob(Glob)
    case regex(SearchRegex)

    /// The text as written in the policy, kept for diagnostics.
    package var source: String {
        switch self {
        case .glob(let glob): glob.source
        case .regex(let regex): "re:" + regex.source
        }
    }

    static let regexPrefix = "re:"

    /// Throws `PatternError` for a regular expression that does not compile.
    package init(_ text: String) throws {
        if text.hasPrefix(Pattern.regexPrefix) {
            self = .regex(try SearchRegex(String(text.dropFirst(Pattern.regexPrefix.count))))
        } else {
            self = .glob(Glob(text))
        }
    }

    package func matches(_ value: String) -> Bool {
        switch self {
        case .glob(let glob): glob.matches(value)
        case .regex(let regex): regex.matches(value)
        }
    }
}

package struct PatternError: Error, Sendable {
    package var message: String
}

/// A glob compiled to byte-level tokens, one list per `|` alternative. A class for the same
/// reason as `Policy.Rule`: matching should not copy its arrays.
package final class Glob: Sendable {
    enum Token: Equatable, Sendable {
        case byte(UInt8)
        /// `?`: one Unicode scalar, whatever its UTF-8 length.
        case oneScalar
        /// `*`: any run of bytes, possibly empty.
        case anyRun
    }

    /// Each alternative either needs the full matcher or is plain text compared as bytes,
    /// the common case for tool names like `Bash` or `Edit|Write`.
    enum Alternative: Sendable {
        case literal([UInt8])
        case wildcard([Token])
    }

    let source: String
    let alternatives: [Alternative]

    init(_ source: String) {
        self.source = source
        var alternatives: [Alternative] = []
        var tokens: [Token] = []
        var hasWildcard = false
        var escaped = false

        func finishAlternative() {
            if hasWildcard {
                alternatives.append(.wildcard(tokens))
            } else {
                alternatives.append(.literal(tokens.map { if case .byte(let b) = $0 { b } else { 0 } }))
            }
            tokens = []
            hasWildcard = false
        }

        for byte in source.utf8 {
            if escaped {
                tokens.append(.byte(byte))
                escaped = false
                continue
            }
            switch byte {
            case UInt8(ascii: "\\"): escaped = true
            case UInt8(ascii: "|"): finishAlternative()
            case UInt8(ascii: "*"):
                // Consecutive stars mean the same as one; collapsing them keeps matching linear.
                if tokens.last != .anyRun { tokens.append(.anyRun) }
                hasWildcard = true
            case UInt8(ascii: "?"):
                tokens.append(.oneScalar)
                hasWildcard = true
            default: tokens.append(.byte(byte))
            }
        }
        if escaped { tokens.append(.byte(UInt8(ascii: "\\"))) }  // a trailing `\` is itself
        finishAlternative()
        self.alternatives = alternatives
    }

    func matches(_ value: String) -> Bool {
        if let result = value.utf8.withContiguousStorageIfAvailable({ matches(bytes: $0) }) {
            return result
        }
        let bytes = Array(value.utf8)  // bridged or non-contiguous strings only
        return bytes.withUnsafeBufferPointer { matches(bytes: $0) }
    }

    func matches(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for alternative in alternatives {
            switch alternative {
            case .literal(let literal):
                if literal.count == bytes.count, literal.elementsEqual(bytes) { return true }
            case .wildcard(let tokens):
                if Glob.matches(tokens, bytes) { return true }
            }
        }
        return false
    }

    /// Iterative wildcard matching: on a mismatch, let the most recent `*` absorb one more
    /// scalar and retry from there. Only the latest star needs revisiting, so the cost is
    /// at worst proportional to pattern length times value length, with no recursion.
    private static func matches(_ tokens: [Token], _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var tokenIndex = 0
        var byteIndex = 0
        var starTokenIndex = -1
        var starByteIndex = 0

        while byteIndex < bytes.count {
            if tokenIndex < tokens.count {
                switch tokens[tokenIndex] {
                case .byte(let expected) where expected == bytes[byteIndex]:
                    tokenIndex += 1
                    byteIndex += 1
                    continue
                case .oneScalar:
                    tokenIndex += 1
                    byteIndex = nextScalarStart(bytes, after: byteIndex)
                    continue
                case .anyRun:
                    starTokenIndex = tokenIndex
                    starByteIndex = byteIndex
                    tokenIndex += 1
                    continue
                case .byte:
                    break
                }
            }
            guard starTokenIndex >= 0 else { return false }
            starByteIndex = nextScalarStart(bytes, after: starByteIndex)
            byteIndex = starByteIndex
            tokenIndex = starTokenIndex + 1
        }
        while tokenIndex < tokens.count, tokens[tokenIndex] == .anyRun { tokenIndex += 1 }
        return tokenIndex == tokens.count
    }

    /// Index of the first byte after the UTF-8 scalar that starts at `index`.
    private static func nextScalarStart(_ bytes: UnsafeBufferPointer<UInt8>, after index: Int) -> Int {
        var next = index + 1
        while next < bytes.count, bytes[next] & 0xC0 == 0x80 { next += 1 }
        return next
    }
}

/// A policy pattern (glob, or `re:` regular expression) for other configuration files that
/// match names the same way, such as the broker's principal and grant rules.
public struct MatchPattern: Sendable {
    private let pattern: Pattern
    public var source: String { pattern.source }

    /// Throws a one-line reason when a `re:` expression does not compile.
    public init(_ text: String) throws(KontextError) {
        do {
            pattern = try Pattern(text)
        } catch let error as PatternError {
            throw KontextError.usage(error.message)
        } catch {
            throw KontextError.usage("invalid pattern '\(text)'")
        }
    }

    public func matches(_ value: String) -> Bool { pattern.matches(value) }
}
