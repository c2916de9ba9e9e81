import KontextCore

extension AuditEvent {
    /// Per-string limit for `tool_response` (SPEC: "truncated"): 16 KiB keeps a command's
    /// useful output while a 50 MB `cat` cannot bloat the store or the shipping batches.
    public static let defaultMaxResponseBytes = 16_384
    /// Per-string limit for `tool_input` (and the prompt of `user-prompt` events): larger,
    /// because the input is what policy judged, but bounded (a `Write` carries whole files).
    public static let defaultMaxInputBytes = 65_536

    /// The event as it may be stored and shipped: every free-text string (tool name, tool
    /// input and response at any depth, decision reason and rule, actor, host, cwd, agent)
    /// has injected secrets replaced by `[REDACTED:SERVICE]`, then each string inside
    /// `tool_response` longer than `maxResponseBytes` UTF-8 bytes (and inside `tool_input`
    /// longer than `maxInputBytes`) is cut with `AuditTruncation.truncate`.
    ///
    /// Redaction runs first on the whole string: truncating first could cut a secret in
    /// two and leave its first half, which the redactor no longer recognises, in the store.
    /// `id`, `session_id`, `time` and `event` are kontext's own values and are kept as is.
    public func sanitized(
        redactor: Redactor,
        maxResponseBytes: Int = AuditEvent.defaultMaxResponseBytes,
        maxInputBytes: Int = AuditEvent.defaultMaxInputBytes
    ) -> AuditEvent {
        let redact = { (text: String) in redactor.redact(text) }
        var result = self
        result.agent = redact(agent)
        result.toolName = toolName.map(redact)
        result.toolInput = toolInput.mapStrings { AuditTruncation.truncate(redact($0), maxBytes: maxInputBytes) }
        result.toolResponse = toolResponse.mapStrings { AuditTruncation.truncate(redact($0), maxBytes: maxResponseBytes) }
        if var decision {
            decision.reason = decision.reason.map(redact)
            decision.rule = decision.rule.map(redact)
            result.decision = decision
        }
        result.actor = AuditActor(sub: actor.sub.map(redact), email: actor.email.map(redact))
        result.host = host.map(redact)
        result.cwd = cwd.map(redact)
        return result
    }
}

public enum AuditTruncation {
    /// Cuts `text` to at most `maxBytes` UTF-8 bytes *including* a visible marker
    /// `…[truncated N bytes]` (N = bytes removed), at a character (grapheme) boundary, so the
    /// result is valid UTF-8 and truncating again changes nothing. Text within the limit is
    /// returned unchanged. Limits smaller than the marker keep no text, only the marker.
    public static func truncate(_ text: String, maxBytes: Int) -> String {
        let totalBytes = text.utf8.count
        guard totalBytes > maxBytes else { return text }
        // Reserve room for the marker with the widest N possible (the whole length).
        let markerBytes = marker(removedBytes: totalBytes).utf8.count
        let keepBytes = max(0, maxBytes - markerBytes)
        let kept = text[..<characterBoundary(in: text, atOrBeforeByte: keepBytes)]
        return String(kept) + marker(removedBytes: totalBytes - kept.utf8.count)
    }

    /// The last character (grapheme) boundary at or before UTF-8 offset `byteOffset`
    /// (< the text's length), so a cut never splits a multi-byte scalar, a flag, an emoji
    /// sequence or a letter from its combining accent.
    static func characterBoundary(in text: String, atOrBeforeByte byteOffset: Int) -> String.Index {
        let utf8 = text.utf8
        // First back off to a scalar boundary: UTF-8 continuation bytes are 0b10xxxxxx.
        var scalarCut = utf8.index(utf8.startIndex, offsetBy: byteOffset)
        while scalarCut > utf8.startIndex, utf8[scalarCut] & 0xC0 == 0x80 {
            scalarCut = utf8.index(before: scalarCut)
        }
        // Then to a character boundary: the last character of the prefix starts on one (grapheme
        // breaks depend only on what precedes them there); the cut itself is one only if that
        // character, read in the full text, ends exactly at the cut.
        let head = text[..<scalarCut]
        guard !head.isEmpty else { return text.startIndex }
        // Rebuilt from its byte offset: an index made by the substring caches the length of
        // the character as the substring sees it (cut short), which `text` would reuse.
        let startOffset = utf8.distance(from: utf8.startIndex, to: head.index(before: head.endIndex))
        let lastCharacterStart = utf8.index(utf8.startIndex, offsetBy: startOffset)
        return text.index(after: lastCharacterStart) == scalarCut ? scalarCut : lastCharacterStart
    }

    public static func marker(removedBytes: Int) -> String {
        "…[truncated \(removedBytes) bytes]"
    }
}
