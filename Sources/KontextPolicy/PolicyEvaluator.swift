import KontextCore

/// What the hook sidecar consults for every tool call: the built-in credential guard first,
/// then the policy layers (user, org, project).
public struct PolicyEvaluator: Sendable {
    public var layers: PolicyLayers
    public var secretGuard: SecretGuard
    /// What a destructive call no rule decides gets: `approve` (headless sessions), `ask`
    /// (an interactive agent asks its user itself), or nil to leave it alone.
    public var destructiveDefault: PolicyDecision?

    public static let destructiveRule = "builtin:destructive"
    /// The organisation policy's version in force (its content hash), stamped on events.
    public var policyVersion: String?

    public init(layers: PolicyLayers, secretGuard: SecretGuard, destructiveDefault: PolicyDecision? = .approve) {
        self.layers = layers
        self.secretGuard = secretGuard
        self.destructiveDefault = destructiveDefault
    }

    /// The built-in guard, then the layers (rules may match the call's risk), then the
    /// destructive default; the verdict carries the risk either way.
    public func evaluate(toolName: String, input: JSONValue) -> PolicyVerdict {
        let risk = layers.classify(toolName: toolName, input: input,
                                   builtin: RiskClassifier.classify(toolName: toolName, input: input))
        var verdict = secretGuard.evaluate(toolName: toolName, input: input)
            ?? layers.evaluate(toolName: toolName, input: input, risk: risk.tier)
        if verdict.rule == nil, risk.tier == .destructive, let destructiveDefault {
            verdict = PolicyVerdict(decision: destructiveDefault,
                                    reason: "a destructive call (\(risk.basis ?? "destructive")) needs a person's approval",
                                    rule: Self.destructiveRule)
        }
        verdict.risk = risk.tier
        verdict.riskBasis = risk.basis
        return verdict
    }

    /// A request the credential proxy is about to send to a host bound to `service`: only
    /// `event = "egress"` rules judge it (the secret guard is for tool inputs).
    public func evaluateEgress(service: String, method: String, host: String, path: String) -> PolicyVerdict {
        layers.evaluate(toolName: service, input: .object([("method", .string(method)), ("host", .string(host)),
                                                           ("path", .string(path))]), event: .egress)
    }
}
