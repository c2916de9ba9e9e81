import ArgumentParser
import KontextCore
import KontextKeyring
import KontextOIDC
import KontextRun

struct LogoutCommand: KontextCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "Revoke the login at the issuer (RFC 7009, when it offers revocation) and delete it from the keyring.")
    @OptionGroup var diagnostics: DiagnosticOptions


    func run(context: CommandContext) async throws {
        let settings = try context.settings()
        let oidc = try remoteSettings(settings, command: "logout")
        let authenticator = Authenticator(settings: oidc, store: try context.credentialStore(settings))
        guard let login = try authenticator.load() else {
            context.streams.printError("kontext: not logged in to \(oidc.issuer); nothing to do")
            return
        }
        // The issuer may have moved its endpoints since login: ask again, else use the stored one.
        let metadata = try? await IssuerMetadata.discover(issuer: oidc.issuer, http: context.httpClient(settings), allowHTTP: oidc.allowHTTP)
        var outcome = "the issuer offers no revocation endpoint, so the tokens were only deleted here"
        if let endpoint = metadata?.revocationEndpoint ?? login.revocationEndpoint {
            var problems: [String] = []
            // Revoking the refresh token ends the grant; the access token is revoked too for
            // issuers that keep them independent.
            if let refresh = login.refreshToken,
               let problem = await authenticator.client.revoke(endpoint, token: refresh, hint: "refresh_token") {
                problems.append(problem)
            }
            if let problem = await authenticator.client.revoke(endpoint, token: login.accessToken, hint: "access_token") {
                problems.append(problem)
            }
            outcome = problems.isEmpty ? "tokens revoked at the issuer"
                : "revocation failed (\(problems[0])); the tokens were deleted here and expire on their own"
        }
        try authenticator.forget()
        context.streams.printError("kontext: logged out of \(login.issuer): \(outcome)")
    }
}
