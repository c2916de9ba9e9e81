#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` on a new detached thread. For work that blocks (a socket, a libcurl
/// transfer, a keyring call, waitpid): Dispatch's global pool does not grow on Linux while
/// its threads block, so blocking work there starves everything else queued on it.
public func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    let created = pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, context)
    if created == 0 {
        pthread_detach(thread)
    } else {
        // No thread to be had: run it here rather than lose it.
        Unmanaged<Box>.fromOpaque(context).takeRetainedValue().body()
    }
}

/// Threads that, having run one job, wait a while for the next instead of exiting. Hook
/// connections and `offload` used to start a thread each; under load that was ~8% of a
/// session's CPU (clone, a fresh stack, its first page faults). A job never waits for a
/// worker: with none idle, a new thread starts, so blocking jobs cannot starve each other.
public final class WorkerThreads: @unchecked Sendable {
    public static let shared = WorkerThreads(idleSeconds: 10)

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let jobArrived = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let idleSeconds: Int
    // Guarded by `lock`.
    private var pending: [@Sendable () -> Void] = []
    private var idle = 0

    public init(idleSeconds: Int) {
        self.idleSeconds = idleSeconds
        pthread_mutex_init(lock, nil)
        pthread_cond_init(jobArrived, nil)
    }

    /// Runs `job` on an idle worker, or on a new thread when every worker is busy.
    public func run(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(lock)
        if idle > pending.count {
            pending.append(job)
            pthread_cond_signal(jobArrived)
            pthread_mutex_unlock(lock)
            return
        }
        pthread_mutex_unlock(lock)
        startThread { [self] in
            var next: (@Sendable () -> Void)? = job
            while let current = next {
                current()
                next = waitForJob()
            }
        }
    }

    /// The next job, or nil when none came for `idleSeconds` (the thread then ends).
    private func waitForJob() -> (@Sendable () -> Void)? {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        idle += 1
        defer { idle -= 1 }
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        deadline.tv_sec += idleSeconds
        while pending.isEmpty {
            if pthread_cond_timedwait(jobArrived, lock, &deadline) == ETIMEDOUT, pending.isEmpty { return nil }
        }
        return pending.removeFirst()
    }
}
