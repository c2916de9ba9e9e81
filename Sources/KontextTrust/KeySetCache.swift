import Foundation
import JWTKit
import KontextCore
import KontextExchangeCore
import KontextHTTP

/// How long fetched signing keys are trusted and how often they may be fetched again.
public struct KeyCachePolicy: Sendable, Equatable {
    /// A fetched JWKS is used without asking again for this long.
    public var lifetime: Duration
    /// Refetches (for an unknown `kid`, or after a failed fetch) are at least this far apart,
    /// so tokens naming made-up keys cannot make the broker hammer the issuer.
    public var minimumRefetchInterval: Duration
    /// When a due refresh fails, the keys already held keep being used for this long past
    /// their lifetime, so a short outage at the issuer does not stop every exchange.
    public var staleGrace: Duration

    public init(lifetime: Duration = .seconds(300), minimumRefetchInterval: Duration = .seconds(10),
                staleGrace: Duration = .seconds(3600)) {
        self.lifetime = lifetime
        self.minimumRefetchInterval = minimumRefetchInterval
        self.staleGrace = staleGrace
    }
}

/// One published public key, as the JWKS gave it.
struct PublishedKey: Sendable {
    var kid: String?
    var jwk: JWK
}

/// The keys of one issuer, fetched once and shared by every verification (actor-isolated;
/// concurrent callers that find the keys due wait for one fetch instead of starting their own).
actor KeySetCache {
    let issuer: TrustedIssuer
    let http: HTTPClient
    let policy: KeyCachePolicy
    private let clock = ContinuousClock()

    private var keys: [PublishedKey]?
    private var fetchedAt: ContinuousClock.Instant?
    private var lastAttempt: ContinuousClock.Instant?
    private var lastFailure: OAuthError?
    private var discoveredJWKSURL: String?
    private var inFlight: Task<Result<FetchedKeys, OAuthError>, Never>?
    /// Verification keys made from `keys`, by kid and alg; emptied whenever `keys` change.
    private var algorithms: [String: any JWTAlgorithm] = [:]
    /// How many JWKS documents have been fetched (for tests and diagnostics).
    private(set) var fetchCount = 0

    init(issuer: TrustedIssuer, http: HTTPClient, policy: KeyCachePolicy) {
        self.issuer = issuer
        self.http = http
        self.policy = policy
    }

    /// The key that must have signed a token with this header.
    func verificationKey(kid: String?, alg: String) async throws(OAuthError) -> any JWTAlgorithm {
        let (held, refreshedNow) = try await currentKeys()
        var current = held
        if let key = Self.find(kid: kid, in: current) {
            return try await algorithm(for: key, alg: alg)
        }
        // An unknown kid: the issuer may have rotated its keys since we fetched them.
        if !refreshedNow, refetchAllowed() {
            current = try await refresh()
            if let key = Self.find(kid: kid, in: current) {
                return try await algorithm(for: key, alg: alg)
            }
        }
        if let kid {
            throw OAuthError("invalid_request",
                             "subject_token is signed with an unknown signing key (kid '\(clip(kid))') of issuer '\(issuer.issuer)'")
        }
        throw OAuthError("invalid_request",
                         "subject_token names no signing key (kid) and issuer '\(issuer.issuer)' publishes \(current.count == 0 ? "none" : "several")")
    }

    /// The keys to use now, fetching them when there are none or their lifetime is over.
    private func currentKeys() async throws(OAuthError) -> ([PublishedKey], refreshedNow: Bool) {
        let now = clock.now
        if let keys, let fetchedAt, now - fetchedAt < policy.lifetime {
            return (keys, false)
        }
        if keys == nil, !refetchAllowed(), let lastFailure {
            // The last attempt failed a moment ago; say so again rather than ask again.
            throw lastFailure
        }
        if let keys, let fetchedAt, !refetchAllowed() {
            // Due, but a fetch was just tried and failed: keep the old keys within the grace.
            if now - fetchedAt < policy.lifetime + policy.staleGrace { return (keys, false) }
        }
        do {
            return (try await refresh(), true)
        } catch {
            if let keys, let fetchedAt, now - fetchedAt < policy.lifetime + policy.staleGrace {
                return (keys, false)
            }
            throw error
        }
    }

    private func refetchAllowed() -> Bool {
        guard let lastAttempt else { return true }
        return clock.now - lastAttempt >= policy.minimumRefetchInterval
    }

    /// Fetches the JWKS, or waits for the fetch already under way.
    private func refresh() async throws(OAuthError) -> [PublishedKey] {
        let task: Task<Result<FetchedKeys, OAuthError>, Never>
        if let inFlight {
            task = inFlight
        } else {
            lastAttempt = clock.now
            let issuer = self.issuer, http = self.http, known = discoveredJWKSURL
            task = Task { await Self.fetch(issuer: issuer, http: http, knownJWKSURL: known) }
            inFlight = task
            let result = await task.value
            inFlight = nil
            fetchCount += 1
            switch result {
            case .success(let fetched):
                keys = fetched.keys
                discoveredJWKSURL = fetched.url
                fetchedAt = clock.now
                lastFailure = nil
                algorithms = [:]
                return fetched.keys
            case .failure(let error):
                lastFailure = error
                discoveredJWKSURL = nil
                throw error
            }
        }
        let shared = await task.value
        return try shared.map(\.keys).get()
    }

    private static func find(kid: String?, in keys: [PublishedKey]) -> PublishedKey? {
        if let kid { return keys.first { $0.kid == kid } }
        return keys.count == 1 ? keys[0] : nil
    }

    /// A jwt-kit verifier for `key` used with `alg`, after checking they belong together.
    private func algorithm(for key: PublishedKey, alg: String) async throws(OAuthError) -> any JWTAlgorithm {
        let cacheKey = (key.kid ?? "") + "\u{0}" + alg
        if let cached = algorithms[cacheKey] { return cached }
        let named = key.kid.map { "key '\(clip($0))'" } ?? "the key"
        if let declared = key.jwk.algorithm?.rawValue, declared != alg {
            throw OAuthError("invalid_request",
                             "subject_token is signed with \(alg) but \(named) of issuer '\(issuer.issuer)' is for \(declared)")
        }
        guard let expectedType = Self.keyType(for: alg), key.jwk.keyType == expectedType else {
            throw OAuthError("invalid_request",
                             "subject_token is signed with \(alg) but \(named) of issuer '\(issuer.issuer)' is a \(key.jwk.keyType.rawValue) key")
        }
        var jwk = key.jwk
        jwk.algorithm = JWK.Algorithm(rawValue: alg)
        // Only the public half is ever wanted, whatever the document carried.
        jwk.privateExponent = nil
        jwk.prime1 = nil
        jwk.prime2 = nil
        let kid = JWKIdentifier(string: key.kid ?? "_")
        jwk.keyIdentifier = kid
        do {
            let collection = JWTKeyCollection()
            try await collection.add(jwk: jwk)
            let made = try await collection.getKey(for: kid, alg: alg)
            algorithms[cacheKey] = made
            return made
        } catch {
            throw OAuthError("invalid_request",
                             "subject_token cannot be checked: \(named) of issuer '\(issuer.issuer)' is not a usable \(alg) key")
        }
    }

    private static func keyType(for alg: String) -> JWK.KeyType? {
        if alg.hasPrefix("RS") || alg.hasPrefix("PS") { return .rsa }
        if alg.hasPrefix("ES") { return .ecdsa }
        if alg == "EdDSA" { return .octetKeyPair }
        return nil
    }

    // MARK: - Fetching

    private static func fetch(issuer: TrustedIssuer, http: HTTPClient,
                              knownJWKSURL: String?) async -> Result<FetchedKeys, OAuthError> {
        func unavailable(_ reason: String) -> OAuthError {
            OAuthError(status: 503, "temporarily_unavailable",
                       "the signing keys of issuer '\(issuer.issuer)' cannot be fetched: \(reason); try again later")
        }
        var url = issuer.jwksURL ?? knownJWKSURL
        if url == nil {
            switch await getJSON(issuer.discoveryURL, http: http) {
            case .failure(let problem):
                return .failure(unavailable(problem.reason))
            case .success(let document):
                guard document["issuer"]?.stringValue == issuer.issuer else {
                    return .failure(unavailable("\(issuer.discoveryURL) names issuer '\(document["issuer"]?.stringValue ?? "")', not '\(issuer.issuer)'"))
                }
                guard let jwksURI = document["jwks_uri"]?.stringValue, !jwksURI.isEmpty else {
                    return .failure(unavailable("\(issuer.discoveryURL) has no jwks_uri"))
                }
                guard TrustedIssuer.isAcceptableKeyURL(jwksURI) else {
                    return .failure(unavailable("jwks_uri '\(jwksURI)' is not https"))
                }
                url = jwksURI
            }
        }
        guard let url else { return .failure(unavailable("no JWKS URL")) }
        switch await getJSON(url, http: http) {
        case .failure(let problem):
            return .failure(unavailable(problem.reason))
        case .success(let document):
            guard case .array(let entries)? = document["keys"] else {
                return .failure(unavailable("\(url) is not a JWKS (no \"keys\" array)"))
            }
            return .success(FetchedKeys(keys: parseKeys(entries), url: url))
        }
    }

    /// The signature keys of a JWKS. Entries jwt-kit cannot read (other key types, `oct`)
    /// and encryption keys are left out rather than failing the whole set.
    static func parseKeys(_ entries: [JSONValue]) -> [PublishedKey] {
        let decoder = JSONDecoder()
        return entries.compactMap { entry -> PublishedKey? in
            guard entry.objectValue != nil else { return nil }
            if let use = entry["use"]?.stringValue, use != "sig" { return nil }
            guard let jwk = try? decoder.decode(JWK.self, from: Data(entry.serialized.utf8)) else { return nil }
            return PublishedKey(kid: entry["kid"]?.stringValue, jwk: jwk)
        }
    }

    private static func getJSON(_ url: String, http: HTTPClient) async -> Result<JSONValue, FetchProblem> {
        let request = HTTPRequest(url: url, headers: [("Accept", "application/json")], timeout: 10)
        switch await http.perform(request) {
        case .failure(let error):
            return .failure(FetchProblem("\(url): \(error.reason)"))
        case .success(let response):
            guard response.status == 200 else { return .failure(FetchProblem("\(url) answered HTTP \(response.status)")) }
            guard let document = try? JSONValue.parse(response.body), document.objectValue != nil else {
                return .failure(FetchProblem("\(url) did not answer a JSON object"))
            }
            return .success(document)
        }
    }
}

/// Why a document could not be fetched, for the 503 description.
struct FetchProblem: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// A fetched key set and the URL it came from.
struct FetchedKeys: Sendable {
    var keys: [PublishedKey]
    var url: String
}

/// Token-supplied text in an error description: bounded.
func clip(_ text: String, _ limit: Int = 120) -> String {
    text.count > limit ? String(text.prefix(limit)) + "…" : text
}
