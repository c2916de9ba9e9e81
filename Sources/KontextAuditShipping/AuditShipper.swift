import Foundation
import KontextAudit
import KontextCore
import KontextSystem
import KontextHTTP
import Synchronization

/// Where the bearer token for the audit backend comes from (the login, in remote mode).
public struct BearerSource: Sendable {
    public var current: @Sendable () async throws -> String
    /// The backend refused `rejected`: a fresh token (refreshing once).
    public var renew: @Sendable (_ rejected: String) async throws -> String

    public init(current: @escaping @Sendable () async throws -> String,
                renew: @escaping @Sendable (String) async throws -> String) {
        self.current = current
        self.renew = renew
    }
}

/// The live session whose chain the broker witnesses (`AuditWitness`): the key that signs its
/// checkpoints, sent for the broker's certificate, and where the broker's answers go for the
/// session's next checkpoint.
public struct AuditWitnessing: Sendable {
    public var sessionID: String
    public var publicKey: String
    public var receipts: AuditWitnessReceipts

    public init(sessionID: String, publicKey: String, receipts: AuditWitnessReceipts) {
        self.sessionID = sessionID
        self.publicKey = publicKey
        self.receipts = receipts
    }
}

/// Sends the local store's unsent audit records to `KONTEXT_AUDIT_URL` (SPEC section 7):
/// session starts, event batches (`POST {base}/v1/audit/events`, `{"events":[…]}`), session
/// ends. A record is marked sent only after a 2xx answer, so delivery is at least once; the
/// events' unique ids let the backend drop repeats. Whatever is unsent stays in the store
/// for the next pass, the next session or the next kontext command.
///
/// Only sessions recorded for this shipper's destination (backend and identity) are sent:
/// local-mode sessions and those recorded for another backend or login never are.
public final class AuditShipper: Sendable {
    public static let batchSize = 500

    public let store: AuditStore
    public let destination: AuditDestination
    public var baseURL: String { destination.url }
    let http: HTTPClient
    let bearer: BearerSource
    /// The highest head each session reported to the backend, so an unchanged one is not sent again.
    private let witnessed = Mutex<[String: Int]>([:])
    let witnessing: AuditWitnessing?

    public init(store: AuditStore, destination: AuditDestination, http: HTTPClient, bearer: BearerSource,
                witnessing: AuditWitnessing? = nil) {
        self.witnessing = witnessing
        self.store = store
        self.destination = destination
        self.http = http
        self.bearer = bearer
    }

    /// Why a pass stopped before the queue was empty.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Ships until nothing is pending; returns how many events went out, or throws at the
    /// first failure (everything not acknowledged stays pending).
    @discardableResult
    public func shipPending() async throws(Failure) -> Int {
        let destination = self.destination
        for session in try await read({ try $0.pendingSessions(start: true, for: destination) }) {
            let witnessing = self.witnessing.flatMap { $0.sessionID == session.id ? $0 : nil }
            let answer = try await post("/v1/sessions", body: Self.sessionStartBody(session, publicKey: witnessing?.publicKey))
            if let witnessing, let certificate = answer["certificate"], certificate.objectValue != nil {
                witnessing.receipts.deposit(sessionID: session.id, member: "certificate", certificate)
            }
            try await write { try $0.markSessionShipped(id: session.id, start: true) }
        }
        var sent = 0
        while true {
            let batch = try await read { try $0.pendingEvents(limit: Self.batchSize, for: destination) }
            if batch.isEmpty { break }
            var body = "{\"events\":["
            for (index, record) in batch.enumerated() {
                if index > 0 { body += "," }
                record.event.json.write(to: &body)
            }
            body += "]}"
            try await post("/v1/audit/events", body: body)
            Diagnostics.log("audit: \(baseURL) accepted \(batch.count) event\(batch.count == 1 ? "" : "s")")
            try await write { try $0.markShipped(ids: batch.map(\.event.id)) }
            sent += batch.count
        }
        for session in try await read({ try $0.pendingSessions(start: false, for: destination) }) {
            try await post("/v1/sessions/\(formEncode(session.id))/end", body: Self.sessionEndBody(session))
            try await write { try $0.markSessionShipped(id: session.id, start: false) }
        }
        return sent
    }

    /// `shipPending` given at most `seconds`; returns the problem that stopped it, if any.
    public func shipPending(within seconds: Double) async -> String? {
        await attempt(within: seconds) { try await self.shipPending() }
    }

    /// Reports the session's chain head (`POST /v1/sessions/{id}/checkpoints`) if it moved
    /// since the last report. The backend keeps the highest, so events later cut from the end
    /// of the local store (before they were shipped) show there as missing. Best effort, like
    /// the heartbeat: a lost report only makes the witness lag.
    /// The broker's countersignature goes to the session's next checkpoint. `final`: the head
    /// the session's final checkpoint is about to seal (reported even if reported before).
    public func reportHead(sessionID: String, final: Bool = false) async {
        let store = self.store
        guard let head = try? await offload({ try store.chainHead(sessionID: sessionID) }), let hash = head.hash,
              head.seq > witnessed.withLock({ $0[sessionID] ?? 0 }) || final else { return }
        var members: [(String, JSONValue)] = [("seq", .number(Double(head.seq))), ("hash", .string(hash))]
        if final { members.append(("final", .bool(true))) }
        do {
            let answer = try await post("/v1/sessions/\(formEncode(sessionID))/checkpoints", body: JSONValue.object(members).serialized)
            witnessed.withLock { $0[sessionID] = max($0[sessionID] ?? 0, head.seq) }
            if let witnessing, witnessing.sessionID == sessionID, let countersignature = answer["witness"],
               countersignature.objectValue != nil {
                witnessing.receipts.deposit(sessionID: sessionID, member: "witness", countersignature)
            }
        } catch {
            Diagnostics.log("audit: chain head not reported: \(error)")
        }
    }

    /// Best effort: a lost heartbeat only makes the session look idle for a while.
    public func heartbeat(sessionID: String) async {
        try? await post("/v1/sessions/\(formEncode(sessionID))/heartbeat", body: "{}")
    }

    public func pendingCount() -> Int {
        (try? store.pendingEventCount(for: destination)) ?? 0
    }

    private func read<T>(_ body: @escaping @Sendable (AuditStore) throws -> T) async throws(Failure) -> T where T: Sendable {
        let store = self.store
        do {
            return try await offload { try body(store) }
        } catch {
            throw Failure(description: "the local audit store: \(error)")
        }
    }

    private func write(_ body: @escaping @Sendable (AuditStore) throws -> Void) async throws(Failure) {
        try await read(body)
    }

    /// The answer's JSON body (null when it has none).
    @discardableResult
    private func post(_ path: String, body: String) async throws(Failure) -> JSONValue {
        if Task.isCancelled { throw Failure(description: "stopped before \(baseURL) answered") }
        let response: Result<HTTPResponse, HTTPTransportError>
        do {
            response = try await bearer.send { token in await send(path, body: body, token: token) }
        } catch {
            switch error {
            case .noToken(let reason):
                throw Failure(description: "no token for the audit backend: \(reason)")
            case .renewalFailed:
                throw Failure(description: "\(baseURL) refused the login (HTTP 401) and it could not be renewed")
            }
        }
        switch response {
        case .failure(let error):
            Diagnostics.log("audit: POST \(baseURL)\(path) → \(error.reason)")
            throw Failure(description: "cannot reach \(baseURL): \(error.reason)")
        case .success(let answer) where (200..<300).contains(answer.status):
            return (try? JSONValue.parse(answer.body)) ?? .null
        case .success(let answer):
            Diagnostics.log("audit: POST \(baseURL)\(path) → HTTP \(answer.status)")
            throw Failure(description: "\(baseURL)\(path) answered HTTP \(answer.status)")
        }
    }

    private func send(_ path: String, body: String, token: String) async -> Result<HTTPResponse, HTTPTransportError> {
        await http.perform(HTTPRequest(method: "POST", url: baseURL + path, headers: [
            ("Content-Type", "application/json"), ("Accept", "application/json"), ("Authorization", "Bearer " + token),
        ], body: Array(body.utf8), timeout: 15))
    }

    static func sessionStartBody(_ session: AuditSession, publicKey: String? = nil) -> String {
        var members: [(String, JSONValue)] = [
            ("session_id", .string(session.id)), ("agent", .string(session.agent)),
            ("started_at", .string(session.startedAt)),
            ("actor", .object([("sub", session.actor.sub.map(JSONValue.string) ?? .null),
                               ("email", session.actor.email.map(JSONValue.string) ?? .null)])),
        ]
        members.append(("host", session.host.map(JSONValue.string) ?? .null))
        members.append(("cwd", session.cwd.map(JSONValue.string) ?? .null))
        if let publicKey { members.append(("public_key", .string(publicKey))) }
        return JSONValue.object(members).serialized
    }

    static func sessionEndBody(_ session: AuditSession) -> String {
        JSONValue.object([
            ("ended_at", session.endedAt.map(JSONValue.string) ?? .null),
            ("exit_code", session.exitCode.map { .number(Double($0)) } ?? .null),
        ]).serialized
    }
}

/// Runs `work` for at most `seconds` (then cancels it); returns its failure, if any.
func attempt(within seconds: Double, _ work: @escaping @Sendable () async throws -> Void) async -> String? {
    let attempt = Task { () -> String? in
        do { try await work(); return nil } catch { return String(describing: error) }
    }
    let timer = Task {
        try? await Task.sleep(for: .seconds(seconds))
        attempt.cancel()
    }
    let problem = await attempt.value
    timer.cancel()
    return problem
}

/// Ships in the background while a session runs: soon after events arrive, with exponential
/// backoff and jitter while the backend is down, and a heartbeat for the live session.
public final class BackgroundShipper: Sendable {
    public struct Timing: Sendable {
        public var poll: Duration = .milliseconds(200)
        public var firstRetry: Double = 0.5
        public var maximumRetry: Double = 30
        public var heartbeat: Double = 30
        /// How often the chain head is reported while it moves (`AuditShipper.reportHead`).
        public var headReport: Duration = .seconds(1)

        public init() {}
    }

    let shipper: AuditShipper
    let sessionID: String
    let timing: Timing
    private let stopping = Atomic<Bool>(false)
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let headTask = Mutex<Task<Void, Never>?>(nil)
    /// The last failure, for the end-of-session note.
    private let lastProblem = Mutex<String?>(nil)

    public init(shipper: AuditShipper, sessionID: String, timing: Timing = Timing()) {
        self.shipper = shipper
        self.sessionID = sessionID
        self.timing = timing
    }

    public func start() {
        let loop = Task { [self] in await run() }
        task.withLock { $0 = loop }
        // Apart from the events' loop, so the head is witnessed even while batches fail and back off.
        let reporter = Task { [self] in
            while !stopping.load(ordering: .acquiring) {
                await shipper.reportHead(sessionID: sessionID)
                try? await Task.sleep(for: timing.headReport)
            }
        }
        headTask.withLock { $0 = reporter }
    }

    private func run() async {
        var failures = 0
        var lastHeartbeat = monotonicSeconds()
        while !stopping.load(ordering: .acquiring) {
            do {
                try await shipper.shipPending()
                failures = 0
                lastProblem.withLock { $0 = nil }
                if monotonicSeconds() - lastHeartbeat >= timing.heartbeat {
                    lastHeartbeat = monotonicSeconds()
                    await shipper.heartbeat(sessionID: sessionID)
                }
                try? await Task.sleep(for: timing.poll)
            } catch {
                failures += 1
                lastProblem.withLock { $0 = error.description }
                try? await Task.sleep(for: .seconds(Self.backoff(failures: failures, timing: timing)))
            }
        }
    }

    /// Full-range jitter over an exponentially growing ceiling, so many clients coming back
    /// after one outage do not retry in lockstep.
    static func backoff(failures: Int, timing: Timing) -> Double {
        let ceiling = min(timing.maximumRetry, timing.firstRetry * pow(2, Double(min(failures - 1, 30))))
        return Double.random(in: (ceiling / 2)...ceiling)
    }

    /// Before the session's final checkpoint: stops the loops, sends what is pending (the
    /// session's start first, so the broker knows it) and reports the head about to be sealed
    /// as final, so the broker's countersignature goes into the seal. At most `seconds`.
    public func witnessFinalHead(within seconds: Double) async {
        await stop()
        _ = await attempt(within: seconds) { [shipper, sessionID] in
            _ = try? await shipper.shipPending()
            await shipper.reportHead(sessionID: sessionID, final: true)
        }
    }

    private func stop() async {
        stopping.store(true, ordering: .releasing)
        let loop = task.withLock { $0 }
        loop?.cancel()
        await loop?.value
        let reporter = headTask.withLock { $0 }
        reporter?.cancel()
        await reporter?.value
    }

    /// Stops the loop, then tries to send what is left within `seconds`. Returns how many
    /// events are still unsent, and the last problem if any.
    public func finish(within seconds: Double) async -> (unsent: Int, problem: String?) {
        await stop()
        await shipper.reportHead(sessionID: sessionID)
        let problem = await shipper.shipPending(within: seconds) ?? lastProblem.withLock { $0 }
        let unsent = shipper.pendingCount()
        return (unsent, unsent == 0 ? nil : problem)
    }
}
