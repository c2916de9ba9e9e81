import Foundation
import Synchronization
import KontextCore
import KontextTestIssuer
import KontextTestSupport
import Testing

/// The real `kontext-cli broker …` processes: admin commands, `serve` with its signals, and
/// two replicas on one PostgreSQL database.
@Suite(.serialized) struct BrokerProcessTests {
    func cli(_ arguments: [String], stdin: String? = nil, environment: [String: String]) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: kontextCLIPath)
        process.arguments = arguments
        process.environment = environment
        return try runProcess(process, stdin: stdin, timeout: 60)
    }

    @Test func adminCommandsAndServeOnSQLite() async throws {
        let setup = try await BrokerSetup.make("process-sqlite")
        let environment = setup.environment
        let location = ["--config", setup.configPath, "--db", setup.database]
        let secret = TestSupport.secret("cli-github")

        let added = try cli(["broker", "provider", "add", "github"] + location, stdin: secret + "\n", environment: environment)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stderr.contains("sealed with vault key 'k1'"))
        let oauth = try cli(["broker", "provider", "add", "linear", "--oauth", "--principal", "user:alice"] + location,
                            stdin: TestSupport.secret("cli-refresh"), environment: environment)
        #expect(oauth.status == 0, "\(oauth.stderr)")
        let listed = try cli(["broker", "provider", "list"] + location, environment: environment)
        #expect(listed.status == 0)
        #expect(listed.stdout.contains("github\t(organisation)\tstatic\tk1\tok"), "\(listed.stdout)")
        #expect(listed.stdout.contains("linear\tuser:alice\toauth\tk1\tok"), "\(listed.stdout)")
        #expect(!listed.stdout.contains(TestSupport.secretNonce) && !added.stderr.contains(TestSupport.secretNonce))

        let server = try BrokerProcess(config: setup.configPath, database: setup.database, environment: environment)
        let answer = try await exchange(server.baseURL, token: try await setup.token(), resource: "github")
        #expect(answer.body["access_token"]?.stringValue == secret, "\(answer.text)")
        #expect(try await call("GET", server.baseURL + "/healthz", token: nil).status == 200)
        let (status, log) = server.stop()
        #expect(status == 0, "SIGTERM must shut the broker down cleanly: \(log)")
        // Structured logs: JSON lines, the listening address among them, no secret.
        let lines = log.split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { (try? JSONValue.parse(String($0)))?["level"] != nil }, "\(log)")
        #expect(log.contains("broker listening") && log.contains("broker stopped"))
        #expect(!log.contains(TestSupport.secretNonce))

        let removed = try cli(["broker", "provider", "remove", "github"] + location, environment: environment)
        #expect(removed.status == 0)
        let again = try cli(["broker", "provider", "remove", "github"] + location, environment: environment)
        #expect(again.status == 2)
        #expect(again.stderr.hasPrefix("kontext: no credential named github"))
    }

    @Test func badInputIsOneLineAndExitTwo() async throws {
        let setup = try await BrokerSetup.make("process-bad")
        var environment = setup.environment
        let location = ["--config", setup.configPath, "--db", setup.database]
        let cases: [([String], String)] = [
            (["broker", "serve", "--listen", "nonsense"] + location, "--listen 'nonsense' is not HOST:PORT"),
            (["broker", "serve", "--config", setup.directory.appendingPathComponent("missing.toml").path, "--db", setup.database],
             "cannot read the broker configuration"),
            (["broker", "serve", "--config", setup.configPath, "--db", "mysql://x"], "is neither sqlite:PATH nor postgres://"),
            (["broker", "serve", "--log-level", "loud"] + location, "--log-level 'loud'"),
            (["broker", "provider", "add", "bad name!"] + location, "is not a service name"),
            // Nothing listens on port 1: a prompt error, not a wait for the pool.
            (["broker", "provider", "list", "--config", setup.configPath, "--db", "postgres://postgres@127.0.0.1:1/x?sslmode=disable"],
             "PostgreSQL postgres://postgres@127.0.0.1:1/x?sslmode=disable: cannot connect"),
        ]
        for (arguments, text) in cases {
            let result = try cli(arguments, stdin: "", environment: environment)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("kontext: "), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").first?.contains(text) == true, "\(arguments): \(result.stderr)")
        }
        let badConfig = setup.directory.appendingPathComponent("bad.toml").path
        try "[[issuer]]\nissuer = \"https://idp.example\"\naudiences = [\"a\"]\ncolour = \"blue\"\n".write(toFile: badConfig, atomically: true, encoding: .utf8)
        let unknownKey = try cli(["broker", "serve", "--config", badConfig, "--db", setup.database], environment: environment)
        #expect(unknownKey.status == 2)
        #expect(unknownKey.stderr.contains("unknown key \"colour\""), "\(unknownKey.stderr)")
        environment[BrokerConfigVariable.keys] = nil
        let noKey = try cli(["broker", "provider", "list"] + location, environment: environment)
        #expect(noKey.status == 2)
        #expect(noKey.stderr.contains("no vault key: KONTEXT_BROKER_VAULT_KEYS is not set"), "\(noKey.stderr)")
    }

    @Test func aDatabaseThatNeverAnswersIsAnErrorNotAHang() async throws {
        let setup = try await BrokerSetup.make("process-silent-db")
        // A socket that listens but never accepts: the kernel completes the TCP handshake,
        // no PostgreSQL ever speaks.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        #expect(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let started = Date()
        let result = try cli(["broker", "provider", "list", "--config", setup.configPath,
                              "--db", "postgres://postgres@127.0.0.1:\(port)/x?sslmode=disable"], environment: setup.environment)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("cannot connect: no answer within 10"), "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 30)
        await setup.idp.stop()
    }

    /// A database host that is not loopback gets `sslmode=require` unless the URL says
    /// otherwise: a server without TLS is an error, and no byte of the login goes out in clear.
    @Test func aPostgreSQLHostThatIsNotLoopbackNeedsTLSByDefault() async throws {
        let setup = try await BrokerSetup.make("process-pg-tls")
        let address = try #require(nonLoopbackIPv4(), "this test needs a network interface with an IPv4 address that is not loopback")
        let server = try PlainTextPostgres(address: address)
        let result = try cli(["broker", "provider", "list", "--config", setup.configPath,
                              "--db", "postgres://postgres@\(address):\(server.port)/x"], environment: setup.environment)
        #expect(result.status == 2, "\(result.stderr)")
        let line = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(line.hasPrefix("kontext: PostgreSQL postgres://postgres@\(address):\(server.port)/x: "), "\(result.stderr)")
        #expect(line.contains("does not offer TLS"), "\(result.stderr)")
        #expect(result.stderr.contains("sslmode=disable"), "\(result.stderr)")
        #expect(server.startupMessages == 0, "the client went on in plain text")
        server.stop()
        await setup.idp.stop()
    }

    /// Needs scripts/with-postgres (scripts/test runs the suite under it): fails, not skips, without it.
    @Test func twoReplicasOnOnePostgreSQLShareExchangesAndDeduplicateAudit() async throws {
        let environment = ProcessInfo.processInfo.environment
        let url = try #require(environment["KONTEXT_TEST_POSTGRES_URL"],
                               "KONTEXT_TEST_POSTGRES_URL is not set: run the suite through scripts/test (scripts/with-postgres)")
        let bindir = try #require(environment["KONTEXT_TEST_PG_BINDIR"])
        // A database of its own for this run.
        let name = "kontext_test_" + String(UUID().uuidString.prefix(8)).lowercased()
        let created = try cli([url], environment: environment, executable: bindir + "/psql", extra: ["-c", "CREATE DATABASE \(name)"])
        #expect(created.status == 0, "\(created.stderr)")
        let database = url.replacingOccurrences(of: "/postgres?", with: "/\(name)?")

        let setup = try await BrokerSetup.make("process-postgres", database: database)
        let brokerEnvironment = setup.environment
        let secret = TestSupport.secret("pg-github")
        let added = try cli(["broker", "provider", "add", "github", "--config", setup.configPath, "--db", database],
                            stdin: secret, environment: brokerEnvironment)
        #expect(added.status == 0, "\(added.stderr)")

        // Two replicas started together: both migrate (one waits for the other's lock).
        async let startFirst = Task.detached { try BrokerProcess(config: setup.configPath, database: database, environment: brokerEnvironment) }.value
        async let startSecond = Task.detached { try BrokerProcess(config: setup.configPath, database: database, environment: brokerEnvironment) }.value
        let replicas = try await [startFirst, startSecond]
        #expect(replicas[0].baseURL != replicas[1].baseURL)

        let token = try await setup.token()
        for replica in replicas {
            let answer = try await exchange(replica.baseURL, token: token, resource: "github")
            #expect(answer.status == 200, "\(answer.text)")
            #expect(answer.body["access_token"]?.stringValue == secret)
        }

        // The same batch to both replicas at once: stored once, the rest counted as duplicates.
        let events = (1...50).map { auditEvent(id: "pg-e-\($0)", session: "pg-s", seq: $0) }
        #expect(try await call("POST", replicas[0].baseURL + "/v1/sessions", token: token,
                               body: #"{"session_id":"pg-s","agent":"claude"}"#).status == 201)
        #expect(try await call("POST", replicas[1].baseURL + "/v1/sessions", token: token,
                               body: #"{"session_id":"pg-s","agent":"claude"}"#).status == 200)
        async let one = call("POST", replicas[0].baseURL + "/v1/audit/events", token: token, body: batch(events))
        async let two = call("POST", replicas[1].baseURL + "/v1/audit/events", token: token, body: batch(events))
        let answers = try await [one, two]
        let accepted = answers.compactMap { if case .number(let n)? = $0.body["accepted"] { Int(n) } else { nil } }
        let duplicates = answers.compactMap { if case .number(let n)? = $0.body["duplicates"] { Int(n) } else { nil } }
        #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.map(\.text))")
        #expect(accepted.reduce(0, +) == 50, "\(answers.map(\.text))")
        #expect(duplicates.reduce(0, +) == 50, "\(answers.map(\.text))")
        let third = try await call("POST", replicas[1].baseURL + "/v1/audit/events", token: token, body: batch(events))
        #expect(third.body == .object([("accepted", .number(0)), ("duplicates", .number(50))]))
        // Either replica reads everything the other stored.
        let read = try await call("GET", replicas[1].baseURL + "/v1/audit/events?session_id=pg-s&after=10&limit=5", token: token)
        guard case .array(let page)? = read.body["events"] else { Issue.record("\(read.text)"); return }
        #expect(page.compactMap { $0["id"]?.stringValue } == (11...15).map { "pg-e-\($0)" })
        #expect(try await call("POST", replicas[0].baseURL + "/v1/sessions/pg-s/end", token: token,
                               body: #"{"exit_code":0}"#).status == 204)

        for replica in replicas {
            let (status, log) = replica.stop()
            #expect(status == 0, "\(log)")
        }

        // The exchange log has both exchanges; no table holds the secret (pg_dump of everything).
        let dump = try cli([database.replacingOccurrences(of: "?sslmode=disable", with: "")], environment: environment,
                           executable: bindir + "/pg_dump", extra: ["--data-only", "--inserts"])
        #expect(dump.status == 0, "\(dump.stderr)")
        #expect(dump.stdout.contains("INSERT INTO public.credentials"), "the dump must hold the vault rows")
        #expect(dump.stdout.components(separatedBy: "'issued'").count - 1 == 2)
        #expect(!dump.stdout.contains(secret), "plaintext secret in pg_dump")
        #expect(!dump.stdout.contains(TestSupport.secretNonce))
        _ = try cli([url], environment: environment, executable: bindir + "/psql", extra: ["-c", "DROP DATABASE \(name)"])
        await setup.idp.stop()
    }

    func cli(_ leading: [String], environment: [String: String], executable: String, extra: [String]) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = leading + extra
        process.environment = environment
        return try runProcess(process, stdin: nil, timeout: 60)
    }
}

enum BrokerConfigVariable {
    static let keys = "KONTEXT_BROKER_VAULT_KEYS"
}

/// The first IPv4 address of this machine that is not loopback.
func nonLoopbackIPv4() -> String? {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0 else { return nil }
    defer { freeifaddrs(list) }
    var next = list
    while let entry = next {
        defer { next = entry.pointee.ifa_next }
        guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
        let ipv4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        let text = String(cString: inet_ntoa(ipv4))
        if !text.hasPrefix("127.") { return text }
    }
    return nil
}

/// A stand-in PostgreSQL server without TLS: it answers every SSLRequest with `N` and counts
/// the startup messages (user and database, in clear) a client sends after that.
final class PlainTextPostgres: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let counter = Mutex(0)
    var startupMessages: Int { counter.withLock { $0 } }

    init(address: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_addr.s_addr = inet_addr(address)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { close(fd); throw TestFailure("cannot listen on \(address)") }
        port = Int(UInt16(bigEndian: socketAddress.sin_port))
        let listener = fd
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                var buffer = [UInt8](repeating: 0, count: 1024)
                var timeout = timeval(tv_sec: 5, tv_usec: 0)
                setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                // SSLRequest: length 8, code 80877103.
                if recv(client, &buffer, 8, Int32(MSG_WAITALL)) == 8, buffer[4..<8] == [0x04, 0xD2, 0x16, 0x2F] {
                    _ = send(client, "N", 1, Int32(MSG_NOSIGNAL))
                    if recv(client, &buffer, buffer.count, 0) > 0 { self.counter.withLock { $0 += 1 } }
                }
                close(client)
            }
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
