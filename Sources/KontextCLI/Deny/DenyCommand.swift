import ArgumentParser
import KontextAudit

struct DenyCommand: KontextCommand {
    static let configuration = CommandConfiguration(
        commandName: "deny",
        abstract: "Refuse a call a policy held for approval.",
        discussion: """
            Closes the approval: the agent's retry is denied again (and opens a new approval). \
            Like `kontext approve`, it refuses inside a kontext session and without a terminal.
            """)

    @Argument(help: ArgumentHelp("The approval id (apr_…).", valueName: "id"))
    var id: String

    @Flag(name: .long, help: "Deny through the broker (KONTEXT_AUDIT_URL) as one of its approvers.")
    var remote = false

    func run(context: CommandContext) async throws {
        try ApprovalDecision.refuseInAgent(context, command: "deny")
        let settings = try context.settings()
        if remote { return try await ApprovalDecision.decideRemotely(id: id, approve: false, settings: settings, streams: context.streams) }
        try ApprovalDecision.decide(id: id, approve: false, store: try ApprovalStore(environment: settings.environment),
                                    settings: settings, streams: context.streams)
    }
}
