import ArgumentParser

/// `--verbose`, for the commands that talk to servers.
struct DiagnosticOptions: ParsableArguments {
    @Flag(name: .long, help: "Say what kontext does on stderr (never a token or secret); also KONTEXT_DEBUG=1.")
    var verbose = false
}

/// A command that takes `--verbose`.
protocol Diagnosable {
    var diagnostics: DiagnosticOptions { get }
}
