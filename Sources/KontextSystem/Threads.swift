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
