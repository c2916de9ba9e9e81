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

    /// A request the credential proxy is about to send to a host bound to `service`: only
    /// `event = "egress"` rules judge it (the secret guard is for tool inputs).
    public func evaluateEgress(service: String, method: String, host: String, path: String) -> PolicyVerdict {
        layers.evaluate(toolName: service, input: .object([("method", .string(method)), ("host", .string(host)),
                                                           ("path", .string(path))]), event: .egress)
    }
}
