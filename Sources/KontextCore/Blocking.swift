import KontextSystem

/// Runs blocking work (libcurl, libsecret, waitpid) on a worker thread of its own (an idle
/// one or a new one, never a queue) so it never holds one of the few threads of Swift's
/// cooperative pool (two on the reference machine).
public func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        WorkerThreads.shared.run {
            continuation.resume(with: Result { try work() })
        }
    }
}
