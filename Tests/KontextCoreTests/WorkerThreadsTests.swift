#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KontextSystem
import Synchronization
import Testing

/// The worker threads behind hook connections and `offload`: a finished worker takes the next
/// job instead of a new thread starting, and a job never waits behind a blocked one.
@Suite struct WorkerThreadsTests {
    /// Waits up to `seconds` for `condition`.
    func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        var waited = 0.0
        while !condition() && waited < seconds {
            usleep(2_000)
            waited += 0.002
        }
        return condition()
    }

    @Test func anIdleWorkerTakesTheNextJob() {
        let workers = WorkerThreads(idleSeconds: 5)
        // Kernel thread ids: a pthread_t is reused as soon as its thread ends, a tid is not.
        let threads = Mutex<[String]>([])
        for _ in 0..<20 {
            let before = threads.withLock { $0.count }
            workers.run { threads.withLock { $0.append((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? "?") } }
            #expect(eventually { threads.withLock { $0.count } == before + 1 })
            usleep(1_000)  // the worker is back waiting
        }
        let distinct = Set(threads.withLock { $0 })
        #expect(distinct.count < 5, "20 sequential jobs ran on \(distinct.count) threads")
    }

    @Test func aJobNeverWaitsBehindABlockedOne() {
        let workers = WorkerThreads(idleSeconds: 5)
        let released = Atomic<Bool>(false)
        let finished = Atomic<Int>(0)
        // Each of these blocks until the last job runs: with a fixed pool they would wait forever.
        for _ in 0..<8 {
            workers.run {
                while !released.load(ordering: .acquiring) { usleep(1_000) }
                finished.add(1, ordering: .relaxed)
            }
        }
        workers.run { released.store(true, ordering: .releasing) }
        #expect(eventually { finished.load(ordering: .relaxed) == 8 })
    }
}
