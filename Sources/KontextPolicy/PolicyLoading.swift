#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextCore
import KontextPattern
import TOMLKit

extension Policy {
    /// Policy files are a few rules; anything larger is a mistake, not a policy.
    static let maximumFileSize = 1 << 20

    /// Reads and compiles a policy file. Every failure is a usage error whose message
    /// starts with the path (and names the rule number when one rule is at fault).
    public static func load(path: String) throws -> Policy {
        try parse(bytes: try readBytes(path: path), path: path)
    }

    /// The file's bytes (at most 1 MiB); an unreadable file is a usage error.
    public static func readBytes(path: String) throws -> [UInt8] {
        errno = 0  // readFile leaves errno alone when the only problem is the size
        guard let bytes = readFile(path, limit: maximumFileSize) else {
            let why = errno == 0 ? "larger than \(maximumFileSize / 1024) KiB" : String(cString: strerror(errno))
            throw KontextError.usage("\(path): cannot read the policy file: \(why)",
                                     hint: "fix the file or point KONTEXT_POLICY at another one")
        }
        return bytes
    }

    /// Compiles a policy file's bytes as read (so a digest of the same bytes describes
    /// exactly the rules in force).
    public static func parse(bytes: [UInt8], path: String) throws -> Policy {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw KontextError.usage("\(path): the policy file is not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    /// Compiles policy TOML; `path` labels rules and errors. Each `[[rule]]` table has:
    /// - `decision`: "allow", "ask", "deny" or "approve"; `reason` and `id` (optional text);
    /// - `risk`: with a decision, pattern(s) for the call's risk tier; without one, the tier
    ///   (`read`, `write`, `destructive`) the rule gives the tools it matches (classifying rule);
    /// - `tool`: pattern(s) for the tool name; absent matches any tool;
    /// - any other key: pattern(s) for the tool_input field of that name, which the input
    ///   must have (strings match as themselves, other JSON values as their JSON text);
    ///   `input.FIELD = …` reaches fields named like the keys above.
    /// A pattern is a string (see `Pattern`) or a non-empty array of them, any of which may
    /// match. A rule with no patterns matches every call. `event = "egress"` makes a rule
    /// judge the credential proxy's requests instead of tool calls: `tool` then matches the
    /// service, and `host`, `method`, `path` the request.
    public static func parse(_ text: String, path: String) throws -> Policy {
        // TOMLKit hands the text to C as a C string, which would silently end at a NUL.
        guard !text.utf8.contains(0) else {
            throw KontextError.usage("\(path): the policy file contains a NUL byte")
        }
        let document: TOMLTable
        do {
            document = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let at = error.source.begin
            throw KontextError.usage("\(path): invalid TOML at line \(at.line), column \(at.column): \(error.description)",
                                     hint: syntaxHint)
        }

        var rules: [Rule] = []
        for (key, value) in document {
            guard key == "rule" else {
                // A misspelt `[[rules]]` would otherwise silently allow everything.
                throw KontextError.usage("\(path): unknown top-level key \"\(key)\"", hint: syntaxHint)
            }
            guard let array = value.array else {
                throw KontextError.usage("\(path): \"rule\" must be an array of tables, not \(described(value.type))",
                                         hint: "write each rule as a [[rule]] table (two brackets)")
            }
            for (offset, element) in array.enumerated() {
                let number = offset + 1
                guard let table = element.table else {
                    throw KontextError.usage("\(path): rule \(number) is \(described(element.type)), not a table",
                                             hint: "write each rule as a [[rule]] table (two brackets)")
                }
                rules.append(try compileRule(table, number: number, path: path))
            }
        }
        return Policy(rules: rules, path: path)
    }

    /// "an integer", "a table", … for error messages.
    private static func described(_ type: TOMLType) -> String {
        let name = type == .bool ? "boolean" : type.description
        return ("aeiou".contains(name.first ?? "x") ? "an " : "a ") + name
    }

    static let syntaxHint = """
        rules are [[rule]] tables with decision = "allow"|"ask"|"deny"|"approve", an optional tool glob, \
        and tool_input fields as globs or "re:" regexes (SPEC section 7)
        """

    static let riskHint = """
        risk = "destructive" beside a decision matches calls of that tier; risk = "read"|"write"|"destructive" \
        without a decision classifies the tools the rule matches (only tools the built-in classifier does not know)
        """

    static let regexHint = """
        "re:" patterns are POSIX extended regular expressions (as grep -E) plus \\d, (?:...), lazy \
        quantifiers and a leading (?i); in a "basic" TOML string write each backslash twice, or use a 'literal string'
        """

    private static func compileRule(_ table: TOMLTable, number: Int, path: String) throws -> Rule {
        func failure(_ what: String, hint: String? = nil) -> KontextError {
            KontextError.usage("\(path): rule \(number): \(what)", hint: hint ?? syntaxHint)
        }
        func string(_ key: String, _ value: TOMLValueConvertible) throws -> String {
            guard let text = value.string else {
                throw failure("\"\(key)\" must be a string, not \(described(value.type))")
            }
            return text
        }
        func patterns(_ key: String, _ value: TOMLValueConvertible) throws -> [Pattern] {
            var sources: [String] = []
            if let text = value.string {
                sources = [text]
            } else if let array = value.array, !array.isEmpty, array.allSatisfy({ $0.string != nil }) {
                sources = array.map { $0.string! }
            } else {
                let isScalar = value.type == .int || value.type == .double || value.type == .bool
                let example = isScalar ? " (write \(key) = \"\(value.tomlValue.debugDescription)\" to match its JSON text)" : ""
                throw failure("\"\(key)\" must be a pattern string or a non-empty array of them, not \(described(value.type))\(example)")
            }
            return try sources.map { source in
                do {
                    return try Pattern(source)
                } catch let error as PatternError {
                    throw failure("\"\(key)\": \(error.message)",
                                  hint: regexHint)
                }
            }
        }

        var label: String?
        var tool: [Pattern]?
        var decision: PolicyDecision?
        var reason: String?
        var fields: [FieldMatcher] = []
        var event = PolicyEvent.tool
        var riskValue: TOMLValueConvertible?

        for (key, value) in table {
            switch key {
            case "event":
                let word = try string(key, value)
                switch word {
                case "egress": event = .egress
                case "pre-tool": event = .tool
                default:
                    throw failure("unknown event \"\(word)\"",
                                  hint: "event = \"egress\" judges the credential proxy's requests (host, method, path); leave it out for tool calls")
                }
            case "id":
                label = try string(key, value)
            case "reason":
                reason = try string(key, value)
            case "decision":
                let word = try string(key, value)
                guard let parsed = PolicyDecision(rawValue: word) else {
                    throw failure("unknown decision \"\(word)\"", hint: "decision must be \"allow\", \"ask\", \"deny\" or \"approve\"")
                }
                decision = parsed
            case "tool":
                tool = try patterns(key, value)
            case "risk":
                riskValue = value
            case "input" where value.table != nil:
                for (field, fieldValue) in value.table! {
                    fields.append(FieldMatcher(field: field, patterns: try patterns("input.\(field)", fieldValue)))
                }
            default:
                fields.append(FieldMatcher(field: key, patterns: try patterns(key, value)))
            }
        }
        // `risk` matches the call's tier in a rule that decides, and sets it in one that does not.
        var risk: [Pattern]?
        var setsRisk: RiskTier?
        if let riskValue {
            if decision == nil {
                guard let word = riskValue.string, let tier = RiskTier(rawValue: word) else {
                    throw failure("\"risk\" in a rule without a decision sets the tier: it must be \"read\", \"write\" or \"destructive\"",
                                  hint: riskHint)
                }
                guard event == .tool else { throw failure("egress rules have no risk", hint: riskHint) }
                setsRisk = tier
            } else {
                risk = try patterns("risk", riskValue)
            }
        }
        guard decision != nil || setsRisk != nil else {
            throw failure("no decision", hint: "add decision = \"allow\", \"ask\", \"deny\" or \"approve\" (or risk = \"…\" alone to classify a tool)")
        }
        if label?.isEmpty == true { throw failure("\"id\" is empty") }
        return Rule(label: label ?? "\(path)#\(number)", tool: tool, fields: fields, decision: decision, reason: reason,
                    event: event, risk: risk, setsRisk: setsRisk)
    }
}

extension Policy {
    static func join(_ directory: String, _ relative: String) -> String {
        directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
    }

    /// The `S_IFMT` bits of the file at path (following symlinks), or nil with errno set.
    static func fileKind(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }
}
