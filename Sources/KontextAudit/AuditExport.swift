import KontextCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `kontext audit export --format jsonl|csv`.
///
/// - `jsonl`: exactly `AuditEvent.json`, compact, one object per line, `\n` after each.
/// - `csv`: RFC 4180 — a header row, CRLF after every record, a field quoted (with inner
///   quotes doubled) when it contains a comma, a quote, CR or LF. A field that starts with
///   `=`, `+`, `-`, `@`, a tab or CR, which a spreadsheet would run as a formula, is quoted
///   and starts with an apostrophe (`"'=…"`), so it opens as text. Absent values (JSON null)
///   are empty fields; `decision_enforced` is `true`/`false` (empty without a decision);
///   `tool_input` and `tool_response` hold the value's compact JSON text, `null` included,
///   so every cell of those columns parses as JSON. `prev_hash` and `hash` come last; verify
///   a chain from the jsonl export (the hash covers the JSON object, not the CSV row).
public enum AuditExport {
    public enum Format: String, Sendable, CaseIterable {
        case jsonl, csv
    }

    public static let csvColumns = [
        "id", "session_id", "seq", "time", "agent", "event", "tool_name", "decision_outcome",
        "decision_reason", "decision_rule", "decision_enforced", "actor_sub", "actor_email", "host",
        "cwd", "tool_input", "tool_response", "prev_hash", "hash",
    ]

    /// Writes `events` to the file descriptor (not closed). Throws on a write error such as
    /// a closed pipe or a full disk.
    public static func write(events: some Sequence<AuditEvent>, format: Format, to fd: Int32) throws {
        var output = BufferedOutput(fd: fd)
        if format == .csv { try output.append(csvHeader) }
        for event in events {
            try output.append(format == .csv ? csvRecord(event) : jsonLine(event))
        }
        try output.flush()
    }

    /// Streams every event of the store in commit order, in constant memory.
    public static func write(store: AuditStore, format: Format, to fd: Int32) throws {
        var output = BufferedOutput(fd: fd)
        if format == .csv { try output.append(csvHeader) }
        try store.forEachEvent { event in
            try output.append(format == .csv ? csvRecord(event) : jsonLine(event))
        }
        try output.flush()
    }

    public static func jsonLine(_ event: AuditEvent) -> String {
        var line = ""
        event.json.write(to: &line)
        line += "\n"
        return line
    }

    public static var csvHeader: String {
        csvColumns.joined(separator: ",") + "\r\n"
    }

    public static func csvRecord(_ event: AuditEvent) -> String {
        let fields: [String?] = [
            event.id, event.sessionID, String(event.seq), event.time, event.agent, event.event.rawValue,
            event.toolName, event.decision?.outcome.rawValue, event.decision?.reason, event.decision?.rule,
            event.decision.map { $0.enforced ? "true" : "false" }, event.actor.sub, event.actor.email,
            event.host, event.cwd, event.toolInput.serialized, event.toolResponse.serialized, event.prevHash, event.hash,
        ]
        var record = ""
        for (index, field) in fields.enumerated() {
            if index > 0 { record += "," }
            record += csvField(field ?? "")
        }
        record += "\r\n"
        return record
    }

    public static func csvField(_ value: String) -> String {
        let startsFormula = value.utf8.first.map { formulaLeaders.contains($0) } ?? false
        let needsQuotes = startsFormula
            || value.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0a || $0 == 0x0d }
        guard needsQuotes else { return value }
        return "\"" + (startsFormula ? "'" : "") + value.replacingAll("\"", with: "\"\"") + "\""
    }

    /// First bytes that make Excel, LibreOffice or Google Sheets read a cell as a formula.
    static let formulaLeaders: Set<UInt8> = [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 0x09, 0x0d]
}

/// Collects output into 64 KiB writes.
private struct BufferedOutput {
    let fd: Int32
    var buffer: [UInt8] = []

    init(fd: Int32) {
        self.fd = fd
        buffer.reserveCapacity(1 << 16)
    }

    mutating func append(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { try flush() }
    }

    mutating func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw KontextError(.usage, "cannot write the audit export: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
