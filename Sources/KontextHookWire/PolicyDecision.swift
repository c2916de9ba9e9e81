/// What a policy decides for one tool call. It sits beside the hook event because the agent
/// adapters answer hooks with it, and they must not pull in the policy loader (TOMLKit).
/// `approve` denies the call now and opens an approval: the identical call passes once after
/// the user runs `kontext approve ID` (SPEC section 12). Agents never see it (see
/// `PolicyDecision.forAgent`).
public enum PolicyDecision: String, Sendable, CaseIterable {
    case allow, ask, deny, approve

    /// What the agent is told: an approval is a denial until it is granted.
    public var forAgent: PolicyDecision { self == .approve ? .deny : self }

    /// deny > approve > ask > allow: across policy layers the strictest answer wins.
    public var strictness: Int {
        switch self {
        case .allow: 0
        case .ask: 1
        case .approve: 2
        case .deny: 3
        }
    }
}

/// How much harm a tool call can do (SPEC section 12): `read` looks, `write` changes the
/// workspace, `destructive` deletes, force-pushes, drops, destroys, truncates, revokes, or
/// changes permissions or billing. Ordered by harm.
public enum RiskTier: String, Sendable, CaseIterable, Comparable {
    case read, write, destructive

    public static func < (lhs: RiskTier, rhs: RiskTier) -> Bool { lhs.rank < rhs.rank }

    private var rank: Int {
        switch self {
        case .read: 0
        case .write: 1
        case .destructive: 2
        }
    }
}
