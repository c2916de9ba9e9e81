/// Splits shell text into its simple commands (each a list of words with quotes removed),
/// for the environment-dump guard. It follows enough of the POSIX shell grammar to find
/// every command a script would run — separators `;` `&&` `||` `|` `&` and newlines,
/// subshell and group parentheses, `$( )`, backticks and `<( )` (nested commands are
/// listed too), quoting, backslash escapes, comments, redirections (dropped, targets too)
/// and here-documents (bodies skipped, so a commit message that mentions `env` on a line
/// of its own is not a command; `$( )` and backticks in the body of one with an unquoted
/// delimiter are listed). It does not expand variables, aliases or globs.
struct ShellScanner {
    /// Nesting deeper than this is hostile or generated input; the rest is not scanned
    /// rather than risking the stack.
    static let maximumNesting = 64

    /// What a `$( )`, backtick or `<( )` substitution leaves in the word that holds it.
    static let substitutionPlaceholder = "$(…)"

    /// One simple command and what its standard input is, so that a shell or interpreter
    /// reading its program from stdin can be judged by that program.
    struct SimpleCommand: Equatable {
        var words: [String]
        /// Its standard input is the previous command's output (`a | b`, `a |& b`).
        var readsPipe = false
        /// Text it reads on standard input, visible in the script: a here-string's word or a
        /// here-document's body (as written; unquoted bodies are not expanded).
        var input: String?
        /// The files its redirections name (`< in`, `> out`), kept apart from its words.
        var redirectTargets: [String] = []
        /// Those of `redirectTargets` written to (`>`, `>>`, `&>`, `<>`), for the risk classifier.
        var outputTargets: [String] = []
    }

    static func commands(in script: String) -> [SimpleCommand] {
        var scanner = ShellScanner(bytes: Array(script.utf8))
        scanner.scan(until: .end)
        return scanner.commands
    }

    static func simpleCommands(in script: String) -> [[String]] {
        commands(in: script).map(\.words)
    }

    private enum Terminator { case end, closeParen, backtick }

    /// The command being read in one nesting level.
    private struct PartialCommand {
        enum WordRole { case argument, redirectTarget, hereString, heredocDelimiter(stripTabs: Bool) }

        var words: [String] = []
        var word: [UInt8] = []
        /// Distinguishes an empty quoted word (`""`) from no word at all.
        var hasWord = false
        /// Any part of the word was quoted or escaped: a here-document delimiter written so
        /// leaves its body unexpanded.
        var wordIsQuoted = false
        var nextWordRole = WordRole.argument
        var readsPipe = false
        var input: String?
        var redirectTargets: [String] = []
        var outputTargets: [String] = []
        /// The pending redirection writes (its operator has a `>`).
        var redirectionWrites = false

        mutating func append(_ byte: UInt8) {
            word.append(byte)
            hasWord = true
        }

        mutating func appendSubstitutionPlaceholder() {
            word.append(contentsOf: ShellScanner.substitutionPlaceholder.utf8)
            hasWord = true
        }
    }

    private let bytes: [UInt8]
    private var index = 0
    private var nesting = 0
    private(set) var commands: [SimpleCommand] = []
    /// Here-documents whose bodies start after the next newline; `command` is the index in
    /// `commands` of the command reading each (nil until that command is finished).
    private var pendingHeredocs: [(delimiter: [UInt8], stripTabs: Bool, expands: Bool, command: Int?)] = []

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
            case UInt8(ascii: ";"):
                finishCommand(&command)
                index += 1
            case UInt8(ascii: "|"):
                finishCommand(&command)
                if next == UInt8(ascii: "|") {
                    index += 2
                } else {
                    index += next == UInt8(ascii: "&") ? 2 : 1  // `|&` pipes stderr too
                    command.readsPipe = true
                }
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
                command.wordIsQuoted = true
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
                    command.wordIsQuoted = true
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
            let target = String(decoding: command.word, as: UTF8.self)
            command.redirectTargets.append(target)
            if command.redirectionWrites { command.outputTargets.append(target) }
        case .hereString:
            command.input = String(decoding: command.word, as: UTF8.self)
        case .heredocDelimiter(let stripTabs):
            pendingHeredocs.append((command.word, stripTabs, !command.wordIsQuoted, nil))
        }
        command.nextWordRole = .argument
        command.word.removeAll(keepingCapacity: true)
        command.hasWord = false
        command.wordIsQuoted = false
    }

    private mutating func finishCommand(_ command: inout PartialCommand) {
        finishWord(&command)
        for k in pendingHeredocs.indices where pendingHeredocs[k].command == nil {
            pendingHeredocs[k].command = command.words.isEmpty ? -1 : commands.count
        }
        if !command.words.isEmpty {
            commands.append(SimpleCommand(words: command.words, readsPipe: command.readsPipe, input: command.input,
                                          redirectTargets: command.redirectTargets, outputTargets: command.outputTargets))
        }
        command.words.removeAll()
        command.redirectTargets.removeAll()
        command.outputTargets.removeAll()
        command.nextWordRole = .argument
        command.readsPipe = false
        command.input = nil
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
        if op.starts(with: "<<<".utf8) {
            command.nextWordRole = .hereString
        } else if op.starts(with: "<<".utf8) {
            command.nextWordRole = .heredocDelimiter(stripTabs: op.last == UInt8(ascii: "-"))
        } else if op.last == UInt8(ascii: "-") {
            command.nextWordRole = .argument  // `>&-` closes a descriptor: no target word
        } else {
            command.nextWordRole = .redirectTarget
            command.redirectionWrites = op.contains(UInt8(ascii: ">"))
        }
    }

    private mutating func readDoubleQuoted(_ command: inout PartialCommand) {
        index += 1
        command.hasWord = true
        command.wordIsQuoted = true
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
    /// line that is exactly the delimiter (leading tabs removed for `<<-`). Each body becomes
    /// its command's input; in a body the shell expands, `$( )` and backticks run commands,
    /// so they are scanned.
    private mutating func skipHeredocBodies() {
        while !pendingHeredocs.isEmpty {
            let heredoc = pendingHeredocs.removeFirst()
            var body: [UInt8] = []
            while index < bytes.count {
                var lineEnd = endOfLine(from: index)
                var line = bytes[index..<lineEnd]
                if heredoc.stripTabs { line = line.drop { $0 == UInt8(ascii: "\t") } }
                if line.elementsEqual(heredoc.delimiter) {
                    index = min(lineEnd + 1, bytes.count)
                    break
                }
                let lineStart = line.startIndex
                if heredoc.expands {
                    var position = lineStart
                    while position < lineEnd {
                        let current = bytes[position]
                        if current == UInt8(ascii: "\\") {
                            position += 2
                        } else if current == UInt8(ascii: "`")
                                    || (current == UInt8(ascii: "$") && byte(at: position + 1) == UInt8(ascii: "(")) {
                            index = position + (current == UInt8(ascii: "`") ? 1 : 2)
                            scanNested(until: current == UInt8(ascii: "`") ? .backtick : .closeParen)
                            position = max(index, position + 1)
                            if position > lineEnd { lineEnd = endOfLine(from: position) }
                        } else {
                            position += 1
                        }
                    }
                }
                let end = min(lineEnd + 1, bytes.count)
                body += bytes[lineStart..<end]
                index = end
            }
            if let reader = heredoc.command, reader >= 0, reader < commands.count {
                commands[reader].input = String(decoding: body, as: UTF8.self)
            }
        }
    }

    private func endOfLine(from start: Int) -> Int {
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
        return end
    }
}
