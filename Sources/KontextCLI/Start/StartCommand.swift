import ArgumentParser
import KontextAgent
import KontextCore
import KontextPolicy
import KontextProcess
import KontextRun

struct StartCommand: KontextCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Launch an AI coding agent with credentials injected and every hook checked and audited.",
        discussion: """
            Resolves the env file like `kontext run`, starts this session's sidecar on a private \
            Unix socket, and launches the agent with the resolved variables plus KONTEXT_SESSION_ID \
            and KONTEXT_SOCKET. Its hooks are wired to `kontext hook`, which applies the policy and \
            records an audit event, without editing your own settings: claude gets a generated \
            settings file (--settings), codex `-c` overrides on its command line. kontext exits with \
            the agent's exit code.
            """)
    @OptionGroup var diagnostics: DiagnosticOptions
    @OptionGroup var identity: IdentityOptions


    @Option(name: .long, help: ArgumentHelp("The agent: \(AgentAdapters.names.joined(separator: ", ")).", valueName: "name"),
            completion: .list(AgentAdapters.names))
    var agent: String?

    @Option(name: .long, help: ArgumentHelp("Launch this executable instead (its hooks are its own business).", valueName: "path"),
            completion: .file())
    var agentCommand: String?

    @Option(name: .long, help: ArgumentHelp("observe records and never blocks, enforce applies the policy (default: KONTEXT_MODE, else observe).", valueName: "mode"))
    var mode: Choice<PolicyMode>?

    @OptionGroup var credentials: CredentialOptions

    @Argument(parsing: .postTerminator, help: ArgumentHelp("Arguments for the agent, after --.", valueName: "args"))
    var agentArguments: [String] = []

    func validate() throws {
        if agent == nil && agentCommand == nil {
            throw ValidationError("name the agent with --agent \(AgentAdapters.names.joined(separator: "|")), or a program with --agent-command PATH")
        }
    }

    func run(context: CommandContext) async throws {
        let chosenMode = try mode?.value(of: "--mode")
        try ProjectConsent.refuseInsideSession(context.environment, command: "start")
        ProcessHardening.protectMemory()
        let settings = try identity.settings(context)
        let userPolicy = try Policy.locate(settings: settings, projectDirectory: currentWorkingDirectory()).user
        let options = StartOptions(agentName: agent, agentCommand: agentCommand, agentArguments: agentArguments,
                                   project: try credentials.loadProject(context, noticeIfMissing: false, userPolicyPath: userPolicy),
                                   allowPartial: credentials.allowPartial, mode: chosenMode, proxy: credentials.proxy)
        throw ExitCode(try await AgentSession.run(options, settings: settings))
    }
}
