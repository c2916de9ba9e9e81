import ArgumentParser
import KontextCore
import KontextEnvFile
import KontextKeyring
import KontextRun

struct ProviderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provider",
        abstract: "Manage local mode's provider credentials in the OS keyring.",
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a credential; the secret is read from stdin or a no-echo prompt.")

        @Argument(help: ArgumentHelp("SERVICE or SERVICE/RESOURCE.", valueName: "service"))
        var service: String

        func run() throws {
            let placeholder = try validated(service)
            let store = try CredentialStores.fromEnvironment(Configuration.settings(environment: currentEnvironment()))
            let secret = try readSecret(prompt: "Secret for \(placeholder.target): ")
            try store.store(secret, kind: .provider, key: placeholder.target, label: "kontext: \(placeholder.target)")
            printError("kontext: stored the credential for \(placeholder.target); use it as \(placeholder) in .env.kontext")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List stored credentials by name (never their values).")

        func run() throws {
            let store = try CredentialStores.fromEnvironment(Configuration.settings(environment: currentEnvironment()))
            let keys = try store.keys(kind: .provider)
            if keys.isEmpty {
                printError("kontext: no credentials stored; add one with `kontext provider add SERVICE`")
            } else {
                printOutput(keys.joined(separator: "\n"))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a stored credential.")

        @Argument(help: ArgumentHelp("SERVICE or SERVICE/RESOURCE.", valueName: "service"))
        var service: String

        func run() throws {
            let placeholder = try validated(service)
            let store = try CredentialStores.fromEnvironment(Configuration.settings(environment: currentEnvironment()))
            guard try store.remove(kind: .provider, key: placeholder.target) else {
                throw KontextError.usage("no credential named \(placeholder.target)", hint: "`kontext provider list` shows what is stored")
            }
            printError("kontext: removed the credential for \(placeholder.target)")
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
