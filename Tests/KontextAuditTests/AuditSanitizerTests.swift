import KontextAudit
import KontextCore
import Testing

@Suite struct AuditSanitizerTests {
    let githubToken = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    var redactor: Redactor { Redactor(secrets: [(service: "github", value: githubToken), (service: "pg", value: "hunter2-pg")]) }

    @Test func redactsSecretsInNestedToolInputAndResponse() {
        var event = fullEvent(session: "s1")
        event.toolInput = .object([
            ("command", .string("curl -H 'Authorization: Bearer \(githubToken)' https://api.github.com")),
            ("env", .array([.object([("DB", .string("postgres://app:hunter2-pg@db/app"))])])),
        ])
        event.toolResponse = .object([("stdout", .string("token=\(githubToken)\n")), ("stderr", .string(""))])
        event.decision?.reason = "input contains \(githubToken)"
        event.cwd = "/tmp/\(githubToken)"

        let clean = event.sanitized(redactor: redactor)
        let text = clean.json.serialized
        #expect(!text.contains(githubToken))
        #expect(!text.contains("hunter2-pg"))
        #expect(clean.toolInput["command"] == .string("curl -H 'Authorization: Bearer [REDACTED:github]' https://api.github.com"))
        #expect(clean.toolInput["env"] == .array([.object([("DB", .string("postgres://app:[REDACTED:pg]@db/app"))])]))
        #expect(clean.toolResponse["stdout"] == .string("token=[REDACTED:github]\n"))
        #expect(clean.decision?.reason == "input contains [REDACTED:github]")
        #expect(clean.cwd == "/tmp/[REDACTED:github]")
        // Kontext's own identifiers are untouched.
        #expect(clean.id == event.id && clean.sessionID == event.sessionID && clean.time == event.time)
    }

    @Test func redactsSecretsUsedAsObjectKeys() {
        var event = fullEvent(session: "s1")
        event.toolInput = .object([
            (githubToken, .string("value")),
            ("headers", .object([("Bearer \(githubToken)", .bool(true))])),
        ])
        event.toolResponse = .object([("hunter2-pg", .array([.object([("x-\(githubToken)", .null)])]))])

        let clean = event.sanitized(redactor: redactor)
        let text = clean.json.serialized
        #expect(!text.contains(githubToken))
        #expect(!text.contains("hunter2-pg"))
        #expect(clean.toolInput["[REDACTED:github]"] == .string("value"))
        #expect(clean.toolInput["headers"] == .object([("Bearer [REDACTED:github]", .bool(true))]))
        #expect(clean.toolResponse["[REDACTED:pg]"] == .array([.object([("x-[REDACTED:github]", .null)])]))
    }

    @Test func truncatesLongResponsesWithAVisibleMarker() throws {
        var event = fullEvent(session: "s1")
        let output = String(repeating: "0123456789", count: 5000) // 50,000 bytes
        event.toolResponse = .object([("stdout", .string(output)), ("exit", .number(0))])

        let clean = event.sanitized(redactor: redactor, maxResponseBytes: 1000)
        let stdout = try #require(clean.toolResponse["stdout"]?.stringValue)
        #expect(stdout.utf8.count == 1000) // ASCII: the limit is used exactly
        let kept = stdout[..<stdout.firstRange(of: "…[truncated ")!.lowerBound]
        #expect(output.hasPrefix(kept))
        #expect(stdout == String(kept) + AuditTruncation.marker(removedBytes: 50_000 - kept.utf8.count))
        #expect(clean.toolResponse["exit"] == .number(0))

        // Default limit: 16 KiB per string; short strings are untouched.
        let byDefault = event.sanitized(redactor: redactor)
        #expect(byDefault.toolResponse["stdout"]?.stringValue?.utf8.count == AuditEvent.defaultMaxResponseBytes)
        let short = fullEvent(session: "s1")
        #expect(short.sanitized(redactor: redactor) == short)
    }

    @Test func truncationIsIdempotent() {
        let text = String(repeating: "é", count: 10_000)
        let once = AuditTruncation.truncate(text, maxBytes: 777)
        #expect(once.utf8.count <= 777)
        #expect(AuditTruncation.truncate(once, maxBytes: 777) == once)
        #expect(AuditTruncation.truncate("short", maxBytes: 777) == "short")
    }

    @Test(arguments: Array(0...40))
    func truncationNeverSplitsACharacter(limitOffset: Int) throws {
        // Multi-byte scalars, a flag (two scalars), a ZWJ family and a combining accent.
        let unit = "aé€𝄞🇫🇷👨‍👩‍👧e\u{301}"
        let text = String(repeating: unit, count: 50)
        let limit = AuditTruncation.marker(removedBytes: text.utf8.count).utf8.count + limitOffset
        let cut = AuditTruncation.truncate(text, maxBytes: limit)
        #expect(cut.utf8.count <= limit)
        let kept = String(cut[..<cut.firstRange(of: "…[truncated ")!.lowerBound])
        // Valid UTF-8 by construction of String; whole characters: the kept text is a
        // prefix of the original in Characters, not only in bytes.
        #expect(Array(text.prefix(kept.count)) == Array(kept))
        #expect(text.hasPrefix(kept))
        #expect(cut.hasSuffix(AuditTruncation.marker(removedBytes: text.utf8.count - kept.utf8.count)))
    }

    @Test func redactionHappensBeforeTruncation() throws {
        // The secret straddles the cut: truncating first would keep its first half.
        let limit = 200
        let markerBytes = AuditTruncation.marker(removedBytes: 100_000).utf8.count
        let keepBytes = limit - markerBytes
        let padding = String(repeating: "x", count: keepBytes - githubToken.utf8.count / 2)
        let output = padding + githubToken + String(repeating: "y", count: 5000)
        var event = fullEvent(session: "s1")
        event.toolResponse = .object([("stdout", .string(output))])

        let stdout = try #require(event.sanitized(redactor: redactor, maxResponseBytes: limit).toolResponse["stdout"]?.stringValue)
        let firstHalf = String(githubToken.prefix(githubToken.count / 2))
        #expect(!stdout.contains(firstHalf))
        #expect(!stdout.contains("ghp_"))
        #expect(stdout.hasPrefix(padding))
        #expect(stdout.contains("…[truncated "))

        // What truncating first would have stored, to show the test can tell the difference.
        let wrongOrder = redactor.redact(AuditTruncation.truncate(output, maxBytes: limit))
        #expect(wrongOrder.contains(firstHalf))
    }

    @Test func inputsHaveTheirOwnLargerLimit() throws {
        let content = String(repeating: "z", count: 100_000)
        var event = fullEvent(session: "s1")
        event.toolInput = .object([("content", .string(content))])
        let clean = event.sanitized(redactor: redactor)
        let stored = try #require(clean.toolInput["content"]?.stringValue)
        #expect(stored.utf8.count <= AuditEvent.defaultMaxInputBytes && stored.utf8.count > AuditEvent.defaultMaxResponseBytes)
        #expect(stored.contains("…[truncated "))
    }
}
