import Foundation
import KontextAudit
import KontextCore
import Testing

/// kill -9 durability: a child process appends from several threads and prints "acked ID"
/// after each append returns; it is SIGKILLed mid-stream, and every event it acknowledged
/// must be in the store afterwards. The child is the benchmark executable
/// (`kontext-bench-audit --ack-until-killed`), built next to the test binary because the
/// test target depends on it.
@Suite struct AuditDurabilityTests {
    @Test(.timeLimit(.minutes(2)))
    func everyAcknowledgedEventSurvivesKill9() throws {
        let helper = try #require(benchExecutable(),
                                  "kontext-bench-audit must be built next to the test binary (make the test target depend on it) or named by KONTEXT_BENCH_AUDIT")
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let session = AuditIdentifier.random()

        let child = try SpawnedProcess(helper, ["--ack-until-killed", path, "--session", session,
                                                "--threads", "4", "--events", "10000000"])
        var acked: [String] = []
        var killed = false
        let deadline = Date().addingTimeInterval(60)
        while let line = child.readLine(timeoutSeconds: 5) {
            if line.hasPrefix("acked ") { acked.append(String(line.dropFirst(6))) }
            // Kill while appends are in full flow, then keep reading the acks already sent.
            if !killed && acked.count >= 400 {
                child.kill()
                killed = true
            }
            if Date() > deadline { break }
        }
        if !killed { child.kill() }
        let status = child.wait()

        #expect(killed, "the child should have acknowledged 400 events before being killed")
        #expect(status.signal == SIGKILL, "the child must have died from SIGKILL, not finished (status \(status))")
        #expect(acked.count >= 400)

        let store = try AuditStore(path: path)
        var stored = Set<String>()
        var seqs: [Int] = []
        try store.forEachEvent { event in
            stored.insert(event.id)
            if event.sessionID == session { seqs.append(event.seq) }
        }
        let lost = acked.filter { !stored.contains($0) }
        #expect(lost.isEmpty, "\(lost.count) acknowledged events are missing after kill -9")
        #expect(seqs.sorted() == Array(1...max(1, seqs.count)), "seq has no gaps after recovery")

        // The recovered store keeps working: the session continues where it stopped.
        let writer = AuditWriter(store: store)
        let next = try writer.append(fullEvent(session: session))
        #expect(next.seq == seqs.count + 1)
        writer.close()
    }
}

/// The benchmark executable: $KONTEXT_BENCH_AUDIT, or next to this test binary.
func benchExecutable() -> String? {
    if let explicit = ProcessInfo.processInfo.environment["KONTEXT_BENCH_AUDIT"] { return explicit }
    guard let testBinary = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
    let candidate = (testBinary as NSString).deletingLastPathComponent + "/kontext-bench-audit"
    return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
}

/// A child process (posix_spawn) whose stdout is read line by line.
final class SpawnedProcess {
    let pid: pid_t
    private let output: Int32
    private var buffer: [UInt8] = []
    private var finished = false

    init(_ executable: String, _ arguments: [String]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw KontextError(.launch, "pipe failed") }
        // Other tests spawn concurrently: do not leak this pipe into their children.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, nil, argv, environ)
        close(fds[1])
        guard result == 0 else {
            close(fds[0])
            throw KontextError(.launch, "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        pid = child
        output = fds[0]
    }

    deinit {
        close(output)
    }

    /// The next line of stdout, or nil at end of output or after `timeoutSeconds` of silence.
    func readLine(timeoutSeconds: Int32) -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0a) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            if finished { return nil }
            var poller = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, timeoutSeconds * 1000) > 0 else { return nil }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = read(output, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { finished = true; continue }
            buffer.append(contentsOf: chunk[..<count])
        }
    }

    func kill() {
        _ = Glibc.kill(pid, SIGKILL)
    }

    /// Waits for the child; `signal` is the signal that ended it, if one did.
    func wait() -> (exitCode: Int32?, signal: Int32?) {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? ((status >> 8) & 0xff, nil) : (nil, signal)
    }
}
