import KontextWorkload

/// Which of SPEC section 5's modes this run is in.
public enum Mode: Sendable, Equatable {
    case local
    case remote(issuer: String)
    /// A CI job with a workload identity; it wins over an issuer (no browser, no keyring).
    case ci(platform: WorkloadToken.Platform)

    public static func detect(_ environment: [String: String]) -> Mode {
        if let platform = WorkloadIdentity.platform(settings: environment) { return .ci(platform: platform) }
        if let issuer = environment["KONTEXT_ISSUER_URL"], !issuer.isEmpty { return .remote(issuer: issuer) }
        return .local
    }
}
