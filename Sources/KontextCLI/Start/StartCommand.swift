import ArgumentParser
import KontextCore
import KontextPolicy
import KontextProcess
import KontextRun

struct StartCommand: AsyncParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Launch an AI coding agent with credentials injected and every hook checked and audited.",
        discussion: """
            Resolves the env file like `kontext run`, starts this session's sidecar on a private \
            Unix socket, and launches the agent with the resolved variables plus KONTEXT_SESSION_ID \
            and KONTEXT_SOCKET. For claude, a generated settings file (passed with --settings; your \
            own settings are never edited) routes every hook through `kontext hook`, which applies \
            the policy and records an audit event. kontext exits with the agent's exit code.
            """)
    @OptionGroup var diagnostics: DiagnosticOptions
    @OptionGroup var identity: IdentityOptions


    @Option(name: .long, help: ArgumentHelp("The agent: claude.", valueName: "name"))
    var agent: String?

    @Option(name: .long, help: ArgumentHelp("Launch this executable instead (its hooks are its own business).", valueName: "path"),
            completion: .file())
    var agentCommand: String?

    @Option(name: .long, help: ArgumentHelp("observe (record, never block) or enforce (default: KONTEXT_MODE, else observe).", valueName: "mode"))
    var mode: String?

    @OptionGroup var credentials: CredentialOptions

    @Argument(parsing: .postTerminator, help: ArgumentHelp("Arguments for the agent, after --.", valueName: "args"))
    var agentArguments: [String] = []

    func validate() throws {
        if agent == nil && agentCommand == nil {
            throw ValidationError("name the agent with --agent claude, or a program with --agent-command PATH")
        }
    }

    func run() async throws {
        let chosenMode: PolicyMode?
        if let mode {
            guard let parsed = PolicyMode(rawValue: mode) else {
                throw KontextError.usage("--mode \(mode): unknown mode", hint: "use observe or enforce")
            }
            chosenMode = parsed
        } else {
            chosenMode = nil
        }
        let environment = currentEnvironment()
        try ProjectConsent.refuseInsideSession(environment, command: "start")
        ProcessHardening.protectMemory()
        let settings = try identity.settings()
        let userPolicy = try Policy.locate(environment: settings, projectDirectory: currentWorkingDirectory()).user
        let options = StartOptions(agentName: agent, agentCommand: agentCommand, agentArguments: agentArguments,
                                   project: try credentials.loadProject(noticeIfMissing: false, userPolicyPath: userPolicy),
                                   allowPartial: credentials.allowPartial, mode: chosenMode, proxy: credentials.proxy)
        throw ExitCode(try await AgentSession.run(options, environment: environment, settings: settings))
    }
}
