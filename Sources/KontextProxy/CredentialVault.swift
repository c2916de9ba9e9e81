import Foundation
import NIOCore
import Synchronization

/// A credential as exchanged: its value and, when the token service said, its lifetime.
public struct LiveCredential: Sendable {
    public var value: String
    public var expiresIn: Int?

    public init(value: String, expiresIn: Int?) {
        self.value = value
        self.expiresIn = expiresIn
    }
}

/// The session's real credentials, only in this process, renewed before they expire: a
/// request never carries a credential within its renewal margin of expiry, so a session
/// outlives its tokens (SPEC section 11, "fresh credentials").
public final class CredentialVault: Sendable {
    /// Exchanges the service's placeholder again (the same RFC 8693 path as at launch).
    public typealias Renewal = @Sendable (_ service: String) async throws -> LiveCredential

    private struct Entry {
        var value: String
        /// Monotonic seconds after which the value is renewed before use; nil never.
        var renewAfter: Double?
        var renewing: [EventLoopPromise<String>]?
    }

    private let entries: Mutex<[String: Entry]>
    private let renew: Renewal?
    /// Called with every value a renewal brings, so logs and audit redact it too.
    private let onRenewed: @Sendable (String, String) -> Void

    public init(_ credentials: [String: LiveCredential], renew: Renewal?,
                onRenewed: @escaping @Sendable (_ service: String, _ value: String) -> Void = { _, _ in }) {
        var entries: [String: Entry] = [:]
        let now = Self.now()
        for (service, credential) in credentials {
            entries[service] = Entry(value: credential.value, renewAfter: Self.renewAfter(credential.expiresIn, now: now))
        }
        self.entries = Mutex(entries)
        self.renew = renew
        self.onRenewed = onRenewed
    }

    /// Renewed when a fifth of its lifetime (at most a minute) is left.
    static func renewAfter(_ expiresIn: Int?, now: Double) -> Double? {
        guard let expiresIn, expiresIn > 0 else { return nil }
        let lifetime = Double(expiresIn)
        return now + lifetime - min(60, lifetime / 5)
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    public func has(_ service: String) -> Bool { entries.withLock { $0[service] != nil } }

    /// The credential to send now: at once when fresh; otherwise after one renewal shared by
    /// every request waiting for it. A failed renewal fails the requests that waited for it,
    /// and the next request tries again.
    func credential(for service: String, on loop: EventLoop) -> EventLoopFuture<String> {
        enum Next { case ready(String), wait(EventLoopPromise<String>), start(EventLoopPromise<String>), missing }
        let promise = loop.makePromise(of: String.self)
        let next: Next = entries.withLock { entries in
            guard var entry = entries[service] else { return .missing }
            if renew == nil || entry.renewAfter.map({ Self.now() < $0 }) ?? true { return .ready(entry.value) }
            if entry.renewing != nil {
                entry.renewing!.append(promise)
                entries[service] = entry
                return .wait(promise)
            }
            entry.renewing = [promise]
            entries[service] = entry
            return .start(promise)
        }
        switch next {
        case .ready(let value):
            promise.succeed(value)
            return promise.futureResult
        case .missing:
            promise.fail(ProxyFailure("no credential for '\(service)' in this session"))
            return promise.futureResult
        case .wait(let promise):
            return promise.futureResult
        case .start(let promise):
            guard let renew else { return promise.futureResult }
            Task {
                let result: Result<LiveCredential, any Error>
                do {
                    result = .success(try await renew(service))
                } catch {
                    result = .failure(RenewalFailure(description: "could not renew the \(service) credential: \(error)"))
                }
                if case .success(let fresh) = result { onRenewed(service, fresh.value) }
                let waiting: [EventLoopPromise<String>] = entries.withLock { entries in
                    var entry = entries[service]!
                    let waiting = entry.renewing ?? []
                    entry.renewing = nil
                    if case .success(let fresh) = result {
                        entry.value = fresh.value
                        entry.renewAfter = Self.renewAfter(fresh.expiresIn, now: Self.now())
                    }
                    entries[service] = entry
                    return waiting
                }
                for waiter in waiting {
                    switch result {
                    case .success(let fresh): waiter.succeed(fresh.value)
                    case .failure(let error): waiter.fail(error)
                    }
                }
            }
            return promise.futureResult
        }
    }
}

/// A failure the proxy explains in one line (never with a credential in it).
struct ProxyFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
