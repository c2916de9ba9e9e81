import KontextCore

/// Audit events as OpenTelemetry log records (SPEC section 12): an OTLP/HTTP logs export
/// request (`ExportLogsServiceRequest`), in protobuf or in OTLP's JSON form.
///
/// One `ResourceLogs` per session, its resource attributes `service.name`
/// (`OTEL_SERVICE_NAME`, default `kontext`), `service.version`, `host.name`, `user.id`,
/// `user.email`, `session.id`, `kontext.agent`, then `OTEL_RESOURCE_ATTRIBUTES`; scope
/// `kontext.audit`. One `LogRecord` per event: its `time` as `timeUnixNano`, `eventName`
/// `kontext.audit.EVENT`, severity `WARN` for a deny, `INFO2` for an ask and `INFO`
/// otherwise, a one-line body, and the attributes `kontext.event.id`, `kontext.event`,
/// `kontext.seq`, `kontext.tool.name`, `kontext.tool.input` and `kontext.tool.response`
/// (compact JSON text), `kontext.decision.outcome`, `.reason`, `.rule`, `.enforced`,
/// `kontext.cwd`, `kontext.prev_hash`, `kontext.hash` (absent values are left out).
public enum AuditOTLP {
    public static let scopeName = "kontext.audit"
    public static let serviceVersion = "0.1.0"

    enum Value {
        case string(String)
        case bool(Bool)
        case int(Int64)
    }

    struct Record {
        var timeUnixNano: UInt64
        var observedTimeUnixNano: UInt64
        var severityNumber: Int
        var severityText: String
        var eventName: String
        var body: String
        var attributes: [(String, Value)]
    }

    struct ResourceLogs {
        var attributes: [(String, Value)]
        var records: [Record]
    }

    /// The export request for `events` in `encoding`.
    public static func request(_ events: [AuditEvent], encoding: OTLPSettings.Encoding, serviceName: String,
                               resourceAttributes: [(String, String)], observedAt: Int64 = AuditTime.currentEpochMilliseconds()) -> [UInt8] {
        let logs = resourceLogs(events, serviceName: serviceName, resourceAttributes: resourceAttributes, observedAt: observedAt)
        switch encoding {
        case .protobuf: return protobuf(logs)
        case .json: return Array(json(logs).utf8)
        }
    }

    static func resourceLogs(_ events: [AuditEvent], serviceName: String, resourceAttributes: [(String, String)],
                             observedAt: Int64) -> [ResourceLogs] {
        var order: [String] = []
        var bySession: [String: ResourceLogs] = [:]
        for event in events {
            if bySession[event.sessionID] == nil {
                order.append(event.sessionID)
                var attributes: [(String, Value)] = [("service.name", .string(serviceName)),
                                                     ("service.version", .string(serviceVersion))]
                if let host = event.host { attributes.append(("host.name", .string(host))) }
                if let sub = event.actor.sub { attributes.append(("user.id", .string(sub))) }
                if let email = event.actor.email { attributes.append(("user.email", .string(email))) }
                attributes.append(("session.id", .string(event.sessionID)))
                attributes.append(("kontext.agent", .string(event.agent)))
                attributes += resourceAttributes.filter { extra in !attributes.contains { $0.0 == extra.0 } }
                    .map { ($0.0, .string($0.1)) }
                bySession[event.sessionID] = ResourceLogs(attributes: attributes, records: [])
            }
            bySession[event.sessionID]!.records.append(record(event, observedAt: observedAt))
        }
        return order.map { bySession[$0]! }
    }

    static func record(_ event: AuditEvent, observedAt: Int64) -> Record {
        var attributes: [(String, Value)] = [("kontext.event.id", .string(event.id)), ("kontext.event", .string(event.event.rawValue)),
                                             ("kontext.seq", .int(Int64(event.seq)))]
        func add(_ key: String, _ text: String?) {
            if let text { attributes.append((key, .string(text))) }
        }
        add("kontext.tool.name", event.toolName)
        if event.toolInput != .null { add("kontext.tool.input", event.toolInput.serialized) }
        if event.toolResponse != .null { add("kontext.tool.response", event.toolResponse.serialized) }
        if let decision = event.decision {
            add("kontext.decision.outcome", decision.outcome.rawValue)
            add("kontext.decision.reason", decision.reason)
            add("kontext.decision.rule", decision.rule)
            attributes.append(("kontext.decision.enforced", .bool(decision.enforced)))
        }
        add("kontext.cwd", event.cwd)
        add("kontext.prev_hash", event.prevHash)
        add("kontext.hash", event.hash)

        let (severity, severityText): (Int, String) = switch event.decision?.outcome {
        case .deny?: (13, "WARN")
        case .ask?: (10, "INFO2")
        default: (9, "INFO")
        }
        var body = event.event.rawValue
        if let tool = event.toolName { body += " " + tool }
        if let decision = event.decision {
            body += ": " + decision.outcome.rawValue + (decision.enforced ? "" : " (observe)")
            if let rule = decision.rule { body += " [" + rule + "]" }
        }
        let time = AuditTime.epochMilliseconds(event.time) ?? observedAt
        return Record(timeUnixNano: UInt64(max(0, time)) * 1_000_000, observedTimeUnixNano: UInt64(max(0, observedAt)) * 1_000_000,
                      severityNumber: severity, severityText: severityText, eventName: "kontext.audit." + event.event.rawValue,
                      body: body, attributes: attributes)
    }

    // MARK: Protobuf (opentelemetry-proto's logs.proto, common.proto, resource.proto)

    static func protobuf(_ logs: [ResourceLogs]) -> [UInt8] {
        var request = ProtobufWriter()
        for resourceLogs in logs {
            request.message(1) { resource in                       // ExportLogsServiceRequest.resource_logs
                resource.message(1) { attributes in               // ResourceLogs.resource
                    for (key, value) in resourceLogs.attributes { attributes.keyValue(1, key, value) }
                }
                resource.message(2) { scope in                    // ResourceLogs.scope_logs
                    scope.message(1) { instrumentation in         // ScopeLogs.scope
                        instrumentation.string(1, scopeName)
                        instrumentation.string(2, serviceVersion)
                    }
                    for record in resourceLogs.records {
                        scope.message(2) { log in                 // ScopeLogs.log_records
                            log.fixed64(1, record.timeUnixNano)
                            log.varint(2, UInt64(record.severityNumber))
                            log.string(3, record.severityText)
                            log.message(5) { $0.anyValue(.string(record.body)) }
                            for (key, value) in record.attributes { log.keyValue(6, key, value) }
                            log.fixed64(11, record.observedTimeUnixNano)
                            log.string(12, record.eventName)
                        }
                    }
                }
            }
        }
        return request.bytes
    }

    // MARK: JSON (the OTLP/HTTP JSON encoding: lowerCamelCase names, 64-bit integers as strings)

    static func json(_ logs: [ResourceLogs]) -> String {
        func value(_ value: Value) -> JSONValue {
            switch value {
            case .string(let text): .object([("stringValue", .string(text))])
            case .bool(let flag): .object([("boolValue", .bool(flag))])
            case .int(let number): .object([("intValue", .string(String(number)))])
            }
        }
        func attributes(_ list: [(String, Value)]) -> JSONValue {
            .array(list.map { .object([("key", .string($0.0)), ("value", value($0.1))]) })
        }
        let document = JSONValue.object([("resourceLogs", .array(logs.map { resourceLogs in
            .object([
                ("resource", .object([("attributes", attributes(resourceLogs.attributes))])),
                ("scopeLogs", .array([.object([
                    ("scope", .object([("name", .string(scopeName)), ("version", .string(serviceVersion))])),
                    ("logRecords", .array(resourceLogs.records.map { record in
                        .object([
                            ("timeUnixNano", .string(String(record.timeUnixNano))),
                            ("observedTimeUnixNano", .string(String(record.observedTimeUnixNano))),
                            ("severityNumber", .number(Double(record.severityNumber))),
                            ("severityText", .string(record.severityText)),
                            ("body", value(.string(record.body))),
                            ("attributes", attributes(record.attributes)),
                            ("eventName", .string(record.eventName)),
                        ])
                    })),
                ])])),
            ])
        }))])
        return document.serialized
    }
}

/// The protobuf wire format (varints, length-delimited fields, fixed64), for the few OTLP
/// messages above.
struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func rawVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7f) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func tag(_ field: Int, wireType: Int) {
        rawVarint(UInt64(field << 3 | wireType))
    }

    mutating func varint(_ field: Int, _ value: UInt64) {
        tag(field, wireType: 0)
        rawVarint(value)
    }

    mutating func fixed64(_ field: Int, _ value: UInt64) {
        tag(field, wireType: 1)
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8((value >> UInt64(shift)) & 0xff)) }
    }

    mutating func string(_ field: Int, _ text: String) {
        tag(field, wireType: 2)
        rawVarint(UInt64(text.utf8.count))
        bytes.append(contentsOf: text.utf8)
    }

    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        tag(field, wireType: 2)
        rawVarint(UInt64(inner.bytes.count))
        bytes.append(contentsOf: inner.bytes)
    }

    /// AnyValue's oneof: string_value 1, bool_value 2, int_value 3.
    mutating func anyValue(_ value: AuditOTLP.Value) {
        switch value {
        case .string(let text): string(1, text)
        case .bool(let flag): varint(2, flag ? 1 : 0)
        case .int(let number): varint(3, UInt64(bitPattern: number))
        }
    }

    /// A KeyValue (key 1, value 2) as field `field`.
    mutating func keyValue(_ field: Int, _ key: String, _ value: AuditOTLP.Value) {
        message(field) { pair in
            pair.string(1, key)
            pair.message(2) { $0.anyValue(value) }
        }
    }
}
