import KontextCore

/// Interpreters that run a program given on the command line (`python -c`, `node -e`,
/// `perl -e`, …) or on standard input, and the words in such a program that read the
/// environment as a whole rather than one variable by name (`os.environ` but not
/// `os.environ["HOME"]`, `process.env` but not `process.env.HOME`). A word list per
/// language, not a parser: it catches the plain spellings, not a program built to hide.
enum Interpreter {
    case python, node, deno, bun, perl, ruby, php, awk, jq

    /// Where the interpreter's program comes from.
    enum Program: Equatable {
        /// Code given in the arguments (each `-e` of perl and ruby is one piece).
        case inline([String])
        /// A script file, a module (`python -m`), a subcommand: not visible here.
        case elsewhere
        /// Read from standard input (no script operand, or `-`).
        case standardInput
    }

    /// `name` is a command's base name with any version suffix removed (`python3.12` → `python`).
    init?(commandName name: String) {
        switch name {
        case "python", "pypy": self = .python
        case "node", "nodejs": self = .node
        case "deno": self = .deno
        case "bun": self = .bun
        case "perl": self = .perl
        case "ruby": self = .ruby
        case "php": self = .php
        case "awk", "gawk", "mawk", "nawk": self = .awk
        case "jq", "gojq", "jaq": self = .jq
        default: return nil
        }
    }

    func program(_ arguments: ArraySlice<String>) -> Program {
        switch self {
        case .python:
            Interpreter.clusteredProgram(arguments, code: "c", codeEndsOptions: true, valueTaking: "WX", stopsAt: "m")
        case .perl:
            Interpreter.clusteredProgram(arguments, code: "eE", valueTaking: "I", attachedValue: "ixCdDmM", digitsFollow: "0l")
        case .ruby:
            Interpreter.clusteredProgram(arguments, code: "e", valueTaking: "IrCE", attachedValue: "xWFiK", digitsFollow: "0")
        case .node: Interpreter.nodeProgram(arguments)
        case .bun:
            Interpreter.codeAfter(["-e", "--eval", "-p", "--print"], in: arguments).map { .inline([$0]) } ?? .elsewhere
        case .deno:
            arguments.first == "eval"
                ? arguments.dropFirst().first { !$0.hasPrefix("-") }.map { .inline([$0]) } ?? .elsewhere
                : .elsewhere
        case .php: Interpreter.phpProgram(arguments)
        case .awk:
            Interpreter.firstOperand(arguments, valueTaking: ["-v", "-F"], programFile: ["-f", "--file"])
        case .jq:
            Interpreter.firstOperand(arguments, valueTaking: ["--indent", "-L"],
                                     pairTaking: ["--arg", "--argjson", "--slurpfile", "--rawfile"],
                                     programFile: ["-f", "--from-file"])
        }
    }

    /// Whether the program reads the environment as a whole, or runs `env`/`printenv`.
    func readsWholeEnvironment(_ code: String) -> Bool {
        if let found = code.utf8.withContiguousStorageIfAvailable({ readsWholeEnvironment(bytes: $0) }) { return found }
        return Array(code.utf8).withUnsafeBufferPointer { readsWholeEnvironment(bytes: $0) }
    }

    private func readsWholeEnvironment(bytes code: UnsafeBufferPointer<UInt8>) -> Bool {
        // jq runs no commands, and `"env"` is an ordinary string in a filter.
        if self != .jq, CodeWords.runsEnvironmentCommand(code) { return true }
        let mentions = switch self {
        case .python: Interpreter.pythonMentions
        case .node, .bun, .deno: Interpreter.javaScriptMentions
        case .perl: Interpreter.perlMentions
        case .ruby: Interpreter.rubyMentions
        case .php: Interpreter.phpMentions
        case .awk: Interpreter.awkMentions
        case .jq: Interpreter.jqMentions
        }
        return mentions.contains { $0.isMentioned(in: code) }
    }

    // `os.environ`, `environ`, `os.environb`; `[…]` and `.get(` read one name.
    private static let pythonMentions = [
        CodeWords.Mention("environ", allowingSuffix: "b", byName: ["[", ".get(", ".setdefault(", ".pop("]),
    ]
    private static let javaScriptMentions = [
        CodeWords.Mention("process.env", byName: [".", "[", "?."]),
        CodeWords.Mention("Bun.env", byName: [".", "[", "?."]),
        CodeWords.Mention("Deno.env", byName: [".get(", ".has("]),
        CodeWords.Mention("process[", byName: []),  // `process["env"]`
    ]
    private static let perlMentions = [CodeWords.Mention("%ENV", byName: [])]  // `$ENV{NAME}` is by name
    private static let rubyMentions = [
        CodeWords.Mention("ENV", byName: ["[", ".fetch(", ".key?(", ".include?(", ".has_key?("]),
    ]
    private static let phpMentions = [
        CodeWords.Mention("$_ENV", byName: ["["]),
        CodeWords.Mention("$_SERVER", byName: ["["]),
        CodeWords.Mention("getenv", byName: ["(\"", "('", "($"]),  // `getenv()` returns every variable
        CodeWords.Mention("phpinfo", byName: []),
    ]
    private static let awkMentions = [CodeWords.Mention("ENVIRON", byName: ["["])]  // `for (k in ENVIRON)`
    // jq's `env` and `$ENV` are the whole environment; `env.HOME`, `.env` (a field) and `"env"` are not.
    private static let jqMentions = [
        CodeWords.Mention("$ENV", byName: [".", "["]),
        CodeWords.Mention("env", notAfter: ".$\"", byName: [".", "["]),
    ]

    // MARK: - Option parsing

    /// Interpreters with single-letter option clusters (`python -Ic CODE`, `perl -lne CODE`,
    /// `ruby -e CODE -e MORE`). `code` letters take the program (the rest of the cluster or
    /// the next word); `valueTaking` letters take a value the same way; `attachedValue`
    /// letters take only the rest of the cluster; `digitsFollow` letters take only digits
    /// (`perl -l0ne`); `stopsAt` letters end the search (`python -m`).
    private static func clusteredProgram(_ arguments: ArraySlice<String>, code: String, codeEndsOptions: Bool = false,
                                         valueTaking: String, attachedValue: String = "",
                                         digitsFollow: String = "", stopsAt: String = "") -> Program {
        var pieces: [String] = []
        var rest = arguments
        while let word = rest.first {
            rest = rest.dropFirst()
            if word == "-" { return pieces.isEmpty ? .standardInput : .inline(pieces) }
            if word == "--" { break }
            guard word.hasPrefix("-"), word.count > 1 else {
                return pieces.isEmpty ? .elsewhere : .inline(pieces)  // a script file; the rest are its arguments
            }
            if word.hasPrefix("--") { continue }
            var letters = word.dropFirst()
            while let letter = letters.first {
                letters = letters.dropFirst()
                if stopsAt.contains(letter) { return pieces.isEmpty ? .elsewhere : .inline(pieces) }
                if code.contains(letter) || valueTaking.contains(letter) {
                    let value = letters.isEmpty ? rest.first : String(letters)
                    if letters.isEmpty { rest = rest.dropFirst() }
                    if code.contains(letter), let value {
                        pieces.append(value)
                        // Python's `-c` ends the options: what follows is the program's argv.
                        if codeEndsOptions { return .inline(pieces) }
                    }
                    break
                }
                if attachedValue.contains(letter) { break }
                if digitsFollow.contains(letter) { letters = letters.drop { $0.isASCII && $0.isNumber } }
            }
        }
        if !pieces.isEmpty { return .inline(pieces) }
        return rest.isEmpty ? .standardInput : .elsewhere
    }

    private static func nodeProgram(_ arguments: ArraySlice<String>) -> Program {
        let valueTaking: Set<String> = ["-r", "--require", "--import", "--loader", "--experimental-loader",
                                        "-C", "--conditions", "--input-type", "--title", "--env-file"]
        var rest = arguments
        while let word = rest.first {
            rest = rest.dropFirst()
            switch word {
            case "-e", "--eval", "-p", "--print", "-pe", "-ep":
                return rest.first.map { .inline([$0]) } ?? .elsewhere
            case "-":
                return .standardInput
            case "--":
                return rest.isEmpty ? .standardInput : .elsewhere
            default:
                for option in ["--eval=", "--print="] where word.hasPrefix(option) {
                    return .inline([String(word.dropFirst(option.count))])
                }
                if valueTaking.contains(word) {
                    rest = rest.dropFirst()
                } else if !word.hasPrefix("-") {
                    return .elsewhere
                }
            }
        }
        return .standardInput
    }

    private static func phpProgram(_ arguments: ArraySlice<String>) -> Program {
        var pieces: [String] = []
        var rest = arguments
        while let word = rest.first {
            rest = rest.dropFirst()
            switch word {
            case "-r", "-B", "-R", "-E":  // -B/-R/-E run code before, per and after input lines
                if let code = rest.first { pieces.append(code) }
                rest = rest.dropFirst()
            case "-f", "-a", "-S", "-t":
                return pieces.isEmpty ? .elsewhere : .inline(pieces)
            case "-d", "-c", "-z", "-F":
                rest = rest.dropFirst()
            case "--":
                return pieces.isEmpty ? (rest.isEmpty ? .standardInput : .elsewhere) : .inline(pieces)
            default:
                if word.hasPrefix("-r"), word.count > 2 {
                    pieces.append(String(word.dropFirst(2)))
                } else if !word.hasPrefix("-") {
                    return pieces.isEmpty ? .elsewhere : .inline(pieces)
                }
            }
        }
        return pieces.isEmpty ? .standardInput : .inline(pieces)
    }

    /// Programs given as the first operand (`awk 'PROGRAM' file`, `jq 'FILTER' file`).
    private static func firstOperand(_ arguments: ArraySlice<String>, valueTaking: Set<String>,
                                     pairTaking: Set<String> = [], programFile: Set<String>) -> Program {
        var rest = arguments
        while let word = rest.first {
            rest = rest.dropFirst()
            if programFile.contains(word) { return .elsewhere }
            if word == "--" { return rest.first.map { .inline([$0]) } ?? .elsewhere }
            if valueTaking.contains(word) {
                rest = rest.dropFirst()
            } else if pairTaking.contains(word) {
                rest = rest.dropFirst(2)
            } else if !word.hasPrefix("-") || word == "-" {
                return .inline([word])
            }
        }
        return .elsewhere
    }

    private static func codeAfter(_ options: Set<String>, in arguments: ArraySlice<String>) -> String? {
        guard let option = arguments.firstIndex(where: options.contains) else { return nil }
        let code = arguments.index(after: option)
        return code < arguments.endIndex ? arguments[code] : nil
    }
}

/// Byte-level word search in program text.
enum CodeWords {
    /// A word that names the whole environment unless one of the `byName` accessors follows
    /// it: `os.environ` but not `os.environ["HOME"]`.
    struct Mention: Sendable {
        let word: [UInt8]
        let suffix: UInt8?
        let notAfter: [UInt8]
        let byName: [[UInt8]]

        /// `notAfter`: characters that, just before the word, make it something else (jq's `.env`).
        init(_ word: String, allowingSuffix suffix: Character? = nil, notAfter: String = "", byName: [String]) {
            self.word = Array(word.utf8)
            self.suffix = suffix?.asciiValue
            self.notAfter = Array(notAfter.utf8)
            self.byName = byName.map { Array($0.utf8) }
        }

        /// Whether the word occurs on its own (not inside a longer identifier) without a
        /// by-name accessor after it.
        func isMentioned(in code: UnsafeBufferPointer<UInt8>) -> Bool {
            var start = 0
            while let found = ByteSearch.firstIndex(of: word, in: code, from: start) {
                start = found + 1
                if found > 0, isWordByte(code[found - 1]) && isWordByte(word[0]) || notAfter.contains(code[found - 1]) {
                    continue
                }
                var after = found + word.count
                if let suffix, after < code.count, code[after] == suffix { after += 1 }
                if after < code.count, isWordByte(word[word.count - 1]), isWordByte(code[after]) { continue }  // `environment`
                let readsOneName = byName.contains { accessor in
                    after + accessor.count <= code.count && code[after..<after + accessor.count].elementsEqual(accessor)
                }
                if !readsOneName { return true }
            }
            return false
        }
    }

    /// A quoted or backquoted `env` or `printenv` with no command or name after it, as in
    /// `subprocess.run(["env"])`, `execSync('printenv')` or perl's `` `env` ``.
    static func runsEnvironmentCommand(_ code: UnsafeBufferPointer<UInt8>) -> Bool {
        for name in [environmentCommand, printenvCommand] {
            var start = 0
            while let found = ByteSearch.firstIndex(of: name, in: code, from: start) {
                start = found + 1
                guard found > 0, isQuoteOrSlash(code[found - 1]) else { continue }
                var after = found + name.count
                while after < code.count, code[after] == UInt8(ascii: " ") { after += 1 }
                if after == code.count || endsCommand(code[after]) { return true }
            }
        }
        return false
    }

    private static let environmentCommand = Array("env".utf8)
    private static let printenvCommand = Array("printenv".utf8)

    private static func isQuoteOrSlash(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "`") || byte == UInt8(ascii: "/")
    }

    private static func endsCommand(_ byte: UInt8) -> Bool {
        "'\"`|;&>)".utf8.contains(byte)
    }

    static func isWordByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "_") || ((byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}
