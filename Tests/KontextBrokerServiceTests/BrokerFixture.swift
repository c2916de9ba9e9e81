#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KontextBroker
import KontextBrokerService
import KontextBrokerStore
import KontextCore
import KontextExchange
import KontextHTTP
import KontextTestIssuer
import KontextTestSupport
import KontextTrust
import Logging
import Testing

let brokerAudience = "kontext-broker"

/// Vault key text: two keys, `k1` current.
func vaultKeys(_ ids: [String]) -> String {
    ids.map { id in
        // Fixed per id so a later fixture can open what an earlier one sealed.
        let byte = UInt8(truncatingIfNeeded: id.utf8.reduce(7) { $0 &* 31 &+ Int($1) })
        return id + ":" + Data(repeating: byte, count: 32).base64EncodedString()
    }.joined(separator: "\n")
}

/// A loopback identity provider, a broker.toml trusting it, and a database: everything a
/// served broker needs, in a scratch directory.
struct BrokerSetup {
    let idp: KeyServer
    let key: TestKey
    let directory: URL
    let configPath: String
    let database: String

    /// `users`: the issuer's `users` setting, nil to leave it unwritten (the default).
    /// `topLevel` goes before the first table (top-level keys such as `approvers`).
    static func make(_ label: String, database: String? = nil, topLevel: String = "", extraConfig: String = "", users: Bool? = true,
                     grants: String = #"[[grant]]\#nprincipals = ["user:*", "ci:*"]\#nservices = ["github", "linear", "postgres", "deploy-*"]"#) async throws -> BrokerSetup {
        let key = await TestKey.es256(kid: "key-1")
        let idp = try await KeyServer.start(publishing: [key])
        let directory = TestSupport.makeTemporaryDirectory(label)
        let configPath = directory.appendingPathComponent("broker.toml").path
        let config = """
            token_lifetime = 600
            audit_readers = ["\(userPrincipal(idp.issuer, "auditor"))"]
            \(topLevel)

            [[issuer]]
            issuer = "\(idp.issuer)"
            audiences = ["\(brokerAudience)"]
            jwks_url = "\(idp.jwksURL)"
            \(users.map { "users = \($0)" } ?? "")

            [[principal]]
            name = "ci:{repository}"
            [principal.claims]
            repository = "acme/*"
            ref = "refs/heads/main"

            \(grants)
            \(extraConfig)
            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        return BrokerSetup(idp: idp, key: key, directory: directory, configPath: configPath,
                           database: database ?? "sqlite:" + directory.appendingPathComponent("broker.db").path)
    }

    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment[BrokerConfig.defaultVaultKeyVariable] = vaultKeys(["k1"])
        return environment
    }

    func claims(sub: String = "alice", _ change: (inout TestClaims) -> Void = { _ in }) -> TestClaims {
        let now = Date().timeIntervalSince1970
        var claims = TestClaims(iss: idp.issuer, sub: sub, aud: AudienceClaim(value: [brokerAudience]),
                                exp: now + 300, nbf: now - 10, iat: now - 10, email: "\(sub)@example.com")
        change(&claims)
        return claims
    }

    func token(sub: String = "alice", _ change: (inout TestClaims) -> Void = { _ in }) async throws -> String {
        try await key.sign(claims(sub: sub, change))
    }

    func admin(environment: [String: String]? = nil) async throws -> BrokerAdmin {
        try await BrokerAdmin.open(configPath: configPath, database: database, environment: environment ?? self.environment)
    }

    /// The broker in this process, on an ephemeral loopback port.
    func serve(environment: [String: String]? = nil,
               keyCachePolicy: KeyCachePolicy = KeyCachePolicy()) async throws -> RunningBroker {
        var logger = Logger(label: "kontext.test.broker")
        logger.logLevel = .critical
        return try await BrokerServe.start(options: BrokerServeOptions(configPath: configPath, listen: "127.0.0.1:0", database: database),
                                           environment: environment ?? self.environment, logger: logger,
                                           keyCachePolicy: keyCachePolicy)
    }
}

/// The principal a user of `issuer` becomes, written out as the README specifies it (not
/// computed by the broker's code): `user:ISSUER_HOST:SUB`, ISSUER_HOST being the issuer URL
/// without its scheme and trailing `/`, with `%` and `:` percent-encoded.
func userPrincipal(_ issuer: String, _ sub: String) -> String {
    var host = issuer
    if let scheme = host.range(of: "://") { host = String(host[scheme.upperBound...]) }
    while host.hasSuffix("/") { host.removeLast() }
    host = host.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: ":", with: "%3A")
    return "user:\(host):\(sub)"
}

extension BrokerSetup {
    func user(_ sub: String) -> String { userPrincipal(idp.issuer, sub) }
}

/// A plain TCP connection to a served broker, for what HTTPClient cannot do: half a
/// request, or reading the response headers.
final class RawConnection {
    let fd: Int32

    init(_ baseURL: String) throws {
        guard let colon = baseURL.lastIndex(of: ":"), let port = UInt16(baseURL[baseURL.index(after: colon)...]) else {
            throw TestFailure("no port in \(baseURL)")
        }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { close(fd); throw TestFailure("cannot connect to \(baseURL)") }
    }

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything the server sends until it closes the connection or `seconds` pass; nil
    /// when the connection was still open at the end.
    func readUntilClosed(seconds: Double) -> String? {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&descriptor, 1, left) > 0 else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { return String(decoding: received, as: UTF8.self) }
            received += buffer[0..<count]
        }
        return nil
    }
}

/// A JSON answer of the broker.
struct Answer {
    var status: Int
    var body: JSONValue
    var text: String

    var error: String? { body["error"]?.stringValue }
    var description: String { body["error_description"]?.stringValue ?? "" }
}

let http = HTTPClient()

func exchange(_ base: String, token: String, resource: String, tokenType: String = TokenTypeURN.jwt) async throws -> Answer {
    let request = HTTPRequest.form(url: base + BrokerServer.tokenPath, fields: [
        ("grant_type", TokenTypeURN.grantType), ("subject_token", token), ("subject_token_type", tokenType),
        ("requested_token_type", TokenTypeURN.accessToken), ("audience", resource.split(separator: "/").first.map(String.init) ?? resource),
        ("resource", resource), ("client_id", "kontext"),
    ])
    return try answer(await http.perform(request))
}

func call(_ method: String, _ url: String, token: String?, body: String? = nil) async throws -> Answer {
    var headers: [(name: String, value: String)] = [("Accept", "application/json")]
    if let token { headers.append(("Authorization", "Bearer " + token)) }
    if body != nil { headers.append(("Content-Type", "application/json")) }
    return try answer(await http.perform(HTTPRequest(method: method, url: url, headers: headers, body: Array((body ?? "").utf8))))
}

func answer(_ result: Result<HTTPResponse, HTTPTransportError>) throws -> Answer {
    let response = try result.get()
    let body = (try? JSONValue.parse(response.body)) ?? .null
    return Answer(status: response.status, body: body, text: response.text)
}

/// An audit event object with every SPEC key.
func auditEvent(id: String, session: String, seq: Int, tool: String = "Bash") -> String {
    """
    {"id":"\(id)","session_id":"\(session)","seq":\(seq),"time":"2026-11-22T13:00:0\(seq % 10).000Z","agent":"claude",\
    "event":"pre-tool","tool_name":"\(tool)","tool_input":{"command":"ls"},"tool_response":null,\
    "decision":{"outcome":"allow","reason":null,"rule":null,"enforced":false},"actor":{"sub":"alice","email":"alice@example.com"},\
    "host":"devbox","cwd":"/src/app"}
    """
}

func batch(_ events: [String]) -> String { "{\"events\":[" + events.joined(separator: ",") + "]}" }

/// `kontext-cli` beside the test bundle.
var kontextCLIPath: String { TestSupport.productsDirectory.appendingPathComponent("kontext-cli").path }

/// A `kontext-cli broker serve` process; its URL is read from its first line of stdout.
final class BrokerProcess: @unchecked Sendable {
    let process = Process()
    let baseURL: String
    private let stderrPipe = Pipe()

    init(config: String, database: String, environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: kontextCLIPath)
        process.arguments = ["broker", "serve", "--config", config, "--db", database, "--listen", "127.0.0.1:0"]
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var line = Data()
        let deadline = Date().addingTimeInterval(60)
        while !line.contains(UInt8(ascii: "\n")), Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "listening on ") else {
            process.terminate()
            process.waitUntilExit()
            let errors = String(decoding: stderrPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw TestFailure("kontext-cli broker serve did not start: \(text) \(errors)")
        }
        baseURL = String(text[range.upperBound...].prefix { !$0.isWhitespace })
    }

    /// SIGTERM, then its exit status and everything it logged.
    func stop() -> (status: Int32, log: String) {
        process.terminate()
        process.waitUntilExit()
        let log = String(decoding: stderrPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, log)
    }
}

/// Every byte of the files of a SQLite database (main file, WAL, shared memory).
func databaseBytes(_ path: String) -> Data {
    var data = Data()
    for suffix in ["", "-wal", "-shm"] {
        if let part = FileManager.default.contents(atPath: path + suffix) { data.append(part) }
    }
    return data
}
