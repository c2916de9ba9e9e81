import KontextCore

/// What the hook sidecar consults for every tool call: the built-in credential guard first,
/// then the policy layers (user, org, project).
public struct PolicyEvaluator: Sendable {
    public var layers: PolicyLayers
    public var secretGuard: SecretGuard

    public init(layers: PolicyLayers, secretGuard: SecretGuard) {
        self.layers = layers
        self.secretGuard = secretGuard
    }

    public func evaluate(toolName: String, input: JSONValue) -> PolicyVerdict {
        secretGuard.evaluate(toolName: toolName, input: input)
            ?? layers.evaluate(toolName: toolName, input: input)
    }
}
