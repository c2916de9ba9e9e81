#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with one condition variable (pthread), for the writer's queue: Swift's `Mutex`
/// has no way to sleep until another thread changes the protected state.
final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    /// Sleeps until signalled; the caller holds the lock and holds it again on return.
    func wait() { pthread_cond_wait(condition, mutex) }
    func signal() { pthread_cond_signal(condition) }
    func broadcast() { pthread_cond_broadcast(condition) }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A one-shot result a blocked caller waits for and another thread fills in.
final class Rendezvous<Value: Sendable>: @unchecked Sendable {
    private let state = ConditionLock()
    private var value: Value?

    func fulfil(_ newValue: Value) {
        state.withLock {
            value = newValue
            state.broadcast()
        }
    }

    func wait() -> Value {
        state.lock()
        defer { state.unlock() }
        while value == nil { state.wait() }
        return value!
    }
}
