import ArgumentParser
import KontextAgent
import KontextConsent
import KontextCore
import KontextHookWire
import KontextPolicy
import KontextRun

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "For people writing policy: judge a hook input, or show the layered policy.",
        subcommands: [PolicyCheckCommand.self, PolicyShowCommand.self])
}

struct PolicyCheckCommand: KontextCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Print the decision, layer, rule and risk the policy gives a hook input (read on stdin).",
        discussion: """
            Reads one hook input as the agent sends it (e.g. Claude's PreToolUse JSON) and judges \
            it with this project's layers (user, organisation when cached, project) and the \
            built-in rules, without recording anything. No credential is involved, so the \
            injected-secret guard has nothing to compare against.
            """)

    @Option(name: .long, help: ArgumentHelp("The hook event the input is for (only pre-tool is judged by policy).", valueName: "event"))
    var event: String = HookEvent.preTool.rawValue

    @Option(name: .long, help: ArgumentHelp("The agent whose hook format the input is in: \(AgentAdapters.names.joined(separator: ", ")).", valueName: "name"),
            completion: .list(AgentAdapters.names))
    var agent: String = AgentAdapters.names[0]

    func run(context: CommandContext) async throws {
        guard event == HookEvent.preTool.rawValue else {
            throw KontextError.usage("--event \(sanitized(event, limit: 40)): only pre-tool events are judged by policy",
                                     hint: "kontext policy check --event pre-tool < hook.json")
        }
        guard let adapter = AgentAdapters.named(agent) else {
            throw KontextError.usage("unknown agent '\(sanitized(agent, limit: 40))'", hint: "one of \(AgentAdapters.names.joined(separator: ", "))")
        }
        guard let input = readToEnd(0, limit: HookWire.maximumInput), !input.truncated else {
            throw KontextError.usage("the hook input on stdin is unreadable or larger than \(HookWire.maximumInput >> 20) MiB")
        }
        let call: HookInput
        do {
            call = try adapter.parse(event: .preTool, payload: input.bytes)
        } catch {
            throw KontextError.usage("the hook input is not a \(agent) pre-tool event: \(error.description)")
        }
        guard let tool = call.toolName else { throw KontextError.usage("the hook input names no tool (tool_name)") }
        let settings = try context.settings()
        let evaluator = try PolicyInspection.evaluator(settings: settings)
        let verdict = evaluator.evaluate(toolName: tool, input: call.toolInput)
        var lines = [
            "decision: \(verdict.decision.rawValue)" + (verdict.rule == nil ? " (no rule matched)" : ""),
            "layer: \(verdict.layer ?? "-")",
            "rule: \(verdict.rule ?? "-")",
            "risk: \(verdict.risk?.rawValue ?? "-")" + (verdict.riskBasis.map { " (\($0))" } ?? " (unknown tool: write unless a rule says)"),
        ]
        if let reason = verdict.reason { lines.append("reason: \(reason)") }
        if let version = evaluator.policyVersion { lines.append("policy_version: \(version)") }
        context.streams.print(lines.joined(separator: "\n"))
    }
}

struct PolicyShowCommand: KontextCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the effective layered policy: each layer's rules, and the built-in ones.",
        discussion: """
            Every layer is evaluated for each call (first match wins inside a layer); across \
            layers deny beats approve beats ask beats allow. An untrusted project's allow rules \
            are ignored.
            """)

    func run(context: CommandContext) async throws {
        let settings = try context.settings()
        let inspection = try PolicyInspection.load(settings: settings)
        var lines: [String] = []
        for layer in inspection.layers {
            var heading = "[\(layer.kind.rawValue)] " + (layer.kind == .org ? "the broker's, cached" : layer.policy.path ?? "")
            if layer.kind == .project && !layer.allowsCount { heading += " (not trusted: its allow rules are ignored; `kontext trust`)" }
            lines.append(heading)
            let summaries = layer.policy.ruleSummaries
            lines += summaries.isEmpty ? ["  (no rules)"] : summaries.map { "  " + $0 }
        }
        if inspection.layers.isEmpty { lines.append("(no user, organisation or project policy: only the built-in rules apply)") }
        lines.append("[builtin]")
        lines += [
            "  \(SecretGuard.secretInInputRule): deny  a tool input containing an injected credential",
            "  \(SecretGuard.environmentDumpRule): deny  dumping the whole environment (env, printenv, /proc/*/environ)",
            "  \(PolicyEvaluator.destructiveRule): approve  a destructive call no rule decides (enforce mode; interactive Claude asks)",
        ]
        context.streams.print(lines.joined(separator: "\n"))
    }
}

/// The layers `policy check` and `policy show` look at: those a session started here would use.
enum PolicyInspection {
    static func load(settings: Settings) throws -> (layers: [PolicyLayer], projectTrusted: Bool) {
        let directory = currentWorkingDirectory()
        let userPolicy = try Policy.locate(settings: settings, projectDirectory: directory).user
        let project = try Project.load(directory: directory, envFilePath: nil, userPolicyPath: userPolicy)
        let (layers, trusted) = try currentPolicyLayers(project: project, userPolicyPath: userPolicy, settings: settings)
        // The organisation's as last fetched (remote mode): these commands ask no server.
        return (OrganisationPolicy.cachedCopy(settings: settings)?.inserted(into: layers) ?? layers, trusted)
    }

    static func evaluator(settings: Settings) throws -> PolicyEvaluator {
        var evaluator = PolicyEvaluator(layers: PolicyLayers(try load(settings: settings).layers), secretGuard: SecretGuard(secrets: []))
        evaluator.policyVersion = OrganisationPolicy.cachedCopy(settings: settings)?.version
        return evaluator
    }
}
