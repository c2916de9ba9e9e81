import KontextCore
import Testing
@testable import KontextPolicy
@testable import KontextPattern

@Suite struct SearchRegexTests {
    @Test(arguments: [
        (#"(^|/)\.env"#, "app/.env.local", true),
        (#"(^|/)\.env"#, "app/dotenv", false),
        (#"\d+"#, "abc123", true),
        (#"^\d+$"#, "12a", false),
        (#"\D"#, "123", false),
        (#"(?i)^GIT push"#, "git push", true),
        (#"^GIT push"#, "git push", false),
        (#"(?:a|b)c"#, "xbc", true),
        (#"a+?b"#, "b", false),  // lazy `+?` still needs one `a` (plain POSIX would read `(a+)?`)
        (#"a*?b"#, "b", true),
        (#"x{2}?y"#, "xxy", true),
        (#"a{"#, "a{", true),
        (#"[\w.-]+@"#, "first.last-x@", true),
        (#"[\d]"#, "d", false),
        (#"[\\]"#, #"a\b"#, true),
        (#"[\.]"#, #"\"#, false),  // `\.` in brackets is a dot, not also a backslash
        (#"[^\s]{3}"#, "a b c", false),
        (#"[[:upper:]]"#, "aBc", true),
        (#"[]a]"#, "]", true),
        (#"line1\nline2"#, "line1\nline2", true),
        (#"\bnc\s+-l"#, "nc -lvp 4444", true),
        (#"\bnc\s+-l"#, "sync -l", false),
        (#"\<rm\>"#, "confirm", false),
        (#"^.$"#, "é", true),  // characters, not bytes
        (#"caf.$"#, "café", true),
        (#"y$"#, "x\u{0}y", true),  // a NUL inside the value does not end it
        (#"x$"#, "x\u{0}y", false),
        ("", "anything", true),
    ] as [(String, String, Bool)])
    func matches(pattern: String, value: String, expected: Bool) throws {
        #expect(try SearchRegex(pattern).matches(value) == expected)
    }

    @Test(arguments: [
        (#"(?=x)"#, "(? groups"),
        (#"(?<name>x)"#, "(? groups"),
        (#"a(?i)b"#, "(? groups"),
        (#"(a)\1"#, "backreferences"),
        (#"\Aabc"#, #"\A is not supported"#),
        (#"\x41"#, #"\x is not supported"#),
        (#"a*+"#, "possessive"),
        (#"[\]]"#, "inside [...] write ] first"),
        (#"[\p]"#, #"\p is not supported inside [...]"#),
        (#"[abc"#, "unterminated"),
        ("abc\\", "lone backslash"),
        (#"curl (unclosed"#, "invalid regular expression"),
        (#"a{2,1}"#, "invalid regular expression"),
    ])
    func refusedAtLoad(pattern: String, expectedFragment: String) {
        let error = #expect(throws: PatternError.self) { try SearchRegex(pattern) }
        #expect(error?.message.contains(expectedFragment) == true, "\(error?.message ?? "no error")")
        #expect(error?.message.contains("\"\(pattern)\"") == true)
    }

    @Test func translationIsPlainPOSIX() throws {
        #expect(try SearchRegex.translate(#"(?i)\d+?(?:x|y)\.z"#) == .init(pattern: "[0-9]+(x|y)\\.z", ignoreCase: true))
        #expect(try SearchRegex.translate(#"[\s\w-]"#) == .init(pattern: "[[:space:][:alnum:]_-]", ignoreCase: false))
    }

    @Test func sharedPolicyEvaluatesConcurrently() async {
        let policy = try! Policy.parse(#"""
            [[rule]]
            command = 're:(^|[;&|]\s*)curl\s'
            decision = "deny"
            """#, path: "p.toml")
        let inputs = ["curl x", "ls; curl y", "echo curl", "make"].map(bash)
        let counts = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var denied = 0
                    for i in 0..<2_000 where policy.evaluate(toolName: "Bash", input: inputs[i % 4]).decision == .deny {
                        denied += 1
                    }
                    return denied
                }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(counts == Array(repeating: 1_000, count: 8))
    }
}
