import ArgumentParser
import KontextAudit
import KontextCore
import KontextKeyring
import KontextOIDC
import KontextRun
import KontextWorkload

struct WhoamiCommand: KontextCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "whoami",
        abstract: "Show who kontext acts as: subject, email, issuer and expiry (never a token).")
    @OptionGroup var diagnostics: DiagnosticOptions
    @OptionGroup var identity: IdentityOptions

    func run(context: CommandContext) async throws {
        let settings = try identity.settings(context)
        if let workload = try await WorkloadIdentity.fetch(settings: settings) {
            // The claims are who the job is; the token itself is never shown.
            var lines = ["mode:     ci", "platform: \(workload.platform.rawValue)", "claims:"]
            for (name, value) in workload.claims {
                lines.append("  \(sanitized(name)): \(sanitized(value.stringValue ?? value.serialized))")
            }
            context.streams.print(lines.joined(separator: "\n"))
            return
        }
        guard let oidc = OIDCSettings(settings: settings) else {
            let local = try await RunIdentity.establish(settings: settings)
            context.streams.print("mode:    local (no issuer configured)\nsubject: \(local.actor.sub ?? "?")")
            return
        }
        let authenticator = Authenticator(settings: oidc, store: try context.credentialStore(settings))
        // Refreshed if needed, so the expiry shown is one the next command will use.
        let login = try await LoginSession.open(authenticator).login
        // The claims are the issuer's text: shown, never acted on by the terminal.
        var lines = [
            "mode:    remote",
            "subject: \(sanitized(login.subject))",
            "email:   \(login.email.map { sanitized($0) } ?? "(none)")",
            "issuer:  \(login.issuer)",
            "client:  \(oidc.clientID)",
        ]
        if let name = login.name { lines.insert("name:    \(sanitized(name))", at: 3) }
        if let expiry = login.accessExpiresAt {
            lines.append("expires: \(AuditTime.format(epochSeconds: expiry)) (access token; renewed automatically\(login.refreshToken == nil ? " — no, the issuer gave no refresh token" : ""))")
        } else {
            lines.append("expires: not stated by the issuer")
        }
        context.streams.print(lines.joined(separator: "\n"))
    }
}
