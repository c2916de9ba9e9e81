import KontextCore
import Testing

/// RFC 8259 edges named one by one, so a failure says which rule broke (the JSONTestSuite
/// run covers them too, but only when the suite is present).
@Suite struct JSONStrictnessTests {
    static func accepts(_ text: String) -> Bool { (try? JSONValue.parse(text)) != nil }

    @Test(arguments: ["+1", "01", "-01", "00", ".5", "-.5", "1.", "1.e5", "-", "1e", "1e+", "1E-", "--1",
                      "0x10", "1e5e5", "Infinity", "-Infinity", "NaN", "1.0.0", "[1.]", "[01]", "{\"a\":+1}"])
    func numbersOutsideTheGrammarAreRefused(_ text: String) {
        #expect(!Self.accepts(text), "accepted \(text)")
    }

    @Test func numbersInsideTheGrammarKeepTheirValue() throws {
        let expected: [(String, Double)] = [
            ("0", 0), ("-0", -0.0), ("7", 7), ("-12", -12), ("0.5", 0.5), ("-0.25", -0.25), ("1e2", 100),
            ("1E+2", 100), ("25e-1", 2.5), ("1.5E3", 1500), ("123456789012345678", 123456789012345678),
            ("9007199254740993", 9007199254740993), ("1e400", .infinity),
        ]
        for (text, value) in expected {
            #expect(try JSONValue.parse(text) == .number(value), "\(text)")
        }
    }

    @Test func stringsRefuseControlCharactersAndUnknownEscapes() {
        #expect(!Self.accepts("\"a\u{01}b\""))
        #expect(!Self.accepts("\"tab\there\""))
        #expect(!Self.accepts("\"a\nb\""))
        for escape in [#"\x41"#, #"\a"#, #"\'"#, #"\u12"#, #"\u12G4"#, #"\U0041"#, #"\"#] {
            #expect(!Self.accepts("\"" + escape + "\""), "accepted \(escape)")
        }
        #expect(!Self.accepts(#""unterminated"#))
    }

    @Test func surrogatesPairUpAndALoneOneBecomesAReplacementCharacter() throws {
        #expect(try JSONValue.parse(#""\uD83D\uDE00""#) == .string("😀"))
        #expect(try JSONValue.parse(#""\uD800""#) == .string("\u{FFFD}"))
        #expect(try JSONValue.parse(#""\uDC00x""#) == .string("\u{FFFD}x"))
        // A high surrogate followed by an escape that is not a low one keeps that escape.
        #expect(try JSONValue.parse(#""\uD800\u0041""#) == .string("\u{FFFD}A"))
        #expect(try JSONValue.parse(#""\uD800\uD83D\uDE00""#) == .string("\u{FFFD}😀"))
    }

    @Test func onlyOneDocumentAndOnlyJSONWhitespace() {
        for text in ["{} {}", "[1] x", "1 2", "nul", "truefalse", "[true false]", "\u{0C}1", "1\u{0B}", "", " ",
                     "[1,]", "{\"a\":1,}", "[,1]", "{,}", "{\"a\"}", "{1:2}", "['a']"] {
            #expect(!Self.accepts(text), "accepted \(text.debugDescription)")
        }
        #expect(Self.accepts(" \t\r\n[ 1 , {\"a\" : null} ]\n"))
    }

    @Test(.timeLimit(.minutes(1)))
    func deepNestingIsRefusedWithoutExhaustingTheStack() {
        for opener in ["[", "{\"a\":"] {
            let deep = String(repeating: opener, count: 200_000)
            #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
            #expect(throws: JSONParseError.self) { try JSONValue.parsePrefix(Array(deep.utf8)) }
        }
        let atTheLimit = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(Self.accepts(atTheLimit))
        let overTheLimit = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        #expect(!Self.accepts(overTheLimit))
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0xFF]) }
    }
}
