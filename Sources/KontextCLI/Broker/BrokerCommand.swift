import ArgumentParser

struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run and administer the self-hosted broker (STS and audit backend).",
        subcommands: [BrokerServeCommand.self, BrokerProviderCommand.self])
}

/// Where the broker's configuration and database are; shared by every broker command.
struct BrokerLocation: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp("The broker configuration (see README, Broker).", valueName: "broker.toml"))
    var config: String

    @Option(name: .customLong("db"),
            help: ArgumentHelp("sqlite:PATH or postgres://USER@HOST[:PORT]/DB[?sslmode=…] (default: KONTEXT_BROKER_DB, then db in broker.toml). Put a password in PGPASSWORD, not here.",
                               valueName: "url"))
    var database: String?
}

import KontextBrokerService
import KontextCore

extension BrokerLocation {
    /// Runs `body` with the vault open, and closes the database whatever happens.
    func withAdmin<T>(_ context: CommandContext, _ body: (BrokerAdmin) async throws -> T) async throws -> T {
        let admin = try await BrokerAdmin.open(configPath: config, database: database, environment: context.environment)
        do {
            let result = try await body(admin)
            await admin.close()
            return result
        } catch {
            await admin.close()
            throw error
        }
    }
}
