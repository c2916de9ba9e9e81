import ArgumentParser
import KontextCore
import KontextKeyring
import KontextOIDC
import KontextRun

struct LoginCommand: KontextCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Sign in to the OIDC issuer (remote mode) and keep the login in the OS keyring.",
        discussion: """
            Uses Authorization Code with PKCE and a redirect to a one-time listener on 127.0.0.1 \
            (RFC 8252), or with --device the Device Authorization Grant (RFC 8628) for machines \
            without a browser. The refresh token is kept in the OS keyring, keyed by issuer and \
            client id; no token is ever printed. Needs KONTEXT_ISSUER_URL.
            """)
    @OptionGroup var diagnostics: DiagnosticOptions


    @Flag(name: .long, help: "Use the device flow: print a URL and a code to approve from any device.")
    var device = false

    @Flag(name: .long, help: "Print the sign-in URL instead of opening a browser.")
    var noBrowser = false

    @Option(name: .long, help: ArgumentHelp("How long to wait for the browser, in seconds.", valueName: "seconds"))
    var timeout: Double = 300

    func run(context: CommandContext) async throws {
        let settings = try context.settings()
        let oidc = try remoteSettings(settings, command: "login")
        let store = try context.credentialStore(settings)
        let metadata = try await IssuerMetadata.discover(issuer: oidc.issuer, http: context.httpClient(settings), allowHTTP: oidc.allowHTTP)
        let result = device
            ? try await DeviceLogin(settings: oidc, metadata: metadata).run()
            : try await AuthorizationCodeLogin(settings: oidc, metadata: metadata, openBrowser: !noBrowser,
                                               timeout: timeout, environment: context.environment).run()
        let login = try await Authenticator(settings: oidc, store: store)
            .complete(tokens: result.tokens, identity: result.identity, metadata: metadata)
        let who = sanitized(login.email.map { "\(login.subject) (\($0))" } ?? login.subject)
        context.streams.printError("kontext: logged in to \(login.issuer) as \(who)\(login.refreshToken == nil ? "; the issuer gave no refresh token, so this login ends when its access token expires" : "")")
    }
}

/// Remote mode's settings, or a usage error saying how to configure them.
func remoteSettings(_ settings: Settings, command: String) throws -> OIDCSettings {
    guard let oidc = OIDCSettings(settings: settings) else {
        throw KontextError.usage("`kontext \(command)` needs an issuer: KONTEXT_ISSUER_URL is not set (local mode)",
                                 hint: "set KONTEXT_ISSUER_URL (and KONTEXT_CLIENT_ID), or `issuer_url` in \(Configuration.path(environment: settings.environment))")
    }
    return oidc
}
