import KontextAudit
import KontextCore
import Testing

@Suite struct AuditExportTests {
    @Test func csvQuotesCommasQuotesAndNewlines() {
        #expect(AuditExport.csvField("plain") == "plain")
        #expect(AuditExport.csvField("a,b") == "\"a,b\"")
        #expect(AuditExport.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(AuditExport.csvField("line1\nline2") == "\"line1\nline2\"")
        #expect(AuditExport.csvField("cr\rhere") == "\"cr\rhere\"")
        #expect(AuditExport.csvField("") == "")
    }

    /// A spreadsheet runs a cell that starts with = + - @ (or tab / CR before one) as a
    /// formula; such a cell is quoted with a leading apostrophe so it stays text.
    @Test func csvNeutralisesFormulaLeadingFields() {
        #expect(AuditExport.csvField("=HYPERLINK(\"http://x\")") == "\"'=HYPERLINK(\"\"http://x\"\")\"")
        #expect(AuditExport.csvField("+1+1") == "\"'+1+1\"")
        #expect(AuditExport.csvField("-2+3") == "\"'-2+3\"")
        #expect(AuditExport.csvField("@SUM(A1)") == "\"'@SUM(A1)\"")
        #expect(AuditExport.csvField("\t=1") == "\"'\t=1\"")
        #expect(AuditExport.csvField("\r=1") == "\"'\r=1\"")
        #expect(AuditExport.csvField("a=1") == "a=1")
        var event = fullEvent(session: "s1")
        event.toolName = "=cmd|' /C calc'!A0"
        let row = parseCSV(AuditExport.csvRecord(event))[0]
        #expect(row[AuditExport.csvColumns.firstIndex(of: "tool_name")!] == "'=cmd|' /C calc'!A0")
    }

    @Test func csvRecordHasTheDocumentedColumns() throws {
        var event = fullEvent(session: "s1", command: "echo \"a, b\"\nls")
        event.seq = 7
        event.decision?.reason = "has, comma"
        let record = AuditExport.csvRecord(event)
        #expect(record.hasSuffix("\r\n"))
        let fields = parseCSV(AuditExport.csvHeader + record)
        #expect(fields.count == 2)
        #expect(fields[0] == AuditExport.csvColumns)
        let row = Dictionary(uniqueKeysWithValues: zip(fields[0], fields[1]))
        #expect(row["id"] == event.id)
        #expect(row["seq"] == "7")
        #expect(row["event"] == "pre-tool")
        #expect(row["decision_outcome"] == "deny")
        #expect(row["decision_reason"] == "has, comma")
        #expect(row["decision_enforced"] == "true")
        #expect(row["actor_email"] == "dev@example.com")
        #expect(try JSONValue.parse(row["tool_input"]!) == event.toolInput)
        #expect(row["tool_response"] == "null")

        let bare = AuditExport.csvRecord(AuditEvent(sessionID: "s", agent: "claude", event: .stop))
        let bareRow = Dictionary(uniqueKeysWithValues: zip(AuditExport.csvColumns, parseCSV(bare)[0]))
        #expect(bareRow["decision_outcome"] == "" && bareRow["decision_enforced"] == "" && bareRow["tool_name"] == "")
    }

    @Test func exportsEveryStoredEventAsJSONLAndCSV() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        let writer = AuditWriter(store: store)
        var events: [AuditEvent] = []
        for index in 0..<25 {
            var event = fullEvent(session: index % 2 == 0 ? "a" : "b", command: "printf 'x,\"y\"\\n' \(index)")
            event.toolResponse = .object([("stdout", .string("x,\"y\"\nline \u{2028} \(index)\n"))])
            events.append(try writer.append(event))
        }
        writer.close()

        let jsonl = try captureOutput(in: directory) { try AuditExport.write(store: store, format: .jsonl, to: $0) }
        let lines = jsonl.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 26 && lines.last == "", "one line per event, each ending in a newline")
        for (line, event) in zip(lines, events) {
            #expect(String(line) == event.json.serialized)
            #expect(try AuditEvent(jsonText: String(line)) == event)
        }

        let fromArray = try captureOutput(in: directory) { try AuditExport.write(events: events, format: .jsonl, to: $0) }
        #expect(fromArray == jsonl)

        let csv = try captureOutput(in: directory) { try AuditExport.write(store: store, format: .csv, to: $0) }
        let rows = parseCSV(csv)
        #expect(rows.count == 26)
        #expect(rows[0] == AuditExport.csvColumns)
        #expect(rows.dropFirst().map { $0[0] } == events.map(\.id))
        #expect(rows.allSatisfy { $0.count == AuditExport.csvColumns.count })
    }

    @Test func writeErrorsAreReported() {
        #expect(throws: KontextError.self) {
            try AuditExport.write(events: [fullEvent(session: "s")], format: .jsonl, to: -1)
        }
    }
}

/// A strict RFC 4180 reader for the tests: CRLF between records, quoted fields may hold
/// commas, CR, LF and doubled quotes.
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = []
    var row: [String] = []
    var field = ""
    var inQuotes = false
    var characters = Array(text.unicodeScalars)[...]
    while let scalar = characters.popFirst() {
        if inQuotes {
            if scalar == "\"" {
                if characters.first == "\"" { characters.removeFirst(); field.unicodeScalars.append("\"") } else { inQuotes = false }
            } else {
                field.unicodeScalars.append(scalar)
            }
        } else if scalar == "\"" && field.isEmpty {
            inQuotes = true
        } else if scalar == "," {
            row.append(field)
            field = ""
        } else if scalar == "\r" && characters.first == "\n" {
            characters.removeFirst()
            row.append(field)
            rows.append(row)
            row = []
            field = ""
        } else {
            field.unicodeScalars.append(scalar)
        }
    }
    if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
    return rows
}
