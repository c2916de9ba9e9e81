import ArgumentParser
import Foundation
import KontextCore
import KontextOIDC
import KontextPolicy
import KontextRun
import KontextTestSupport
import Logging
import Testing
@testable import KontextCLI

/// SPEC section 3 in process: flag > environment > config.toml > default, read once into
/// `Settings`; what config.toml may not hold; plain HTTP refused before anything is sent.
@Suite struct SettingsTests {
    /// An environment whose config.toml holds `toml`.
    static func environment(config toml: String?, _ extra: [String: String] = [:]) -> [String: String] {
        let home = TestSupport.makeTemporaryDirectory("settings")
        if let toml {
            let directory = home.appendingPathComponent("config/kontext")
            try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try! toml.write(to: directory.appendingPathComponent("config.toml"), atomically: true, encoding: .utf8)
        }
        return ["HOME": home.path, "XDG_CONFIG_HOME": home.path + "/config"].merging(extra) { $1 }
    }

    @Test func environmentWinsOverConfigFileWhichWinsOverDefaults() throws {
        let environment = Self.environment(config: """
            issuer_url = "https://file.example"
            client_id = "file-client"
            mode = "enforce"
            audit_url = "https://audit.example"
            allow_http = true
            """, ["KONTEXT_CLIENT_ID": "env-client", "KONTEXT_MODE": "observe", "KONTEXT_AUDIT_URL": ""])
        let settings = try Configuration.load(environment: environment)
        #expect(settings.issuerURL == "https://file.example")
        #expect(settings.clientID == "env-client")
        #expect(try PolicyMode(settings: settings) == .observe)
        // Set to nothing in the environment is unset, and still hides the file's value.
        #expect(settings.auditURL == nil)
        #expect(settings.allowHTTP)
        #expect(settings.environment == environment)

        // Defaults apply where the setting is used.
        let oidc = try #require(OIDCSettings(settings: settings))
        #expect(oidc.scopes == OIDCSettings.defaultScopes)
        #expect(oidc.redirectURI == nil)
        #expect(try PolicyMode(settings: Configuration.load(environment: Self.environment(config: nil))) == .observe)
        #expect(try Configuration.load(environment: Self.environment(config: "mode = \"enforce\"")).mode == "enforce")
    }

    @Test func aFlagWinsOverEverything() throws {
        let environment = Self.environment(config: "id_token_file = \"/from/file\"", ["KONTEXT_ID_TOKEN_FILE": "/from/env"])
        let context = CommandContext(environment: environment)
        #expect(try IdentityOptions.parse(["--id-token-file", "/from/flag"]).settings(context).idTokenFile == "/from/flag")
        #expect(try IdentityOptions.parse([]).settings(context).idTokenFile == "/from/env")
        let fileOnly = CommandContext(environment: Self.environment(config: "id_token_file = \"/from/file\""))
        #expect(try IdentityOptions.parse([]).settings(fileOnly).idTokenFile == "/from/file")
        #expect(try IdentityOptions.parse([]).settings(CommandContext(environment: Self.environment(config: nil))).idTokenFile == nil)
    }

    @Test func anUnknownKeyIsAUsageErrorNamingTheKnownOnes() {
        let error = #expect(throws: KontextError.self) {
            try Configuration.load(environment: Self.environment(config: "issuer_url = \"https://idp.example\"\ncolour = \"blue\"\n"))
        }
        #expect(error?.status == .usage)
        #expect(error?.message.hasSuffix("config.toml: unknown setting \"colour\"") == true, "\(String(describing: error))")
        #expect(error?.hint?.contains("issuer_url") == true)
        #expect(error?.hint?.contains("client_secret") == false)
    }

    @Test func theClientSecretIsRefusedFromTheFile() {
        let error = #expect(throws: KontextError.self) {
            try Configuration.load(environment: Self.environment(config: "client_secret = \"not-here\"\n"))
        }
        #expect(error?.status == .usage)
        #expect(error?.message.hasSuffix("client_secret does not belong in a config file") == true, "\(String(describing: error))")
        #expect(error?.hint == "set KONTEXT_CLIENT_SECRET in the environment instead")
        // A value that is neither text nor a switch is refused too.
        let number = #expect(throws: KontextError.self) {
            try Configuration.load(environment: Self.environment(config: "scopes = 3\n"))
        }
        #expect(number?.message.hasSuffix("scopes must be a string") == true)
    }

    @Test(arguments: [
        (["KONTEXT_ISSUER_URL": "http://idp.example.com"], nil as String?, "KONTEXT_ISSUER_URL"),
        ([:], "token_endpoint = \"http://sts.example.com/token\"", "KONTEXT_TOKEN_ENDPOINT"),
        (["KONTEXT_AUDIT_URL": "http://10.0.0.1:8080"], nil, "KONTEXT_AUDIT_URL"),
    ])
    func plainHTTPOffLoopbackIsRefusedUnlessAllowed(environment extra: [String: String], config: String?, name: String) throws {
        let error = #expect(throws: KontextError.self) {
            try Configuration.load(environment: Self.environment(config: config, extra))
        }
        #expect(error?.status == .usage)
        #expect(error?.message.hasPrefix("\(name) http://") == true, "\(String(describing: error))")
        var allowed = extra
        allowed["KONTEXT_ALLOW_HTTP"] = "1"
        _ = try Configuration.load(environment: Self.environment(config: config, allowed))
        _ = try Configuration.load(environment: Self.environment(config: (config ?? "") + "\nallow_http = true", extra))
    }

    @Test func loopbackAndTLSNeedNoOptIn() throws {
        let settings = try Configuration.load(environment: Self.environment(config: "audit_url = \"http://127.0.0.1:9000\"",
                                                                            ["KONTEXT_ISSUER_URL": "https://idp.example.com"]))
        #expect(settings.auditURL == "http://127.0.0.1:9000")
        #expect(!settings.allowHTTP)
    }

    /// A broken config.toml fails the commands that use settings, each time they ask, and
    /// not the building of the context (`kontext hook` and `broker` never read it).
    @Test func theContextKeepsTheConfigurationError() {
        let context = CommandContext(environment: Self.environment(config: "colour = 1"))
        for _ in 0..<2 {
            let error = #expect(throws: KontextError.self) { try context.settings() }
            #expect(error?.message.contains("unknown setting \"colour\"") == true)
        }
    }

    /// kontext's own secrets never reach a child, whichever way the settings were read.
    @Test func ownSecretsStayOutOfChildren() throws {
        let environment = Self.environment(config: "id_token_variable = \"JOB_TOKEN\"", [
            "KONTEXT_CLIENT_SECRET": "client-secret", "KONTEXT_ID_TOKEN": "id-token", "JOB_TOKEN": "job-token", "KEEP": "1",
        ])
        let settings = try Configuration.load(environment: environment)
        let child = childEnvironment(base: environment, removing: OwnSecrets.variables(settings: settings, platform: false),
                                     resolved: [])
        let names = Set(child.map(\.key))
        #expect(names.isDisjoint(with: ["KONTEXT_CLIENT_SECRET", "KONTEXT_ID_TOKEN", "JOB_TOKEN"]))
        #expect(names.contains("KEEP"))
        #expect(Set(OwnSecrets.present(in: environment, settings: settings).map(\.value)) == ["client-secret", "id-token", "job-token"])
    }

    /// `--mode`, `--format`, `--log-level`: the enums' cases, and a value outside them is one
    /// line naming the option.
    @Test func enumOptionsNameTheirCases() throws {
        #expect(try StartCommand.parse(["--agent", "claude", "--mode", "enforce"]).mode?.value(of: "--mode") == .enforce)
        #expect(try StartCommand.parse(["--agent", "claude"]).mode == nil)
        let bad = #expect(throws: KontextError.self) {
            try StartCommand.parse(["--agent", "claude", "--mode", "strict"]).mode?.value(of: "--mode")
        }
        #expect(bad?.description == "kontext: --mode 'strict' is not one of observe, enforce")
        #expect(try AuditCommand.Export.parse([]).format.value(of: "--format") == .jsonl)
        #expect(Choice<PolicyMode>.allValueStrings == ["observe", "enforce"])
        #expect(try BrokerServeCommand.parse(["--config", "b.toml", "--log-level", "debug"]).logLevel.value(of: "--log-level") == .debug)
    }
}

/// Start-up cost: ArgumentParser names a command without `commandName` by
/// `String(describing:)` of its type, which costs the Swift runtime a scan of every protocol
/// conformance in the binary per type, on every run, `--version` included.
@Suite struct CommandNameTests {
    @Test func everyCommandNamesItself() {
        var unnamed: [String] = []
        var pending: [any ParsableCommand.Type] = [Kontext.self]
        while let command = pending.popLast() {
            if command.configuration.commandName == nil { unnamed.append("\(command)") }
            pending += command.configuration.subcommands
        }
        #expect(unnamed.isEmpty, "commands without commandName: \(unnamed)")
    }
}
