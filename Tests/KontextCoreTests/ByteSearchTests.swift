import KontextCore
import Testing

/// The one byte search the redactor and the policy's guards share.
@Suite struct ByteSearchTests {
    static func firstIndex(_ needle: String, in text: String, from start: Int = 0) -> Int? {
        Array(text.utf8).withUnsafeBufferPointer { ByteSearch.firstIndex(of: Array(needle.utf8), in: $0, from: start) }
    }

    @Test func findsEachOccurrenceFromTheGivenStart() {
        #expect(Self.firstIndex("ab", in: "xxabyab") == 2)
        #expect(Self.firstIndex("ab", in: "xxabyab", from: 3) == 5)
        #expect(Self.firstIndex("ab", in: "xxabyab", from: 6) == nil)
        #expect(Self.firstIndex("abc", in: "ab") == nil)
        #expect(Self.firstIndex("a", in: "") == nil)
        #expect(Self.firstIndex("", in: "abc", from: 2) == 2)
    }

    @Test func matchesBytesNotCharacters() {
        // "e" followed by a combining acute accent is one Character but still holds the byte "e".
        #expect(ByteSearch.contains(Array("secret".utf8), in: "xsecret\u{301}y"))
        #expect(!ByteSearch.contains(Array("secret".utf8), in: "secre"))
        #expect("a-secret\u{301}-b".replacingAll("secret", with: "*") == "a-*\u{301}-b")
        #expect("abc".replacingAll("", with: "*") == "abc")
    }
}
