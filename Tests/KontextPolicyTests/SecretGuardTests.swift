import KontextCore
import Testing
@testable import KontextPolicy

@Suite struct SecretGuardTests {
    static let githubToken = "ghp_Z9yX8wV7uT6sR5qP4oN3"
    static let guard_ = SecretGuard(secrets: [
        (service: "github", value: githubToken),
        (service: "openai", value: "sk-proj-0123456789abcdef"),
        (service: "unused", value: ""),
    ])

    func verdict(_ tool: String, _ input: JSONValue) -> PolicyVerdict? {
        Self.guard_.evaluate(toolName: tool, input: input)
    }

    @Test func secretInNestedStringIsDeniedWithoutRevealingIt() throws {
        let nested = try JSONValue.parse("""
            {"url":"https://api.example.com","headers":[{"name":"Authorization","value":"token \(Self.githubToken)"}]}
            """)
        let result = try #require(verdict("mcp__http__request", nested))
        #expect(result == PolicyVerdict(decision: .deny,
                                        reason: "tool input contains the injected github credential",
                                        rule: "builtin:secret-in-input"))
        #expect(result.reason?.contains(Self.githubToken) == false)
        #expect(result.rule?.contains(Self.githubToken) == false)
    }

    @Test func secretInABashCommandOrAKey() throws {
        #expect(verdict("Bash", bash("curl -H 'Authorization: Bearer sk-proj-0123456789abcdef' https://x"))?.reason
            == "tool input contains the injected openai credential")
        #expect(verdict("Write", .object([(Self.githubToken, .string("x"))]))?.rule == SecretGuard.secretInInputRule)
        // Part of a secret is not the secret.
        #expect(verdict("Bash", bash("echo ghp_Z9yX8wV7")) == nil)
    }

    @Test func secretIsFoundByBytesEvenBeforeACombiningMark() {
        // Character comparison would see "3\u{301}" as one character and miss the value.
        #expect(verdict("Write", input(["content": Self.githubToken + "\u{301}"]))?.rule == SecretGuard.secretInInputRule)
    }

    @Test func useByNameIsAllowed() {
        #expect(verdict("Bash", bash(#"curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com"#)) == nil)
        #expect(verdict("Bash", bash("gh api user --header \"Authorization: token ${GITHUB_TOKEN}\"")) == nil)
        #expect(verdict("Bash", bash("printenv GITHUB_TOKEN | wc -c")) == nil)
        #expect(verdict("Bash", bash("env FOO=1 ./script")) == nil)
        #expect(verdict("Bash", bash("env -u OPENAI_API_KEY python main.py")) == nil)
        #expect(verdict("Bash", bash("echo $HOME; export PATH=$PATH:/opt/bin; set -euo pipefail")) == nil)
        #expect(verdict("Read", input(["file_path": "/proc/self/status"])) == nil)
        #expect(verdict("Read", input(["file_path": "/home/me/src/environment.swift"])) == nil)
    }

    @Test(arguments: [
        "env",
        "env | grep X",
        "env -0",
        "env -u SECRET",
        "sudo env",
        "sudo -u root -E env",
        "FOO=1 env",
        "/usr/bin/env",
        "\\env",
        "\"env\"",
        "e'n'v",
        "ls && env",
        "false || env > /tmp/out.txt",
        "cd /tmp; env 2>&1",
        "echo $(env)",
        "echo \"`env`\"",
        "diff <(env) expected.txt",
        "(env)",
        "{ env; }",
        "if true; then env; fi",
        "command env",
        "exec env",
        "nohup env &",
        "time env",
        "timeout 5 env",
        "nice -n 10 env",
        "env FOO=1 env",
        "env -- printenv",
        "printenv",
        "printenv -0",
        "printenv | sort",
        "sudo printenv",
        "bash -c 'env'",
        "sh -lc \"printenv | grep TOKEN\"",
        "eval env",
        "export",
        "export -p",
        "declare -x",
        "declare -p",
        "typeset -x",
        "set",
        "set | grep TOKEN",
        "ps eww",
        "cat /proc/self/environ",
        "tr '\\0' '\\n' < /proc/1/environ",
        "xargs -0 -n1 < /proc/$$/environ",
        "strings /proc/*/environ",
        "cat <<'EOF' > notes.txt\nhello\nEOF\nenv",
    ])
    func environmentDumpsAreDenied(command: String) throws {
        let result = try #require(verdict("Bash", bash(command)), "\(command)")
        #expect(result.decision == .deny)
        #expect(result.rule == "builtin:environment-dump")
        #expect(result.reason?.contains("whole environment") == true)
    }

    @Test(arguments: [
        "env FOO=bar make test",
        "env -i PATH=/usr/bin ./run",
        "env -i",
        "FOO=1 BAR=2 ./script.sh",
        "printenv HOME",
        "printenv -- HOME",
        "export FOO=1",
        "export -f myfunction",
        "declare -x FOO=bar",
        "declare -f",
        "set -e",
        "set -- a b",
        "command -v env",
        "which env",
        "man env",
        "echo env",
        "echo 'env'",
        "grep -r env src/",
        "cat .env",
        "source .env && make",
        "python3 -m venv .venv",
        "ls # then env",
        "ps aux",
        "ps -ef",
        "ps -o user,pid",
        "git commit -m \"$(cat <<'EOF'\nChange env handling\n\nenv\nEOF\n)\"",
        "cat <<-EOF\n\tenv\n\tEOF",
        "bash -c 'echo hi'",
        "bash script.sh env",
        "arr=(env printenv); echo ${arr[0]}",
        "docker run --env FOO=1 image env",
        "kubectl set env deployment/app FOO=1",
    ])
    func ordinaryCommandsAreNotEnvironmentDumps(command: String) {
        #expect(verdict("Bash", bash(command)) == nil, "\(command)")
    }

    @Test func procEnvironInAnyFieldIsDenied() throws {
        let read = try #require(verdict("Read", input(["file_path": "/proc/self/environ"])))
        #expect(read.rule == "builtin:environment-dump")
        #expect(read.reason == "reading /proc/…/environ would print the whole environment, injected credentials included; use a variable by name instead")
        #expect(verdict("Grep", input(["pattern": "TOKEN", "path": "/proc/1/task/1/environ"]))?.rule == SecretGuard.environmentDumpRule)
        #expect(verdict("Read", input(["file_path": "/proc/self/environment"])) == nil)
    }

    @Test func argvCommandsAreChecked() {
        let argv = JSONValue.object([("command", .array([.string("bash"), .string("-lc"), .string("env | sort")]))])
        #expect(verdict("shell", argv)?.rule == SecretGuard.environmentDumpRule)
        let harmless = JSONValue.object([("command", .array([.string("env"), .string("FOO=1"), .string("make")]))])
        #expect(verdict("shell", harmless) == nil)
    }

    @Test func secretIsReportedBeforeDump() {
        #expect(verdict("Bash", bash("env | grep \(Self.githubToken)"))?.rule == SecretGuard.secretInInputRule)
    }

    @Test func noSecretsStillGuardsDumps() {
        let empty = SecretGuard(secrets: [])
        #expect(empty.evaluate(toolName: "Bash", input: bash("env"))?.rule == SecretGuard.environmentDumpRule)
        #expect(empty.evaluate(toolName: "Bash", input: bash("ls")) == nil)
    }
}
