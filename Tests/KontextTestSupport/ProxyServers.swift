import Foundation

/// A test CA and a server certificate for the loopback names the tests use, made with the
/// openssl command line (the proxy's own CA code is what is under test, so not with it).
public struct TestCA: Sendable {
    public let directory: URL
    public var caFile: String { directory.appendingPathComponent("ca.pem").path }
    public var certFile: String { directory.appendingPathComponent("server.pem").path }
    public var keyFile: String { directory.appendingPathComponent("server.key").path }

    public static let names = ["api.github.localhost", "evil.localhost", "plain.localhost", "unbound.localhost", "api.deploy.localhost", "localhost"]

    public init() throws {
        directory = TestSupport.makeTemporaryDirectory("proxy-ca")
        let san = "subjectAltName=" + Self.names.map { "DNS:\($0)" }.joined(separator: ",") + ",IP:127.0.0.1"
        try "\(san)\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(to: directory.appendingPathComponent("ext.cnf"), atomically: true, encoding: .utf8)
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
                     "-out", "ca.pem", "-days", "2", "-subj", "/CN=kontext proxy test CA"])
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
                     "-out", "server.csr", "-subj", "/CN=api.github.localhost"])
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"])
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let result = try runProcess(process, stdin: nil, timeout: 30)
        guard result.status == 0 else { throw FixtureError("openssl \(arguments.joined(separator: " ")): \(result.stderr)") }
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `testsupport/https_upstream.py` on loopback with the test CA's certificate.
public final class Upstream: @unchecked Sendable {
    let server: LoopbackServer
    public var port: Int { server.port }
    public let logFile: URL

    public init(ca: TestCA) throws {
        let directory = TestSupport.makeTemporaryDirectory("proxy-upstream")
        logFile = directory.appendingPathComponent("requests.jsonl")
        server = try LoopbackServer(script: "https_upstream.py",
                                    arguments: ["--cert", ca.certFile, "--key", ca.keyFile, "--log", logFile.path, "--max-seconds", "600"],
                                    in: directory)
    }

    /// Every request the server has seen, in order.
    public func requests() -> [[String: Any]] {
        guard let text = try? String(contentsOf: logFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    public func stop() { server.stop() }

    deinit { server.stop() }
}


/// `testsupport/git_https.py`: a bare repository `/org/repo.git` (one commit, a README
/// saying `hello`) served over HTTPS by `git http-backend`, answering only requests whose
/// Authorization has the SHA-256 `authorizationSHA256`.
public final class GitServer: @unchecked Sendable {
    let server: LoopbackServer
    public var port: Int { server.port }

    public init(ca: TestCA, authorizationSHA256: String) throws {
        let directory = TestSupport.makeTemporaryDirectory("git-server")
        let root = directory.appendingPathComponent("root")
        func git(_ arguments: [String], in folder: URL) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["git"] + arguments
            process.currentDirectoryURL = folder
            process.environment = ["PATH": "/usr/bin:/bin", "HOME": directory.path, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                   "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"]
            let result = try runProcess(process, stdin: nil, timeout: 30)
            guard result.status == 0 else { throw FixtureError("git \(arguments.joined(separator: " ")): \(result.stderr)") }
        }
        let source = directory.appendingPathComponent("source")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("org"), withIntermediateDirectories: true)
        try git(["init", "-q", "--bare", "-b", "main", "repo.git"], in: root.appendingPathComponent("org"))
        try git(["init", "-q", "-b", "main"], in: source)
        try "hello\n".write(to: source.appendingPathComponent("README"), atomically: true, encoding: .utf8)
        try git(["add", "README"], in: source)
        try git(["commit", "-qm", "init"], in: source)
        try git(["push", "-q", root.appendingPathComponent("org/repo.git").path, "main"], in: source)
        server = try LoopbackServer(script: "git_https.py",
                                    arguments: ["--root", root.path, "--cert", ca.certFile, "--key", ca.keyFile, "--max-seconds", "600"],
                                    environment: ["PATH": "/usr/bin:/bin", "GIT_SERVER_AUTH_SHA256": authorizationSHA256], in: directory)
    }

    public func stop() { server.stop() }

    deinit { server.stop() }
}
