import Foundation
import KontextCore
import Logging
import NIOSSL
import PostgresNIO

/// The store for several broker replicas: PostgreSQL through postgres-nio's connection pool.
/// Every answer comes from the database, so replicas share nothing else.
public final class PostgresBrokerStore: BrokerStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    private let label: String
    /// For the reachability check before the pool is used: the pool itself waits for a
    /// connection indefinitely, so an unreachable server would hang the command.
    private let probe: PostgresConnection.Configuration

    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require|verify-full]`.
    /// The password may instead come from `PGPASSWORD`, which keeps it out of argv.
    public init(url: String, environment: [String: String]) throws {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw KontextError.usage("--db '\(BrokerStores.redactedURL(url))' is not a postgres:// URL with a host")
        }
        let user = components.user ?? environment["PGUSER"] ?? "postgres"
        let password = components.password ?? environment["PGPASSWORD"]
        var database = components.path
        while database.hasPrefix("/") { database.removeFirst() }
        let mode = Self.sslMode(host: host, requested: components.queryItems?.first { $0.name == "sslmode" }?.value)
        let tls: PostgresClient.Configuration.TLS
        let probeTLS: PostgresConnection.Configuration.TLS
        switch mode {
        case "disable": (tls, probeTLS) = (.disable, .disable)
        case "prefer": (tls, probeTLS) = (.prefer(.makeClientConfiguration()), .prefer(try NIOSSLContext(configuration: .makeClientConfiguration())))
        case "require", "verify-full": (tls, probeTLS) = (.require(.makeClientConfiguration()), .require(try NIOSSLContext(configuration: .makeClientConfiguration())))
        default: throw KontextError.usage("--db: sslmode '\(mode)' is not one of disable, prefer, require, verify-full")
        }
        var probe = PostgresConnection.Configuration(host: host, port: components.port ?? 5432, username: user, password: password,
                                                     database: database.isEmpty ? nil : database, tls: probeTLS)
        probe.options.connectTimeout = .seconds(15)  // deadline + 5 s (NIO's TimeAmount)
        self.probe = probe
        var configuration = PostgresClient.Configuration(host: host, port: components.port ?? 5432, username: user,
                                                         password: password, database: database.isEmpty ? nil : database,
                                                         tls: tls)
        configuration.options.maximumConnections = 16
        configuration.options.minimumConnections = 2
        // Connect timeouts (here and the probe's) are longer than `deadline`, so a silent
        // server is always reported the same way, never by whichever of two timers fires first.
        configuration.options.connectTimeout = Self.deadline + .seconds(5)
        var logger = Logger(label: "kontext.broker.postgres")
        logger.logLevel = .critical
        self.logger = logger
        self.label = BrokerStores.redactedURL(url)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
    }

    /// The URL's `sslmode`, else `require` for a host that is not loopback (a database across
    /// the network must not get the login and the vault rows in clear) and `prefer` on loopback.
    public static func sslMode(host: String, requested: String?) -> String {
        requested ?? (Transport.isLoopbackHost(host) ? "prefer" : "require")
    }

    /// How long one database call may take. The pool waits for a connection indefinitely and a
    /// server that accepts but never answers would hold a request (or a command) forever.
    static let deadline: Duration = .seconds(10)

    private func withDeadline<T: Sendable>(_ what: String, within deadline: Duration = PostgresBrokerStore.deadline,
                                           _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let label = self.label
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: deadline)
                throw KontextError(.usage, "PostgreSQL \(label): cannot \(what): no answer within \(deadline)")
            }
            // The first to finish wins; leaving the group cancels the other (pool leases are cancellable).
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }

    private func failure(_ what: String, _ error: any Error) -> KontextError {
        if let psql = error as? PSQLError, psql.code == .sslUnsupported {
            return KontextError(.usage, "PostgreSQL \(label): cannot \(what): the server does not offer TLS, which sslmode=require (the default for a host that is not loopback) needs",
                                hint: "configure TLS on the PostgreSQL server, or add ?sslmode=disable to the URL to accept plain text")
        }
        let reason = (error as? PSQLError).map { psql in
            psql.serverInfo?[.message].map { "\($0)" } ?? psql.underlying.map { "\(psql.code): \($0)" } ?? "\(psql.code)"
        } ?? "\(error)"
        return KontextError(.usage, "PostgreSQL \(label): cannot \(what): \(reason)")
    }

    private static let migrations: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE credentials (
                owner TEXT NOT NULL, target TEXT NOT NULL, kind TEXT NOT NULL, key_id TEXT NOT NULL,
                sealed BYTEA NOT NULL, version BIGINT NOT NULL, connected BOOLEAN NOT NULL, updated_at TEXT NOT NULL,
                PRIMARY KEY (owner, target))
            """,
            """
            CREATE TABLE exchanges (
                position BIGSERIAL PRIMARY KEY, time TEXT NOT NULL, principal TEXT, target TEXT, result TEXT NOT NULL)
            """,
            """
            CREATE TABLE sessions (
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, agent TEXT NOT NULL, host TEXT, cwd TEXT,
                started_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, ended_at TEXT, exit_code BIGINT)
            """,
            "CREATE INDEX sessions_by_start ON sessions(started_at)",
            """
            CREATE TABLE events (
                id TEXT PRIMARY KEY, session_id TEXT NOT NULL, seq BIGINT NOT NULL, owner TEXT NOT NULL,
                received_at TEXT NOT NULL, json TEXT NOT NULL)
            """,
            "CREATE INDEX events_by_session ON events(session_id, seq)",
        ]),
        // Sessions and events keyed by owner too, so one principal's ids neither collide with
        // nor reveal another's.
        (2, [
            "ALTER TABLE sessions DROP CONSTRAINT sessions_pkey, ADD PRIMARY KEY (owner, id)",
            "ALTER TABLE events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (owner, id)",
        ]),
        (3, [
            """
            CREATE TABLE refused_exchanges (
                minute TEXT NOT NULL, client TEXT NOT NULL, result TEXT NOT NULL, count BIGINT NOT NULL,
                PRIMARY KEY (minute, client, result))
            """,
        ]),
        (4, [
            """
            ALTER TABLE sessions ADD COLUMN chain_seq BIGINT NOT NULL DEFAULT 0, ADD COLUMN chain_hash TEXT,
                ADD COLUMN chain_problem TEXT, ADD COLUMN witnessed_seq BIGINT, ADD COLUMN witnessed_hash TEXT,
                ADD COLUMN witnessed_at TEXT
            """,
        ]),
        // The OpenTelemetry export's outbox: an event is pending until it is marked exported.
        (5, [
            "ALTER TABLE events ADD COLUMN otlp_exported_at TEXT",
            "CREATE INDEX events_otlp_pending ON events(received_at) WHERE otlp_exported_at IS NULL",
        ]),
        // The audit witness: the broker's sealed keys, and each session's certified signing key.
        (6, [
            "CREATE TABLE broker_keys (name TEXT PRIMARY KEY, key_id TEXT NOT NULL, sealed BYTEA NOT NULL, created_at TEXT NOT NULL)",
            "ALTER TABLE sessions ADD COLUMN signing_key TEXT",
        ]),
        // Organisation approvals. Numbered after their issue (#14), so steps added on other
        // branches at the same time never share a number; steps are applied by number, once.
        (14, approvalStatements),
    ]

    /// Replicas starting together serialise on an advisory lock, so each migration runs once.
    public func migrate() async throws {
        do {
            let (probe, logger) = (self.probe, self.logger)
            try await withDeadline("connect") {
                let connection = try await PostgresConnection.connect(configuration: probe, id: 0, logger: logger)
                try await connection.close()
            }
        } catch let error as KontextError {
            throw error
        } catch {
            throw failure("connect", error)
        }
        do {
            let (client, logger) = (self.client, self.logger)
            try await withDeadline("migrate the schema") {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(7206589)", logger: logger)
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS kontext_schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)
                    """, logger: logger)
                var applied = Set<Int>()
                for try await version in try await connection.query("SELECT version FROM kontext_schema_migrations",
                                                                    logger: logger).decode(Int.self) {
                    applied.insert(version)
                }
                for migration in Self.migrations where !applied.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    let now = Date().formatted(.iso8601)
                    try await connection.query("INSERT INTO kontext_schema_migrations (version, applied_at) VALUES (\(migration.version), \(now))",
                                               logger: logger)
                }
            }
            }
        } catch let error as KontextError {
            throw error
        } catch {
            throw failure("migrate the schema", error)
        }
    }

    // MARK: Vault

    private typealias CredentialRow = (String, String, String, String, Data, Int, Bool, String)

    private static func credential(_ row: CredentialRow) -> StoredCredential {
        StoredCredential(owner: row.0, target: row.1, kind: StoredCredential.Kind(rawValue: row.2) ?? .staticKey,
                         sealed: SealedSecret(keyID: row.3, bytes: Array(row.4)), version: Int64(row.5),
                         connected: row.6, updatedAt: row.7)
    }

    private func fetchCredentials(_ query: PostgresQuery) async throws -> [StoredCredential] {
        try await rows("read credentials") { client, logger in
            var result: [StoredCredential] = []
            for try await row in try await client.query(query, logger: logger)
                .decode((String, String, String, String, Data, Int, Bool, String).self) {
                result.append(Self.credential(row))
            }
            return result
        }
    }

    /// A read under the deadline, its failures worded for a person.
    func rows<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T) async throws -> T {
        let (client, logger) = (self.client, self.logger)
        do {
            return try await withDeadline(what) { try await body(client, logger) }
        } catch let error as KontextError {
            throw error
        } catch {
            throw failure(what, error)
        }
    }

    /// Runs a statement and counts the rows it returned (`RETURNING 1` counts changed rows).
    func count(_ what: String, _ query: PostgresQuery) async throws -> Int {
        try await rows(what) { client, logger in
            var rows = 0
            for try await _ in try await client.query(query, logger: logger) { rows += 1 }
            return rows
        }
    }

    public func putCredential(_ c: StoredCredential) async throws {
        _ = try await count("store a credential", """
            INSERT INTO credentials (owner, target, kind, key_id, sealed, version, connected, updated_at)
            VALUES (\(c.owner), \(c.target), \(c.kind.rawValue), \(c.sealed.keyID), \(Data(c.sealed.bytes)), 1, \(c.connected), \(c.updatedAt))
            ON CONFLICT (owner, target) DO UPDATE SET kind = excluded.kind, key_id = excluded.key_id,
                sealed = excluded.sealed, version = credentials.version + 1, connected = excluded.connected,
                updated_at = excluded.updated_at
            """)
    }

    public func credential(owner: String, target: String) async throws -> StoredCredential? {
        try await fetchCredentials("""
            SELECT owner, target, kind, key_id, sealed, version, connected, updated_at FROM credentials
            WHERE owner = \(owner) AND target = \(target)
            """).first
    }

    public func firstCredential(_ candidates: [(owner: String, target: String)]) async throws -> StoredCredential? {
        let owners = candidates.map(\.owner), targets = candidates.map(\.target)
        let rows = try await fetchCredentials("""
            SELECT owner, target, kind, key_id, sealed, version, connected, updated_at FROM credentials
            WHERE (owner, target) IN (SELECT * FROM unnest(\(owners)::text[], \(targets)::text[]))
            """)
        for candidate in candidates {
            if let row = rows.first(where: { $0.owner == candidate.owner && $0.target == candidate.target }) { return row }
        }
        return nil
    }

    public func credentials() async throws -> [StoredCredential] {
        try await fetchCredentials("""
            SELECT owner, target, kind, key_id, sealed, version, connected, updated_at FROM credentials ORDER BY owner, target
            """)
    }

    public func removeCredential(owner: String, target: String) async throws -> Bool {
        try await count("remove a credential",
                        "DELETE FROM credentials WHERE owner = \(owner) AND target = \(target) RETURNING 1") > 0
    }

    public func replaceCredential(_ c: StoredCredential, expectedVersion: Int64) async throws -> Bool {
        try await count("update a credential", """
            UPDATE credentials SET kind = \(c.kind.rawValue), key_id = \(c.sealed.keyID), sealed = \(Data(c.sealed.bytes)),
                version = version + 1, connected = \(c.connected), updated_at = \(c.updatedAt)
            WHERE owner = \(c.owner) AND target = \(c.target) AND version = \(Int(expectedVersion)) RETURNING 1
            """) > 0
    }

    // MARK: Exchange log

    public func recordExchange(_ entry: ExchangeLogEntry) async throws {
        _ = try await count("record an exchange", """
            INSERT INTO exchanges (time, principal, target, result) VALUES (\(entry.time), \(entry.principal), \(entry.target), \(entry.result))
            """)
    }

    public func exchangeLog(limit: Int) async throws -> [ExchangeLogEntry] {
        try await rows("read the exchange log") { client, logger in
            var result: [ExchangeLogEntry] = []
            for try await (time, principal, target, outcome) in try await client.query("""
                SELECT time, principal, target, result FROM exchanges ORDER BY position DESC LIMIT \(limit)
                """, logger: logger).decode((String, String?, String?, String).self) {
                result.append(ExchangeLogEntry(time: time, principal: principal, target: target, result: outcome))
            }
            return result
        }
    }

    public func countRefusedExchange(_ refused: RefusedExchanges) async throws {
        _ = try await count("count a refused exchange", """
            INSERT INTO refused_exchanges (minute, client, result, count) VALUES (\(refused.minute), \(refused.client), \(refused.result), \(refused.count))
            ON CONFLICT (minute, client, result) DO UPDATE SET count = refused_exchanges.count + excluded.count
            """)
    }

    public func refusedExchanges(limit: Int) async throws -> [RefusedExchanges] {
        try await rows("read the refused exchanges") { client, logger in
            var result: [RefusedExchanges] = []
            for try await (minute, address, outcome, count) in try await client.query("""
                SELECT minute, client, result, count FROM refused_exchanges ORDER BY minute DESC, client, result LIMIT \(limit)
                """, logger: logger).decode((String, String, String, Int).self) {
                result.append(RefusedExchanges(minute: minute, client: address, result: outcome, count: count))
            }
            return result
        }
    }

    // MARK: Audit

    public func ownedSessions(_ ids: [String], owner: String) async throws -> Set<String> {
        try await rows("read sessions") { client, logger in
            var result = Set<String>()
            for try await id in try await client.query("""
                SELECT id FROM sessions WHERE owner = \(owner) AND id = ANY(\(ids)::text[])
                """, logger: logger).decode(String.self) {
                result.insert(id)
            }
            return result
        }
    }

    /// One statement per batch; `ON CONFLICT DO NOTHING` makes a replica that inserts the same
    /// ids concurrently wait for the other's commit and then skip them.
    public func ingest(_ events: [IngestedEvent], owner: String, receivedAt: String) async throws -> (accepted: Int, duplicates: Int) {
        if events.isEmpty { return (0, 0) }
        let ids = events.map(\.id), sessions = events.map(\.sessionID), seqs = events.map(\.seq), texts = events.map(\.json)
        let accepted = try await count("store audit events", """
            INSERT INTO events (id, session_id, seq, owner, received_at, json)
            SELECT e.id, e.session_id, e.seq, \(owner), \(receivedAt), e.json
            FROM unnest(\(ids)::text[], \(sessions)::text[], \(seqs)::bigint[], \(texts)::text[]) AS e(id, session_id, seq, json)
            ON CONFLICT (owner, id) DO NOTHING RETURNING 1
            """)
        return (accepted, events.count - accepted)
    }

    public func createSession(_ s: BrokerSession) async throws -> Bool {
        try await count("create a session", """
            INSERT INTO sessions (id, owner, agent, host, cwd, started_at, last_seen_at)
            VALUES (\(s.id), \(s.owner), \(s.agent), \(s.host), \(s.cwd), \(s.startedAt), \(s.lastSeenAt))
            ON CONFLICT (owner, id) DO NOTHING RETURNING 1
            """) > 0
    }

    public func touchSession(id: String, owner: String?, at time: String) async throws -> Bool {
        try await count("update a session", """
            UPDATE sessions SET last_seen_at = \(time) WHERE id = \(id) AND (\(owner)::text IS NULL OR owner = \(owner)) RETURNING 1
            """) > 0
    }

    public func endSession(id: String, owner: String?, endedAt: String, exitCode: Int?, at time: String) async throws -> Bool {
        try await count("end a session", """
            UPDATE sessions SET ended_at = \(endedAt), exit_code = \(exitCode), last_seen_at = \(time)
            WHERE id = \(id) AND (\(owner)::text IS NULL OR owner = \(owner)) RETURNING 1
            """) > 0
    }

    public func events(sessionID: String, owner: String?, after: Int, limit: Int) async throws -> [String] {
        try await rows("read audit events") { client, logger in
            var result: [String] = []
            for try await text in try await client.query("""
                SELECT json FROM events WHERE session_id = \(sessionID) AND seq > \(after)
                AND (\(owner)::text IS NULL OR owner = \(owner)) ORDER BY seq, id LIMIT \(limit)
                """, logger: logger).decode(String.self) {
                result.append(text)
            }
            return result
        }
    }

    public func sessions(owner: String?, limit: Int) async throws -> [BrokerSession] {
        try await rows("read sessions") { client, logger in
            var result: [BrokerSession] = []
            for try await row in try await client.query("""
                SELECT id, owner, agent, host, cwd, started_at, last_seen_at, ended_at, exit_code FROM sessions
                WHERE (\(owner)::text IS NULL OR owner = \(owner)) ORDER BY started_at DESC, id LIMIT \(limit)
                """, logger: logger).decode((String, String, String, String?, String?, String, String, String?, Int?).self) {
                result.append(BrokerSession(id: row.0, owner: row.1, agent: row.2, host: row.3, cwd: row.4, startedAt: row.5,
                                            lastSeenAt: row.6, endedAt: row.7, exitCode: row.8))
            }
            return result
        }
    }

    public func chainState(sessionID: String, owner: String?) async throws -> BrokerChainState? {
        try await rows("read a session's chain") { client, logger in
            for try await row in try await client.query("""
                SELECT chain_seq, chain_hash, chain_problem, witnessed_seq, witnessed_hash, witnessed_at FROM sessions
                WHERE id = \(sessionID) AND (\(owner)::text IS NULL OR owner = \(owner)) ORDER BY owner LIMIT 1
                """, logger: logger).decode((Int, String?, String?, Int?, String?, String?).self) {
                return BrokerChainState(seq: row.0, hash: row.1, problem: row.2, witnessedSeq: row.3, witnessedHash: row.4, witnessedAt: row.5)
            }
            return nil
        }
    }

    public func advanceChain(sessionID: String, owner: String, seq: Int, hash: String?, problem: String?) async throws {
        _ = try await count("update a session's chain", """
            UPDATE sessions SET chain_seq = \(seq), chain_hash = \(hash), chain_problem = coalesce(chain_problem, \(problem))
            WHERE owner = \(owner) AND id = \(sessionID) RETURNING 1
            """)
    }

    public func witness(sessionID: String, owner: String, seq: Int, hash: String, at time: String) async throws -> Bool {
        let raised = try await count("record a witnessed head", """
            UPDATE sessions SET witnessed_seq = \(seq), witnessed_hash = \(hash), witnessed_at = \(time)
            WHERE owner = \(owner) AND id = \(sessionID) AND (witnessed_seq IS NULL OR witnessed_seq < \(seq)) RETURNING 1
            """)
        if raised > 0 { return true }
        return try await !ownedSessions([sessionID], owner: owner).isEmpty
    }

    // MARK: OpenTelemetry export

    /// The batch is claimed with `FOR UPDATE SKIP LOCKED` in a transaction that lasts until
    /// the collector has answered and the marks are written: another replica's claim skips
    /// the locked rows, and one that read them as pending before the commit finds them
    /// marked when it rechecks the row, so no event goes out twice. Ingest is not held up
    /// (new rows are not locked; readers never wait for row locks). A replica that dies
    /// mid-export releases its rows with its connection, and they go out again.
    public func exportPendingEvents(limit: Int, at time: String, _ export: @escaping @Sendable ([String]) async throws -> Void) async throws -> Int {
        let (client, logger) = (self.client, self.logger)
        do {
            return try await withDeadline("export audit events", within: Self.deadline * 6) {
                try await client.withTransaction(logger: logger) { connection in
                    var owners: [String] = [], ids: [String] = [], texts: [String] = []
                    for try await (owner, id, json) in try await connection.query("""
                        SELECT owner, id, json FROM events WHERE otlp_exported_at IS NULL
                        ORDER BY received_at, session_id, seq LIMIT \(limit) FOR UPDATE SKIP LOCKED
                        """, logger: logger).decode((String, String, String).self) {
                        owners.append(owner)
                        ids.append(id)
                        texts.append(json)
                    }
                    if ids.isEmpty { return 0 }
                    try await export(texts)
                    try await connection.query("""
                        UPDATE events SET otlp_exported_at = \(time)
                        WHERE (owner, id) IN (SELECT * FROM unnest(\(owners)::text[], \(ids)::text[]))
                        """, logger: logger)
                    return ids.count
                }
            }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? failure("export audit events", error)
        } catch let error as KontextError {
            throw error
        } catch {
            throw failure("export audit events", error)
        }
    }

    public func pendingExportCount() async throws -> Int {
        try await rows("count events to export") { client, logger in
            for try await count in try await client.query("SELECT count(*) FROM events WHERE otlp_exported_at IS NULL",
                                                          logger: logger).decode(Int.self) {
                return count
            }
            return 0
        }
    }

    public func close() async {
        runner.cancel()
        await runner.value
    }

    // MARK: The audit witness

    public func brokerKey(name: String, storingIfAbsent candidate: SealedSecret, at time: String) async throws -> SealedSecret {
        _ = try await count("store the broker's key", """
            INSERT INTO broker_keys (name, key_id, sealed, created_at) VALUES (\(name), \(candidate.keyID), \(Data(candidate.bytes)), \(time))
            ON CONFLICT (name) DO NOTHING RETURNING 1
            """)
        let stored = try await rows("read the broker's key") { client, logger -> SealedSecret? in
            for try await (keyID, sealed) in try await client.query("SELECT key_id, sealed FROM broker_keys WHERE name = \(name)",
                                                                     logger: logger).decode((String, Data).self) {
                return SealedSecret(keyID: keyID, bytes: Array(sealed))
            }
            return nil
        }
        guard let stored else { throw BrokerStoreError("the broker's key '\(name)' was not stored") }
        return stored
    }

    public func bindSigningKey(sessionID: String, owner: String, publicKey: String) async throws -> String? {
        _ = try await count("bind a session's signing key", """
            UPDATE sessions SET signing_key = \(publicKey) WHERE owner = \(owner) AND id = \(sessionID) AND signing_key IS NULL RETURNING 1
            """)
        return try await rows("read a session's signing key") { client, logger -> String?? in
            for try await key in try await client.query("SELECT signing_key FROM sessions WHERE owner = \(owner) AND id = \(sessionID)",
                                                        logger: logger).decode(String?.self) {
                return .some(key)
            }
            return .none
        } ?? nil
    }

    public func resealBrokerKey(name: String, from current: SealedSecret, to resealed: SealedSecret) async throws -> Bool {
        try await count("reseal the broker's key", """
            UPDATE broker_keys SET key_id = \(resealed.keyID), sealed = \(Data(resealed.bytes))
            WHERE name = \(name) AND key_id = \(current.keyID) AND sealed = \(Data(current.bytes)) RETURNING 1
            """) > 0
    }
}
