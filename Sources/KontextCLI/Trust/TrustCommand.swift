import ArgumentParser
import KontextAudit
import KontextConsent
import KontextCore
import KontextEnvFile
import KontextRun

struct TrustCommand: KontextCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Consent to this project's env file and policy, or list and revoke consents.",
        discussion: """
            A repository's .env.kontext and .kontext/policy.toml are someone else's input: until you \
            trust them, kontext exchanges no credential for them and ignores the project policy's \
            allow rules (its deny and ask rules always apply). `kontext trust` shows what the \
            project asks for and records your consent by each file's path and content digest in \
            $XDG_STATE_HOME/kontext/trust; a file changed since needs trusting again. CI mode needs \
            no consent.
            """)

    @Option(name: .long, help: ArgumentHelp("The env file to trust (default: .env.kontext).", valueName: "file"),
            completion: .file())
    var envFile: String?

    @Flag(name: .long, help: "List the trusted files and whether each still has the content you trusted.")
    var list = false

    @Flag(name: .long, help: "Take back the consent for PATH (a file, or every trusted file under a directory); default: this project's files.")
    var revoke = false

    @Argument(help: ArgumentHelp("With --revoke: the file or directory to forget.", valueName: "path"), completion: .file())
    var path: String?

    func validate() throws {
        if list && revoke { throw ValidationError("--list and --revoke do not go together") }
        if path != nil && !revoke { throw ValidationError("a PATH goes only with --revoke") }
    }

    func run(context: CommandContext) async throws {
        try ProjectConsent.refuseInsideSession(context.environment, command: "trust", refusal: "is not available",
                                               hint: "review the project and run it yourself, outside the agent")
        let store = TrustStore(environment: try context.settings().environment)
        if list { return try printList(store, context.streams) }
        if revoke { return try revokeConsent(store, context.streams) }

        let project = try Project.load(directory: currentWorkingDirectory(), envFilePath: envFile)
        guard !project.files.isEmpty else {
            throw KontextError.usage("nothing to trust here: no \(Project.defaultEnvFile) and no \(Project.policyFile)",
                                     hint: "run it in the project's directory, or name the env file with --env-file")
        }
        context.streams.print(project.summary.joined(separator: "\n"))
        try store.trust(project.files)
        context.streams.printError("kontext: trusted \(project.files.count == 1 ? "this file" : "these \(project.files.count) files") in their current content; `kontext trust --revoke` takes it back")
    }

    private func printList(_ store: TrustStore, _ streams: OutputStreams) throws {
        let records = try store.records()
        guard !records.isEmpty else { return streams.printError("kontext: no project is trusted yet") }
        var rows: [[String]] = [["TRUSTED", "STATE", "PATH"]]
        for record in records {
            let state: String
            if let bytes = readFile(record.path, limit: 16 << 20) {
                state = contentDigest(bytes) == record.digest ? "current" : "changed since (not trusted)"
            } else {
                state = "missing"
            }
            rows.append([AuditTime.format(epochSeconds: Double(record.trustedAt)), state, sanitized(record.path, limit: 4096)])
        }
        streams.print(formatTable(rows))
    }

    private func revokeConsent(_ store: TrustStore, _ streams: OutputStreams) throws {
        let targets: Set<String>
        if let path {
            let absolute = realPath(path) ?? (path.hasPrefix("/") ? path : currentWorkingDirectory() + "/" + path)
            let under = absolute.hasSuffix("/") ? absolute : absolute + "/"
            targets = Set(try store.records().map(\.path).filter { $0 == absolute || $0.hasPrefix(under) })
        } else {
            // By path alone: a file that no longer parses can still be forgotten.
            let directory = currentWorkingDirectory()
            targets = Set([envFile ?? Project.defaultEnvFile, Project.policyFile].map { file in
                let absolute = file.hasPrefix("/") ? file : directory + "/" + file
                return realPath(absolute) ?? absolute
            })
        }
        let removed = try store.revoke(paths: targets)
        streams.printError(removed == 0 ? "kontext: nothing was trusted there"
                   : "kontext: no longer trusted: \(targets.sorted().map { sanitized($0, limit: 4096) }.joined(separator: ", "))")
    }
}
