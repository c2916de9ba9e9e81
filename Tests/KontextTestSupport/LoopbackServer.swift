import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A test server from testsupport/ (Python, run with the test-tools venv) on loopback. It
/// writes its port to a file once listening; `stop` and `restart` keep the same port.
public final class LoopbackServer: @unchecked Sendable {
    public static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The venv python scripts/install-test-tools makes (it has oidc-provider-mock's
    /// dependencies), else the system's.
    public static var python: String {
        if let path = ProcessInfo.processInfo.environment["KONTEXT_TEST_PYTHON"], !path.isEmpty { return path }
        let venv = repository.appendingPathComponent(".build/test-tools/venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/python3"
    }

    /// A script under testsupport/ (writes `--port-file`), or a third-party module run with
    /// `-m` that takes `--port N` and is ready once `readinessPath` answers.
    public enum Program: Sendable {
        case script(String)
        case module(String, readinessPath: String)
    }

    let program: Program
    let arguments: [String]
    let environment: [String: String]
    let directory: URL
    private var process: Process?
    public private(set) var port: Int = 0

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public convenience init(script: String, arguments: [String], environment: [String: String] = [:], in directory: URL) throws {
        try self.init(program: .script(script), arguments: arguments, environment: environment, in: directory)
    }

    public init(program: Program, arguments: [String], environment: [String: String] = [:], in directory: URL) throws {
        self.program = program
        self.arguments = arguments
        self.environment = environment
        self.directory = directory
        try launch(port: 0)
    }

    private func launch(port requested: Int) throws {
        let portFile = directory.appendingPathComponent("\(UUID().uuidString.prefix(8))-port")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        var chosen = requested
        switch program {
        case .script(let script):
            process.arguments = [Self.repository.appendingPathComponent("testsupport/\(script)").path,
                                 "--port", String(requested), "--port-file", portFile.path] + arguments
        case .module(let module, _):
            if chosen == 0 { chosen = unusedLoopbackPort() }
            process.arguments = ["-m", module, "--port", String(chosen)] + arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, process.isRunning {
            switch program {
            case .script:
                if let text = try? String(contentsOf: portFile, encoding: .utf8),
                   let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    self.port = port
                    return
                }
            case .module(_, let readinessPath):
                if (try? Data(contentsOf: URL(string: "http://127.0.0.1:\(chosen)\(readinessPath)")!)) != nil {
                    port = chosen
                    return
                }
            }
            usleep(50_000)
        }
        stop()
        throw TimeoutError(seconds: 30, command: "\(program)")
    }

    public func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Starts it again on the same port (after `stop`).
    public func restart() throws {
        stop()
        try launch(port: port)
    }

    public func getJSON(_ path: String) throws -> Any {
        try JSONSerialization.jsonObject(with: try request("GET", path, body: nil))
    }

    public func text(_ path: String) throws -> String {
        String(decoding: try request("GET", path, body: nil), as: UTF8.self)
    }

    public func post(_ path: String, form: [String: String] = [:]) throws {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        _ = try request("POST", path, body: Data(form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }
            .joined(separator: "&").utf8))
    }

    /// One request; a status of 300 or more is an error.
    private func request(_ method: String, _ path: String, body: Data?) throws -> Data {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        if let body {
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.httpBody = body
        }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<Data, Error> = .failure(TimeoutError(seconds: 10, command: path))
        URLSession.shared.dataTask(with: request) { data, response, error in
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            if let error {
                outcome = .failure(error)
            } else if status >= 300 {
                outcome = .failure(HTTPStatusError(status: status, path: path))
            } else {
                outcome = .success(data ?? Data())
            }
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 10)
        return try outcome.get()
    }

    deinit { stop() }
}

/// A port nothing listens on (bound, then released).
public func unusedLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

public struct HTTPStatusError: Error {
    public var status: Int
    public var path: String
}
