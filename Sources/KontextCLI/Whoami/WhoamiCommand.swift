import ArgumentParser
import Foundation
import KontextCore
import KontextKeyring
import KontextOIDC
import KontextRun

struct WhoamiCommand: AsyncParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "whoami",
        abstract: "Show who kontext acts as: subject, email, issuer and expiry (never a token).")
    @OptionGroup var diagnostics: DiagnosticOptions


    func run() async throws {
        let settings = try Configuration.settings(environment: currentEnvironment())
        guard let oidc = OIDCSettings(settings: settings) else {
            let identity = try await RunIdentity.establish(settings: settings)
            printOutput("mode:    local (no issuer configured)\nsubject: \(identity.actor.sub)")
            return
        }
        let authenticator = Authenticator(settings: oidc, store: try CredentialStores.fromEnvironment(settings))
        // Refreshed if needed, so the expiry shown is one the next command will use.
        let login = try await LoginSession.open(authenticator).login
        var lines = [
            "mode:    remote",
            "subject: \(login.subject)",
            "email:   \(login.email ?? "(none)")",
            "issuer:  \(login.issuer)",
            "client:  \(oidc.clientID)",
        ]
        if let name = login.name { lines.insert("name:    \(name)", at: 3) }
        if let expiry = login.accessExpiresAt {
            lines.append("expires: \(rfc3339(expiry)) (access token; renewed automatically\(login.refreshToken == nil ? " — no, the issuer gave no refresh token" : ""))")
        } else {
            lines.append("expires: not stated by the issuer")
        }
        printOutput(lines.joined(separator: "\n"))
    }
}

func rfc3339(_ seconds: Double) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: Date(timeIntervalSince1970: seconds))
}
