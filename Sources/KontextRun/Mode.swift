import KontextCore
import KontextWorkload

/// Which of SPEC section 5's modes this run is in.
public enum Mode: Sendable, Equatable {
    case local
    case remote(issuer: String)
    /// A CI job with a workload identity; it wins over an issuer (no browser, no keyring).
    case ci(platform: WorkloadToken.Platform)

    public static func detect(_ settings: Settings) -> Mode {
        if let platform = WorkloadIdentity.platform(settings: settings) { return .ci(platform: platform) }
        if let issuer = settings.issuerURL { return .remote(issuer: issuer) }
        return .local
    }
}
