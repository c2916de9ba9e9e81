import Foundation

/// Helpers shared by the test targets: the built `kontext` binary, isolated homes, child
/// processes with captured output, and per-run random test secrets.
public enum TestSupport {
    /// The directory holding the built products (next to the test bundle).
    public static var productsDirectory: URL {
        if let override = ProcessInfo.processInfo.environment["KONTEXT_PRODUCTS_DIR"] {
            return URL(fileURLWithPath: override)
        }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("kontext").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug")
    }

    public static var kontextPath: String { productsDirectory.appendingPathComponent("kontext").path }

    /// A per-run random marker: every test secret contains it, and no source file or binary
    /// does, so a search for it after the suite finds only leaks.
    public static let secretNonce: String = {
        if let nonce = ProcessInfo.processInfo.environment["KONTEXT_TEST_NONCE"], !nonce.isEmpty { return nonce }
        return (0..<12).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
    }()

    public static func secret(_ name: String) -> String { "s3cr3t-\(secretNonce)-\(name)" }

    /// Where tests write; the suite's closing sweep searches it for leaked secrets.
    public static var scratchRoot: URL {
        let root = ProcessInfo.processInfo.environment["KONTEXT_TEST_ROOT"] ?? NSTemporaryDirectory() + "kontext-tests"
        let url = URL(fileURLWithPath: root)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    public static func makeTemporaryDirectory(_ label: String) -> URL {
        let url = scratchRoot.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// True when a Secret Service is reachable (the suite runs under `dbus-run-session`).
    public static var hasSessionBus: Bool {
        ProcessInfo.processInfo.environment["DBUS_SESSION_BUS_ADDRESS"] != nil
    }

    /// Every file below `directory` whose bytes contain `needle`.
    public static func files(under directory: URL, containing needle: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else { return [] }
        let bytes = Data(needle.utf8)
        var hits: [String] = []
        for case let url as URL in enumerator {
            guard let data = try? Data(contentsOf: url, options: .mappedIfSafe) else { continue }
            if data.range(of: bytes) != nil { hits.append(url.path) }
        }
        return hits
    }
}

/// A finished child process.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// An isolated user for CLI tests: its own HOME, XDG dirs and working directory, sharing
/// only the session bus (and so the test keyring) with the suite.
public struct Sandbox: Sendable {
    public let root: URL
    public let home: URL
    public let workingDirectory: URL

    public init(_ label: String) {
        root = TestSupport.makeTemporaryDirectory(label)
        home = root.appendingPathComponent("home")
        workingDirectory = root.appendingPathComponent("project")
        for dir in [home, workingDirectory] {
            try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
    }

    public var environment: [String: String] {
        var env: [String: String] = [
            "HOME": home.path,
            "XDG_CONFIG_HOME": home.appendingPathComponent(".config").path,
            "XDG_DATA_HOME": home.appendingPathComponent(".local/share").path,
            "XDG_STATE_HOME": home.appendingPathComponent(".local/state").path,
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "LANG": "C.UTF-8",
        ]
        for key in ["DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"] {
            if let value = ProcessInfo.processInfo.environment[key] { env[key] = value }
        }
        return env
    }

    /// Writes a file in the project. An env file (`.env.kontext`, `*.env`) or the project
    /// policy is then trusted as the user would with `kontext trust` (SPEC section 10), unless
    /// `trusted` is false: the tests of consent itself write untrusted files.
    public func write(_ name: String, _ contents: String, trusted: Bool = true) {
        try! contents.write(to: workingDirectory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        guard trusted else { return }
        if name == ".kontext/policy.toml" {
            _ = try? kontext(["trust"])
        } else if name == ".env.kontext" || name.hasSuffix(".env") {
            _ = try? kontext(["trust", "--env-file", name])
        }
    }

    /// Runs `kontext ARGS` in the sandbox.
    @discardableResult
    public func kontext(_ arguments: [String], stdin: String? = nil, environment extra: [String: String] = [:],
                        timeout: TimeInterval = 60) throws -> ProcessResult {
        try run(TestSupport.kontextPath, arguments, stdin: stdin, environment: extra, timeout: timeout)
    }

    public func run(_ executable: String, _ arguments: [String], stdin: String? = nil,
                    environment extra: [String: String] = [:], timeout: TimeInterval = 60) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = workingDirectory
        process.environment = environment.merging(extra) { $1 }
        return try runProcess(process, stdin: stdin, timeout: timeout)
    }
}

extension TestSupport {
    /// A database of its own on scripts/with-postgres's server, for one test; fails without
    /// that server (scripts/test runs the suite under it).
    public static func makePostgresDatabase() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["KONTEXT_TEST_POSTGRES_URL"], let bindir = environment["KONTEXT_TEST_PG_BINDIR"] else {
            throw SetupFailure("KONTEXT_TEST_POSTGRES_URL is not set: run the suite through scripts/test (scripts/with-postgres)")
        }
        let name = "kontext_test_" + String(UUID().uuidString.prefix(8)).lowercased()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bindir + "/psql")
        process.arguments = [url, "-c", "CREATE DATABASE \(name)"]
        process.environment = environment
        let created = try runProcess(process, stdin: nil, timeout: 60)
        guard created.status == 0 else { throw SetupFailure("cannot create database \(name): \(created.stderr)") }
        return url.replacingOccurrences(of: "/postgres?", with: "/\(name)?")
    }
}

/// What a test needs from its surroundings is missing.
public struct SetupFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs a configured Process, feeding stdin and capturing both outputs; kills it on timeout.
public func runProcess(_ process: Process, stdin: String?, timeout: TimeInterval) throws -> ProcessResult {
    let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    process.standardInput = inPipe
    try process.run()
    // A child may exit without reading its input (a refused argument): EPIPE is not an error
    // here, and SIGPIPE (the default, which nothing in the test process changes) would end the
    // whole test run (seen: "exited with unexpected signal code 13").
    signal(SIGPIPE, SIG_IGN)
    if let stdin { try? inPipe.fileHandleForWriting.write(contentsOf: Data(stdin.utf8)) }
    try? inPipe.fileHandleForWriting.close()
    let group = DispatchGroup()
    nonisolated(unsafe) var out = Data(), err = Data()
    group.enter()
    DispatchQueue.global().async { out = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { err = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    if group.wait(timeout: .now() + timeout) == .timedOut {
        process.terminate()
        kill(process.processIdentifier, SIGKILL)
        group.wait()
        process.waitUntilExit()
        throw TimeoutError(seconds: timeout, command: process.executableURL?.path ?? "?")
    }
    process.waitUntilExit()
    let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return ProcessResult(status: status, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
}

public struct TimeoutError: Error, CustomStringConvertible {
    public var seconds: TimeInterval
    public var command: String
    public var description: String { "\(command) did not finish within \(seconds) s" }

    public init(seconds: TimeInterval, command: String) {
        self.seconds = seconds
        self.command = command
    }
}

extension TestSupport {
    /// broker.toml's organisation rule the policy tests share: `./deploy prod…` is denied.
    public static let noProdDeployPolicy = """
        [[policy]]
        id = "no-prod-deploy"
        tool = "Bash"
        command = "./deploy prod*"
        decision = "deny"
        reason = "production deploys go through the pipeline"
        """
}
