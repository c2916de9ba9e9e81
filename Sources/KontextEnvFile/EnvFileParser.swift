/// dotenv syntax with kontext placeholders (SPEC section 4). Positions are tracked per
/// character so every error can name the line and column it comes from.
struct EnvFileParser {
    private struct Located {
        var character: Character
        var line: Int
        var column: Int
    }

    let path: String
    private let characters: [Character]
    private var index = 0
    private var line = 1
    private var column = 1

    init(path: String, text: String) {
        self.path = path
        self.characters = Array(text)
    }

    mutating func parse() throws -> EnvFile {
        var variables: [EnvFile.Variable] = []
        var positionOfKey: [String: Int] = [:]
        while let c = current {
            if c == " " || c == "\t" { advance(); continue }
            if isNewline(c) { advance(); continue }
            if c == "#" { skipToEndOfLine(); continue }
            let variable = try parseAssignment()
            if let existing = positionOfKey[variable.key] {
                variables[existing] = variable
            } else {
                positionOfKey[variable.key] = variables.count
                variables.append(variable)
            }
        }
        return EnvFile(path: path, variables: variables)
    }

    // MARK: - Assignments

    private mutating func parseAssignment() throws -> EnvFile.Variable {
        let startLine = line
        if matches("export"), let next = peek(6), next == " " || next == "\t" {
            for _ in 0..<6 { advance() }
            skipBlanks()
        }
        let keyLine = line, keyColumn = column
        var key = ""
        while let c = current, c != "=", c != " ", c != "\t", !isNewline(c) {
            key.append(c)
            advance()
        }
        skipBlanks()
        guard current == "=" else {
            throw error(line, column, key.isEmpty ? "expected KEY=value" : "expected '=' after \(key)")
        }
        guard !key.isEmpty else { throw error(keyLine, keyColumn, "empty variable name before '='") }
        for (offset, c) in key.enumerated() where !isKeyCharacter(c, first: offset == 0) {
            throw error(keyLine, keyColumn + offset, "invalid character '\(c)' in variable name '\(key)'")
        }
        if let refusal = EnvFile.refusal(forName: key) {
            var refused = error(keyLine, keyColumn, "\(key) may not be set from an env file: \(refusal.reason)")
            refused.hint = "remove \(key) from the file (the README lists what an env file may not set); nothing was launched"
            throw refused
        }
        advance()  // '='
        skipBlanks()
        let value: [Located]
        if let quote = current, quote == "\"" || quote == "'" {
            value = try parseQuoted(quote)
        } else {
            value = parseUnquoted()
        }
        return EnvFile.Variable(key: key, segments: try segments(of: value), line: startLine)
    }

    private mutating func parseQuoted(_ quote: Character) throws -> [Located] {
        let openLine = line, openColumn = column
        advance()
        var value: [Located] = []
        while true {
            guard let c = current else {
                throw error(openLine, openColumn, "unclosed \(quote) quote")
            }
            if c == quote { advance(); break }
            let here = Located(character: c, line: line, column: column)
            if quote == "\"", c == "\\", let next = peek(1) {
                let escaped: Character? = switch next {
                case "n": "\n"
                case "t": "\t"
                case "r": "\r"
                case "\"", "\\", "$": next
                default: nil
                }
                if let escaped {
                    value.append(Located(character: escaped, line: here.line, column: here.column))
                    advance(); advance()
                    continue
                }
            }
            value.append(isNewline(c) ? Located(character: "\n", line: line, column: column) : here)
            advance()
        }
        skipBlanks()
        if let c = current, !isNewline(c) {
            guard c == "#" else { throw error(line, column, "unexpected text after closing \(quote) quote") }
            skipToEndOfLine()
        }
        return value
    }

    private mutating func parseUnquoted() -> [Located] {
        var value: [Located] = []
        var previous: Character = " "
        while let c = current, !isNewline(c) {
            if c == "#", previous == " " || previous == "\t" { skipToEndOfLine(); break }
            value.append(Located(character: c, line: line, column: column))
            previous = c
            advance()
        }
        while let last = value.last, last.character == " " || last.character == "\t" { value.removeLast() }
        return value
    }

    // MARK: - Placeholders

    private static let openers: [(open: [Character], close: [Character])] = [
        (Array("<<kontext:"), Array(">>")),
        (Array("{{kontext:"), Array("}}")),
    ]

    private func segments(of value: [Located]) throws -> [ValueSegment] {
        var result: [ValueSegment] = []
        var literal = ""
        var i = 0
        func flush() {
            if !literal.isEmpty { result.append(.literal(literal)); literal = "" }
        }
        scan: while i < value.count {
            for (open, close) in Self.openers where starts(value, at: i, with: open) {
                let start = value[i]
                var j = i + open.count
                let service = readName(value, &j)
                var resource: String?
                if j < value.count, value[j].character == "/" {
                    j += 1
                    resource = readName(value, &j)
                }
                if starts(value, at: j, with: close) {
                    if service.isEmpty {
                        throw error(start.line, start.column, "empty service name in placeholder")
                    }
                    if resource == "" {
                        throw error(start.line, start.column, "empty resource name in placeholder")
                    }
                    flush()
                    result.append(.placeholder(Placeholder(service: service, resource: resource)))
                    i = j + close.count
                    continue scan
                }
                let closedLater = (j..<value.count).contains { starts(value, at: $0, with: close) }
                guard closedLater, j < value.count else {
                    throw error(start.line, start.column,
                                "unclosed placeholder (expected '\(String(close))')")
                }
                let bad = value[j]
                throw error(bad.line, bad.column,
                            "invalid character '\(bad.character)' in placeholder (allowed: A-Z a-z 0-9 . _ -)")
            }
            literal.append(value[i].character)
            i += 1
        }
        flush()
        return result
    }

    private func readName(_ value: [Located], _ j: inout Int) -> String {
        var name = ""
        while j < value.count, Placeholder.isNameCharacter(value[j].character) {
            name.append(value[j].character)
            j += 1
        }
        return name
    }

    private func starts(_ value: [Located], at offset: Int, with pattern: [Character]) -> Bool {
        guard offset + pattern.count <= value.count else { return false }
        for k in 0..<pattern.count where value[offset + k].character != pattern[k] { return false }
        return true
    }

    // MARK: - Cursor

    private var current: Character? { index < characters.count ? characters[index] : nil }

    private func peek(_ offset: Int) -> Character? {
        index + offset < characters.count ? characters[index + offset] : nil
    }

    private func matches(_ word: String) -> Bool {
        var k = index
        for c in word {
            guard k < characters.count, characters[k] == c else { return false }
            k += 1
        }
        return true
    }

    private func isNewline(_ c: Character) -> Bool { c == "\n" || c == "\r\n" || c == "\r" }

    private func isKeyCharacter(_ c: Character, first: Bool) -> Bool {
        guard let a = c.asciiValue else { return false }
        let letter = (a >= 65 && a <= 90) || (a >= 97 && a <= 122) || a == 95
        return first ? letter : letter || (a >= 48 && a <= 57) || a == 46
    }

    private mutating func advance() {
        guard let c = current else { return }
        index += 1
        if isNewline(c) {
            line += 1
            column = 1
        } else {
            column += 1
        }
    }

    private mutating func skipBlanks() {
        while let c = current, c == " " || c == "\t" { advance() }
    }

    private mutating func skipToEndOfLine() {
        while let c = current, !isNewline(c) { advance() }
    }

    private func error(_ line: Int, _ column: Int, _ reason: String) -> EnvFileSyntaxError {
        EnvFileSyntaxError(path: path, line: line, column: column, reason: reason)
    }
}
