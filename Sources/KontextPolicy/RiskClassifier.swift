import KontextCore

/// A tool call's risk tier and the classifier rule that gave it.
public struct RiskClassification: Sendable, Equatable {
    public var tier: RiskTier
    /// The rule of `RiskClassifier` that decided (e.g. `shell:rm-recursive`, `tool:read-only`),
    /// nil when the classifier does not know the tool: it is then `write`, and a policy rule
    /// may say otherwise (`risk = "…"` without a decision).
    public var basis: String?

    public init(_ tier: RiskTier, _ basis: String?) {
        self.tier = tier
        self.basis = basis
    }

    public var isKnown: Bool { basis != nil }
}

/// The built-in classifier of SPEC section 12: every tool call is `read`, `write` or
/// `destructive`. Read-only tools are read; edits and shells write; shell commands and MCP
/// tools that delete, force-push, drop, destroy, truncate, revoke, or change permissions or
/// billing are destructive. The README's table lists the rules (`rules`), and
/// Tests/KontextPolicyTests/RiskClassifierTests.swift holds the examples it is checked on.
public enum RiskClassifier {
    /// One rule, as the README lists it.
    public struct RuleDescription: Sendable {
        public var name: String
        public var tier: RiskTier
        public var description: String
    }

    public static func classify(toolName: String, input: JSONValue) -> RiskClassification {
        if readOnlyTools.contains(toolName) { return RiskClassification(.read, "tool:read-only") }
        if editTools.contains(toolName) { return RiskClassification(.write, "tool:edit") }
        if shellTools.contains(toolName) {
            // An argv array (Codex) is one command already split into words.
            for key in ["command", "cmd"] {
                if case .array(let items)? = input[key] {
                    let words = items.compactMap(\.stringValue)
                    if let sql = destructiveSQL(in: words.joined(separator: " ")) { return RiskClassification(.destructive, sql) }
                    return classify(words: words[...], depth: 0)
                }
            }
            guard let script = shellScript(input) else { return RiskClassification(.write, "shell:command") }
            return classify(script: script)
        }
        if toolName.hasPrefix("mcp__") { return classify(mcpTool: toolName, input: input) }
        return RiskClassification(.write, nil)
    }

    // MARK: Tools

    /// Claude Code's and Codex's tools that only look (a subagent's own calls are checked one
    /// by one, so starting one is not itself a change).
    static let readOnlyTools: Set<String> = [
        "Read", "Glob", "Grep", "LS", "WebSearch", "WebFetch", "NotebookRead", "TodoRead", "TodoWrite",
        "Task", "Agent", "BashOutput", "ExitPlanMode", "ListMcpResourcesTool", "ReadMcpResourceTool",
        "view_image", "web_search", "update_plan",
    ]
    static let editTools: Set<String> = ["Edit", "MultiEdit", "Write", "NotebookEdit", "apply_patch", "KillShell", "KillBash"]
    static let shellTools: Set<String> = ["Bash", "shell", "local_shell", "exec_command", "container.exec", "unified_exec"]

    /// The script of a shell tool's input: `command` (or Codex's `cmd`) as text.
    static func shellScript(_ input: JSONValue) -> String? {
        input["command"]?.stringValue ?? input["cmd"]?.stringValue
    }

    // MARK: Shell

    /// The highest tier of the script's simple commands (nested ones included); a script of
    /// only known read-only commands with no output redirection to a file is read.
    public static func classify(script: String) -> RiskClassification {
        let commands = ShellScanner.commands(in: script)
        if commands.isEmpty { return RiskClassification(.write, "shell:command") }
        // Text-level rules first: SQL that drops or truncates, whatever client sends it.
        if let sql = destructiveSQL(in: script) { return RiskClassification(.destructive, sql) }
        var result: RiskClassification?
        for command in commands {
            var classification = classify(words: command.words[...], depth: 0)
            if classification.tier == .read, command.outputTargets.contains(where: { !harmlessTarget($0) }) {
                classification = RiskClassification(.write, "shell:redirect")
            }
            if result.map({ classification.tier > $0.tier }) ?? true { result = classification }
            if classification.tier == .destructive { break }
        }
        return result!
    }

    static func harmlessTarget(_ target: String) -> Bool {
        ["/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"].contains(target) || target.allSatisfy(\.isNumber) || target == "-"
    }

    /// Wrappers that run the rest of their words as a command.
    static let wrappers: Set<String> = ["sudo", "doas", "command", "builtin", "exec", "nohup", "time", "nice", "ionice",
                                        "timeout", "env", "xargs", "stdbuf", "chronic", "watch", "then", "do", "else", "!", "eval"]
    static let shells: Set<String> = ["sh", "bash", "zsh", "dash", "ksh", "fish"]

    static func classify(words: ArraySlice<String>, depth: Int) -> RiskClassification {
        var words = words.drop { EnvironmentDumpDetector.isAssignment($0) }
        guard let first = words.first, depth < 8 else { return RiskClassification(.write, "shell:command") }
        let name = baseName(first)
        words = words.dropFirst()
        if wrappers.contains(name) {
            var rest = words
            // The wrapper's own options (and timeout's duration) come before the command.
            while let word = rest.first, word.hasPrefix("-") || (name == "timeout" && word.first?.isNumber == true)
                                                            || EnvironmentDumpDetector.isAssignment(word) {
                rest = rest.dropFirst()
                if ["-u", "-g", "-n", "-I", "-s", "-k", "-d", "-P", "-L", "-C"].contains(word) { rest = rest.dropFirst() }
            }
            if name == "eval" { return classify(script: rest.joined(separator: " ")) }
            let inner = classify(words: rest, depth: depth + 1)
            // Running something as another user is at least a change.
            if (name == "sudo" || name == "doas") && inner.tier == .read { return RiskClassification(.write, "shell:sudo") }
            return rest.isEmpty ? RiskClassification(.write, "shell:command") : inner
        }
        if shells.contains(name), let flag = words.firstIndex(where: { $0.hasPrefix("-") && $0.contains("c") && !$0.hasPrefix("--") }),
           words.index(after: flag) < words.endIndex {
            return classify(script: words[words.index(after: flag)])
        }
        let arguments = Array(words)
        for rule in shellRules where rule.commands.contains(name) {
            if let tier = rule.matches(arguments) {
                return RiskClassification(tier, tier == rule.tier ? rule.name : tier == .read ? "shell:read-only" : "shell:command")
            }
        }
        if readOnlyCommands.contains(name) { return RiskClassification(.read, "shell:read-only") }
        if name == "git" { return classifyGit(arguments) }
        return RiskClassification(.write, "shell:command")
    }

    /// Commands that only read (and print), whatever their arguments; `find` and `sed` are
    /// handled by rules first (`-delete`, `-exec`, `-i`).
    static let readOnlyCommands: Set<String> = [
        "ls", "cat", "head", "tail", "less", "more", "grep", "egrep", "fgrep", "rg", "ag", "find", "fd", "wc", "echo",
        "printf", "pwd", "which", "type", "whoami", "id", "date", "uname", "hostname", "stat", "file", "du", "df", "tree",
        "sort", "uniq", "cut", "tr", "diff", "cmp", "jq", "yq", "sha256sum", "sha1sum", "md5sum", "basename", "dirname",
        "realpath", "readlink", "true", "false", "test", "[", "[[", "sleep", "ps", "top", "free", "uptime", "nl", "column",
        "awk", "sed", "base64", "xxd", "od", "hexdump", "strings", "man", "help", "history", "cd", "pushd", "popd",
        "seq", "tee", "lsof", "netstat", "ss", "env", "printenv", "locale", "getent", "nproc", "tac", "rev", "comm",
        "join", "paste", "fold", "fmt", "expand", "look", "zcat", "bat",
    ]

    /// A named shell rule: the commands it looks at and how it judges their arguments.
    struct ShellRule: Sendable {
        var name: String
        var commands: Set<String>
        var tier: RiskTier
        var description: String
        var matches: @Sendable ([String]) -> RiskTier?
    }

    static func hasFlag(_ arguments: [String], short: Character, long: String? = nil) -> Bool {
        for argument in arguments {
            if argument == "--" { return false }
            if let long, argument == long { return true }
            if argument.hasPrefix("-"), !argument.hasPrefix("--"), argument.dropFirst().contains(short) { return true }
        }
        return false
    }

    static func contains(_ arguments: [String], _ words: Set<String>) -> Bool {
        arguments.contains { words.contains($0) }
    }

    /// Positional words (options dropped), for subcommand checks like `kubectl delete`.
    static func positionals(_ arguments: [String]) -> [String] {
        arguments.filter { !$0.hasPrefix("-") }
    }

    static let shellRules: [ShellRule] = [
        ShellRule(name: "shell:rm-recursive", commands: ["rm"], tier: .destructive,
                  description: "`rm -r`/`-R`/`--recursive` (any combination, e.g. `rm -rf`)") {
            hasFlag($0, short: "r", long: "--recursive") || hasFlag($0, short: "R") ? .destructive : .write
        },
        ShellRule(name: "shell:wipe", commands: ["shred", "wipefs", "mkfs", "mkfs.ext4", "mkfs.xfs", "mkfs.vfat", "fdisk", "parted",
                                                 "sfdisk", "truncate", "dropdb", "dropuser", "shutdown", "reboot", "halt", "poweroff"],
                  tier: .destructive, description: "`shred`, `wipefs`, `mkfs*`, `fdisk`, `parted`, `truncate`, `dropdb`, `dropuser`, `shutdown`, `reboot`") { _ in
            .destructive
        },
        ShellRule(name: "shell:dd-device", commands: ["dd"], tier: .destructive, description: "`dd of=/dev/…`") {
            $0.contains { $0.hasPrefix("of=/dev/") } ? .destructive : .write
        },
        ShellRule(name: "shell:find-delete", commands: ["find"], tier: .destructive,
                  description: "`find … -delete`, or `-exec rm …`") { arguments in
            if arguments.contains("-delete") { return .destructive }
            if let exec = arguments.firstIndex(where: { $0 == "-exec" || $0 == "-execdir" || $0 == "-ok" }) {
                return classify(words: arguments[(exec + 1)...].prefix { $0 != ";" && $0 != "+" && $0 != "\\;" }, depth: 1).tier
                    == .destructive ? .destructive : .write
            }
            return .read
        },
        ShellRule(name: "shell:sed-in-place", commands: ["sed", "perl"], tier: .write, description: "`sed -i`, `perl -i` edit files") {
            $0.contains { $0.hasPrefix("-i") || $0 == "--in-place" || $0.hasPrefix("--in-place=") } ? .write : nil
        },
        ShellRule(name: "shell:permissions", commands: ["chmod", "chown", "chgrp", "setfacl", "chattr"], tier: .destructive,
                  description: "`chmod`/`chown`/`chgrp` recursive (`-R`) or opening a file to everyone (`777`, `666`, `o+w`, `a+w`); `setfacl`, `chattr`") { arguments in
            if hasFlag(arguments, short: "R", long: "--recursive") { return .destructive }
            if arguments.contains(where: { ["777", "0777", "666", "0666", "o+w", "a+w", "+w", "o+rwx", "a+rwx"].contains($0) }) {
                return .destructive
            }
            return .write
        },
        ShellRule(name: "shell:iac-destroy", commands: ["terraform", "tofu", "terragrunt", "pulumi", "cdk", "serverless", "sls"],
                  tier: .destructive, description: "`terraform destroy` (also `tofu`, `pulumi`, `cdk`, `serverless`), `apply -destroy`, `state rm`") { arguments in
            let words = positionals(arguments)
            if words.contains("destroy") || arguments.contains("-destroy") || arguments.contains("--destroy") { return .destructive }
            if words.count >= 2, words[0] == "state", words[1] == "rm" { return .destructive }
            if words.first == "plan" || words.first == "show" || words.first == "validate" || words.first == "output" { return .read }
            return .write
        },
        ShellRule(name: "shell:kubectl-delete", commands: ["kubectl", "oc", "helm"], tier: .destructive,
                  description: "`kubectl delete`/`drain`/`replace --force` (also `oc`), `helm uninstall`/`delete`") { arguments in
            let words = positionals(arguments)
            // Options with values may come first (`kubectl -n prod delete pod x`): any verb word.
            if words.contains(where: { ["delete", "drain", "uninstall"].contains($0) }) { return .destructive }
            guard let verb = words.first else { return .write }
            if words.contains("replace") && arguments.contains("--force") { return .destructive }
            if ["get", "describe", "logs", "explain", "version", "top", "list", "ls", "status", "history", "diff"].contains(verb) { return .read }
            return .write
        },
        ShellRule(name: "shell:cloud-delete", commands: ["aws", "gcloud", "az", "doctl", "gsutil", "flyctl", "fly", "heroku", "vercel", "netlify", "firebase"],
                  tier: .destructive,
                  description: "cloud CLIs (`aws`, `gcloud`, `az`, `doctl`, `gsutil`, `fly`, `heroku`, …): a `delete*`, `terminate*`, `remove*`, `destroy*`, `revoke*`, `deregister*`, `purge*` action, `s3 rm`/`rb`, `gsutil rm`, IAM policy or role changes, anything under `billing`") { arguments in
            let words = positionals(arguments)
            let destructiveVerbs = ["delete", "terminate", "remove", "destroy", "revoke", "deregister", "purge", "rm", "rb",
                                    "detach", "disable", "cancel", "wipe"]
            for word in words {
                let lower = word.lowercased()
                if destructiveVerbs.contains(where: { lower == $0 || lower.hasPrefix($0 + "-") || lower.hasPrefix($0 + "_") }) { return .destructive }
                if lower.contains("iam-policy") || lower.hasPrefix("put-") && lower.contains("policy")
                    || lower.hasPrefix("attach-") && lower.contains("policy") || lower == "set-iam-policy"
                    || lower.hasPrefix("add-iam-policy-binding") || lower == "billing" || lower.contains("billing") {
                    // Reading billing or a policy is fine; changing it is not.
                    if words.contains(where: { ["list", "describe", "get", "show"].contains($0) || $0.hasPrefix("get-") || $0.hasPrefix("list-") || $0.hasPrefix("describe-") }) {
                        return .read
                    }
                    return .destructive
                }
            }
            if words.contains(where: { $0 == "list" || $0 == "ls" || $0 == "describe" || $0 == "get" || $0 == "show" || $0.hasPrefix("describe-") || $0.hasPrefix("list-") || $0.hasPrefix("get-") }) {
                return .read
            }
            return .write
        },
        ShellRule(name: "shell:container-delete", commands: ["docker", "podman", "nerdctl"], tier: .destructive,
                  description: "`docker rm`/`rmi`/`prune`/`volume rm`/`compose down -v` (also `podman`)") { arguments in
            let words = positionals(arguments)
            if words.contains(where: { ["rm", "rmi", "prune", "kill"].contains($0) }) { return .destructive }
            if words.contains("down"), hasFlag(arguments, short: "v", long: "--volumes") { return .destructive }
            if let verb = words.first, ["ps", "images", "inspect", "logs", "version", "info"].contains(verb) { return .read }
            return .write
        },
        ShellRule(name: "shell:gh-delete", commands: ["gh", "glab"], tier: .destructive,
                  description: "`gh … delete`, `gh api -X DELETE`, `gh repo archive`, `gh secret remove` (also `glab`)") { arguments in
            let words = positionals(arguments)
            if words.contains(where: { ["delete", "archive", "remove", "revoke"].contains($0) }) { return .destructive }
            if let method = arguments.firstIndex(where: { $0 == "-X" || $0 == "--method" }), method + 1 < arguments.count,
               arguments[method + 1].uppercased() == "DELETE" { return .destructive }
            if words.count >= 2, ["list", "view", "status", "diff", "checks"].contains(words[1]) { return .read }
            return .write
        },
        ShellRule(name: "shell:http-delete", commands: ["curl", "http", "https", "xh", "wget"], tier: .destructive,
                  description: "`curl -X DELETE` (also `--request DELETE`, `http DELETE …`)") { arguments in
            for (index, argument) in arguments.enumerated() {
                let upper = argument.uppercased()
                if upper == "-XDELETE" || upper == "--REQUEST=DELETE" || upper == "DELETE" && index == 0 { return .destructive }
                if (argument == "-X" || argument == "--request"), index + 1 < arguments.count,
                   arguments[index + 1].uppercased() == "DELETE" { return .destructive }
            }
            return .write
        },
        ShellRule(name: "shell:package-unpublish", commands: ["npm", "yarn", "pnpm", "cargo", "gem"], tier: .destructive,
                  description: "`npm unpublish`/`deprecate`, `cargo yank`, `gem yank`") { arguments in
            let words = positionals(arguments)
            if words.contains(where: { ["unpublish", "yank", "deprecate"].contains($0) }) { return .destructive }
            return .write
        },
        ShellRule(name: "shell:redis-flush", commands: ["redis-cli"], tier: .destructive, description: "`redis-cli flushall`/`flushdb`") { arguments in
            arguments.contains { ["flushall", "flushdb"].contains($0.lowercased()) } ? .destructive : .write
        },
    ]

    // MARK: git

    static func classifyGit(_ arguments: [String]) -> RiskClassification {
        // Global options before the subcommand (`-C dir`, `-c key=value`).
        var rest = arguments[...]
        while let word = rest.first, word.hasPrefix("-") {
            rest = rest.dropFirst()
            if word == "-C" || word == "-c" || word == "--git-dir" || word == "--work-tree" { rest = rest.dropFirst() }
        }
        guard let subcommand = rest.first else { return RiskClassification(.read, "shell:read-only") }
        let options = Array(rest.dropFirst())
        func destructive(_ name: String) -> RiskClassification { RiskClassification(.destructive, "shell:git-" + name) }
        switch subcommand {
        case "push":
            if options.contains(where: { $0 == "--force" || $0.hasPrefix("--force-with-lease") || $0 == "--mirror" || $0 == "--delete"
                                         || $0 == "--prune" })
                || hasFlag(options, short: "f") || hasFlag(options, short: "d")
                || positionals(options).dropFirst().contains(where: { $0.hasPrefix("+") || $0.hasPrefix(":") }) {
                return destructive("force-push")
            }
            return RiskClassification(.write, "shell:git-push")
        case "reset":
            return options.contains("--hard") || options.contains("--merge") ? destructive("reset-hard") : RiskClassification(.write, "shell:command")
        case "clean":
            return hasFlag(options, short: "f", long: "--force") ? destructive("clean") : RiskClassification(.write, "shell:command")
        case "branch":
            if options.contains("-D") || (options.contains("-d") || options.contains("--delete")) && options.contains(where: { $0 == "-f" || $0 == "--force" }) {
                return destructive("branch-delete")
            }
            return positionals(options).isEmpty ? RiskClassification(.read, "shell:read-only") : RiskClassification(.write, "shell:command")
        case "tag":
            return hasFlag(options, short: "d", long: "--delete") ? destructive("tag-delete") : RiskClassification(.write, "shell:command")
        case "stash":
            return options.first == "drop" || options.first == "clear" ? destructive("stash-drop") : RiskClassification(.write, "shell:command")
        case "filter-branch", "filter-repo":
            return destructive("rewrite-history")
        case "checkout", "restore":
            // Throwing away uncommitted work: `git checkout -- .`, `git checkout -f`, `git restore .`.
            if options.contains(where: { $0 == "-f" || $0 == "--force" }) || (subcommand == "restore" && positionals(options).contains(".")) {
                return destructive("discard-changes")
            }
            return RiskClassification(.write, "shell:command")
        case "reflog":
            return options.first == "expire" || options.first == "delete" ? destructive("reflog-expire") : RiskClassification(.read, "shell:read-only")
        case "status", "log", "diff", "show", "blame", "grep", "ls-files", "ls-tree", "rev-parse", "describe", "shortlog",
             "cat-file", "remote", "config", "version", "help", "whatchanged", "fetch":
            if subcommand == "remote", options.contains(where: { ["remove", "rm", "set-url", "add", "rename"].contains($0) }) {
                return RiskClassification(.write, "shell:command")
            }
            if subcommand == "config", positionals(options).count >= 2 || options.contains("--unset") {
                return RiskClassification(.write, "shell:command")
            }
            return RiskClassification(.read, "shell:read-only")
        default:
            return RiskClassification(.write, "shell:command")
        }
    }

    // MARK: SQL

    /// `DROP TABLE|DATABASE|SCHEMA|…`, `TRUNCATE`, `DELETE FROM x` without `WHERE`, `ALTER
    /// TABLE … DROP`, and `GRANT`/`REVOKE`, anywhere in the text (case-insensitive).
    static func destructiveSQL(in text: String) -> String? {
        let lower = text.lowercased()
        guard lower.contains("drop") || lower.contains("truncate") || lower.contains("delete") || lower.contains("revoke")
                || lower.contains("grant") else { return nil }
        let words = sqlWords(lower)
        for (index, word) in words.enumerated() {
            let next = index + 1 < words.count ? words[index + 1] : ""
            switch word {
            case "drop" where ["table", "database", "schema", "index", "view", "user", "role", "collection", "keyspace",
                               "column", "constraint", "materialized", "function", "trigger", "sequence", "type", "extension"].contains(next):
                return "sql:drop"
            case "truncate" where next == "table" || (index > 0 && [";", "-c", "-e"].contains(words[index - 1])):
                return "sql:truncate"
            case "delete" where next == "from":
                let statement = words[index...].prefix { $0 != ";" }
                if !statement.contains("where") { return "sql:delete-all" }
            case "revoke" where words.contains("on") || words.contains("from"):
                return "sql:grant-revoke"
            case "grant" where words.contains("on") && words.contains("to"):
                return "sql:grant-revoke"
            default:
                continue
            }
        }
        return nil
    }

    /// Letters, digits and `_` make words; `;` is a word of its own; the rest separates.
    static func sqlWords(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        for character in text {
            if character.isLetter || character.isNumber || character == "_" || character == "-" && current.isEmpty {
                current.append(character)
            } else {
                if !current.isEmpty { words.append(current) }
                current = ""
                if character == ";" { words.append(";") }
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    // MARK: MCP

    /// `mcp__SERVER__TOOL`: the tool's name, split into words at `_`, `-`, `.` and
    /// lower-to-upper case changes, decides by its verbs.
    static func classify(mcpTool name: String, input: JSONValue) -> RiskClassification {
        let tool = name.components(separatedBy: "__").last ?? name
        let words = nameWords(tool)
        if let verb = words.first(where: { mcpDestructiveVerbs.contains($0) }) {
            return RiskClassification(.destructive, "mcp:\(verb)")
        }
        if words.contains(where: { ["permission", "permissions", "billing", "acl", "iam", "role", "roles", "collaborator", "collaborators",
                                    "visibility", "access", "member", "members", "subscription"].contains($0) }),
           let first = words.first, !mcpReadVerbs.contains(first) {
            return RiskClassification(.destructive, "mcp:permissions-or-billing")
        }
        // A tool that runs SQL is judged by its statement.
        var sql: String?
        if case .object(let members) = input {
            for (_, value) in members { if let text = value.stringValue, let found = destructiveSQL(in: text) { sql = found; break } }
        }
        if let sql { return RiskClassification(.destructive, sql) }
        if let first = words.first, mcpReadVerbs.contains(first) { return RiskClassification(.read, "mcp:read-verb") }
        if let first = words.first, mcpWriteVerbs.contains(first) { return RiskClassification(.write, "mcp:write-verb") }
        return RiskClassification(.write, nil)
    }

    static let mcpDestructiveVerbs: Set<String> = [
        "delete", "drop", "remove", "revoke", "destroy", "purge", "truncate", "wipe", "erase", "terminate", "uninstall",
        "unpublish", "archive", "ban", "kick", "rm", "del", "prune", "flush", "reset", "force", "cancel", "deactivate",
        "disable", "suspend",
    ]
    static let mcpReadVerbs: Set<String> = [
        "get", "list", "read", "search", "fetch", "find", "query", "describe", "show", "view", "lookup", "count", "check",
        "status", "inspect", "browse", "download", "export", "retrieve", "resolve", "explain", "analyze", "summarize", "whoami",
        "screenshot", "snapshot", "navigate", "peek", "diff", "compare",
    ]
    static let mcpWriteVerbs: Set<String> = [
        "create", "add", "update", "edit", "write", "set", "post", "send", "comment", "upload", "insert", "put", "patch",
        "push", "commit", "open", "close", "assign", "label", "move", "rename", "copy", "run", "execute", "click", "type",
        "fill", "press", "start", "stop", "restart", "deploy", "publish", "invite", "reply", "react", "tag", "fork", "install",
    ]

    static func nameWords(_ name: String) -> [String] {
        var words: [String] = []
        var current = ""
        var previousWasLower = false
        for character in name {
            if character == "_" || character == "-" || character == "." || character == " " {
                if !current.isEmpty { words.append(current.lowercased()) }
                current = ""
                previousWasLower = false
                continue
            }
            if character.isUppercase, previousWasLower, !current.isEmpty {
                words.append(current.lowercased())
                current = ""
            }
            current.append(character)
            previousWasLower = character.isLowercase || character.isNumber
        }
        if !current.isEmpty { words.append(current.lowercased()) }
        return words
    }

    static func baseName(_ word: String) -> String {
        guard let slash = word.lastIndex(of: "/") else { return word }
        return String(word[word.index(after: slash)...])
    }

    // MARK: README

    /// Every rule, for the README's table (a test checks the README lists each name).
    public static var rules: [RuleDescription] {
        var rules = [
            RuleDescription(name: "tool:read-only", tier: .read, description: readOnlyTools.sorted().map { "`\($0)`" }.joined(separator: ", ")),
            RuleDescription(name: "tool:edit", tier: .write, description: editTools.sorted().map { "`\($0)`" }.joined(separator: ", ")),
            RuleDescription(name: "shell:read-only", tier: .read,
                            description: "a shell script made only of read-only commands (`ls`, `cat`, `grep`, `git status|log|diff|show`, …) with no `>` to a file"),
            RuleDescription(name: "shell:command", tier: .write, description: "any other shell command"),
            RuleDescription(name: "shell:redirect", tier: .write, description: "a read-only command whose output goes to a file (`>`, `>>`)"),
            RuleDescription(name: "shell:sudo", tier: .write, description: "a read-only command run as another user (`sudo`, `doas`)"),
            RuleDescription(name: "shell:git-push", tier: .write, description: "`git push` without force or delete"),
        ]
        rules += shellRules.map { RuleDescription(name: $0.name, tier: $0.tier, description: $0.description) }
        rules += [
            RuleDescription(name: "shell:git-force-push", tier: .destructive, description: "`git push --force`/`-f`/`--force-with-lease`/`--mirror`/`--delete`, `+ref`, `:ref`"),
            RuleDescription(name: "shell:git-reset-hard", tier: .destructive, description: "`git reset --hard`"),
            RuleDescription(name: "shell:git-clean", tier: .destructive, description: "`git clean -f`"),
            RuleDescription(name: "shell:git-branch-delete", tier: .destructive, description: "`git branch -D` (or `-d --force`)"),
            RuleDescription(name: "shell:git-tag-delete", tier: .destructive, description: "`git tag -d`"),
            RuleDescription(name: "shell:git-stash-drop", tier: .destructive, description: "`git stash drop`/`clear`"),
            RuleDescription(name: "shell:git-rewrite-history", tier: .destructive, description: "`git filter-branch`, `git filter-repo`"),
            RuleDescription(name: "shell:git-discard-changes", tier: .destructive, description: "`git checkout -f`, `git restore .`"),
            RuleDescription(name: "shell:git-reflog-expire", tier: .destructive, description: "`git reflog expire|delete`"),
            RuleDescription(name: "sql:drop", tier: .destructive, description: "`DROP TABLE|DATABASE|SCHEMA|INDEX|VIEW|USER|ROLE|COLUMN|…` in a shell command or an MCP tool's input"),
            RuleDescription(name: "sql:truncate", tier: .destructive, description: "`TRUNCATE [TABLE]`"),
            RuleDescription(name: "sql:delete-all", tier: .destructive, description: "`DELETE FROM t` without `WHERE`"),
            RuleDescription(name: "sql:grant-revoke", tier: .destructive, description: "`GRANT … ON … TO`, `REVOKE … ON|FROM`"),
            RuleDescription(name: "mcp:VERB", tier: .destructive,
                            description: "an MCP tool (`mcp__SERVER__TOOL`) whose name has one of the words " + mcpDestructiveVerbs.sorted().map { "`\($0)`" }.joined(separator: ", ")),
            RuleDescription(name: "mcp:permissions-or-billing", tier: .destructive,
                            description: "an MCP tool about permissions, roles, access, members, billing or plans that does not start with a read verb"),
            RuleDescription(name: "mcp:read-verb", tier: .read, description: "an MCP tool whose name starts with " + mcpReadVerbs.sorted().map { "`\($0)`" }.joined(separator: ", ")),
            RuleDescription(name: "mcp:write-verb", tier: .write, description: "an MCP tool whose name starts with " + mcpWriteVerbs.sorted().map { "`\($0)`" }.joined(separator: ", ")),
        ]
        return rules
    }
}
