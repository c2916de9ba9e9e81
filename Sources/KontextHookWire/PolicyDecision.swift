/// What a policy decides for one tool call. It sits beside the hook event because the agent
/// adapters answer hooks with it, and they must not pull in the policy loader (TOMLKit).
public enum PolicyDecision: String, Sendable, CaseIterable {
    case allow, ask, deny
}
