import KontextHookWire
import Testing

/// The socket format between `kontext hook` and the sidecar: what decodes, and every way a
/// torn or forged message is refused instead of misread.
@Suite struct HookWireTests {
    static let payload = Array(#"{"tool_name":"Bash","tool_input":{"command":"ls"}}"#.utf8)

    @Test func aRequestSurvivesTheRoundTrip() {
        let request = HookWire.Request(event: "pre-tool", agent: "claude", truncated: false, payload: Self.payload)
        let bytes = HookWire.encode(request)
        #expect(String(decoding: bytes.prefix(while: { $0 != 10 }), as: UTF8.self) == "KXH1 pre-tool claude - \(Self.payload.count)")
        #expect(HookWire.decodeRequest(bytes) == request)
        let empty = HookWire.Request(event: "stop", agent: "claude", truncated: false, payload: [])
        #expect(HookWire.decodeRequest(HookWire.encode(empty)) == empty)
    }

    /// Input over `maximumInput` is cut by the hook; the flag tells the sidecar so.
    @Test func theCutFlagTravels() {
        let cut = HookWire.Request(event: "pre-tool", agent: "claude", truncated: true,
                                   payload: [UInt8](repeating: UInt8(ascii: "a"), count: HookWire.maximumInput))
        let bytes = HookWire.encode(cut)
        #expect(bytes.starts(with: Array("KXH1 pre-tool claude o \(HookWire.maximumInput)\n".utf8)))
        let decoded = HookWire.decodeRequest(bytes)
        #expect(decoded?.truncated == true)
        #expect(decoded?.payload.count == HookWire.maximumInput)
        #expect(HookWire.maximumInput == 4 << 20)
    }

    @Test func aTornHeaderIsNoRequest() {
        let bytes = HookWire.encode(HookWire.Request(event: "pre-tool", agent: "claude", truncated: false, payload: Self.payload))
        let newline = bytes.firstIndex(of: 10)!
        for length in 0..<newline {
            #expect(HookWire.decodeRequest(Array(bytes.prefix(length))) == nil, "header cut at \(length)")
        }
        #expect(HookWire.decodeRequest(Array("KXH2 pre-tool claude - 0\n".utf8)) == nil)
        #expect(HookWire.decodeRequest(Array("KXH1 pre-tool claude 0\n".utf8)) == nil)
        #expect(HookWire.decodeRequest(Array("KXH1 pre-tool claude - x\n".utf8)) == nil)
        #expect(HookWire.decodeRequest(Array("KXH1 pre-tool claude - 0 extra\n".utf8)) == nil)
        // A header line longer than any real one is not waited for.
        #expect(HookWire.decodeRequest(Array(("KXH1 " + String(repeating: "e", count: 300) + " claude - 0\n").utf8)) == nil)
    }

    @Test func aLengthThatDisagreesWithThePayloadIsNoRequest() {
        let header = "KXH1 pre-tool claude - "
        #expect(HookWire.decodeRequest(Array((header + "\(Self.payload.count + 1)\n").utf8) + Self.payload) == nil)
        #expect(HookWire.decodeRequest(Array((header + "\(Self.payload.count - 1)\n").utf8) + Self.payload) == nil)
        #expect(HookWire.decodeRequest(Array((header + "-1\n").utf8)) == nil)
    }

    @Test func aTruncatedPayloadIsNoRequest() {
        let bytes = HookWire.encode(HookWire.Request(event: "pre-tool", agent: "claude", truncated: false, payload: Self.payload))
        let newline = bytes.firstIndex(of: 10)!
        for length in (newline + 1)..<bytes.count {
            #expect(HookWire.decodeRequest(Array(bytes.prefix(length))) == nil, "payload cut at \(length)")
        }
    }

    @Test func anAnswerSurvivesTheRoundTrip() {
        let answer = HookWire.Answer(exitCode: 2, stdout: "{\"a\":1}\n", stderr: "kontext: blocked\n")
        let bytes = HookWire.encode(answer)
        #expect(bytes.starts(with: Array("2 8 17\n".utf8)))
        #expect(HookWire.decodeAnswer(bytes) == answer)
        #expect(HookWire.decodeAnswer(HookWire.encode(HookWire.Answer(exitCode: 0))) == HookWire.Answer(exitCode: 0))
    }

    @Test func aTornOrMismatchedAnswerIsNoAnswer() {
        let bytes = HookWire.encode(HookWire.Answer(exitCode: 0, stdout: "out", stderr: "err"))
        for length in 0..<bytes.count {
            #expect(HookWire.decodeAnswer(Array(bytes.prefix(length))) == nil, "answer cut at \(length)")
        }
        #expect(HookWire.decodeAnswer(bytes + [0x0A]) == nil)
        #expect(HookWire.decodeAnswer(Array("0 -1 1\n".utf8)) == nil)
        #expect(HookWire.decodeAnswer(Array("x 0 0\n".utf8)) == nil)
        #expect(HookWire.decodeAnswer(Array("0 0\n".utf8)) == nil)
        // Lengths whose sum overflows are refused, not a trap in the hook process.
        #expect(HookWire.decodeAnswer(Array("0 \(Int.max) 1\n".utf8)) == nil)
        #expect(HookWire.decodeAnswer(Array("0 \(Int.max) \(Int.max)\n".utf8)) == nil)
    }
}
