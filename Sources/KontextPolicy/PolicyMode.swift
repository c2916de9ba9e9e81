import KontextCore

/// `KONTEXT_MODE` (SPEC section 3): `observe` records what would be allowed, asked or
/// denied without ever blocking; `enforce` applies it.
public enum PolicyMode: String, Sendable, CaseIterable {
    case observe, enforce

    /// `KONTEXT_MODE`, default `observe`; any other value is a usage error, since a typo
    /// must not silently turn enforcement off.
    public init(settings: Settings) throws {
        guard let value = settings.mode else {
            self = .observe
            return
        }
        guard let mode = PolicyMode(rawValue: value) else {
            throw KontextError.usage("\(Settings.Name.mode)=\(value): unknown mode", hint: "set \(Settings.Name.mode) to observe or enforce")
        }
        self = mode
    }

    /// Goes into the audit event's `decision.enforced`.
    public var enforces: Bool { self == .enforce }

    /// What the hook should tell the agent, or nil to say nothing and leave the call to the
    /// agent's own permission handling. Observe mode never changes what the agent does; in
    /// enforce mode a call that no rule matched is not blocked, and answering "allow" for it
    /// would skip the agent's own permission prompts, so it too gets no answer.
    public func agentDecision(for verdict: PolicyVerdict) -> PolicyDecision? {
        guard enforces, verdict.rule != nil else { return nil }
        return verdict.decision.forAgent
    }
}
