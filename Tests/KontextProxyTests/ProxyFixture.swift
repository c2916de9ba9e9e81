import Crypto
import Foundation
import KontextAudit
import KontextCore
import KontextHostBindings
import KontextPolicy
import KontextTestSupport
@testable import KontextProxy

func sha256(_ text: String) -> String {
    SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
}

/// A proxy as a session runs it: handles for the services, a credential vault, policy,
/// and an audit store of its own.
final class ProxyFixture: @unchecked Sendable {
    let proxy: ProxyServer
    let handles: HandleTable
    let store: AuditStore
    let writer: AuditWriter
    let sessionID = AuditIdentifier.random()
    let directory: URL
    let bundle: String
    private let lines = LogLines()

    var logLines: [String] { lines.all }

    init(ca: TestCA, credentials: [String: LiveCredential], policy: String? = nil, mode: PolicyMode = .enforce,
         bindings: [HostBindings.Binding]? = nil, inspection: HostBindings.Inspection = .bound,
         renew: CredentialVault.Renewal? = nil) async throws {
        directory = TestSupport.makeTemporaryDirectory("proxy")
        store = try AuditStore(path: directory.appendingPathComponent("audit.db").path)
        try store.recordSessionStart(AuditSession(id: sessionID, agent: "test"))
        writer = AuditWriter(store: store)
        handles = HandleTable(services: credentials.keys)
        let layers = try policy.map { [PolicyLayer(kind: .user, policy: try Policy.parse($0, path: "policy.toml"))] } ?? []
        let secrets = credentials.map { (service: $0.key, value: $0.value.value) }
            + handles.handles.map { (service: $0.key, value: $0.value) }
        let lines = self.lines
        let configuration = ProxyConfiguration(
            bindings: HostBindings(try bindings ?? [
                HostBindings.Binding(service: "github", hosts: ["api.github.localhost"]),
                HostBindings.Binding(service: "linear", hosts: ["evil.localhost"], headers: ["x-api-key"]),
            ], inspection: inspection),
            handles: handles,
            credentials: CredentialVault(credentials, renew: renew),
            evaluator: PolicyEvaluator(layers: PolicyLayers(layers), secretGuard: SecretGuard(secrets: [])),
            mode: mode,
            audit: EgressAudit(session: EgressSession(id: sessionID, agent: "test", actor: AuditActor(), host: nil, cwd: nil),
                               writer: writer, redactor: Redactor(secrets: secrets), log: { lines.append($0) }),
            extraRootsFile: ca.caFile,
            log: { lines.append($0) })
        proxy = try await ProxyServer.start(configuration)
        bundle = directory.appendingPathComponent("ca-bundle.pem").path
        try proxy.writeCABundle(to: bundle, extraRootsFile: ca.caFile)
    }

    /// curl through the proxy, trusting the session's bundle; no proxy variables inherited.
    func curl(_ arguments: [String], timeout: TimeInterval = 60) async throws -> ProcessResult {
        try await Self.run("/usr/bin/curl", ["--silent", "--show-error", "--proxy", proxy.url, "--cacert", bundle] + arguments,
                           environment: ["PATH": "/usr/bin:/bin", "HOME": directory.path], timeout: timeout)
    }

    /// A client of the test's own, on a thread of its own: waiting for it on the cooperative
    /// pool (two threads here) would starve other suites' in-process servers.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = ["PATH": "/usr/bin:/bin"],
                    timeout: TimeInterval = 60) async throws -> ProcessResult {
        try await offload {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.environment = environment
            return try runProcess(process, stdin: nil, timeout: timeout)
        }
    }

    /// The session's egress events, once `count` of them are committed (they are written
    /// without holding the request up).
    func egressEvents(atLeast count: Int, timeout: TimeInterval = 10) async throws -> [AuditEvent] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let events = try store.events(sessionID: sessionID).filter { $0.event == .egress }
            if events.count >= count || Date() > deadline { return events }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func stop() async {
        await proxy.stop()
        writer.close()
    }
}

final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
