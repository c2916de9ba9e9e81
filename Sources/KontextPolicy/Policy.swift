import KontextCore
import KontextPattern
// Defined with the hook wire (the agent adapters answer with it); importers of the policy keep seeing it here.
@_exported import enum KontextHookWire.PolicyDecision
@_exported import enum KontextHookWire.RiskTier

/// The outcome of evaluating one tool call, as recorded in the audit event's `decision`.
public struct PolicyVerdict: Sendable, Equatable {
    public var decision: PolicyDecision
    /// For people; never contains a secret value.
    public var reason: String?
    /// The rule that decided: its `id`, else `PATH#N` (N counts rules from 1), or
    /// `builtin:…` for the built-in guards; nil when nothing matched.
    public var rule: String?
    /// The call's risk tier (tool calls only), and what gave it: a classifier rule
    /// (`shell:rm-recursive`) or a policy rule that classifies (`user:db-tools`).
    public var risk: RiskTier?
    public var riskBasis: String?

    public init(decision: PolicyDecision, reason: String? = nil, rule: String? = nil, risk: RiskTier? = nil,
                riskBasis: String? = nil) {
        self.decision = decision
        self.reason = reason
        self.rule = rule
        self.risk = risk
        self.riskBasis = riskBasis
    }

    /// The layer that decided, from the `layer:` prefix of `rule` (`builtin` for the built-ins).
    public var layer: String? {
        guard let rule, let colon = rule.firstIndex(of: ":") else { return nil }
        return String(rule[..<colon])
    }

    /// What a call that no rule matches gets.
    public static let noMatch = PolicyVerdict(decision: .allow)
}

/// What a rule judges: the agent's tool calls (hooks, the default) or the credential proxy's
/// requests to bound hosts (`event = "egress"`, SPEC section 11). A rule judges one kind only.
public enum PolicyEvent: String, Sendable {
    case tool
    case egress
}

/// Ordered rules from a policy file (SPEC section 7): the first rule whose matchers all
/// match decides; a call no rule matches is allowed.
public struct Policy: Sendable {
    // A class so that walking the rules for each call retains one reference per rule
    // rather than copying (and reference-counting) every string and array it holds.
    final class Rule: Sendable {
        /// `id`, or `PATH#N`.
        let label: String
        /// Alternatives for the tool name; nil matches any tool.
        let tool: [Pattern]?
        let fields: [FieldMatcher]
        /// nil for a rule that only classifies (`risk` set, no `decision`).
        let decision: PolicyDecision?
        let reason: String?
        let event: PolicyEvent
        /// With a decision: patterns for the call's risk tier (`risk = "destructive"`).
        let risk: [Pattern]?
        /// Without one: the tier this rule gives the calls it matches, when the classifier
        /// does not know the tool.
        let setsRisk: RiskTier?

        init(label: String, tool: [Pattern]?, fields: [FieldMatcher], decision: PolicyDecision?, reason: String?,
             event: PolicyEvent = .tool, risk: [Pattern]? = nil, setsRisk: RiskTier? = nil) {
            self.event = event
            self.label = label
            self.tool = tool
            self.fields = fields
            self.decision = decision
            self.reason = reason
            self.risk = risk
            self.setsRisk = setsRisk
        }
    }

    /// A condition on one `tool_input` field: any of `patterns` must match its value.
    struct FieldMatcher: Sendable {
        let field: String
        let patterns: [Pattern]
    }

    let rules: [Rule]

    /// The file the rules came from, nil for `empty`.
    public let path: String?

    init(rules: [Rule], path: String?) {
        self.rules = rules
        self.path = path
    }

    /// No rules: every call is allowed.
    public static let empty = Policy(rules: [], path: nil)

    public var ruleCount: Int { rules.count }

    /// First matching rule of that event's kind wins; no match allows with `rule` nil. For
    /// egress, `toolName` is the service and `input` is `{method, host, path}`.
    /// `risk` is the call's tier, for rules that match on it (nil: such rules do not match).
    public func evaluate(toolName: String, input: JSONValue, event: PolicyEvent = .tool, risk: RiskTier? = nil) -> PolicyVerdict {
        for rule in rules where rule.event == event && rule.matches(toolName: toolName, input: input, risk: risk) {
            guard let decision = rule.decision else { continue }
            return PolicyVerdict(decision: decision, reason: rule.reason, rule: rule.label)
        }
        return .noMatch
    }

    /// The tier the first classifying rule that matches gives the call, with its label.
    public func classify(toolName: String, input: JSONValue) -> (tier: RiskTier, rule: String)? {
        for rule in rules where rule.event == .tool {
            guard let tier = rule.setsRisk, rule.matches(toolName: toolName, input: input, risk: nil) else { continue }
            return (tier, rule.label)
        }
        return nil
    }
}

extension Policy.Rule {
    func matches(toolName: String, input: JSONValue, risk riskTier: RiskTier? = nil) -> Bool {
        if let risk {
            guard let riskTier, risk.contains(where: { $0.matches(riskTier.rawValue) }) else { return false }
        }
        if let tool, !tool.contains(where: { $0.matches(toolName) }) { return false }
        for matcher in fields {
            guard let value = input[matcher.field] else { return false }  // absent field: no match
            let text = Policy.matchableText(value)
            if !matcher.patterns.contains(where: { $0.matches(text) }) { return false }
        }
        return true
    }
}

extension Policy {
    /// Strings match as themselves; any other JSON value (number, bool, null, array,
    /// object) matches as its compact JSON text, e.g. `600`, `true`, `["a","b"]`.
    static func matchableText(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return value.serialized
    }
}

extension Policy {
    /// One line per rule for people deciding whether to trust it, e.g.
    /// `no-writes: deny  tool=Bash command="touch *" (agents may not create files here)`.
    public var ruleSummaries: [String] {
        rules.map { rule in
            var parts = ["\(rule.label): " + (rule.decision?.rawValue ?? "risk=\(rule.setsRisk?.rawValue ?? "?")")]
            if rule.event != .tool { parts.append("event=\(rule.event.rawValue)") }
            if let tool = rule.tool { parts.append("tool=" + tool.map(\.source).joined(separator: ",")) }
            if let risk = rule.risk { parts.append("risk=" + risk.map { "\"\($0.source)\"" }.joined(separator: ",")) }
            for matcher in rule.fields {
                parts.append("\(matcher.field)=" + matcher.patterns.map { "\"\($0.source)\"" }.joined(separator: ","))
            }
            if let reason = rule.reason { parts.append("(\(reason))") }
            return parts.joined(separator: " ")
        }
    }
}
