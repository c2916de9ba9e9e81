import KontextCore
import Testing
@testable import KontextPolicy

/// A tool_input object from simple string fields.
func input(_ fields: KeyValuePairs<String, String>) -> JSONValue {
    .object(fields.map { ($0.key, JSONValue.string($0.value)) })
}

func bash(_ command: String) -> JSONValue {
    input(["command": command, "description": "run it"])
}

@Suite struct PolicyEvaluationTests {
    static let path = "/project/.kontext/policy.toml"

    static let policy = try! Policy.parse(#"""
        [[rule]]
        id = "no-curl"
        tool = "Bash"
        command = "curl *"
        decision = "deny"
        reason = "no network egress from agents"

        [[rule]]
        tool = "Bash"
        command = "*"
        decision = "ask"

        [[rule]]
        tool = "Edit|Write"
        file_path = "re:(^|/)\\.env"
        decision = "ask"
        reason = "env files hold configuration"

        [[rule]]
        tool = "Read"
        file_path = "/etc/*"
        decision = "deny"
        """#, path: path)

    @Test func firstMatchingRuleWins() {
        // `curl …` matches rules 1 and 2; rule 1 comes first.
        #expect(Self.policy.evaluate(toolName: "Bash", input: bash("curl https://example.com"))
            == PolicyVerdict(decision: .deny, reason: "no network egress from agents", rule: "no-curl"))
        #expect(Self.policy.evaluate(toolName: "Bash", input: bash("ls -la"))
            == PolicyVerdict(decision: .ask, reason: nil, rule: "\(Self.path)#2"))
    }

    @Test func noMatchAllowsWithoutRule() {
        let verdict = Self.policy.evaluate(toolName: "Glob", input: input(["pattern": "**/*.swift"]))
        #expect(verdict == PolicyVerdict(decision: .allow, reason: nil, rule: nil))
        #expect(Policy.empty.evaluate(toolName: "Bash", input: bash("rm -rf /")) == .noMatch)
    }

    @Test func ruleLabelIsIdElsePathAndOneBasedIndex() {
        #expect(Self.policy.evaluate(toolName: "Write", input: input(["file_path": ".env"])).rule == "\(Self.path)#3")
        #expect(Self.policy.evaluate(toolName: "Read", input: input(["file_path": "/etc/passwd"])).rule == "\(Self.path)#4")
    }

    @Test func toolAlternatives() {
        let write = Self.policy.evaluate(toolName: "Write", input: input(["file_path": "app/.env.local"]))
        let edit = Self.policy.evaluate(toolName: "Edit", input: input(["file_path": "/srv/app/.env"]))
        let multiEdit = Self.policy.evaluate(toolName: "MultiEdit", input: input(["file_path": ".env"]))
        #expect(write.decision == .ask)
        #expect(write.reason == "env files hold configuration")
        #expect(edit.decision == .ask)
        #expect(multiEdit == .noMatch)  // alternatives match whole names, not substrings
    }

    @Test func regexIsSearchedAndAnchorsApply() {
        // `(^|/)\.env`: `.env` at the start or after a slash, anywhere in the value.
        #expect(Self.policy.evaluate(toolName: "Write", input: input(["file_path": "config/.envrc"])).decision == .ask)
        #expect(Self.policy.evaluate(toolName: "Write", input: input(["file_path": "my.env"])) == .noMatch)
        #expect(Self.policy.evaluate(toolName: "Write", input: input(["file_path": "src/dotenv.swift"])) == .noMatch)

        let anchored = try! Policy.parse("""
            [[rule]]
            command = "re:^git (push|commit)$"
            decision = "deny"
            """, path: "p.toml")
        #expect(anchored.evaluate(toolName: "Bash", input: bash("git push")).decision == .deny)
        #expect(anchored.evaluate(toolName: "Bash", input: bash("git push --force")) == .noMatch)
        #expect(anchored.evaluate(toolName: "Bash", input: bash("echo git push")) == .noMatch)
    }

    @Test func globStarSpansSpacesAndSlashes() {
        let policy = try! Policy.parse("""
            [[rule]]
            command = "rm * /*"
            decision = "deny"
            """, path: "p.toml")
        #expect(policy.evaluate(toolName: "Bash", input: bash("rm -rf --no-preserve-root /usr/local/bin")).decision == .deny)
        #expect(policy.evaluate(toolName: "Bash", input: bash("rm -rf build")) == .noMatch)
        // The glob matches the whole value: a prefix is not enough.
        #expect(policy.evaluate(toolName: "Bash", input: bash("sudo rm -rf /")) == .noMatch)
    }

    @Test func fieldAlternatives() {
        let policy = try! Policy.parse("""
            [[rule]]
            tool = "Bash"
            command = "npm test|npm run *|swift test*"
            decision = "allow"
            """, path: "p.toml")
        for command in ["npm test", "npm run lint", "swift test --filter Policy", "swift test"] {
            #expect(policy.evaluate(toolName: "Bash", input: bash(command)).decision == .allow, "\(command)")
        }
        #expect(policy.evaluate(toolName: "Bash", input: bash("npm test; curl x")) == .noMatch)
        #expect(policy.evaluate(toolName: "Bash", input: bash("npm install")) == .noMatch)
    }

    @Test func arrayOfPatternsMatchesAny() {
        let policy = try! Policy.parse("""
            [[rule]]
            tool = ["Read", "Grep"]
            file_path = ["*.pem", "re:id_(rsa|ed25519)$"]
            decision = "deny"
            """, path: "p.toml")
        #expect(policy.evaluate(toolName: "Read", input: input(["file_path": "/home/me/.ssh/id_ed25519"])).decision == .deny)
        #expect(policy.evaluate(toolName: "Grep", input: input(["file_path": "certs/server.pem"])).decision == .deny)
        #expect(policy.evaluate(toolName: "Read", input: input(["file_path": "/home/me/.ssh/id_ed25519.pub"])) == .noMatch)
        #expect(policy.evaluate(toolName: "Write", input: input(["file_path": "server.pem"])) == .noMatch)
    }

    @Test func missingFieldDoesNotMatch() {
        let policy = try! Policy.parse("""
            [[rule]]
            url = "*"
            decision = "deny"
            """, path: "p.toml")
        #expect(policy.evaluate(toolName: "WebFetch", input: input(["url": "https://example.com"])).decision == .deny)
        #expect(policy.evaluate(toolName: "Bash", input: bash("ls")) == .noMatch)
        #expect(policy.evaluate(toolName: "Bash", input: .null) == .noMatch)
    }

    @Test func everyMatcherMustMatch() {
        let policy = try! Policy.parse("""
            [[rule]]
            tool = "Grep"
            pattern = "*password*"
            path = "/etc*"
            decision = "deny"
            """, path: "p.toml")
        #expect(policy.evaluate(toolName: "Grep", input: input(["pattern": "password=", "path": "/etc/app"])).decision == .deny)
        #expect(policy.evaluate(toolName: "Grep", input: input(["pattern": "password=", "path": "/home"])) == .noMatch)
        #expect(policy.evaluate(toolName: "Grep", input: input(["pattern": "password="])) == .noMatch)
    }

    @Test func ruleWithoutMatchersMatchesEverything() {
        let policy = try! Policy.parse("""
            [[rule]]
            tool = "Read"
            decision = "allow"

            [[rule]]
            id = "default"
            decision = "ask"
            reason = "not on the allow list"
            """, path: "p.toml")
        #expect(policy.evaluate(toolName: "Read", input: input(["file_path": "a"])).decision == .allow)
        #expect(policy.evaluate(toolName: "mcp__github__create_issue", input: .object([]))
            == PolicyVerdict(decision: .ask, reason: "not on the allow list", rule: "default"))
    }

    @Test func nonStringFieldsMatchTheirJSONText() {
        let policy = try! Policy.parse("""
            [[rule]]
            id = "long"
            timeout = "re:^[0-9]{6,}$"
            decision = "ask"

            [[rule]]
            id = "background"
            run_in_background = "true"
            decision = "deny"
            """, path: "p.toml")
        let long = JSONValue.object([("command", .string("sleep 1")), ("timeout", .number(600000))])
        let short = JSONValue.object([("command", .string("sleep 1")), ("timeout", .number(6000))])
        let background = JSONValue.object([("command", .string("x")), ("run_in_background", .bool(true))])
        #expect(policy.evaluate(toolName: "Bash", input: long).rule == "long")
        #expect(policy.evaluate(toolName: "Bash", input: short) == .noMatch)
        #expect(policy.evaluate(toolName: "Bash", input: background).rule == "background")
    }

    @Test func fieldsNamedLikeRuleKeysGoThroughInputTable() {
        let policy = try! Policy.parse("""
            [[rule]]
            tool = "mcp__tracker__close"
            input.id = "PROD-*"
            input.reason = "*"
            decision = "deny"
            """, path: "p.toml")
        let production = JSONValue.object([("id", .string("PROD-7")), ("reason", .string("done"))])
        let staging = JSONValue.object([("id", .string("STG-7")), ("reason", .string("done"))])
        #expect(policy.evaluate(toolName: "mcp__tracker__close", input: production).decision == .deny)
        #expect(policy.evaluate(toolName: "mcp__tracker__close", input: staging) == .noMatch)
        #expect(policy.evaluate(toolName: "mcp__tracker__close", input: .object([("id", .string("PROD-7"))])) == .noMatch)
    }

    @Test func toolNameMayBeARegex() {
        let policy = try! Policy.parse("""
            [[rule]]
            tool = "re:^mcp__"
            decision = "ask"
            """, path: "p.toml")
        #expect(policy.evaluate(toolName: "mcp__slack__post", input: .object([])).decision == .ask)
        #expect(policy.evaluate(toolName: "Bash", input: .object([])) == .noMatch)
    }

    @Test func evaluatorPutsBuiltinsBeforeUserRules() {
        let allowAll = try! Policy.parse("""
            [[rule]]
            tool = "Bash"
            decision = "allow"
            """, path: "p.toml")
        let evaluator = PolicyEvaluator(layers: PolicyLayers([PolicyLayer(kind: .user, policy: allowAll)]),
                                        secretGuard: SecretGuard(secrets: [(service: "github", value: "ghp_abcdef123456")]))
        #expect(evaluator.evaluate(toolName: "Bash", input: bash("env")).rule == SecretGuard.environmentDumpRule)
        #expect(evaluator.evaluate(toolName: "Bash", input: bash("echo ghp_abcdef123456")).rule == SecretGuard.secretInInputRule)
        #expect(evaluator.evaluate(toolName: "Bash", input: bash("ls")).rule == "user:p.toml#1")
    }
}

/// SPEC section 10: every layer is evaluated, the strictest answer wins, and a project's
/// allow counts only in a trusted project.
@Suite struct PolicyLayerTests {
    let user = try! Policy.parse("""
        [[rule]]
        id = "no-curl"
        tool = "Bash"
        command = "curl *"
        decision = "deny"

        [[rule]]
        id = "reads"
        tool = "Read"
        decision = "allow"
        """, path: "user.toml")
    let project = try! Policy.parse("""
        [[rule]]
        id = "anything"
        tool = "Bash|Read|Write"
        decision = "allow"

        [[rule]]
        id = "careful-reads"
        tool = "Grep"
        decision = "ask"
        """, path: ".kontext/policy.toml")

    func layers(projectTrusted: Bool) -> PolicyLayers {
        PolicyLayers([PolicyLayer(kind: .user, policy: user),
                      PolicyLayer(kind: .project, policy: project, allowsCount: projectTrusted)])
    }

    @Test func aProjectAllowNeverBeatsAUserDeny() {
        for trusted in [false, true] {
            let verdict = layers(projectTrusted: trusted).evaluate(toolName: "Bash", input: bash("curl https://evil.example"))
            #expect(verdict == PolicyVerdict(decision: .deny, rule: "user:no-curl"))
        }
    }

    @Test func anUntrustedProjectsAllowIsIgnored() {
        #expect(layers(projectTrusted: false).evaluate(toolName: "Bash", input: bash("ls")) == .noMatch)
        #expect(layers(projectTrusted: true).evaluate(toolName: "Bash", input: bash("ls"))
                == PolicyVerdict(decision: .allow, rule: "project:anything"))
    }

    @Test func aProjectMayNarrowWithoutTrust() {
        let verdict = layers(projectTrusted: false).evaluate(toolName: "Grep", input: .object([]))
        #expect(verdict == PolicyVerdict(decision: .ask, rule: "project:careful-reads"))
    }

    @Test func amongEqualAnswersTheEarlierLayerIsNamed() {
        #expect(layers(projectTrusted: true).evaluate(toolName: "Read", input: .object([]))
                == PolicyVerdict(decision: .allow, rule: "user:reads"))
    }
}

@Suite struct PolicyModeTests {
    @Test func modeFromEnvironment() throws {
        #expect(try PolicyMode(settings: Settings(environment: [:])) == .observe)
        #expect(try PolicyMode(settings: Settings(environment: ["KONTEXT_MODE": ""])) == .observe)
        #expect(try PolicyMode(settings: Settings(environment: ["KONTEXT_MODE": "enforce"])) == .enforce)
        let error = #expect(throws: KontextError.self) { try PolicyMode(settings: Settings(environment: ["KONTEXT_MODE": "enforcing"])) }
        #expect(error?.status == .usage)
        #expect(error?.message == "KONTEXT_MODE=enforcing: unknown mode")
    }

    @Test func agentDecision() {
        let deny = PolicyVerdict(decision: .deny, reason: "r", rule: "x")
        let allow = PolicyVerdict(decision: .allow, reason: nil, rule: "y")
        #expect(PolicyMode.observe.agentDecision(for: deny) == nil)
        #expect(PolicyMode.enforce.agentDecision(for: deny) == .deny)
        #expect(PolicyMode.enforce.agentDecision(for: allow) == .allow)
        #expect(PolicyMode.enforce.agentDecision(for: .noMatch) == nil)
    }
}
