import KontextAudit
import KontextCore
import KontextKeyring
import KontextOIDC
import KontextWorkload
import KontextAuditShipping

/// Who a run acts as: the OS user in local mode, the logged-in user in remote mode.
public struct RunIdentity: Sendable {
    /// The user's login in remote mode.
    public let login: LoginSession?
    /// The job's identity in CI mode.
    public let workload: WorkloadToken?
    public let actor: AuditActor
    /// Who the audit backend sees (the login's or the job's issuer and subject); nil in
    /// local mode, whose audit is never shipped.
    public var principal: (issuer: String, subject: String)? = nil

    /// CI mode needs a workload token, remote mode a login (exit 3 without one); local mode
    /// needs nothing.
    public static func establish(settings: Settings) async throws -> RunIdentity {
        if let workload = try await WorkloadIdentity.fetch(settings: settings) {
            let subject = workload.claim("sub") ?? "ci:\(workload.platform.rawValue)"
            return RunIdentity(login: nil, workload: workload, actor: AuditActor(sub: subject, email: nil),
                               principal: (workload.claim("iss") ?? "ci:\(workload.platform.rawValue)", subject))
        }
        guard let oidc = OIDCSettings(settings: settings) else {
            return RunIdentity(login: nil, workload: nil, actor: localActor())
        }
        let store = try CredentialStores.open(settings: settings)
        let session = try await LoginSession.open(Authenticator(settings: oidc, store: store))
        let login = await session.login
        return RunIdentity(login: session, workload: nil, actor: AuditActor(sub: login.subject, email: login.email),
                           principal: (login.issuer, login.subject))
    }

    /// The bearer token for the audit backend: the login's (renewed on refusal) or the job's.
    public var bearer: BearerSource? {
        if let login {
            return BearerSource(current: { try await login.accessToken() }, renew: { try await login.renew(rejected: $0) })
        }
        if let token = workload?.token {
            return BearerSource(current: { token }, renew: { _ in
                throw KontextError(.authentication, "the audit backend refused the job's workload token")
            })
        }
        return nil
    }
}
