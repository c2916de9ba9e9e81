// Benchmark of the sidecar's audit ingest (SPEC section 9: ≥ 5,000 events/s durable,
// RSS ≤ 30 MB), and the child process of the kill -9 durability test.
//
//   kontext-bench-audit [--events N] [--threads A,B,…]
//       For each thread count: a fresh store in a temporary directory, N realistic events
//       (sanitized, then appended) spread over that many threads, each append returning only
//       once durable. Prints events/s, ack latency and peak RSS (VmHWM).
//   kontext-bench-audit --ack-until-killed DB_PATH [--session ID] [--threads N] [--events N]
//       Appends events to DB_PATH from N threads and prints "acked ID" on stdout after each
//       append returns, until killed (or N events). Used by KontextAuditTests.

import Dispatch
import Foundation
import KontextAudit
import KontextCore
import KontextSystem

struct Options {
    var events = 20_000
    var threadCounts = [4, 16]
    var ackUntilKilledPath: String?
    var sessionID = AuditIdentifier.random()
    /// Sanitize every event before the clock starts: measures the store and writer alone.
    var presanitized = false

    init(arguments: [String]) {
        var rest = arguments[...]
        func value(_ flag: String) -> String {
            guard let next = rest.popFirst() else { fail("\(flag) needs a value") }
            return next
        }
        func number(_ text: some StringProtocol, _ flag: String) -> Int {
            guard let value = Int(text), value > 0 else { fail("\(flag) needs positive numbers") }
            return value
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--events": events = number(value(argument), argument)
            case "--threads":
                threadCounts = value(argument).split(separator: ",").map { number($0, argument) }
            case "--ack-until-killed": ackUntilKilledPath = value(argument)
            case "--session": sessionID = value(argument)
            case "--presanitized": presanitized = true
            default: fail("unknown argument \(argument)")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    printError("kontext-bench-audit: \(message)")
    exit(2)
}

/// VmHWM (peak resident set) and VmRSS of this process, in KiB.
func memoryKiB() -> (peak: Int, current: Int) {
    let status = String(decoding: readFile("/proc/self/status") ?? [], as: UTF8.self)
    func field(_ name: String) -> Int {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return -1 }
        return Int(line.split(separator: " ").dropFirst().first { Int($0) != nil } ?? "") ?? -1
    }
    return (field("VmHWM"), field("VmRSS"))
}

/// Injected secrets the redactor knows, as in a session with three placeholders.
let secrets = [
    (service: "github", value: "ghp_" + String(repeating: "Z9x", count: 12)),
    (service: "linear", value: "lin_api_" + String(repeating: "q7", count: 16)),
    (service: "postgres", value: "s3cr3t-pg-password-0042"),
]
let redactor = Redactor(secrets: secrets)

/// A realistic event of a Claude Code session: mostly Bash pre/post pairs, some edits and
/// prompts; post-tool responses carry a few KB of output, sometimes a leaked secret.
func makeEvent(index: Int, sessionID: String) -> AuditEvent {
    let actor = AuditActor(sub: "user-7f3a", email: "dev@example.com")
    let cwd = "/home/dev/src/payments-service"
    let command = "git log --oneline -n 20 -- Sources/Payments/Ledger\(index % 7).swift | grep -v wip"
    switch index % 10 {
    case 0:
        return AuditEvent(sessionID: sessionID, agent: "claude", event: .userPrompt,
                          toolInput: AuditEvent.promptInput("Fix the rounding bug in the ledger export and add a test (attempt \(index))"),
                          actor: actor, host: "devbox", cwd: cwd)
    case 1, 3, 5, 7:
        return AuditEvent(sessionID: sessionID, agent: "claude", event: .preTool, toolName: "Bash",
                          toolInput: .object([("command", .string(command)), ("description", .string("Show recent ledger history"))]),
                          decision: AuditDecision(outcome: .allow, reason: "no rule matched", rule: nil, enforced: false),
                          actor: actor, host: "devbox", cwd: cwd)
    case 9:
        return AuditEvent(sessionID: sessionID, agent: "claude", event: .preTool, toolName: "Edit",
                          toolInput: .object([("file_path", .string(cwd + "/Sources/Payments/Ledger.swift")),
                                              ("old_string", .string("let rounded = amount.rounded()")),
                                              ("new_string", .string("let rounded = amount.rounded(.toNearestOrEven)"))]),
                          decision: AuditDecision(outcome: .ask, reason: "edits need review", rule: "rule 2", enforced: true),
                          actor: actor, host: "devbox", cwd: cwd)
    default:
        var stdout = ""
        for line in 0..<30 {
            stdout += "\(String(index * 31 + line, radix: 16)) ledger: adjust rounding for currency \(line % 5)\n"
        }
        if index % 20 == 2 { stdout += "export TOKEN=\(secrets[0].value)\n" }
        return AuditEvent(sessionID: sessionID, agent: "claude", event: .postTool, toolName: "Bash",
                          toolInput: .object([("command", .string(command))]),
                          toolResponse: .object([("stdout", .string(stdout)), ("stderr", .string("")),
                                                 ("interrupted", .bool(false))]),
                          actor: actor, host: "devbox", cwd: cwd)
    }
}

/// Runs `body(threadIndex)` on `count` new threads and waits for all of them.
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

final class LatencyLog: @unchecked Sendable {
    private let lock = NSLock()
    private var microseconds: [Double] = []

    func add(_ values: [Double]) { lock.withLock { microseconds += values } }

    func percentile(_ p: Double) -> Double {
        lock.withLock {
            let sorted = microseconds.sorted()
            return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
    }
}

/// User + system CPU seconds of the whole process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

func runBenchmark(threads: Int, events: Int, presanitized: Bool) throws {
    var template = Array("/tmp/kontext-bench-audit-XXXXXX".utf8CString)
    guard let directory = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
        fail("cannot create a temporary directory")
    }
    let path = directory + "/audit.db"
    defer {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        rmdir(directory)
    }

    let store = try AuditStore(path: path)
    let writer = AuditWriter(store: store)
    let sessionID = AuditIdentifier.random()
    let latencies = LatencyLog()
    let prepared = presanitized
        ? (0..<events).map { makeEvent(index: $0, sessionID: sessionID).sanitized(redactor: redactor) } : []

    let start = monotonicSeconds()
    let startCPU = processCPUSeconds()
    onThreads(threads) { thread in
        var mine: [Double] = []
        mine.reserveCapacity(events / threads + 1)
        for index in stride(from: thread, to: events, by: threads) {
            let event = presanitized ? prepared[index] : makeEvent(index: index, sessionID: sessionID).sanitized(redactor: redactor)
            let before = monotonicSeconds()
            do { try writer.append(event) } catch {
                fail("append failed: \(error)")
            }
            mine.append((monotonicSeconds() - before) * 1e6)
        }
        latencies.add(mine)
    }
    let elapsed = monotonicSeconds() - start
    let cpu = processCPUSeconds() - startCPU
    writer.close()
    let memory = memoryKiB()

    // Check the store holds exactly what was acknowledged: count and gap-free seq 1…N.
    let stored = try store.eventCount()
    let lastSeq = try store.session(id: sessionID)?.eventCount ?? -1
    var seqs = Set<Int>()
    try store.forEachEvent { seqs.insert($0.seq) }  // streamed: loading 20,000 events would skew the next run's peak RSS
    let contiguous = lastSeq == events && seqs == Set(1...events)
    printOutput("""
        threads=\(threads) events=\(events) elapsed=\(String(format: "%.3f", elapsed))s \
        events/s=\(Int(Double(events) / elapsed)) \
        cpu=\(Int(cpu * 1e6 / Double(events)))us/event \
        ack_p50=\(Int(latencies.percentile(0.5)))us ack_p99=\(Int(latencies.percentile(0.99)))us \
        stored=\(stored) seq_ok=\(contiguous) peak_rss=\(memory.peak / 1024)MB (\(memory.peak) KiB) rss_now=\(memory.current / 1024)MB
        """)
    if stored != events || !contiguous { fail("the store does not hold exactly the appended events") }
}

/// Child mode of the kill -9 test: acknowledge each durable append on stdout.
func ackUntilKilled(path: String, options: Options) throws {
    let store = try AuditStore(path: path)
    let writer = AuditWriter(store: store)
    let threads = options.threadCounts.first ?? 4
    onThreads(threads) { thread in
        for index in stride(from: thread, to: options.events, by: threads) {
            let event = makeEvent(index: index, sessionID: options.sessionID).sanitized(redactor: redactor)
            do {
                try writer.append(event)
                // One write(2) per line: lines of concurrent threads never interleave on a pipe.
                writeAll("acked \(event.id)\n", to: 1)
            } catch {
                printError("append failed: \(error)")
                exit(1)
            }
        }
    }
    writer.close()
}

let options = Options(arguments: Array(CommandLine.arguments.dropFirst()))
printOutput("baseline_rss=\(memoryKiB().current / 1024)MB (process before any store is opened)")
do {
    if let path = options.ackUntilKilledPath {
        try ackUntilKilled(path: path, options: options)
    } else {
        for threads in options.threadCounts {
            try runBenchmark(threads: threads, events: options.events, presanitized: options.presanitized)
        }
    }
} catch {
    fail("\(error)")
}
