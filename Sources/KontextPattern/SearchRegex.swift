#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `re:` pattern: a POSIX extended regular expression (as `grep -E`), searched anywhere in
/// the value, compiled once at load.
///
/// Why POSIX and not Swift's `Regex`: on this machine `Regex` took 8–35 µs to search a
/// 60-byte command and 1.8–2.7 ms for a 4.6 KB one, so one large here-document could spend
/// the hook's whole latency budget; libc's `regexec` takes 0.2–1 µs and 4–7 µs, with no
/// Foundation (NSRegularExpression: 2–3 µs and 40–55 µs).
///
/// Familiar Perl-style spellings are translated so they mean what their authors expect:
/// `\d` `\D` (digits), `\n` `\t` `\r`, `(?:…)`, a leading `(?i)` (ignore case), lazy
/// quantifiers (`*?` `+?` `??` `{m,n}?`, same matches for a search), and `\d` `\s` `\w`
/// `\\` `\.`-style escapes inside `[…]`. `\s` `\S` `\w` `\W` `\b` `\B` `\<` `\>` work as
/// GNU extensions. Anything else whose meaning would silently change — lookaround, named
/// groups, inline flags elsewhere, backreferences, possessive quantifiers, `\A`/`\z`/`\x41`
/// and other escapes — is refused at load with a message saying what to write instead.
/// Matching is by character (UTF-8) where the C.UTF-8 locale exists, by byte otherwise.
package final class SearchRegex: @unchecked Sendable {
    // `regexec` does not modify the compiled `regex_t` (glibc serialises its internal
    // scratch state with a lock), so one instance can be shared across threads; the
    // pointer is owned here and freed once in deinit.
    private let compiled: UnsafeMutablePointer<regex_t>
    let source: String

    init(_ source: String) throws {
        self.source = source
        let translation = try SearchRegex.translate(source)
        var flags = REG_EXTENDED | REG_NOSUB
        if translation.ignoreCase { flags |= REG_ICASE }
        #if canImport(Darwin)
        flags |= REG_ENHANCED  // `\s`, `\w`, `\b` on Darwin's libc
        #endif
        // Compiled into a local first: once every stored property is set, a throwing init
        // would run deinit, which must only ever free a successfully compiled regex.
        let candidate = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
        let status = UTF8Locale.whileActive { regcomp(candidate, translation.pattern, flags) }
        guard status == 0 else {
            var message = [CChar](repeating: 0, count: 256)
            regerror(status, candidate, &message, message.count)
            candidate.deallocate()
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw PatternError(message: "invalid regular expression \"\(source)\": \(text.lowercased())")
        }
        compiled = candidate
    }

    deinit {
        regfree(compiled)
        compiled.deallocate()
    }

    func matches(_ value: String) -> Bool {
        if let found = value.utf8.withContiguousStorageIfAvailable({ search($0) }) { return found }
        return Array(value.utf8).withUnsafeBufferPointer { search($0) }
    }

    private func search(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // REG_STARTEND bounds the search by length, so the value needs no NUL terminator
        // and a NUL inside it does not end it early.
        var range = regmatch_t()
        range.rm_so = 0
        range.rm_eo = regoff_t(bytes.count)
        return UTF8Locale.whileActive {
            bytes.withMemoryRebound(to: CChar.self) { chars in
                guard let start = chars.baseAddress else {
                    return regexec(compiled, "", 1, &range, REG_STARTEND) == 0  // empty value
                }
                return regexec(compiled, start, 1, &range, REG_STARTEND) == 0
            }
        }
    }
}

/// libc regular expressions read the thread's LC_CTYPE both when compiling and when
/// matching; switching this thread to C.UTF-8 for the call makes `.` and `[…]` see
/// characters rather than bytes, without touching the process-wide locale.
private enum UTF8Locale {
    struct Handle: @unchecked Sendable {  // immutable after creation and never freed
        let locale: locale_t?
    }

    static let handle = Handle(locale: newlocale(LC_CTYPE_MASK, "C.UTF-8", nil))

    static func whileActive<T>(_ body: () -> T) -> T {
        guard let locale = handle.locale else { return body() }
        let previous = uselocale(locale)
        defer { uselocale(previous) }
        return body()
    }
}

extension SearchRegex {
    struct Translation: Equatable {
        var pattern: String
        var ignoreCase: Bool
    }

    /// Rewrites Perl-style spellings into POSIX ERE, refusing what would change meaning.
    static func translate(_ source: String) throws -> Translation {
        var input = Substring(source).unicodeScalars[...]
        var output = String.UnicodeScalarView()
        var ignoreCase = false
        /// Whether the previous token was a quantifier, so a `?` after it marks it lazy.
        var afterQuantifier = false

        func refuse(_ why: String) -> PatternError {
            PatternError(message: "unsupported regular expression \"\(source)\": \(why)")
        }
        func emit(_ text: String) { output.append(contentsOf: text.unicodeScalars) }

        if source.hasPrefix("(?i)") {
            ignoreCase = true
            input = input.dropFirst(4)
        }

        while let scalar = input.popFirst() {
            let wasAfterQuantifier = afterQuantifier
            afterQuantifier = false
            switch scalar {
            case "\\":
                guard let escaped = input.popFirst() else { throw refuse("it ends with a lone backslash") }
                switch escaped {
                case "d": emit("[0-9]")
                case "D": emit("[^0-9]")
                case "n": emit("\n")
                case "t": emit("\t")
                case "r": emit("\r")
                case "s", "S", "w", "W", "b", "B", "<", ">": emit("\\" + String(escaped))
                case "1"..."9": throw refuse("backreferences (\\\(escaped)) are not supported")
                case _ where isASCIIAlphanumeric(escaped):
                    throw refuse("\\\(escaped) is not supported; use POSIX ERE (e.g. ^ and $ for \\A and \\z, [[:xdigit:]] for hex digits)")
                case _ where escaped.isASCII:
                    emit("\\" + String(escaped))  // an escaped punctuation character is itself
                default:
                    output.append(escaped)  // so is any non-ASCII character
                }
            case "(" where input.first == "?":
                if input.starts(with: "?:".unicodeScalars) {
                    input = input.dropFirst(2)
                    emit("(")
                } else {
                    throw refuse("(? groups (lookaround, named groups, inline flags after the start) are not supported; a leading (?i) ignores case")
                }
            case "[":
                emit(try translateBracket(&input, refuse: refuse))
            case "{":
                // An interval `{m}`, `{m,}` or `{m,n}`: copy it whole so its `}` can be seen as
                // a quantifier; anything else is a literal brace.
                if let close = input.firstIndex(of: "}"),
                   !input[..<close].isEmpty, input[..<close].allSatisfy({ ("0"..."9").contains($0) || $0 == "," }) {
                    emit("{" + String(Substring(input[...close])))
                    input = input[input.index(after: close)...]
                    afterQuantifier = true
                } else {
                    emit("\\{")
                }
            case "*", "+", "?":
                if wasAfterQuantifier, scalar == "?" { continue }  // lazy: same matches for a search
                if wasAfterQuantifier, scalar == "+" { throw refuse("possessive quantifiers (*+, ++, ?+) are not supported") }
                output.append(scalar)
                afterQuantifier = true
            default:
                output.append(scalar)
            }
        }
        return Translation(pattern: String(output), ignoreCase: ignoreCase)
    }

    /// Translates `[…]` (the `[` already read). In POSIX brackets a backslash is an ordinary
    /// character, so Perl-style escapes are rewritten; `\]`, `\^`, `\-` and `\[` would need the
    /// set reordered and are refused with the POSIX spelling.
    private static func translateBracket(
        _ input: inout Substring.UnicodeScalarView.SubSequence,
        refuse: (String) -> PatternError
    ) throws -> String {
        var output = "["
        if input.first == "^" {
            output += "^"
            input = input.dropFirst()
        }
        var isFirst = true
        while let scalar = input.popFirst() {
            defer { isFirst = false }
            switch scalar {
            case "]" where !isFirst:
                return output + "]"
            case "[" where input.first == ":" || input.first == "." || input.first == "=":
                // A POSIX class such as [:alpha:]: copied through its closing `:]`.
                let kind = input.removeFirst()
                output += "[" + String(kind)
                while let next = input.popFirst() {
                    output.unicodeScalars.append(next)
                    if next == kind, input.first == "]" {
                        output += "]"
                        input = input.dropFirst()
                        break
                    }
                }
            case "\\":
                guard let escaped = input.popFirst() else { throw refuse("an unterminated [ bracket expression") }
                switch escaped {
                case "d": output += "0-9"
                case "s": output += "[:space:]"
                case "w": output += "[:alnum:]_"
                case "n": output += "\n"
                case "t": output += "\t"
                case "r": output += "\r"
                case "\\": output += "\\"
                case "]", "^", "-", "[":
                    throw refuse("inside [...] write ] first, - last and ^ anywhere but first instead of escaping them")
                case _ where escaped.isASCII && !isASCIIAlphanumeric(escaped):
                    output.unicodeScalars.append(escaped)
                default:
                    throw refuse("\\\(escaped) is not supported inside [...]")
                }
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        throw refuse("an unterminated [ bracket expression")
    }
}

private func isASCIIAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
    ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
}
