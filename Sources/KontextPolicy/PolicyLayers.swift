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

    public func evaluate(toolName: String, input: JSONValue, event: PolicyEvent = .tool) -> PolicyVerdict {
        var strictest: PolicyVerdict?
        for layer in layers {
            var verdict = layer.policy.evaluate(toolName: toolName, input: input, event: event)
            guard let rule = verdict.rule else { continue }
            if verdict.decision == .allow && !layer.allowsCount { continue }
            verdict.rule = layer.kind.rawValue + ":" + rule
            if strictest.map({ verdict.decision.strictness > $0.decision.strictness }) ?? true {
                strictest = verdict
            }
        }
        return strictest ?? .noMatch
    }
}

extension PolicyDecision {
    /// deny > ask > allow.
    var strictness: Int {
        switch self {
        case .allow: 0
        case .ask: 1
        case .deny: 2
        }
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
