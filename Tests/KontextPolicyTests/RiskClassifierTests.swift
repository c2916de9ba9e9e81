import Foundation
import KontextCore
import Testing
@testable import KontextPolicy

/// SPEC section 12's classifier over real commands and tool names. The README's table of
/// rules is checked against `RiskClassifier.rules`, and every rule named here is in it.
@Suite struct RiskClassifierTests {
    /// (tool, command or input, expected tier, expected rule)
    static let shellCases: [(String, RiskTier, String)] = [
        // read
        ("ls -la", .read, "shell:read-only"),
        ("cat README.md | head -20", .read, "shell:read-only"),
        ("grep -rn TODO Sources/", .read, "shell:read-only"),
        ("rg --files | wc -l", .read, "shell:read-only"),
        ("git status", .read, "shell:read-only"),
        ("git log --oneline -10", .read, "shell:read-only"),
        ("git diff HEAD~1 -- Sources", .read, "shell:read-only"),
        ("git -C /repo show HEAD:Package.swift", .read, "shell:read-only"),
        ("find . -name '*.swift' -newer Package.swift", .read, "shell:read-only"),
        ("echo hello > /dev/null", .read, "shell:read-only"),
        ("kubectl get pods -n prod", .read, "shell:read-only"),
        ("aws s3 ls s3://bucket/", .read, "shell:read-only"),
        ("terraform plan -out tf.plan", .read, "shell:read-only"),
        ("docker ps -a", .read, "shell:read-only"),
        ("gh pr list --state open", .read, "shell:read-only"),
        ("printf %s \"$GITHUB_TOKEN\" | sha256sum", .read, "shell:read-only"),
        // write
        ("touch notes.txt", .write, "shell:command"),
        ("echo hi > notes.txt", .write, "shell:redirect"),
        ("rm build/output.o", .write, "shell:command"),
        ("mkdir -p build && swift build", .write, "shell:command"),
        ("git commit -am 'fix the parser'", .write, "shell:command"),
        ("git push origin feature", .write, "shell:git-push"),
        ("git reset HEAD~1", .write, "shell:command"),
        ("npm install", .write, "shell:command"),
        ("chmod +x scripts/test", .write, "shell:command"),
        ("sed -i 's/a/b/' file.txt", .write, "shell:sed-in-place"),
        ("kubectl apply -f deploy.yaml", .write, "shell:command"),
        ("terraform apply -auto-approve", .write, "shell:command"),
        ("curl -X POST https://api.example.com/items -d @item.json", .write, "shell:command"),
        ("sudo apt-get install -y jq", .write, "shell:command"),
        ("sudo ls /root", .write, "shell:sudo"),
        // destructive
        ("rm -rf build", .destructive, "shell:rm-recursive"),
        ("rm -r node_modules", .destructive, "shell:rm-recursive"),
        ("rm --recursive --force dist", .destructive, "shell:rm-recursive"),
        ("sudo rm -fR /var/lib/app", .destructive, "shell:rm-recursive"),
        ("cd /tmp && rm -rf *", .destructive, "shell:rm-recursive"),
        ("bash -c 'rm -rf ~/projects'", .destructive, "shell:rm-recursive"),
        ("find . -name '*.log' -delete", .destructive, "shell:find-delete"),
        ("find /data -type f -exec rm -rf {} +", .destructive, "shell:find-delete"),
        ("git push --force origin main", .destructive, "shell:git-force-push"),
        ("git push -f", .destructive, "shell:git-force-push"),
        ("git push origin +main", .destructive, "shell:git-force-push"),
        ("git push origin --delete old-branch", .destructive, "shell:git-force-push"),
        ("git push --force-with-lease origin feature", .destructive, "shell:git-force-push"),
        ("git reset --hard origin/main", .destructive, "shell:git-reset-hard"),
        ("git clean -fdx", .destructive, "shell:git-clean"),
        ("git branch -D release-1.0", .destructive, "shell:git-branch-delete"),
        ("git stash drop", .destructive, "shell:git-stash-drop"),
        ("git filter-branch --tree-filter 'rm secrets' HEAD", .destructive, "shell:git-rewrite-history"),
        ("psql -c 'DROP TABLE users'", .destructive, "sql:drop"),
        ("mysql -e \"drop database shop\"", .destructive, "sql:drop"),
        ("psql \"$DATABASE_URL\" -c 'TRUNCATE orders'", .destructive, "sql:truncate"),
        ("sqlite3 app.db 'DELETE FROM sessions'", .destructive, "sql:delete-all"),
        ("psql -c \"REVOKE ALL ON DATABASE app FROM analyst\"", .destructive, "sql:grant-revoke"),
        ("dropdb staging", .destructive, "shell:wipe"),
        ("truncate -s 0 /var/log/app.log", .destructive, "shell:wipe"),
        ("terraform destroy -auto-approve", .destructive, "shell:iac-destroy"),
        ("terraform apply -destroy", .destructive, "shell:iac-destroy"),
        ("pulumi destroy --yes", .destructive, "shell:iac-destroy"),
        ("kubectl delete namespace prod", .destructive, "shell:kubectl-delete"),
        ("kubectl -n prod delete pod api-0", .destructive, "shell:kubectl-delete"),
        ("helm uninstall api", .destructive, "shell:kubectl-delete"),
        ("aws s3 rm s3://bucket --recursive", .destructive, "shell:cloud-delete"),
        ("aws ec2 terminate-instances --instance-ids i-123", .destructive, "shell:cloud-delete"),
        ("aws iam delete-user --user-name bob", .destructive, "shell:cloud-delete"),
        ("aws iam attach-user-policy --user-name bob --policy-arn arn:aws:iam::aws:policy/AdministratorAccess", .destructive, "shell:cloud-delete"),
        ("gcloud projects delete my-project", .destructive, "shell:cloud-delete"),
        ("gcloud projects add-iam-policy-binding p --member user:x --role roles/owner", .destructive, "shell:cloud-delete"),
        ("gcloud billing projects unlink my-project", .destructive, "shell:cloud-delete"),
        ("az group delete --name rg-prod", .destructive, "shell:cloud-delete"),
        ("docker system prune -af", .destructive, "shell:container-delete"),
        ("docker compose down -v", .destructive, "shell:container-delete"),
        ("gh repo delete org/repo --yes", .destructive, "shell:gh-delete"),
        ("gh api -X DELETE repos/org/repo/hooks/1", .destructive, "shell:gh-delete"),
        ("curl -X DELETE https://api.example.com/items/7", .destructive, "shell:http-delete"),
        ("chmod -R 777 /srv", .destructive, "shell:permissions"),
        ("chown -R nobody /home/dev", .destructive, "shell:permissions"),
        ("npm unpublish my-pkg@1.0.0", .destructive, "shell:package-unpublish"),
        ("redis-cli FLUSHALL", .destructive, "shell:redis-flush"),
        ("dd if=/dev/zero of=/dev/sda bs=1M", .destructive, "shell:dd-device"),
        ("echo y | xargs rm -rf", .destructive, "shell:rm-recursive"),
        ("timeout 30 kubectl delete deployment api", .destructive, "shell:kubectl-delete"),
    ]

    static let toolCases: [(String, JSONValue, RiskTier, String?)] = [
        ("Read", input(["file_path": "/p/README.md"]), .read, "tool:read-only"),
        ("Glob", input(["pattern": "**/*.swift"]), .read, "tool:read-only"),
        ("Grep", input(["pattern": "TODO"]), .read, "tool:read-only"),
        ("LS", input(["path": "/p"]), .read, "tool:read-only"),
        ("WebSearch", input(["query": "swift regex"]), .read, "tool:read-only"),
        ("WebFetch", input(["url": "https://example.com"]), .read, "tool:read-only"),
        ("Edit", input(["file_path": "/p/a.swift", "old_string": "a", "new_string": "b"]), .write, "tool:edit"),
        ("Write", input(["file_path": "/p/new.txt", "content": "x"]), .write, "tool:edit"),
        ("MultiEdit", input(["file_path": "/p/a.swift"]), .write, "tool:edit"),
        ("NotebookEdit", input(["notebook_path": "/p/n.ipynb"]), .write, "tool:edit"),
        ("mcp__github__delete_repository", input(["repo": "org/x"]), .destructive, "mcp:delete"),
        ("mcp__postgres__drop_table", input(["table": "users"]), .destructive, "mcp:drop"),
        ("mcp__linear__removeIssueLabel", input(["id": "1"]), .destructive, "mcp:remove"),
        ("mcp__okta__revoke_session", input(["user": "bob"]), .destructive, "mcp:revoke"),
        ("mcp__stripe__cancel_subscription", input(["id": "sub_1"]), .destructive, "mcp:cancel"),
        ("mcp__github__update_collaborator_permissions", input(["user": "bob"]), .destructive, "mcp:permissions-or-billing"),
        ("mcp__db__run_query", input(["sql": "DROP TABLE orders"]), .destructive, "sql:drop"),
        ("mcp__db__query", input(["sql": "select * from orders where id = 1"]), .read, "mcp:read-verb"),
        ("mcp__github__get_issue", input(["number": "7"]), .read, "mcp:read-verb"),
        ("mcp__slack__list_channels", .object([]), .read, "mcp:read-verb"),
        ("mcp__notion__search", input(["query": "roadmap"]), .read, "mcp:read-verb"),
        ("mcp__github__create_pull_request", input(["title": "x"]), .write, "mcp:write-verb"),
        ("mcp__slack__post_message", input(["text": "hi"]), .write, "mcp:write-verb"),
        ("mcp__acme__frobnicate", input(["x": "y"]), .write, nil),
        ("SomeNewTool", input(["x": "y"]), .write, nil),
    ]

    @Test func atLeastSixtyRealCommandsAndToolNames() {
        #expect(Self.shellCases.count + Self.toolCases.count >= 60)
    }

    @Test func shellCommands() {
        for (command, tier, rule) in Self.shellCases {
            let classification = RiskClassifier.classify(toolName: "Bash", input: bash(command))
            #expect(classification == RiskClassification(tier, rule), "\(command)")
        }
    }

    @Test func toolNames() {
        for (tool, toolInput, tier, rule) in Self.toolCases {
            #expect(RiskClassifier.classify(toolName: tool, input: toolInput) == RiskClassification(tier, rule), "\(tool)")
        }
    }

    /// Codex sends its shell call as an argv array under `command`.
    @Test func argvArraysAreJudgedLikeScripts() {
        let argv = JSONValue.object([("command", .array([.string("bash"), .string("-lc"), .string("rm -rf build")]))])
        #expect(RiskClassifier.classify(toolName: "Bash", input: argv).tier == .destructive)
    }

    /// The README lists every rule by name with its tier, and every rule the examples above
    /// expect exists in the list.
    @Test func readmeListsEveryRule() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let names = Set(RiskClassifier.rules.map(\.name))
        for rule in RiskClassifier.rules {
            #expect(readme.contains("| `\(rule.name)` | \(rule.tier.rawValue) |"), "README lacks the row of \(rule.name)")
        }
        let expected = Set(Self.shellCases.map(\.2) + Self.toolCases.compactMap(\.3))
        for name in expected where !names.contains(name) && !name.hasPrefix("mcp:") {
            Issue.record("\(name) is not in RiskClassifier.rules")
        }
    }

    // MARK: Policy rules and risk

    @Test func rulesMatchRiskAndClassifyUnknownTools() throws {
        let policy = try Policy.parse("""
            [[rule]]
            id = "acme-tools"
            tool = "mcp__acme__*"
            risk = "destructive"

            [[rule]]
            id = "destructive-needs-approval"
            risk = "destructive"
            decision = "approve"
            reason = "a person approves destructive calls"
            """, path: "user.toml")
        let evaluator = PolicyEvaluator(layers: PolicyLayers([PolicyLayer(kind: .user, policy: policy)]),
                                        secretGuard: SecretGuard(secrets: []), destructiveDefault: nil)
        let frob = evaluator.evaluate(toolName: "mcp__acme__frobnicate", input: input(["x": "y"]))
        #expect(frob.risk == .destructive && frob.riskBasis == "user:acme-tools")
        #expect(frob.decision == .approve && frob.rule == "user:destructive-needs-approval")
        // A known tool keeps the classifier's tier: a rule cannot call `rm -rf` harmless.
        let known = evaluator.evaluate(toolName: "Bash", input: bash("ls"))
        #expect(known.risk == .read && known.rule == nil)
        let rm = evaluator.evaluate(toolName: "Bash", input: bash("rm -rf build"))
        #expect(rm.decision == .approve && rm.risk == .destructive)
    }

    @Test func destructiveCallsNoRuleDecidesNeedApprovalByDefault() {
        let evaluator = PolicyEvaluator(layers: .empty, secretGuard: SecretGuard(secrets: []))
        let rm = evaluator.evaluate(toolName: "Bash", input: bash("git push --force"))
        #expect(rm.decision == .approve && rm.rule == PolicyEvaluator.destructiveRule && rm.risk == .destructive)
        let edit = evaluator.evaluate(toolName: "Edit", input: input(["file_path": "a"]))
        #expect(edit.decision == .allow && edit.rule == nil && edit.risk == .write)
    }

    /// Across layers deny beats approve beats ask; a user allow decides a destructive call.
    @Test func approveRanksBetweenAskAndDeny() throws {
        let user = try Policy.parse("""
            [[rule]]
            tool = "Bash"
            command = "rm -rf build"
            decision = "allow"
            """, path: "u")
        let project = try Policy.parse("""
            [[rule]]
            risk = "destructive"
            decision = "approve"

            [[rule]]
            tool = "Bash"
            decision = "ask"
            """, path: "p")
        let layers = PolicyLayers([PolicyLayer(kind: .user, policy: user), PolicyLayer(kind: .project, policy: project)])
        let verdict = PolicyEvaluator(layers: layers, secretGuard: SecretGuard(secrets: [])).evaluate(toolName: "Bash", input: bash("rm -rf build"))
        #expect(verdict.decision == .approve && verdict.rule == "project:p#1")
        let userOnly = PolicyEvaluator(layers: PolicyLayers([PolicyLayer(kind: .user, policy: user)]), secretGuard: SecretGuard(secrets: []))
        #expect(userOnly.evaluate(toolName: "Bash", input: bash("rm -rf build")).decision == .allow)
    }

    @Test func aRiskWithoutDecisionMustBeATier() {
        #expect(throws: KontextError.self) {
            try Policy.parse("[[rule]]\ntool = \"mcp__x__*\"\nrisk = \"scary\"\n", path: "p")
        }
    }
}
