import ArgumentParser
import KontextBrokerService
import KontextBrokerStore
import KontextCore
import KontextEnvFile

struct BrokerProviderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provider",
        abstract: "Manage the broker's vault of provider credentials (encrypted at rest).",
        subcommands: [Add.self, List.self, Remove.self, Rekey.self])

    /// Whose credential: one principal's, or the organisation's (shared by every granted principal).
    struct Owner: ParsableArguments {
        @Option(help: ArgumentHelp("The principal that owns it (e.g. user:alice, ci:acme/app); default: the organisation.",
                                   valueName: "name"))
        var principal: String?

        var name: String { principal ?? "" }
    }

    struct Add: KontextCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Store a credential; the secret (or with --oauth the refresh token) is read from stdin or a no-echo prompt.")

        @OptionGroup var location: BrokerLocation
        @OptionGroup var owner: Owner

        @Flag(help: "An upstream OAuth connection: the secret is a refresh token the broker redeems at the [[provider]] token endpoint.")
        var oauth = false

        @Argument(help: ArgumentHelp("SERVICE or SERVICE/RESOURCE.", valueName: "service"))
        var service: String

        func run(context: CommandContext) async throws {
            let placeholder = try validated(service)
            let secret = try readSecret(prompt: oauth ? "Refresh token for \(placeholder.target): " : "Secret for \(placeholder.target): ")
            try await location.withAdmin(context) { admin in
                try await admin.add(target: placeholder.target, owner: owner.name, kind: oauth ? .oauth : .staticKey, secret: secret)
                context.streams.printError("kontext: stored the \(oauth ? "OAuth connection" : "credential") for \(placeholder.target) (\(owner.principal ?? "organisation")), sealed with vault key '\(admin.cipher.currentKeyID)'")
            }
        }
    }

    struct List: KontextCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List stored credentials (never their values).")

        @OptionGroup var location: BrokerLocation

        func run(context: CommandContext) async throws {
            try await location.withAdmin(context) { admin in
                let rows = try await admin.list()
                if rows.isEmpty {
                    context.streams.printError("kontext: the vault is empty; add a credential with `kontext broker provider add SERVICE`")
                    return
                }
                var lines = ["TARGET\tOWNER\tKIND\tKEY\tSTATE\tUPDATED"]
                for row in rows {
                    lines.append([row.target, row.owner.isEmpty ? "(organisation)" : row.owner, row.kind.rawValue, row.sealed.keyID,
                                  row.connected ? "ok" : "not-connected", row.updatedAt].joined(separator: "\t"))
                }
                context.streams.print(lines.joined(separator: "\n"))
            }
        }
    }

    struct Remove: KontextCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Delete a stored credential.")

        @OptionGroup var location: BrokerLocation
        @OptionGroup var owner: Owner

        @Argument(help: ArgumentHelp("SERVICE or SERVICE/RESOURCE.", valueName: "service"))
        var service: String

        func run(context: CommandContext) async throws {
            let placeholder = try validated(service)
            try await location.withAdmin(context) { admin in
                guard try await admin.remove(target: placeholder.target, owner: owner.name) else {
                    throw KontextError.usage("no credential named \(placeholder.target) for \(owner.principal ?? "the organisation")",
                                             hint: "`kontext broker provider list` shows what is stored")
                }
                context.streams.printError("kontext: removed the credential for \(placeholder.target)")
            }
        }
    }

    struct Rekey: KontextCommand {
        static let configuration = CommandConfiguration(
            commandName: "rekey",
            abstract: "Reseal every credential with the current (first) vault key, so older keys can be retired.")

        @OptionGroup var location: BrokerLocation

        func run(context: CommandContext) async throws {
            try await location.withAdmin(context) { admin in
                let changed = try await admin.rekey()
                context.streams.printError("kontext: resealed \(changed) credential(s) with vault key '\(admin.cipher.currentKeyID)'")
            }
        }
    }
}

private func validated(_ name: String) throws -> Placeholder {
    guard let placeholder = Placeholder(target: name) else {
        throw KontextError.usage("'\(name)' is not a service name", hint: "use SERVICE or SERVICE/RESOURCE, each of A-Z a-z 0-9 . _ -")
    }
    return placeholder
}
