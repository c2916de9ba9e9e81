/// The variables `kontext start` sets for the agent and its hooks. The `kontext` front reads
/// them without KontextCore, and kontext-cli both sets and reads them: named once here, the
/// lowest module both link.
public enum SessionVariable {
    public static let sessionID = "KONTEXT_SESSION_ID"
    /// The session's Unix socket, where the hook finds the sidecar.
    public static let socket = "KONTEXT_SOCKET"
    /// `observe` or `enforce`: also the user's setting (SPEC section 3), which the session
    /// passes on as it decided it.
    public static let mode = "KONTEXT_MODE"
}
