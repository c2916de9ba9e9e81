import Foundation
import Synchronization

/// A token bucket per client address: `burst` requests at once, refilled at `rate` per
/// second. Kept in memory, per broker process.
public final class TokenRateLimiter: Sendable {
    public let rate: Double
    public let burst: Double
    private let buckets = Mutex<[String: Bucket]>([:])

    struct Bucket {
        var tokens: Double
        var updated: Double
    }

    /// Above this many clients, buckets that have refilled completely are forgotten.
    static let pruneThreshold = 10_000

    public init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = Double(max(burst, 1))
    }

    /// nil when `client` may go ahead; else the seconds until it may try again (at least 1).
    public func admit(_ client: String, now: Double = Date().timeIntervalSince1970) -> Int? {
        buckets.withLock { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + max(0, now - bucket.updated) * rate)
            bucket.updated = now
            defer {
                buckets[client] = bucket
                if buckets.count > Self.pruneThreshold {
                    buckets = buckets.filter { $0.value.tokens + (now - $0.value.updated) * rate < burst }
                }
            }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
        }
    }
}
