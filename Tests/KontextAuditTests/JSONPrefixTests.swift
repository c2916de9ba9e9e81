import KontextCore
import Testing

/// `JSONValue.parsePrefix`: the start of a hook input cut at the size limit (SPEC section 8's
/// "huge hook JSON"), read as far as it goes so the audit keeps what it can.
@Suite struct JSONPrefixTests {
    func prefix(_ text: String) throws -> JSONValue { try JSONValue.parsePrefix(Array(text.utf8)) }

    @Test func closesWhatIsOpenAtTheCut() throws {
        #expect(try prefix(#"{"tool_name":"Write","tool_input":{"file_path":"/a","content":"abc"#)
                == .object([("tool_name", .string("Write")),
                            ("tool_input", .object([("file_path", .string("/a")), ("content", .string("abc"))]))]))
        #expect(try prefix(#"{"a":[1,2,"x"#) == .object([("a", .array([.number(1), .number(2), .string("x")]))]))
        // A member cut before its value begins is left out; a number or literal cut short is null.
        #expect(try prefix(#"{"a":"b","c"#) == .object([("a", .string("b"))]))
        #expect(try prefix(#"{"a":"b","c":"#) == .object([("a", .string("b"))]))
        #expect(try prefix(#"{"a":12"#) == .object([("a", .null)]))
        #expect(try prefix(#"{"a":tr"#) == .object([("a", .null)]))
        // An escape or a multi-byte character split by the cut is dropped, not garbled.
        #expect(try prefix(#"{"a":"x\u00"#) == .object([("a", .string("x"))]))
        #expect(try prefix(#"{"a":"x\"#) == .object([("a", .string("x"))]))
        let cutEuro = Array(#"{"a":"x€"#.utf8).dropLast(1)
        #expect(try JSONValue.parsePrefix(Array(cutEuro)) == .object([("a", .string("x"))]))
        // A whole document reads as with `parse`.
        let whole = #"{"a":[true,null,{"b":"c"}],"d":-1.5}"#
        #expect(try prefix(whole) == (try JSONValue.parse(whole)))
    }

    @Test func whatIsNotJSONBeforeTheCutIsStillAnError() {
        #expect(throws: JSONParseError.self) { try prefix(#"{"a" 1"#) }
        #expect(throws: JSONParseError.self) { try prefix("not json") }
        #expect(throws: JSONParseError.self) { try prefix(#"{"a":"\q"#) }
    }
}
