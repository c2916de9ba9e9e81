import Testing
@testable import KontextPolicy
@testable import KontextPattern

@Suite struct GlobTests {
    @Test(arguments: [
        ("Bash", "Bash", true),
        ("Bash", "bash", false),  // case matters
        ("Bash", "BashOutput", false),
        ("", "", true),
        ("", "x", false),
        ("*", "", true),
        ("*", "any thing/at all", true),
        ("curl *", "curl -s https://x/y", true),
        ("curl *", "curl", false),
        ("*curl*", "echo hi && curl x", true),
        ("a*b*c", "a/b/c", true),
        ("a*b*c", "abcab", false),
        ("a*b*c", "axxbyyczzc", true),
        ("**", "x", true),
        ("?", "é", true),  // one scalar, two UTF-8 bytes
        ("?", "ab", false),
        ("caf?", "café", true),
        ("?*?", "a", false),
        ("*.env", ".env", true),
        ("*.env", "prod.env.bak", false),
        ("Edit|Write", "Write", true),
        ("Edit|Write", "Edit|Write", false),
        (#"a\|b"#, "a|b", true),
        (#"a\*"#, "a*", true),
        (#"a\*"#, "ab", false),
        ("[abc]", "[abc]", true),  // brackets are literal
        ("ü*ß", "ü über groß", true),
    ] as [(String, String, Bool)])
    func glob(pattern: String, value: String, expected: Bool) {
        #expect(Glob(pattern).matches(value) == expected)
    }

    @Test func pathologicalPatternStaysFast() {
        // Many stars against a long near-miss: the iterative matcher is polynomial, not
        // exponential, so this finishes at once.
        let pattern = String(repeating: "a*", count: 30) + "b"
        let value = String(repeating: "a", count: 5000)
        #expect(Glob(pattern).matches(value) == false)
    }

    @Test func regexPatternsAreSearched() throws {
        #expect(try Pattern("re:foo").matches("a foo b"))
        #expect(try Pattern("re:^foo").matches("a foo b") == false)
        #expect(try Pattern("re:").matches("anything"))
        #expect(try Pattern("re:a|b").matches("b"))  // `|` is the regex's own alternation
    }
}
