import KontextCore

/// A way of printing the whole environment (and with it every injected credential) that
/// the built-in guard denies (SPEC section 7). Reading one variable by name is the normal
/// use of a credential and is never one of these.
///
/// Flagged forms, after leading `NAME=value` assignments, shell keywords (`!`, `{`, `if`,
/// `then`, `do`, …) and command wrappers (`sudo`, `doas`, `command`, `builtin`, `exec`,
/// `nohup`, `setsid`, `time`, `nice`, `timeout`, `stdbuf`, `xargs`, `busybox`) are set aside:
/// - `env` that runs no command (`env`, `env -0`, `env -u X`, `FOO=1 env`); `env -i` starts
///   from an empty environment and is not flagged; `env FOO=bar cmd` runs `cmd`, which is
///   checked in turn.
/// - `printenv` with no variable name. `printenv NAME` prints one value, exactly like
///   `echo "$NAME"`, so it is use by name and is not flagged.
/// - bare `export` or `export -p`, bare `declare`/`typeset` or with only `-x`/`-p`, and a
///   bare `set`: each lists every exported or shell variable.
/// - `ps` whose first argument is a BSD option cluster with `e` (`ps e`, `ps auxe`), which
///   shows processes' environments.
/// - `sh|bash|zsh|… -c SCRIPT`, `eval …`, `env -S …` and `find … -exec CMD …` are scanned
///   recursively; so is a shell's script given as a here-string or here-document.
/// - a shell or `source` reading its script from a pipe or a substitution (`… | sh`,
///   `bash <(…)`): the script cannot be seen, so it is treated as a dump.
/// - a command name computed at run time: a parameter expansion or substitution in its last
///   path component (`$x`, `${x}`, `$(…)`, `` `…` ``) or a glob (`/usr/bin/e?v`, `{env,}`).
/// - an interpreter's inline program (`python -c`, `node -e`, `perl -e`, `ruby -e`,
///   `php -r`, `deno eval`, `bun -e`, `awk '…'`, `jq '…'`, or code on stdin) that reads the
///   environment as a whole (`os.environ`, `process.env`, `%ENV`, `ENV`, `getenv()`,
///   `ENVIRON`, `$ENV`, …; see `Interpreter`), or its program from a pipe.
/// - any tool input string that names `/proc/<anything>/environ`, and in a shell script,
///   after quote removal, a `/proc/…` path followed by a word naming `environ` (also as a
///   glob, or a `/proc/<pid>/` path continued by an expansion).
///
/// This is a tripwire for careless or accidental dumps, not a sandbox: an agent holding a
/// credential in its environment can always print that one variable, write a script file
/// and run it, or hide the words from a scanner (see GUARD-LIMITS in the README).
public enum EnvironmentDump: String, Sendable, Equatable {
    case env
    case printenv
    case export
    case declare
    case set
    case processList = "ps"
    case procEnviron = "/proc/*/environ"
    case hiddenScript = "script from a pipe"
    case computedCommand = "computed command name"
    case inlineCode = "inline code"

    /// How the reason names the form, e.g. "`env` without a command".
    public var summary: String {
        switch self {
        case .env: "`env` without a command"
        case .printenv: "`printenv` without a variable name"
        case .export: "`export` without a name"
        case .declare: "`declare -x` without a name"
        case .set: "`set` without arguments"
        case .processList: "`ps e`"
        case .procEnviron: "reading /proc/…/environ"
        case .hiddenScript: "a shell or interpreter reading its program from a pipe or a substitution"
        case .computedCommand: "a command name computed at run time (`$x`, `$(…)`, a glob)"
        case .inlineCode: "inline code reading the whole environment (`os.environ`, `process.env`, `%ENV`, …)"
        }
    }

    /// The deny reason the built-in guard gives.
    public var reason: String {
        switch self {
        case .hiddenScript, .computedCommand:
            "\(summary) could print the whole environment, injected credentials included, and kontext cannot see what it runs; use a variable by name instead"
        default:
            "\(summary) would print the whole environment, injected credentials included; use a variable by name instead"
        }
    }
}

/// What a command reads on standard input, as far as the script shows it.
struct StandardInput {
    /// The previous command's output (`a | b`).
    var fromPipe = false
    /// A here-string or here-document written in the script.
    var text: String?

    static let none = StandardInput()
}

enum EnvironmentDumpDetector {
    /// Shell text nested deeper than this (`bash -c "bash -c '…'"`) is not followed further.
    static let maximumDepth = 8

    /// The first environment dump among the commands of a shell script, if any.
    static func dump(inScript script: String, depth: Int = 0) -> EnvironmentDump? {
        guard depth <= maximumDepth else { return nil }
        let commands = ShellScanner.commands(in: script)
        for command in commands {
            let input = StandardInput(fromPipe: command.readsPipe, text: command.input)
            if let found = dump(inCommand: command.words[...], input: input, depth: depth) { return found }
        }
        return ProcPaths.namesEnviron(in: commands) ? .procEnviron : nil
    }

    /// Whether one simple command (its words, quotes removed) dumps the environment.
    static func dump(inCommand command: ArraySlice<String>, input: StandardInput = .none, depth: Int = 0) -> EnvironmentDump? {
        guard depth <= maximumDepth else { return nil }
        var words = command
        while true {
            words = words.drop(while: isAssignment)
            guard let first = words.first else { return nil }
            if isComputedCommandName(first) { return .computedCommand }
            let name = withoutVersion(baseName(first))
            // Almost every command is none of these; one hash lookup settles it.
            guard commandsOfInterest.contains(name) else { return nil }
            let arguments = words.dropFirst()
            switch name {
            case "!", "{", "if", "then", "else", "elif", "do", "while", "until", "builtin":
                words = arguments
            case "command":
                // `command -v env` only looks the name up.
                if arguments.first.map({ $0.hasPrefix("-") && ($0.contains("v") || $0.contains("V")) }) == true { return nil }
                words = skipOptions(arguments)
            case "sudo", "doas":
                words = skipOptions(arguments, takingValue: ["-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "-R"])
            case "exec":
                words = skipOptions(arguments, takingValue: ["-a"])
            case "nice":
                words = skipOptions(arguments, takingValue: ["-n"])
            case "timeout":
                words = skipOptions(arguments, takingValue: ["-s", "-k"]).dropFirst()  // the duration
            case "stdbuf":
                words = skipOptions(arguments, takingValue: ["-i", "-o", "-e"])
            case "xargs":
                words = skipOptions(arguments, takingValue: ["-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"])
            case "nohup", "setsid", "time", "busybox":
                words = skipOptions(arguments)
            case "env":
                return envDump(arguments: arguments, depth: depth)
            case "printenv":
                return operands(arguments).isEmpty ? .printenv : nil
            case "export":
                return operands(arguments).isEmpty && !arguments.contains(where: { $0.hasPrefix("-") && $0.contains("f") }) ? .export : nil
            case "declare", "typeset":
                // Only listings of variables: `-f`/`-F` list functions, `-r`, `-i` … narrow it.
                let options = arguments.filter { $0.hasPrefix("-") || $0.hasPrefix("+") }
                let onlyVariableListing = options.allSatisfy { $0.dropFirst().allSatisfy { "xp".contains($0) } }
                return operands(arguments).isEmpty && onlyVariableListing ? .declare : nil
            case "set":
                return arguments.isEmpty ? .set : nil
            case "ps":
                // BSD-style options come first and have no dash (`ps e`, `ps auxe`, `ps eww`).
                let showsEnvironment = arguments.first.map { word in
                    !word.hasPrefix("-") && word.contains("e") && word.allSatisfy { $0.isLetter }
                } ?? false
                return showsEnvironment ? .processList : nil
            case "eval":
                return dump(inScript: arguments.joined(separator: " "), depth: depth + 1)
            case "sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish":
                switch shellScript(arguments) {
                case .inline(let script):
                    return dump(inScript: script, depth: depth + 1)
                case .missing:
                    return input.fromPipe ? .hiddenScript : nil  // `… | xargs sh -c`
                case .file(let path):
                    return scriptFile(path, input: input, depth: depth)
                case .standardInput:
                    return shellReadingStandardInput(input, depth: depth)
                }
            case "source", ".":
                return arguments.first.flatMap { scriptFile($0, input: input, depth: depth) }
            case "find":
                return findExecDump(arguments, depth: depth)
            default:
                guard let interpreter = Interpreter(commandName: name) else { return nil }
                switch interpreter.program(arguments) {
                case .inline(let pieces):
                    return pieces.contains(where: interpreter.readsWholeEnvironment) ? .inlineCode : nil
                case .standardInput:
                    if let text = input.text { return interpreter.readsWholeEnvironment(text) ? .inlineCode : nil }
                    return input.fromPipe ? .hiddenScript : nil
                case .elsewhere:
                    return nil
                }
            }
        }
    }

    /// Every command name `dump(inCommand:)` looks at: keywords, wrappers, dumps, shells,
    /// interpreters (version suffixes removed: `python3.12` is `python`).
    private static let commandsOfInterest: Set<String> = [
        "!", "{", "if", "then", "else", "elif", "do", "while", "until",
        "command", "builtin", "sudo", "doas", "exec", "nice", "timeout", "stdbuf", "xargs", "nohup", "setsid", "time",
        "busybox", "find",
        "env", "printenv", "export", "declare", "typeset", "set", "ps", "eval", "source", ".",
        "sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish",
        "python", "pypy", "node", "nodejs", "deno", "bun", "perl", "ruby", "php",
        "awk", "gawk", "mawk", "nawk", "jq", "gojq", "jaq",
    ]

    /// A shell reading its script from standard input: judged by the script when the
    /// script is written here, a dump when it comes from a pipe (it cannot be seen).
    private static func shellReadingStandardInput(_ input: StandardInput, depth: Int) -> EnvironmentDump? {
        if let text = input.text { return dump(inScript: text, depth: depth + 1) }
        return input.fromPipe ? .hiddenScript : nil
    }

    /// A script operand of a shell or `source`: a file is not looked into (`bash script.sh`),
    /// standard input is, and a substitution (`bash <(curl …)`) cannot be seen.
    private static func scriptFile(_ path: String, input: StandardInput, depth: Int) -> EnvironmentDump? {
        switch path {
        case "-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0":
            return shellReadingStandardInput(input, depth: depth)
        default:
            return path.hasPrefix(ShellScanner.substitutionPlaceholder) ? .hiddenScript : nil
        }
    }

    /// `find … -exec CMD … ;` (also `-execdir`, `-ok`, `-okdir`, ending in `;` or `+`): each
    /// CMD is checked as a command.
    private static func findExecDump(_ arguments: ArraySlice<String>, depth: Int) -> EnvironmentDump? {
        var rest = arguments
        while let exec = rest.firstIndex(where: { $0 == "-exec" || $0 == "-execdir" || $0 == "-ok" || $0 == "-okdir" }) {
            let command = rest[rest.index(after: exec)...].prefix { $0 != ";" && $0 != "+" }
            if let found = dump(inCommand: command, depth: depth + 1) { return found }
            rest = rest[command.endIndex...]
        }
        return nil
    }

    /// A command name whose last path component the shell computes: a parameter expansion
    /// or substitution (`$x`, `${x}`, `$(…)`, `x/$y`) or a glob or brace expansion
    /// (`e?v`, `/???/???/env`, `{env,}`). Any of these could be `env`. `$HOME/bin/tool` and
    /// `$(git rev-parse --show-toplevel)/build.sh` name a fixed program and are not computed.
    static func isComputedCommandName(_ word: String) -> Bool {
        var lastSlash = -1, lastExpansion = -1
        var braceStart = -1, braceExpands = false, bracketStart = -1
        var previous: UInt8 = 0
        for (offset, byte) in word.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "/"):
                lastSlash = offset
            case UInt8(ascii: "$"), UInt8(ascii: "*"), UInt8(ascii: "?"):
                lastExpansion = offset
            case UInt8(ascii: "["):
                bracketStart = offset
            case UInt8(ascii: "]") where bracketStart >= 0 && offset > bracketStart + 1:
                lastExpansion = offset
            case UInt8(ascii: "{"):
                braceStart = offset
                braceExpands = previous == UInt8(ascii: "$")  // `${x/a/b}` ends after its slashes
            case UInt8(ascii: ",") where braceStart >= 0:
                braceExpands = true  // `{env,}`
            case UInt8(ascii: ".") where braceStart >= 0 && previous == UInt8(ascii: "."):
                braceExpands = true  // `{a..z}`
            case UInt8(ascii: "}") where braceStart >= 0:
                if braceExpands { lastExpansion = offset }
                braceStart = -1
            default:
                break
            }
            previous = byte
        }
        return lastExpansion > lastSlash
    }

    /// `python3.12` → `python`, `perl5.36` → `perl`, `ksh93` → `ksh`: interpreters are known by
    /// their family name.
    private static func withoutVersion(_ name: Substring) -> String {
        guard let last = name.utf8.last, last >= UInt8(ascii: "0"), last <= UInt8(ascii: "9") else { return String(name) }
        let stem = name.utf8.reversed().drop { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: ".") }
        return stem.isEmpty ? String(name) : String(decoding: stem.reversed(), as: UTF8.self)
    }

    /// `env [OPTION]… [NAME=VALUE]… [COMMAND [ARG]…]`: a dump when no command follows.
    private static func envDump(arguments: ArraySlice<String>, depth: Int) -> EnvironmentDump? {
        var rest = arguments
        var splitString: String?
        options: while let word = rest.first, word.hasPrefix("-") {
            rest = rest.dropFirst()
            switch word {
            case "--":
                break options
            case "-", "--ignore-environment":
                return nil  // starts from an empty environment
            case "--unset", "--chdir", "--argv0":
                rest = rest.dropFirst()
            case "--split-string":
                splitString = rest.first
                rest = rest.dropFirst()
            default:
                if word.hasPrefix("--") {
                    if word.hasPrefix("--split-string=") { splitString = String(word.dropFirst("--split-string=".count)) }
                    continue  // --null, --debug, --unset=X, --chdir=D, --*-signal[=S], …
                }
                // A cluster of short options; `u`, `C`, `S`, `a`, `P` take a value, attached
                // (`-uNAME`) or as the next word.
                for (offset, letter) in word.dropFirst().enumerated() {
                    if letter == "i" { return nil }
                    guard "uCSaP".contains(letter) else { continue }
                    let attached = word.dropFirst(offset + 2)
                    let value = attached.isEmpty ? rest.first : String(attached)
                    if attached.isEmpty { rest = rest.dropFirst() }
                    if letter == "S" { splitString = value }
                    break
                }
            }
        }
        rest = rest.drop(while: isAssignment)
        if let splitString {
            // `env -S 'cmd args'` runs the split string as the command.
            let command = splitString.split(separator: " ").map(String.init) + rest
            return dump(inCommand: command[...], depth: depth + 1)
        }
        if rest.isEmpty { return .env }
        return dump(inCommand: rest, depth: depth + 1)
    }

    private enum ShellScript {
        case inline(String), missing, file(String), standardInput
    }

    /// Where a shell's script comes from: `-c SCRIPT` (the first operand after an option
    /// cluster holding `c`), a file operand, or standard input (no operand, or `-s`).
    private static func shellScript(_ arguments: ArraySlice<String>) -> ShellScript {
        var sawCommandOption = false, readsStandardInput = false
        var rest = arguments
        while let word = rest.first {
            rest = rest.dropFirst()
            if word == "--" || word == "-" {
                if word == "-" { readsStandardInput = true }
                break
            }
            if word.hasPrefix("-") || word.hasPrefix("+") {
                if word.hasPrefix("--") {
                    if word == "--rcfile" || word == "--init-file" { rest = rest.dropFirst() }
                    continue
                }
                let letters = word.dropFirst()
                if letters.contains("c") { sawCommandOption = true }
                if letters.contains("s") { readsStandardInput = true }
                if letters.contains("o") || letters.contains("O") { rest = rest.dropFirst() }  // `-o pipefail`
                continue
            }
            if sawCommandOption { return .inline(word) }
            return readsStandardInput ? .standardInput : .file(word)
        }
        if sawCommandOption {
            return rest.first.map { .inline($0) } ?? .missing
        }
        if !readsStandardInput, let file = rest.first { return .file(file) }
        return .standardInput
    }

    /// Words after the options (`--` ends them).
    private static func operands(_ arguments: ArraySlice<String>) -> ArraySlice<String> {
        if let end = arguments.firstIndex(of: "--") {
            return arguments[arguments.index(after: end)...]
        }
        return arguments.drop { $0.hasPrefix("-") && $0.count > 1 }
    }

    /// Drops a wrapper's options (and the values of those in `takingValue`), leaving the
    /// command it runs.
    private static func skipOptions(_ arguments: ArraySlice<String>, takingValue: Set<String> = []) -> ArraySlice<String> {
        var rest = arguments
        while let word = rest.first, word.hasPrefix("-"), word.count > 1 {
            rest = rest.dropFirst()
            if word == "--" { break }
            if takingValue.contains(word) { rest = rest.dropFirst() }
        }
        return rest
    }

    /// `NAME=value` or `NAME+=value`, as a shell reads before a command.
    static func isAssignment(_ word: String) -> Bool {
        guard let equals = word.utf8.firstIndex(of: UInt8(ascii: "=")) else { return false }
        var name = word.utf8[..<equals]
        if name.last == UInt8(ascii: "+") { name = name.dropLast() }
        guard let first = name.first, first == UInt8(ascii: "_") || isASCIILetter(first) else { return false }
        return name.allSatisfy { $0 == UInt8(ascii: "_") || isASCIILetter($0) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }
    }

    private static func isASCIILetter(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
    }

    /// `/usr/bin/env` runs `env`.
    private static func baseName(_ word: String) -> Substring {
        guard let slash = word.lastIndex(of: "/") else { return word[...] }
        return word[word.index(after: slash)...]
    }

    /// Whether the text names `/proc/<something>/environ`, e.g. `/proc/self/environ`,
    /// `/proc/1/environ`, `/proc/$$/environ`, `/proc/*/environ`, `/proc/1/task/2/environ`.
    static func mentionsProcEnviron(_ text: String) -> Bool {
        if let found = text.utf8.withContiguousStorageIfAvailable({ mentionsProcEnviron(bytes: $0) }) {
            return found
        }
        return Array(text.utf8).withUnsafeBufferPointer { mentionsProcEnviron(bytes: $0) }
    }

    private static let procPrefix = Array("/proc/".utf8)
    private static let environSuffix = Array("/environ".utf8)

    private static func mentionsProcEnviron(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var start = 0
        while let found = ByteSearch.firstIndex(of: procPrefix, in: bytes, from: start) {
            // The path runs to the next character that cannot be part of one in a command.
            var end = found + procPrefix.count
            while end < bytes.count, !isPathBoundary(bytes[end]) { end += 1 }
            var searchFrom = found + procPrefix.count
            while let suffix = ByteSearch.firstIndex(of: environSuffix, in: bytes, from: searchFrom), suffix < end {
                let after = suffix + environSuffix.count
                if after > end { break }
                if after == end || !isWordByte(bytes[after]) { return true }
                searchFrom = suffix + 1
            }
            start = found + 1
        }
        return false
    }

    private static func isPathBoundary(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
             UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "`"), UInt8(ascii: ";"),
             UInt8(ascii: "|"), UInt8(ascii: "&"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: ","):
            true
        default:
            false
        }
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "_") || isASCIILetter(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}
