import Foundation
import KontextCore

/// Durable appends with group commit, for the session sidecar.
///
/// Any number of threads (or tasks, or callback users) append concurrently. Appended events
/// go into a queue; one writer thread takes everything queued (up to `maxBatchSize`),
/// commits it in a single SQLite transaction and only then answers each appender. So an
/// append returns after its event is durable (see `AuditStore` for what durable means),
/// while the cost of a commit is shared by every event that arrived during the previous
/// one: throughput grows with concurrency instead of being one commit per event.
///
/// `seq` is assigned by the writer, per session, in commit order from 1: each appender
/// gets back the event as stored. Appending an event whose `id` is already stored is not an
/// error and stores nothing: the answer is the stored event (so a hook that retries after a
/// lost answer is idempotent, matching the backend's de-duplication on `id`).
///
/// The writer does not redact: callers pass events through `AuditEvent.sanitized` first.
public final class AuditWriter: Sendable {
    public let store: AuditStore
    private let engine: Engine

    public typealias Completion = @Sendable (Result<AuditEvent, any Error>) -> Void

    /// Starts the writer thread. `maxBatchSize` bounds one transaction (and so the time a
    /// reader's snapshot or another process waits for the write lock). With `signer`, the
    /// writer appends signed checkpoints (`AuditCheckpoint`) to each session's chain as
    /// `checkpoints` says, and the final one when asked (`checkpoint(sessionID:final:)`).
    /// Not at `session-end`: an agent may go on after one (Claude Code's `/clear`).
    /// With `receipts`, each checkpoint records what the broker answered since the last one.
    public init(store: AuditStore, maxBatchSize: Int = 512, signer: AuditSigner? = nil,
                checkpoints: AuditCheckpointPolicy = AuditCheckpointPolicy(), receipts: AuditWitnessReceipts? = nil) {
        self.store = store
        engine = Engine(store: store, maxBatchSize: max(1, maxBatchSize), signer: signer, policy: checkpoints, receipts: receipts)
        let engine = engine
        let thread = Thread { engine.run() }
        thread.name = "kontext-audit-writer"
        thread.start()
    }

    deinit {
        engine.close()
    }

    /// Blocks until the event is committed; returns it as stored (with its `seq`).
    @discardableResult
    public func append(_ event: AuditEvent) throws -> AuditEvent {
        let answer = Rendezvous<Result<AuditEvent, any Error>>()
        engine.enqueue(event) { answer.fulfil($0) }
        return try answer.wait().get()
    }

    /// Suspends until the event is committed, without holding a thread of the cooperative pool.
    @discardableResult
    public func append(_ event: AuditEvent) async throws -> AuditEvent {
        try await withCheckedThrowingContinuation { continuation in
            engine.enqueue(event) { continuation.resume(with: $0) }
        }
    }

    /// Calls `completion` on the writer thread once the event is committed or has failed.
    /// Keep `completion` short, and never call the blocking `append` from it (it would wait
    /// for the very thread it runs on): the next batch waits for it.
    public func append(_ event: AuditEvent, completion: @escaping Completion) {
        engine.enqueue(event, completion)
    }

    /// Signs the session's chain head now, after everything queued before, unless no event
    /// came since the last checkpoint; `final` marks the session's end (nothing may follow).
    /// Returns the checkpoint event, nil when there was nothing to sign or no signer.
    @discardableResult
    public func checkpoint(sessionID: String, final: Bool) throws -> AuditEvent? {
        let answer = Rendezvous<Result<AuditEvent?, any Error>>()
        engine.enqueueCheckpoint(sessionID: sessionID, final: final) { answer.fulfil($0) }
        return try answer.wait().get()
    }

    /// Commits everything already queued, then stops the writer thread. Later appends fail.
    /// Called by `deinit` too; calling it more than once is harmless.
    public func close() {
        engine.close()
    }
}

private final class Engine: @unchecked Sendable {
    typealias CheckpointCompletion = @Sendable (Result<AuditEvent?, any Error>) -> Void

    private enum Pending {
        case event(PreparedEvent, AuditWriter.Completion)
        case checkpoint(sessionID: String, final: Bool, CheckpointCompletion)
    }

    /// A session's chain as this writer last committed it (writer thread only).
    private struct Tracked {
        var head: AuditEvent
        var sinceCheckpoint = 0
        var lastCheckpoint: Double
        var sealed = false
    }

    private let store: AuditStore
    private let maxBatchSize: Int
    private let signer: AuditSigner?
    private let policy: AuditCheckpointPolicy
    private let receipts: AuditWitnessReceipts?
    private var tracked: [String: Tracked] = [:]
    private let state = ConditionLock()
    // Guarded by `state`.
    private var queue: [Pending] = []
    private var closed = false
    private var writerThread: pthread_t?
    private let stopped = Rendezvous<Bool>()

    init(store: AuditStore, maxBatchSize: Int, signer: AuditSigner?, policy: AuditCheckpointPolicy, receipts: AuditWitnessReceipts?) {
        self.store = store
        self.receipts = receipts
        self.maxBatchSize = maxBatchSize
        self.signer = signer
        self.policy = policy
    }

    func enqueue(_ event: AuditEvent, _ completion: @escaping AuditWriter.Completion) {
        // Serializing here spreads the JSON work over the appending threads.
        let prepared = PreparedEvent(event)
        append(.event(prepared, completion)) {
            completion(.failure(KontextError(.usage, "the audit writer is closed; event \(event.id) was not recorded")))
        }
    }

    func enqueueCheckpoint(sessionID: String, final: Bool, _ completion: @escaping CheckpointCompletion) {
        append(.checkpoint(sessionID: sessionID, final: final, completion)) {
            completion(.failure(KontextError(.usage, "the audit writer is closed; no checkpoint for session \(sessionID)")))
        }
    }

    private func append(_ pending: Pending, whenClosed: () -> Void) {
        state.lock()
        guard !closed else {
            state.unlock()
            whenClosed()
            return
        }
        queue.append(pending)
        // The writer sleeps only on an empty queue, so only the first arrival wakes it.
        if queue.count == 1 { state.signal() }
        state.unlock()
    }

    func close() {
        let onWriterThread = state.withLock {
            closed = true
            state.signal()
            return writerThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
        }
        // Completions run on the writer thread; one that closes must not wait for itself.
        if !onWriterThread {
            _ = stopped.wait()
        }
    }

    func run() {
        state.withLock { writerThread = pthread_self() }
        var batch: [Pending] = []
        while true {
            state.lock()
            while queue.isEmpty && !closed { state.wait() }
            if queue.isEmpty {
                state.unlock()
                stopped.fulfil(true)
                return
            }
            if queue.count <= maxBatchSize {
                swap(&batch, &queue)
            } else {
                batch.append(contentsOf: queue.prefix(maxBatchSize))
                queue.removeFirst(maxBatchSize)
            }
            state.unlock()

            process(batch)
            batch.removeAll(keepingCapacity: true)
        }
    }

    /// Commits the batch's events in one transaction, answers their appenders, then writes
    /// the checkpoints that fell due and those asked for, in queue order.
    private func process(_ batch: [Pending]) {
        var prepared: [PreparedEvent] = []
        var completions: [AuditWriter.Completion] = []
        var requests: [(sessionID: String, final: Bool, done: CheckpointCompletion)] = []
        for pending in batch {
            switch pending {
            case .event(let event, let completion):
                prepared.append(event)
                completions.append(completion)
            case .checkpoint(let sessionID, let final, let done):
                requests.append((sessionID, final, done))
            }
        }
        let results = prepared.isEmpty ? [] : store.commit(prepared)
        for (completion, result) in zip(completions, results) {
            completion(result)
        }
        guard let signer else {
            for request in requests { request.done(.success(nil)) }
            return
        }
        var touched: [String] = []
        for case .success(let event) in results {
            if !touched.contains(event.sessionID) { touched.append(event.sessionID) }
            note(event)
        }
        let now = monotonicSeconds()
        for session in touched {
            guard let state = tracked[session], !state.sealed, state.sinceCheckpoint > 0 else { continue }
            if state.sinceCheckpoint >= policy.everyEvents || now - state.lastCheckpoint >= policy.everySeconds {
                _ = try? sign(session, final: false, signer: signer)
            }
        }
        for request in requests {
            request.done(Result { try checkpointRequested(request.sessionID, final: request.final, signer: signer) })
        }
    }

    private func note(_ event: AuditEvent) {
        var state = tracked[event.sessionID] ?? Tracked(head: event, lastCheckpoint: monotonicSeconds())
        state.head = event
        if event.event == .checkpoint {
            state.sinceCheckpoint = 0
            state.lastCheckpoint = monotonicSeconds()
            state.sealed = state.sealed || event.toolInput["final"] == .bool(true)
        } else {
            state.sinceCheckpoint += 1
        }
        tracked[event.sessionID] = state
    }

    private func checkpointRequested(_ session: String, final: Bool, signer: AuditSigner) throws -> AuditEvent? {
        if tracked[session] == nil, let last = try store.lastEvent(sessionID: session) {
            tracked[session] = Tracked(head: last, lastCheckpoint: monotonicSeconds())
            if last.event == .checkpoint {
                tracked[session]?.sealed = last.toolInput["final"] == .bool(true)
            } else {
                tracked[session]?.sinceCheckpoint = 1
            }
        }
        guard let state = tracked[session], !state.sealed, state.sinceCheckpoint > 0 || final else { return nil }
        return try sign(session, final: final, signer: signer)
    }

    private func sign(_ session: String, final: Bool, signer: AuditSigner) throws -> AuditEvent? {
        guard let head = tracked[session]?.head, let hash = head.hash else { return nil }
        let witnessed = receipts?.take(sessionID: session) ?? []
        let checkpoint = AuditCheckpoint.event(signing: (head.seq, hash), final: final, signer: signer, like: head, witnessed: witnessed)
        let stored: AuditEvent
        do {
            stored = try store.commit([PreparedEvent(checkpoint)])[0].get()
        } catch {
            receipts?.restore(sessionID: session, witnessed)
            throw error
        }
        note(stored)
        return stored
    }
}
