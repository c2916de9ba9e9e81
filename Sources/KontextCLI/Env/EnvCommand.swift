import ArgumentParser
import KontextConsent
import KontextCore
import KontextRun

struct EnvCommand: KontextCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "List the env file's variables, their placeholders and whether each resolves.",
        discussion: """
            Each placeholder is really exchanged (in local mode, through the embedded broker) and \
            the result is thrown away: no secret is printed. Exits 4 if any does not resolve.
            """)
    @OptionGroup var diagnostics: DiagnosticOptions
    @OptionGroup var identity: IdentityOptions


    @Option(name: .long, help: ArgumentHelp("The env file to read (default: .env.kontext).", valueName: "file"),
            completion: .file())
    var envFile: String?

    func run(context: CommandContext) async throws {
        try ProjectConsent.refuseInsideSession(context.environment, command: "env")
        let settings = try identity.settings(context)
        let project = try Project.load(directory: currentWorkingDirectory(), envFilePath: envFile)
        guard let file = project.envFile?.content else {
            throw KontextError.usage("no .env.kontext here", hint: "create one, or name another with --env-file")
        }
        try ProjectConsent.require(project, settings: settings)
        let resolution = try await resolveCredentials(file, settings: settings, allowPartial: true)
        let failed = Dictionary(resolution.failures.map { ($0.placeholder, $0.reason) }, uniquingKeysWith: { a, _ in a })
        let proxied = try ProxyLaunch.proxiedTargets(in: file, settings: settings)
        // What the child gets under --proxy: a handle when every placeholder of the variable
        // has hosts bound to its service, else the credential itself.
        var rows: [[String]] = [["VARIABLE", "PLACEHOLDERS", "STATUS", "WITH --proxy"]]
        for variable in file.variables {
            let placeholders = variable.placeholders
            let status: String
            if placeholders.isEmpty {
                status = "literal"
            } else if let bad = placeholders.first(where: { failed[$0] != nil }) {
                status = "unresolved: " + failed[bad]!.explanation(for: bad, endpoint: "the token service")
            } else {
                status = "resolves"
            }
            let carried = placeholders.filter { proxied.contains($0.target) }
            let proxyColumn = placeholders.isEmpty ? "-"
                : carried.count == placeholders.count ? "handle"
                : carried.isEmpty ? "credential (no bound hosts)" : "handle and credential"
            rows.append([variable.key, placeholders.isEmpty ? "-" : placeholders.map(\.description).joined(separator: " "), status,
                         proxyColumn])
        }
        context.streams.print(formatTable(rows))
        if !resolution.failures.isEmpty { throw ExitCode(ExitStatus.credentialResolution.rawValue) }
    }
}
