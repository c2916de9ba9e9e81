import ArgumentParser
import KontextCore
import KontextHTTP
import KontextKeyring
import KontextRun

/// What every command works with, built once by `Kontext.runCommandLine`: the process
/// environment, the settings of SPEC section 3 as read once, where output goes, and the one
/// way each to get an HTTP client and a credential store for the settings.
public struct CommandContext: Sendable {
    public let environment: [String: String]
    public let streams: OutputStreams
    /// config.toml read once; what is wrong with it fails only the commands that use settings.
    private let loaded: Result<Settings, any Error>

    public init(environment: [String: String], streams: OutputStreams = .standard) {
        self.environment = environment
        self.streams = streams
        loaded = Result { try Configuration.load(environment: environment) }
    }

    /// The settings before any flag of the command.
    public func settings() throws -> Settings {
        try loaded.get()
    }

    public func httpClient(_ settings: Settings) -> HTTPClient {
        HTTPClient(settings: settings)
    }

    public func credentialStore(_ settings: Settings) throws -> any CredentialStore {
        try CredentialStores.open(settings: settings)
    }
}

/// A command run with the context `Kontext.runCommandLine` built.
protocol KontextCommand: AsyncParsableCommand {
    func run(context: CommandContext) async throws
}

extension KontextCommand {
    /// ArgumentParser's entry point, for a caller other than `Kontext.runCommandLine`.
    mutating func run() async throws {
        try await run(context: CommandContext(environment: currentEnvironment()))
    }
}

/// An option whose value is one of an enum's cases. Help and completions list the cases; a
/// value outside them is SPEC section 8's one-line usage error naming the option (exit 2),
/// where ArgumentParser's own error would add its usage block.
struct Choice<Value: CaseIterable & RawRepresentable & Sendable>: ExpressibleByArgument, Sendable where Value.RawValue == String {
    let text: String

    init(_ value: Value) {
        text = value.rawValue
    }

    init?(argument: String) {
        text = argument
    }

    static var allValueStrings: [String] { Value.allCases.map(\.rawValue) }
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
    var defaultValueDescription: String { text }

    /// The case, or the usage error for `option`.
    func value(of option: String) throws(KontextError) -> Value {
        guard let value = Value(rawValue: text) else {
            throw KontextError.usage("\(option) '\(text)' is not one of \(Self.allValueStrings.joined(separator: ", "))")
        }
        return value
    }
}
