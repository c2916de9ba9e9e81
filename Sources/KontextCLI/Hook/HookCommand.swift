import ArgumentParser
import KontextAgent
import KontextHookWire

struct HookCommand: KontextCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "Called by agent hooks, not people: checks and records one hook event.",
        discussion: """
            Reads the agent's hook JSON on stdin, sends it to the session's sidecar \
            (KONTEXT_SOCKET) and prints the answer in the agent's hook format. If the sidecar \
            cannot be reached, observe mode lets the call through with a note on stderr and \
            enforce mode blocks it. EVENT: \(HookEvent.names).
            """)

    @Argument(help: ArgumentHelp("The hook event.", valueName: "event"),
              completion: .list(HookEvent.allCases.map(\.rawValue)))
    var event: String

    @Option(name: .long, help: ArgumentHelp("The agent whose hook format to speak: \(AgentAdapters.names.joined(separator: ", ")).", valueName: "name"),
            completion: .list(AgentAdapters.names))
    var agent: String

    func run(context: CommandContext) async throws {
        // The same client the `kontext` front runs; reached here only when kontext-cli is
        // called directly.
        let code = HookClient.run(arguments: [event, "--agent", agent], agents: AgentAdapters.all) { context.environment[$0] }
        throw ExitCode(code)
    }
}
