import ArgumentParser
import KontextConsent
import KontextCore
import KontextEnvFile
import KontextProcess
import KontextRun

struct RunCommand: KontextCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command with the env file's credentials in its environment.",
        discussion: """
            Resolves every placeholder of the env file, then runs CMD with kontext's environment \
            plus the resolved variables. Secrets are never put on the command line or on disk. \
            kontext exits with CMD's exit code (128+N if signal N ended it) and forwards \
            SIGINT, SIGTERM and SIGHUP to it.
            """)
    @OptionGroup var diagnostics: DiagnosticOptions
    @OptionGroup var identity: IdentityOptions


    @OptionGroup var credentials: CredentialOptions

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after --.", valueName: "cmd"))
    var command: [String] = []

    func run(context: CommandContext) async throws {
        guard let name = command.first else {
            throw KontextError.usage("no command given", hint: "kontext run [--env-file F] -- CMD ARGS…")
        }
        let environment = context.environment
        try ProjectConsent.refuseInsideSession(environment, command: "run")
        ProcessHardening.protectMemory()
        let settings = try identity.settings(context)
        let project = try credentials.loadProject(context)
        let program = try locateProgram(name, environment: environment)
        if ProxyLaunch.requested(flag: credentials.proxy, settings: settings) {
            throw ExitCode(try await ProxiedRun.run(program: program, arguments: Array(command.dropFirst()), project: project,
                                                    environment: environment, settings: settings,
                                                    allowPartial: credentials.allowPartial))
        }
        try ProjectConsent.require(project, settings: settings)
        let resolution = try await resolveCredentials(project.envFile?.content, settings: settings,
                                                      allowPartial: credentials.allowPartial)
        let child = ChildProcess(executable: program, arguments: Array(command.dropFirst()),
                                 environment: childEnvironment(base: environment, removing: OwnSecrets.variables(settings: settings, platform: false),
                                                               resolved: resolution.variables))
        throw ExitCode(try child.run(launched: { SessionMemory.settle() }))
    }
}

/// Options shared by every command that resolves credentials.
struct CredentialOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The env file to read (default: .env.kontext).", valueName: "file"),
            completion: .file())
    var envFile: String?

    @Flag(name: .long, help: "Launch even if some placeholders cannot be resolved (their variables are left unset).")
    var allowPartial = false

    @Flag(name: .long, help: """
        Give the child handles instead of the credentials of services with bound hosts, and a \
        loopback proxy that swaps them in only toward those hosts (also KONTEXT_PROXY=1).
        """)
    var proxy = false

    /// The env file (if any) and project policy. `run` says when there is no env file, since
    /// injecting is its whole job; `start` without one is a normal audited session.
    func loadProject(_ context: CommandContext, noticeIfMissing: Bool = true, userPolicyPath: String? = nil) throws -> Project {
        let project = try Project.load(directory: currentWorkingDirectory(), envFilePath: envFile, userPolicyPath: userPolicyPath)
        if project.envFile == nil && noticeIfMissing {
            context.streams.printError("kontext: no .env.kontext here; running without injected credentials")
        }
        return project
    }
}
