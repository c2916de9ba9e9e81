import KontextCore

/// A provider credential row. `owner` is a principal name, or `""` for the organisation's
/// credential that every permitted principal shares. The secret is only ever held sealed.
public struct StoredCredential: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// An API key or similar, released as is.
        case staticKey = "static"
        /// An upstream OAuth connection: the sealed value is a JSON object with the refresh
        /// token (and the last access token with its expiry), refreshed by the broker.
        case oauth
    }

    public var owner: String
    public var target: String
    public var kind: Kind
    public var sealed: SealedSecret
    /// Bumped on every write: a refresh replaces a row only if nobody replaced it meanwhile.
    public var version: Int64
    /// False once the provider refused the refresh token: the user must connect again.
    public var connected: Bool
    public var updatedAt: String

    public init(owner: String, target: String, kind: Kind, sealed: SealedSecret, version: Int64 = 1,
                connected: Bool = true, updatedAt: String) {
        self.owner = owner
        self.target = target
        self.kind = kind
        self.sealed = sealed
        self.version = version
        self.connected = connected
        self.updatedAt = updatedAt
    }

    /// Authenticated with the ciphertext, so a sealed value only opens in its own row.
    public var sealingContext: String { Self.sealingContext(owner: owner, target: target, kind: kind) }

    public static func sealingContext(owner: String, target: String, kind: Kind) -> String {
        "kontext-vault\u{0}\(owner)\u{0}\(target)\u{0}\(kind.rawValue)"
    }
}

/// One row of the exchange log.
public struct ExchangeLogEntry: Sendable, Equatable {
    public var time: String
    public var principal: String?
    public var target: String?
    public var result: String

    public init(time: String, principal: String?, target: String?, result: String) {
        self.time = time
        self.principal = principal
        self.target = target
        self.result = result
    }
}

/// Refused token requests whose subject token was not accepted: counted, not logged one by one.
public struct RefusedExchanges: Sendable, Equatable {
    /// `YYYY-MM-DDTHH:MM` (UTC).
    public var minute: String
    public var client: String
    /// The RFC 6749 error code answered.
    public var result: String
    public var count: Int

    public init(minute: String, client: String, result: String, count: Int) {
        self.minute = minute
        self.client = client
        self.result = result
        self.count = count
    }
}

/// An agent session as the audit API knows it. Its id is unique per owner: two principals
/// posting the same id have two sessions, neither visible to the other.
public struct BrokerSession: Sendable, Equatable {
    public var id: String
    /// The principal that created it.
    public var owner: String
    public var agent: String
    public var host: String?
    public var cwd: String?
    public var startedAt: String
    public var lastSeenAt: String
    public var endedAt: String?
    public var exitCode: Int?

    public init(id: String, owner: String, agent: String, host: String?, cwd: String?, startedAt: String,
                lastSeenAt: String, endedAt: String? = nil, exitCode: Int? = nil) {
        self.id = id
        self.owner = owner
        self.agent = agent
        self.host = host
        self.cwd = cwd
        self.startedAt = startedAt
        self.lastSeenAt = lastSeenAt
        self.endedAt = endedAt
        self.exitCode = exitCode
    }
}

/// What the broker knows of a session's hash chain (SPEC section 12): the head its ingest
/// has checked the events up to, the first continuity problem that check found (kept once
/// found: a gap or a broken link is never silently accepted), and the highest head the
/// client reported while the session ran (the witness), which later events must reach.
public struct BrokerChainState: Sendable, Equatable {
    public var seq: Int
    public var hash: String?
    public var problem: String?
    public var witnessedSeq: Int?
    public var witnessedHash: String?
    public var witnessedAt: String?

    public init(seq: Int = 0, hash: String? = nil, problem: String? = nil, witnessedSeq: Int? = nil,
                witnessedHash: String? = nil, witnessedAt: String? = nil) {
        self.seq = seq
        self.hash = hash
        self.problem = problem
        self.witnessedSeq = witnessedSeq
        self.witnessedHash = witnessedHash
        self.witnessedAt = witnessedAt
    }
}

/// An audit event ready to store: its key fields and its JSON text (SPEC section 7's object).
public struct IngestedEvent: Sendable, Equatable {
    public var id: String
    public var sessionID: String
    public var seq: Int
    public var json: String

    public init(id: String, sessionID: String, seq: Int, json: String) {
        self.id = id
        self.sessionID = sessionID
        self.seq = seq
        self.json = json
    }
}

/// Everything the self-hosted broker keeps, in one database that several replicas may share:
/// nothing here is cached between calls.
public protocol BrokerStore: OrganisationApprovalStore {
    /// Creates or upgrades the schema; safe to run from several replicas at once.
    func migrate() async throws

    func putCredential(_ credential: StoredCredential) async throws
    func credential(owner: String, target: String) async throws -> StoredCredential?
    /// The first of `candidates` (owner, target) that exists, in one round trip.
    func firstCredential(_ candidates: [(owner: String, target: String)]) async throws -> StoredCredential?
    func credentials() async throws -> [StoredCredential]
    /// True when a row was removed.
    func removeCredential(owner: String, target: String) async throws -> Bool
    /// Writes `credential` (with `version` + 1) only if the row still has `version`; false otherwise.
    func replaceCredential(_ credential: StoredCredential, expectedVersion: Int64) async throws -> Bool

    func recordExchange(_ entry: ExchangeLogEntry) async throws
    func exchangeLog(limit: Int) async throws -> [ExchangeLogEntry]
    /// Adds `refused.count` to the row of its minute, client and result.
    func countRefusedExchange(_ refused: RefusedExchanges) async throws
    /// The counters, newest minute first.
    func refusedExchanges(limit: Int) async throws -> [RefusedExchanges]

    /// Which of `ids` are sessions of `owner`.
    func ownedSessions(_ ids: [String], owner: String) async throws -> Set<String>
    /// Stores the events whose id is new for `owner`; the others count as duplicates.
    func ingest(_ events: [IngestedEvent], owner: String, receivedAt: String) async throws -> (accepted: Int, duplicates: Int)
    /// True when the session was created, false when its owner had it already.
    func createSession(_ session: BrokerSession) async throws -> Bool
    /// False when there is no such session (visible to `owner`, when given).
    func touchSession(id: String, owner: String?, at time: String) async throws -> Bool
    func endSession(id: String, owner: String?, endedAt: String, exitCode: Int?, at time: String) async throws -> Bool
    /// Events of one session in `seq` order, after `after`, as JSON texts.
    func events(sessionID: String, owner: String?, after: Int, limit: Int) async throws -> [String]
    /// Sessions, newest first; only `owner`'s when given.
    func sessions(owner: String?, limit: Int) async throws -> [BrokerSession]

    /// The session's chain state (`owner`'s session when given); nil when there is no session.
    func chainState(sessionID: String, owner: String?) async throws -> BrokerChainState?
    /// Moves the checked head to `seq`/`hash`, recording `problem` unless one is recorded already.
    func advanceChain(sessionID: String, owner: String, seq: Int, hash: String?, problem: String?) async throws
    /// Records a head the client reported, if it is past the one recorded; false when there is no session.
    func witness(sessionID: String, owner: String, seq: Int, hash: String, at time: String) async throws -> Bool

    func close() async

    // OpenTelemetry export (SPEC section 12): every stored event goes out once, after it is stored.

    /// Claims up to `limit` stored events not yet exported (oldest first), hands their JSON
    /// texts to `export` and marks them exported at `time` once it returns; when it throws they
    /// stay pending. Replicas sharing the database never hold the same events at once (on
    /// PostgreSQL the claim is a row lock, `FOR UPDATE SKIP LOCKED`, kept until the marks are
    /// written). Returns how many were exported; 0 when none is pending.
    func exportPendingEvents(limit: Int, at time: String, _ export: @escaping @Sendable ([String]) async throws -> Void) async throws -> Int
    /// Events stored and not yet exported.
    func pendingExportCount() async throws -> Int

    // MARK: The audit witness (SPEC section 12)

    /// The broker's own key stored under `name` (sealed), storing `candidate` first when there
    /// is none: replicas starting together all get the first one stored.
    func brokerKey(name: String, storingIfAbsent candidate: SealedSecret, at time: String) async throws -> SealedSecret
    /// Binds `publicKey` to the session as the key that signs its checkpoints, unless one is
    /// bound already; returns the bound key, nil when `owner` has no such session.
    func bindSigningKey(sessionID: String, owner: String, publicKey: String) async throws -> String?
    /// Replaces the sealed key `name` with `resealed` if it is still `current`; false otherwise.
    func resealBrokerKey(name: String, from current: SealedSecret, to resealed: SealedSecret) async throws -> Bool
}

/// Opens the store a `--db` value names: `sqlite:PATH` or `postgres://…` / `postgresql://…`.
public enum BrokerStores {
    public static func open(_ url: String, environment: [String: String] = currentEnvironment()) async throws -> any BrokerStore {
        if url.hasPrefix("sqlite:") {
            let path = String(url.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw KontextError.usage("--db sqlite: needs a path (sqlite:/var/lib/kontext/broker.db)") }
            return try SQLiteBrokerStore(path: path)
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return try PostgresBrokerStore(url: url, environment: environment)
        }
        throw KontextError.usage("--db '\(redactedURL(url))' is neither sqlite:PATH nor postgres://…",
                                 hint: "e.g. --db sqlite:/var/lib/kontext/broker.db or --db postgres://kontext@db.internal/kontext")
    }

    /// A database URL with any password replaced, for messages and logs.
    public static func redactedURL(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let userInfo = url[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}

/// Failures of the database, as a person reads them (never with a secret: rows hold none in clear).
public struct BrokerStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
