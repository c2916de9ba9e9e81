import ArgumentParser
import KontextCore

/// `--verbose`, for the commands that talk to servers.
struct DiagnosticOptions: ParsableArguments {
    @Flag(name: .long, help: "Say what kontext does on stderr (never a token or secret); also KONTEXT_DEBUG=1.")
    var verbose = false
}

/// A command that takes `--verbose`.
protocol Diagnosable {
    var diagnostics: DiagnosticOptions { get }
}

/// `--id-token-file`, for the commands that authenticate: a CI job's identity in a file.
struct IdentityOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A file holding this CI job's OIDC token (e.g. a Kubernetes projected service-account token): CI mode.",
                                            valueName: "file"), completion: .file())
    var idTokenFile: String?

    /// The settings kontext acts on (SPEC section 3), with this flag over them.
    func settings(_ context: CommandContext) throws -> Settings {
        var settings = try context.settings()
        if let idTokenFile { settings.idTokenFile = idTokenFile.isEmpty ? nil : idTokenFile }
        return settings
    }
}
