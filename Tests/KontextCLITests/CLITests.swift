import Foundation
import KontextTestSupport
import Testing

/// End-to-end tests of the `kontext` binary against the real keyring (gnome-keyring on the
/// suite's session bus) and the embedded broker. Each test uses its own service names, so
/// tests sharing the keyring can run in parallel.
@Suite(.enabled(if: TestSupport.hasSessionBus, "needs dbus-run-session and gnome-keyring (scripts/test sets them up)"))
struct LocalModeCLITests {
    let tag = String(UUID().uuidString.prefix(6)).lowercased()

    func service(_ name: String) -> String { "\(name)-\(tag)" }

    @Test func providerAddListRemove() throws {
        let sandbox = Sandbox("provider")
        let name = service("github")
        let secret = TestSupport.secret("provider")
        let added = try sandbox.kontext(["provider", "add", name], stdin: secret + "\n")
        #expect(added.status == 0, "\(added.stderr)")
        let listed = try sandbox.kontext(["provider", "list"])
        #expect(listed.status == 0)
        #expect(listed.stdout.split(separator: "\n").contains { $0 == name })
        #expect(!listed.stdout.contains(secret) && !listed.stderr.contains(secret))
        let removed = try sandbox.kontext(["provider", "remove", name])
        #expect(removed.status == 0)
        #expect(try !sandbox.kontext(["provider", "list"]).stdout.contains(name))
        let again = try sandbox.kontext(["provider", "remove", name])
        #expect(again.status == 2)
        #expect(again.stderr.hasPrefix("kontext: no credential named \(name)"))
        #expect(try sandbox.kontext(["provider", "add", "bad name"], stdin: "x").status == 2)
        #expect(try sandbox.kontext(["provider", "add", service("empty")], stdin: "").status == 2)
        assertNoSecretOnDisk(sandbox)
    }

    /// scripts/package builds in the version from git describe and the commit; a development
    /// build says "0.0.0+dev (commit unknown)". Both through the front, which execs kontext-cli.
    @Test func versionNamesTheReleaseAndTheCommit() throws {
        let result = try Sandbox("version").kontext(["--version"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try Regex(#"kontext [0-9][A-Za-z0-9.+~]* \(commit ([0-9a-f]{40}|unknown)\)\n"#)
        #expect(result.stdout.wholeMatch(of: line) != nil, "\(result.stdout)")
    }

    @Test func runInjectsExactlyTheResolvedEnvironment() throws {
        let sandbox = Sandbox("resolve")
        let (gh, lin, pg, legacy) = (service("github"), service("linear"), service("postgres"), service("legacy"))
        let secrets = [gh: TestSupport.secret("gh"), lin: TestSupport.secret("lin"),
                       "\(pg)/app-ro": TestSupport.secret("pg"), legacy: TestSupport.secret("legacy")]
        for (name, value) in secrets {
            #expect(try sandbox.kontext(["provider", "add", name], stdin: value).status == 0)
        }
        sandbox.write(".env.kontext", """
            # kontext test file
            export GITHUB_TOKEN=<<kontext:\(gh)>>
            LINEAR_API_KEY="<<kontext:\(lin)>>"
            DATABASE_URL=postgres://app:<<kontext:\(pg)/app-ro>>@db.internal/app   # inline comment
            LEGACY_TOKEN='{{kontext:\(legacy)}}'
            BOTH=<<kontext:\(gh)>>:{{kontext:\(lin)}}
            LOG_LEVEL=debug
            """)
        // The child prints its environment NUL-separated; only the hash of each value is compared in
        // the assertion messages, so a failure never prints a secret.
        let result = try sandbox.kontext(["run", "--", "/usr/bin/env", "-0"], environment: ["INHERITED": "yes"])
        #expect(result.status == 0, "\(result.stderr)")
        var seen: [String: String] = [:]
        for entry in result.stdout.split(separator: "\0") {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            seen[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let expected = [
            "GITHUB_TOKEN": secrets[gh]!,
            "LINEAR_API_KEY": secrets[lin]!,
            "DATABASE_URL": "postgres://app:\(secrets["\(pg)/app-ro"]!)@db.internal/app",
            "LEGACY_TOKEN": secrets[legacy]!,
            "BOTH": "\(secrets[gh]!):\(secrets[lin]!)",
            "LOG_LEVEL": "debug",
            "INHERITED": "yes",
        ]
        for (key, value) in expected {
            #expect(seen[key] == value, "\(key) differs")
        }
        // Exactly the sandbox's environment plus the file's variables: nothing else leaks in.
        let allowed = Set(sandbox.environment.keys).union(expected.keys)
        #expect(Set(seen.keys).subtracting(allowed).isEmpty, "unexpected variables: \(Set(seen.keys).subtracting(allowed))")
        #expect(!result.stderr.contains(TestSupport.secretNonce))
        // `kontext env` shows placeholders and status, never values.
        let env = try sandbox.kontext(["env"])
        #expect(env.status == 0, "\(env.stderr)")
        #expect(env.stdout.contains("GITHUB_TOKEN") && env.stdout.contains("<<kontext:\(gh)>>") && env.stdout.contains("resolves"))
        #expect(!env.stdout.contains(TestSupport.secretNonce))
        assertNoSecretOnDisk(sandbox)
    }

    /// libcurl honours the proxy variables; the embedded broker's exchange (this run's
    /// subject token, the credential) must never go through one.
    @Test func loopbackExchangeBypassesProxies() throws {
        let sandbox = Sandbox("proxy")
        let name = service("github")
        #expect(try sandbox.kontext(["provider", "add", name], stdin: TestSupport.secret("proxy")).status == 0)
        sandbox.write(".env.kontext", "GITHUB_TOKEN=<<kontext:\(name)>>\n")
        let proxy = try RecordingListener()
        let proxyURL = "http://127.0.0.1:\(proxy.port)"
        let variables = ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
        let result = try sandbox.kontext(["run", "--", "/bin/sh", "-c", "test -n \"$GITHUB_TOKEN\""],
                                         environment: Dictionary(uniqueKeysWithValues: variables.map { ($0, proxyURL) }))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(proxy.connections == 0, "the proxy was sent \(proxy.bytes) bytes")
    }

    @Test func unresolvedPlaceholdersAreAllListedAndNothingRuns() throws {
        let sandbox = Sandbox("unresolved")
        let known = service("known")
        #expect(try sandbox.kontext(["provider", "add", known], stdin: TestSupport.secret("known")).status == 0)
        sandbox.write(".env.kontext", "A=<<kontext:\(known)>>\nB=<<kontext:\(service("missing1"))>>\nC=x<<kontext:\(service("missing2"))/r>>\n")
        let marker = sandbox.workingDirectory.appendingPathComponent("ran")
        let result = try sandbox.kontext(["run", "--", "/usr/bin/touch", marker.path])
        #expect(result.status == 4)
        #expect(result.stderr.hasPrefix("kontext: could not resolve 2 placeholders"))
        #expect(result.stderr.contains("B: <<kontext:\(service("missing1"))>>: unknown service"))
        #expect(result.stderr.contains("C: <<kontext:\(service("missing2"))/r>>"))
        #expect(result.stderr.contains("kontext provider add \(service("missing1"))"))
        #expect(!FileManager.default.fileExists(atPath: marker.path))
        // --allow-partial launches without the failed variables.
        let partial = try sandbox.kontext(["run", "--allow-partial", "--", "/bin/sh", "-c", "echo A=${A:+set} B=${B-unset}"])
        #expect(partial.status == 0)
        #expect(partial.stdout == "A=set B=unset\n")
        #expect(try sandbox.kontext(["env"]).status == 4)
    }

    @Test(arguments: [
        ("A=<<kontext:>>\n", "1:3", "empty service name"),
        ("OK=1\nA=<<kontext:github\n", "2:3", "unclosed placeholder"),
        ("A=<<kontext:git$hub>>\n", "1:16", "invalid character '$'"),
        ("A=\"never closed\n", "1:3", "unclosed \" quote"),
        ("=value\n", "1:1", "empty variable name"),
    ])
    func malformedFileExitsTwoAndRunsNothing(text: String, position: String, reason: String) throws {
        let sandbox = Sandbox("malformed")
        sandbox.write("custom.env", text)
        let marker = sandbox.workingDirectory.appendingPathComponent("ran")
        let result = try sandbox.kontext(["run", "--env-file", "custom.env", "--", "/usr/bin/touch", marker.path])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("kontext: custom.env:\(position): "), "\(result.stderr)")
        #expect(result.stderr.contains(reason))
        #expect(result.stderr.split(separator: "\n").count <= 2)
        #expect(!FileManager.default.fileExists(atPath: marker.path))
    }

    @Test func exitCodesAndSignalsPropagate() throws {
        let sandbox = Sandbox("exit")
        #expect(try sandbox.kontext(["run", "--", "/bin/sh", "-c", "exit 7"]).status == 7)
        #expect(try sandbox.kontext(["run", "--", "/bin/sh", "-c", "kill -KILL $$"]).status == 128 + 9)
        #expect(try sandbox.kontext(["run", "--", "/bin/sh", "-c", "kill -TERM $$"]).status == 128 + 15)
        let missing = try sandbox.kontext(["run", "--", "no-such-command-\(tag)"])
        #expect(missing.status == 5)
        #expect(missing.stderr.contains("kontext: no-such-command-\(tag): command not found"))
        #expect(try sandbox.kontext(["run"]).status == 2)
        #expect(try sandbox.kontext(["run", "--no-such-flag", "--", "true"]).status == 2)
        #expect(try sandbox.kontext(["run", "--env-file", "absent.env", "--", "true"]).status == 2)
    }

    @Test func signalsSentToKontextReachTheChild() throws {
        let sandbox = Sandbox("forward")
        for (signal, name) in [(SIGTERM, "TERM"), (SIGINT, "INT"), (SIGHUP, "HUP")] {
            let ready = sandbox.workingDirectory.appendingPathComponent("ready-\(name)")
            let caught = sandbox.workingDirectory.appendingPathComponent("caught-\(name)")
            let script = "trap 'echo \(name) > \(caught.path); exit 42' \(name); touch \(ready.path); while :; do sleep 0.05; done"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestSupport.kontextPath)
            process.arguments = ["run", "--", "/bin/sh", "-c", script]
            process.currentDirectoryURL = sandbox.workingDirectory
            process.environment = sandbox.environment
            try process.run()
            let deadline = Date().addingTimeInterval(20)
            while !FileManager.default.fileExists(atPath: ready.path), Date() < deadline { usleep(20_000) }
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            #expect(process.terminationStatus == 42, "\(name)")
            #expect((try? String(contentsOf: caught, encoding: .utf8)) == "\(name)\n")
        }
    }

    @Test func unreachableSecretServiceSaysWhatToDo() throws {
        let result = try Sandbox("nobus").kontext(["provider", "list"],
                                                  environment: ["DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/kontext-bus"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("kontext: the OS keyring (Secret Service) is not usable"))
        #expect(result.stderr.contains("KONTEXT_KEYRING=file"))
    }

    @Test func fileKeyringIsAnExplicitOptInWithAWarning() throws {
        let sandbox = Sandbox("filekeyring")
        let env = ["KONTEXT_KEYRING": "file"]
        let added = try sandbox.kontext(["provider", "add", "svc"], stdin: "file-keyring-value", environment: env)
        #expect(added.status == 0)
        #expect(added.stderr.contains("warning: KONTEXT_KEYRING=file"))
        let path = sandbox.home.appendingPathComponent(".local/share/kontext/credentials.json").path
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        sandbox.write(".env.kontext", "V=<<kontext:svc>>\n")
        let run = try sandbox.kontext(["run", "--", "/bin/sh", "-c", "printf %s \"$V\""], environment: env)
        #expect(run.stdout == "file-keyring-value")
        #expect(try sandbox.kontext(["provider", "list"], environment: ["KONTEXT_KEYRING": "vault"]).status == 2)
        try FileManager.default.removeItem(atPath: path)
    }

    func assertNoSecretOnDisk(_ sandbox: Sandbox, sourceLocation: SourceLocation = #_sourceLocation) {
        let hits = TestSupport.files(under: sandbox.root, containing: TestSupport.secretNonce)
        #expect(hits.isEmpty, "test secret found on disk in \(hits)", sourceLocation: sourceLocation)
    }
}

@Suite struct HelpAndDocumentationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test func helpListsTheBuiltCommands() throws {
        let result = try Sandbox("help").kontext(["--help"])
        #expect(result.status == 0)
        for command in ["run", "env", "provider"] {
            #expect(result.stdout.contains("  \(command) "), "\(command) missing from --help")
        }
    }

    @Test(arguments: [("bash", "completions/kontext.bash"), ("zsh", "completions/_kontext"), ("fish", "completions/kontext.fish")])
    func completionsAreUpToDate(shell: String, path: String) throws {
        let generated = try Sandbox("completions").kontext(["--generate-completion-script", shell])
        #expect(generated.status == 0)
        let committed = try String(contentsOf: Self.repository.appendingPathComponent(path), encoding: .utf8)
        #expect(generated.stdout == committed, "\(path) is stale: run scripts/generate-docs")
    }

    @Test func manualPageIsUpToDate() throws {
        // scripts/generate-docs writes the man page with ArgumentParser's generate-manual plugin
        // and records the command definitions it came from; the man page is stale when they differ.
        let dump = try Sandbox("manual").kontext(["--experimental-dump-help"])
        #expect(dump.status == 0)
        let recorded = try String(contentsOf: Self.repository.appendingPathComponent("man/kontext.help.json"), encoding: .utf8)
        #expect(dump.stdout == recorded, "man/kontext.1 is stale: run scripts/generate-docs")
        // The recorded dump can be refreshed without the page (as happened once): every shown
        // command and long option of the dump must also be in the page.
        let manual = try String(contentsOf: Self.repository.appendingPathComponent("man/kontext.1"), encoding: .utf8)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(recorded.utf8)) as? [String: Any])
        var commands = [try #require(root["command"] as? [String: Any])]
        while let command = commands.popLast() {
            guard command["shouldDisplay"] as? Bool != false else { continue }
            let name = try #require(command["commandName"] as? String)
            #expect(manual.contains(name), "man/kontext.1 lacks the command \(name): run scripts/generate-docs")
            for argument in command["arguments"] as? [[String: Any]] ?? [] where argument["shouldDisplay"] as? Bool != false {
                for case let option as [String: String] in argument["names"] as? [Any] ?? [] where option["kind"] == "long" {
                    let long = "-\(option["name"] ?? "")"  // ".It Fl -name" or ".It Fl n , -name"
                    #expect(manual.contains("Fl \(long)") || manual.contains(", \(long)"), "man/kontext.1 lacks --\(option["name"] ?? "") of \(name): run scripts/generate-docs")
                }
            }
            commands += command["subcommands"] as? [[String: Any]] ?? []
        }
    }
}

/// A TCP listener on loopback that records what reaches it and hangs up: a stand-in proxy.
final class RecordingListener: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var counts = (connections: 0, bytes: 0)

    var connections: Int { lock.withLock { counts.connections } }
    var bytes: Int { lock.withLock { counts.bytes } }

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let listener = fd
        Thread { [weak self] in
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                var buffer = [UInt8](repeating: 0, count: 65536)
                var timeout = timeval(tv_sec: 1, tv_usec: 0)
                setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let n = read(connection, &buffer, buffer.count)
                close(connection)
                guard let self else { return }
                self.lock.withLock {
                    self.counts.connections += 1
                    self.counts.bytes += max(n, 0)
                }
            }
        }.start()
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
