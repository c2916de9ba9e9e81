import KontextAudit
import KontextCore
import Testing

@Suite struct AuditEventTests {
    @Test func jsonHasExactlyTheSpecKeysInOrder() throws {
        let event = fullEvent(session: "s1")
        let members = try #require(event.json.objectValue)
        #expect(members.map(\.0) == [
            "id", "session_id", "seq", "time", "agent", "event", "tool_name", "tool_input",
            "tool_response", "decision", "actor", "host", "cwd", "prev_hash", "hash",
        ], "SPEC section 7's keys, grown by exactly the chain's two (section 12)")
        #expect(members.map(\.0) == AuditEvent.keys)
        let decision = try #require(event.json["decision"]?.objectValue)
        #expect(decision.map(\.0) == ["outcome", "reason", "rule", "enforced"])
        let actor = try #require(event.json["actor"]?.objectValue)
        #expect(actor.map(\.0) == ["sub", "email"])
        #expect(event.json["event"] == .string("pre-tool"))
        #expect(event.json["decision"]?["enforced"] == .bool(true))
    }

    @Test func absentValuesAreNullNotMissing() throws {
        let event = AuditEvent(sessionID: "s1", agent: "claude", event: .sessionStart)
        let json = event.json
        #expect(json.objectValue?.count == AuditEvent.keys.count)
        for key in ["tool_name", "tool_input", "tool_response", "decision", "host", "cwd"] {
            #expect(json[key] == .null, "\(key) should be null")
        }
        #expect(json["actor"] == .object([("sub", .null), ("email", .null)]))
        #expect(json["seq"] == .number(0))
    }

    @Test func roundTripsThroughJSONText() throws {
        var event = fullEvent(session: "s1")
        event.seq = 42
        event.toolResponse = .object([("stdout", .string("line 1\nline \"2\"\t\u{1}")), ("interrupted", .bool(false)),
                                      ("lines", .array([.number(1), .number(2.5), .null]))])
        let text = event.json.serialized
        #expect(try AuditEvent(jsonText: text) == event)
        #expect(try AuditEvent(json: event.json) == event)

        let bare = AuditEvent(sessionID: "s2", agent: "codex", event: .stop)
        #expect(try AuditEvent(jsonText: bare.json.serialized) == bare)
    }

    @Test func userPromptCarriesThePromptInToolInput() throws {
        let event = AuditEvent(sessionID: "s1", agent: "claude", event: .userPrompt,
                               toolInput: AuditEvent.promptInput("deploy it"))
        #expect(event.json["tool_input"] == .object([("prompt", .string("deploy it"))]))
        #expect(event.json["event"] == .string("user-prompt"))
        #expect(event.json["tool_name"] == .null)
    }

    @Test func rejectsMalformedEvents() throws {
        let good = fullEvent(session: "s1").json
        func replacing(_ key: String, with value: JSONValue?) -> JSONValue {
            var members = good.objectValue!
            if let value { members[members.firstIndex { $0.0 == key }!].1 = value } else { members.removeAll { $0.0 == key } }
            return .object(members)
        }
        #expect(throws: KontextError.self) { try AuditEvent(json: replacing("event", with: .string("pre-tools"))) }
        #expect(throws: KontextError.self) { try AuditEvent(json: replacing("id", with: nil)) }
        #expect(throws: KontextError.self) { try AuditEvent(json: replacing("seq", with: .number(1.5))) }
        #expect(throws: KontextError.self) { try AuditEvent(json: replacing("seq", with: .string("1"))) }
        #expect(throws: KontextError.self) {
            try AuditEvent(json: replacing("decision", with: .object([("outcome", .string("maybe")), ("enforced", .bool(true))])))
        }
        #expect(throws: KontextError.self) { try AuditEvent(json: .array([])) }
        #expect(throws: KontextError.self) { try AuditEvent(jsonText: "{\"id\":") }
        // Optional keys may be missing altogether.
        let minimal = try AuditEvent(json: replacing("cwd", with: nil))
        #expect(minimal.cwd == nil)
    }

    @Test func formatsRFC3339WithMilliseconds() {
        #expect(AuditTime.format(epochMilliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(AuditTime.format(epochMilliseconds: 1_795_343_023_123) == "2026-11-22T10:23:43.123Z")
        #expect(AuditTime.format(epochMilliseconds: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(AuditTime.format(epochMilliseconds: 4_107_542_399_999) == "2100-02-28T23:59:59.999Z")
        #expect(AuditTime.format(epochMilliseconds: -1) == "1969-12-31T23:59:59.999Z")
        let now = AuditTime.now()
        #expect(now.utf8.count == 24 && now.hasSuffix("Z") && now.hasPrefix("20"))
    }

    @Test func identifiersAre128BitHex() {
        func isHex128(_ id: String) -> Bool {
            id.utf8.count == 32 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        }
        let random = (0..<1000).map { _ in AuditIdentifier.random() }
        #expect(Set(random).count == random.count && random.allSatisfy(isHex128))
        // Random session ids spread their first digit.
        #expect(Set(random.map(\.first)).count > 8)

        let ordered = (0..<1000).map { _ in AuditIdentifier.timeOrdered() }
        #expect(Set(ordered).count == ordered.count && ordered.allSatisfy(isHex128))
        #expect(AuditIdentifier.timeOrdered(epochMilliseconds: 0x0123_4567_89ab).hasPrefix("0123456789ab"))
        let earlier = AuditIdentifier.timeOrdered(epochMilliseconds: 1_795_343_023_123)
        let later = AuditIdentifier.timeOrdered(epochMilliseconds: 1_795_343_023_124)
        #expect(earlier < later)
        // Event ids default to time-ordered ones carrying the current time.
        let before = AuditTime.currentEpochMilliseconds()
        let id = AuditEvent(sessionID: "s", agent: "claude", event: .stop).id
        let after = AuditTime.currentEpochMilliseconds()
        let stamped = Int64(id.prefix(12), radix: 16) ?? -1
        #expect(before <= stamped && stamped <= after)
    }
}
