/// Splits shell text into its simple commands (each a list of words with quotes removed),
/// for the environment-dump guard. It follows enough of the POSIX shell grammar to find
/// every command a script would run — separators `;` `&&` `||` `|` `&` and newlines,
/// subshell and group parentheses, `$( )`, backticks and `<( )` (nested commands are
/// listed too), quoting, backslash escapes, comments, redirections (dropped, targets too)
/// and here-documents (bodies skipped, so a commit message that mentions `env` on a line
/// of its own is not a command). It does not expand variables, aliases or globs.
struct ShellScanner {
    /// Nesting deeper than this is hostile or generated input; the rest is not scanned
    /// rather than risking the stack.
    static let maximumNesting = 64

    static func simpleCommands(in script: String) -> [[String]] {
        var scanner = ShellScanner(bytes: Array(script.utf8))
        scanner.scan(until: .end)
        return scanner.commands
    }

    private enum Terminator { case end, closeParen, backtick }

    /// The command being read in one nesting level.
    private struct PartialCommand {
        enum WordRole { case argument, redirectTarget, heredocDelimiter(stripTabs: Bool) }

        var words: [String] = []
        var word: [UInt8] = []
        /// Distinguishes an empty quoted word (`""`) from no word at all.
        var hasWord = false
        var nextWordRole = WordRole.argument

        mutating func append(_ byte: UInt8) {
            word.append(byte)
            hasWord = true
        }

        mutating func appendSubstitutionPlaceholder() {
            word.append(contentsOf: "$(…)".utf8)
            hasWord = true
        }
    }

    private let bytes: [UInt8]
    private var index = 0
    private var nesting = 0
    private(set) var commands: [[String]] = []
    private var pendingHeredocs: [(delimiter: [UInt8], stripTabs: Bool)] = []

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func byte(at offset: Int) -> UInt8? {
        offset < bytes.count ? bytes[offset] : nil
    }

    private mutating func scan(until terminator: Terminator) {
        var command = PartialCommand()
        var openParens = 0  // subshells opened inside this level, so `$( (a); b )` ends right

        while index < bytes.count {
            let current = bytes[index]
            let next = byte(at: index + 1)
            switch current {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                finishWord(&command)
                index += 1
            case UInt8(ascii: "\n"):
                finishCommand(&command)
                index += 1
                skipHeredocBodies()
            case UInt8(ascii: ";"), UInt8(ascii: "|"):
                finishCommand(&command)
                index += 1
            case UInt8(ascii: "&"):
                if next == UInt8(ascii: ">") {
                    readRedirection(&command)
                } else {
                    finishCommand(&command)
                    index += 1
                }
            case UInt8(ascii: "("):
                if command.hasWord, command.word.last == UInt8(ascii: "=") {
                    readArrayAssignment(&command)  // `list=(a b)` is one word, not a subshell
                } else {
                    finishCommand(&command)
                    openParens += 1
                    index += 1
                }
            case UInt8(ascii: ")"):
                finishCommand(&command)
                index += 1
                if openParens > 0 {
                    openParens -= 1
                } else if terminator == .closeParen {
                    return
                }
            case UInt8(ascii: "`"):
                index += 1
                if terminator == .backtick {
                    finishCommand(&command)
                    return
                }
                scanNested(until: .backtick)
                command.appendSubstitutionPlaceholder()
            case UInt8(ascii: "<"), UInt8(ascii: ">"):
                if next == UInt8(ascii: "(") {  // process substitution
                    index += 2
                    scanNested(until: .closeParen)
                    command.appendSubstitutionPlaceholder()
                } else {
                    readRedirection(&command)
                }
            case UInt8(ascii: "#") where !command.hasWord:
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "'"):
                index += 1
                command.hasWord = true
                while index < bytes.count, bytes[index] != UInt8(ascii: "'") {
                    command.append(bytes[index])
                    index += 1
                }
                index += 1
            case UInt8(ascii: "\""):
                readDoubleQuoted(&command)
            case UInt8(ascii: "\\"):
                if next == UInt8(ascii: "\n") {
                    index += 2  // line continuation
                } else if let next {
                    command.append(next)
                    index += 2
                } else {
                    command.append(current)
                    index += 1
                }
            case UInt8(ascii: "$") where next == UInt8(ascii: "("):
                index += 2
                scanNested(until: .closeParen)
                command.appendSubstitutionPlaceholder()
            case UInt8(ascii: "$") where next == UInt8(ascii: "'"):
                readANSIQuoted(&command)
            default:
                command.append(current)
                index += 1
            }
        }
        finishCommand(&command)
    }

    private mutating func scanNested(until terminator: Terminator) {
        guard nesting < ShellScanner.maximumNesting else {
            index = bytes.count
            return
        }
        nesting += 1
        scan(until: terminator)
        nesting -= 1
    }

    private mutating func finishWord(_ command: inout PartialCommand) {
        guard command.hasWord else { return }
        switch command.nextWordRole {
        case .argument:
            command.words.append(String(decoding: command.word, as: UTF8.self))
        case .redirectTarget:
            break
        case .heredocDelimiter(let stripTabs):
            pendingHeredocs.append((command.word, stripTabs))
        }
        command.nextWordRole = .argument
        command.word.removeAll(keepingCapacity: true)
        command.hasWord = false
    }

    private mutating func finishCommand(_ command: inout PartialCommand) {
        finishWord(&command)
        if !command.words.isEmpty { commands.append(command.words) }
        command.words.removeAll()
        command.nextWordRole = .argument
    }

    /// Reads an operator such as `>`, `2>>`, `&>`, `<&-`, `<<-` and arranges for the word
    /// after it (the target, or a here-document's delimiter) to be set aside.
    private mutating func readRedirection(_ command: inout PartialCommand) {
        let isDescriptorNumber = command.hasWord && !command.word.isEmpty
            && command.word.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        if isDescriptorNumber {
            command.word.removeAll(keepingCapacity: true)  // the `2` of `2>file`
            command.hasWord = false
        } else {
            finishWord(&command)
        }
        var op: [UInt8] = []
        while let byte = byte(at: index), "<>&|-".utf8.contains(byte) {
            op.append(byte)
            index += 1
            if byte == UInt8(ascii: "-") { break }
        }
        if op.starts(with: "<<".utf8), !op.starts(with: "<<<".utf8) {
            command.nextWordRole = .heredocDelimiter(stripTabs: op.last == UInt8(ascii: "-"))
        } else if op.last == UInt8(ascii: "-") {
            command.nextWordRole = .argument  // `>&-` closes a descriptor: no target word
        } else {
            command.nextWordRole = .redirectTarget
        }
    }

    private mutating func readDoubleQuoted(_ command: inout PartialCommand) {
        index += 1
        command.hasWord = true
        while index < bytes.count {
            let current = bytes[index]
            let next = byte(at: index + 1)
            switch current {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\") where next.map({ "$`\"\\\n".utf8.contains($0) }) == true:
                if next != UInt8(ascii: "\n") { command.append(next!) }
                index += 2
            case UInt8(ascii: "$") where next == UInt8(ascii: "("):
                index += 2
                scanNested(until: .closeParen)
                command.appendSubstitutionPlaceholder()
            case UInt8(ascii: "`"):
                index += 1
                scanNested(until: .backtick)
                command.appendSubstitutionPlaceholder()
            default:
                command.append(current)
                index += 1
            }
        }
    }

    /// `$'…'`: backslash escapes a quote or a backslash; other escapes are kept as written.
    private mutating func readANSIQuoted(_ command: inout PartialCommand) {
        index += 2
        command.hasWord = true
        while index < bytes.count, bytes[index] != UInt8(ascii: "'") {
            if bytes[index] == UInt8(ascii: "\\"), let next = byte(at: index + 1),
               next == UInt8(ascii: "'") || next == UInt8(ascii: "\\") {
                command.append(next)
                index += 2
            } else {
                command.append(bytes[index])
                index += 1
            }
        }
        index += 1
    }

    private mutating func readArrayAssignment(_ command: inout PartialCommand) {
        while index < bytes.count {
            let current = bytes[index]
            command.append(current)
            index += 1
            if current == UInt8(ascii: ")") { return }
        }
    }

    /// Called after a newline: here-document bodies start on the next line and run to a
    /// line that is exactly the delimiter (leading tabs removed for `<<-`).
    private mutating func skipHeredocBodies() {
        while !pendingHeredocs.isEmpty {
            let heredoc = pendingHeredocs.removeFirst()
            while index < bytes.count {
                var lineEnd = index
                while lineEnd < bytes.count, bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                var line = bytes[index..<lineEnd]
                if heredoc.stripTabs { line = line.drop { $0 == UInt8(ascii: "\t") } }
                index = min(lineEnd + 1, bytes.count)
                if line.elementsEqual(heredoc.delimiter) { break }
            }
        }
    }
}
