import Dispatch
import Foundation
import KontextAudit
import KontextCore

/// A fresh directory under /tmp, removed with everything in it when released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/kontext-audit-test-XXXXXX".utf8CString)
        guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw KontextError(.usage, "mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        path = String(cString: created)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Runs `body(threadIndex)` on `count` real threads at once (not the cooperative pool, whose
/// two threads would serialize blocking appends) and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        Thread {
            body(index)
            group.leave()
        }.start()
    }
    group.wait()
}

/// Collects values from several threads.
final class Collector<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Value] = []

    func add(_ value: Value) { lock.withLock { storage.append(value) } }
    var values: [Value] { lock.withLock { storage } }
}

/// A pre-tool event with every field of SPEC section 7 filled in.
func fullEvent(session: String, id: String = AuditIdentifier.random(), command: String = "ls -la") -> AuditEvent {
    AuditEvent(
        id: id, sessionID: session, time: AuditTime.now(), agent: "claude", event: .preTool,
        toolName: "Bash",
        toolInput: .object([("command", .string(command)), ("description", .string("List files"))]),
        toolResponse: .null,
        decision: AuditDecision(outcome: .deny, reason: "no network egress from agents", rule: "rule 1", enforced: true),
        actor: AuditActor(sub: "user-123", email: "dev@example.com"),
        host: "devbox", cwd: "/home/dev/project")
}

/// Reads a whole file as text.
func readText(_ path: String) -> String {
    String(decoding: readFile(path) ?? [], as: UTF8.self)
}

/// Writes through `body` to a new file and returns what was written.
func captureOutput(in directory: TemporaryDirectory, _ body: (Int32) throws -> Void) throws -> String {
    let path = directory.file("output-\(AuditIdentifier.random())")
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw KontextError(.usage, "cannot create \(path)") }
    do {
        try body(fd)
        close(fd)
    } catch {
        close(fd)
        throw error
    }
    return readText(path)
}
