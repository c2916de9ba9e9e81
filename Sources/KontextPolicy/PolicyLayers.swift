#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextCore

/// Where a policy came from (SPEC section 10). The layer's name prefixes the audit event's
/// `decision.rule`, so a reviewer sees who decided: `user:no-curl`, `project:.kontext/policy.toml#2`.
public enum PolicyLayerKind: String, Sendable, CaseIterable {
    /// `KONTEXT_POLICY`, else `$XDG_CONFIG_HOME/kontext/policy.toml`: the user's own rules.
    case user
    /// The organisation's rules, served by the broker in remote mode.
    case org
    /// `.kontext/policy.toml` in the project: someone else's input until the user trusts it.
    case project
}

/// One layer's rules, and whether its `allow` answers count. A repository's rules may only
/// narrow what the user allows: an untrusted project's `allow` is ignored, its `ask` and
/// `deny` always apply.
public struct PolicyLayer: Sendable {
    public var kind: PolicyLayerKind
    public var policy: Policy
    public var allowsCount: Bool

    public init(kind: PolicyLayerKind, policy: Policy, allowsCount: Bool = true) {
        self.kind = kind
        self.policy = policy
        self.allowsCount = allowsCount
    }
}

/// Every layer is evaluated (first match wins inside a layer); across layers the strictest
/// answer wins, `deny` over `ask` over `allow`, and among equals the earlier layer (user,
/// then org, then project) is the one named. A call no layer matches gets `noMatch`.
public struct PolicyLayers: Sendable {
    public var layers: [PolicyLayer]

    public init(_ layers: [PolicyLayer]) {
        self.layers = layers
    }

    public static let empty = PolicyLayers([])

    public func evaluate(toolName: String, input: JSONValue, event: PolicyEvent = .tool, risk: RiskTier? = nil) -> PolicyVerdict {
        var strictest: PolicyVerdict?
        for layer in layers {
            var verdict = layer.policy.evaluate(toolName: toolName, input: input, event: event, risk: risk)
            guard let rule = verdict.rule else { continue }
            if verdict.decision == .allow && !layer.allowsCount { continue }
            verdict.rule = layer.kind.rawValue + ":" + rule
            if strictest.map({ verdict.decision.strictness > $0.decision.strictness }) ?? true {
                strictest = verdict
            }
        }
        return strictest ?? .noMatch
    }

    /// The call's risk: the built-in classifier's when it knows the tool; otherwise the
    /// highest tier a layer's classifying rule gives it (an untrusted project's rule counts
    /// only when it raises the tier), else the classifier's default, `write`.
    public func classify(toolName: String, input: JSONValue, builtin: RiskClassification) -> RiskClassification {
        guard !builtin.isKnown else { return builtin }
        var result: RiskClassification?
        for layer in layers {
            guard let (tier, rule) = layer.policy.classify(toolName: toolName, input: input) else { continue }
            if !layer.allowsCount && tier <= builtin.tier { continue }
            if result.map({ tier > $0.tier }) ?? true {
                result = RiskClassification(tier, layer.kind.rawValue + ":" + rule)
            }
        }
        return result ?? builtin
    }
}

extension Policy {
    /// Where the user's and the project's policy files are (either may be absent):
    /// - user: `$KONTEXT_POLICY` if set (it must exist; a relative path is taken from the
    ///   project directory), else `CONFIG/kontext/policy.toml` (CONFIG is `$XDG_CONFIG_HOME`,
    ///   or `~/.config`);
    /// - project: `PROJECT/.kontext/policy.toml`.
    /// The project's file never replaces the user's: both are evaluated (`PolicyLayers`).
    public static func locate(settings: Settings, projectDirectory: String) throws -> (user: String?, project: String?) {
        let project = join(projectDirectory, ".kontext/policy.toml")
        let projectPath = fileKind(project) == S_IFREG ? project : nil
        let configDirectory = XDGDirectories(environment: settings.environment).config
        if let explicit = settings.policy {
            let path = explicit.hasPrefix("/") ? explicit : join(projectDirectory, explicit)
            guard let kind = fileKind(path) else {
                throw KontextError.usage("\(Settings.Name.policy)=\(explicit): \(String(cString: strerror(errno)))",
                                         hint: "point \(Settings.Name.policy) at an existing policy file, or unset it to use \(configDirectory)/kontext/policy.toml")
            }
            guard kind == S_IFREG else {
                throw KontextError.usage("\(Settings.Name.policy)=\(explicit): not a regular file",
                                         hint: "point \(Settings.Name.policy) at a policy TOML file")
            }
            // The same file named twice is one layer, the user's.
            return (path, projectPath.flatMap { realPath($0) == realPath(path) ? nil : $0 })
        }
        let user = join(configDirectory, "kontext/policy.toml")
        return (fileKind(user) == S_IFREG ? user : nil, projectPath)
    }
}
