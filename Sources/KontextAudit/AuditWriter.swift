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
    /// reader's snapshot or another process waits for the write lock).
    public init(store: AuditStore, maxBatchSize: Int = 512) {
        self.store = store
        engine = Engine(store: store, maxBatchSize: max(1, maxBatchSize))
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

    /// Commits everything already queued, then stops the writer thread. Later appends fail.
    /// Called by `deinit` too; calling it more than once is harmless.
    public func close() {
        engine.close()
    }
}

private final class Engine: @unchecked Sendable {
    private struct Pending {
        var event: PreparedEvent
        var completion: AuditWriter.Completion
    }

    private let store: AuditStore
    private let maxBatchSize: Int
    private let state = ConditionLock()
    // Guarded by `state`.
    private var queue: [Pending] = []
    private var closed = false
    private var writerThread: pthread_t?
    private let stopped = Rendezvous<Bool>()

    init(store: AuditStore, maxBatchSize: Int) {
        self.store = store
        self.maxBatchSize = maxBatchSize
    }

    func enqueue(_ event: AuditEvent, _ completion: @escaping AuditWriter.Completion) {
        // Serializing here spreads the JSON work over the appending threads.
        let prepared = PreparedEvent(event)
        state.lock()
        guard !closed else {
            state.unlock()
            completion(.failure(KontextError(.usage, "the audit writer is closed; event \(event.id) was not recorded")))
            return
        }
        queue.append(Pending(event: prepared, completion: completion))
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

            let results = store.commit(batch.map(\.event))
            for (pending, result) in zip(batch, results) {
                pending.completion(result)
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
