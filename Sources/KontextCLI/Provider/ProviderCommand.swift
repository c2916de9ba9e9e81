import ArgumentParser
import KontextCore
import KontextEnvFile
import KontextKeyring

struct ProviderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provider",
        abstract: "Manage local mode's provider credentials in the OS keyring.",
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: KontextCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Store a credential; the secret is read from stdin or a no-echo prompt.")

        @Argument(help: ArgumentHelp("SERVICE or SERVICE/RESOURCE.", valueName: "service"))
        var service: String

        func run(context: CommandContext) async throws {
            let placeholder = try validated(service)
            let store = try context.credentialStore(context.settings())
            let secret = try readSecret(prompt: "Secret for \(placeholder.target): ")
            try store.store(secret, kind: .provider, key: placeholder.target, label: "kontext: \(placeholder.target)")
            context.streams.printError("kontext: stored the credential for \(placeholder.target); use it as \(placeholder) in .env.kontext")
        }
    }

    struct List: KontextCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List stored credentials by name (never their values).")

        func run(context: CommandContext) async throws {
            let store = try context.credentialStore(context.settings())
            let keys = try store.keys(kind: .provider)
            if keys.isEmpty {
                context.streams.printError("kontext: no credentials stored; add one with `kontext provider add SERVICE`")
            } else {
                context.streams.print(keys.joined(separator: "\n"))
            }
        }
    }

    struct Remove: KontextCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Delete a stored credential.")

        @Argument(help: ArgumentHelp("SERVICE or SERVICE/RESOURCE.", valueName: "service"))
        var service: String

        func run(context: CommandContext) async throws {
            let placeholder = try validated(service)
            let store = try context.credentialStore(context.settings())
            guard try store.remove(kind: .provider, key: placeholder.target) else {
                throw KontextError.usage("no credential named \(placeholder.target)", hint: "`kontext provider list` shows what is stored")
            }
            context.streams.printError("kontext: removed the credential for \(placeholder.target)")
        }
    }
}

private func validated(_ name: String) throws -> Placeholder {
    guard let placeholder = Placeholder(target: name) else {
        throw KontextError.usage("'\(name)' is not a service name",
                                 hint: "use SERVICE or SERVICE/RESOURCE, each of A-Z a-z 0-9 . _ -")
    }
    return placeholder
}
