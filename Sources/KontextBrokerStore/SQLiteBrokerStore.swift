#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import KontextCore

/// The default store: one SQLite file (WAL), created 0600. One broker process per file;
/// several replicas need PostgreSQL.
public final class SQLiteBrokerStore: BrokerStore {
    public let path: String
    let pool: DatabasePool

    public init(path: String) throws {
        self.path = path
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw KontextError.usage("cannot open the broker database \(path): \(String(cString: strerror(errno)))")
        }
        fchmod(fd, 0o600)
        Glibc.close(fd)
        var configuration = Configuration()
        configuration.label = "kontext-broker"
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw KontextError.usage("cannot open the broker database \(path): \(error)")
        }
    }

    public func migrate() async throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: vault, exchange log, audit") { db in
            try db.execute(sql: """
                CREATE TABLE credentials (
                    owner TEXT NOT NULL,
                    target TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    key_id TEXT NOT NULL,
                    sealed BLOB NOT NULL,
                    version INTEGER NOT NULL,
                    connected INTEGER NOT NULL,
                    updated_at TEXT NOT NULL,
                    PRIMARY KEY (owner, target)
                );
                CREATE TABLE exchanges (
                    position INTEGER PRIMARY KEY,
                    time TEXT NOT NULL,
                    principal TEXT,
                    target TEXT,
                    result TEXT NOT NULL
                );
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY NOT NULL,
                    owner TEXT NOT NULL,
                    agent TEXT NOT NULL,
                    host TEXT,
                    cwd TEXT,
                    started_at TEXT NOT NULL,
                    last_seen_at TEXT NOT NULL,
                    ended_at TEXT,
                    exit_code INTEGER
                );
                CREATE INDEX sessions_by_start ON sessions(started_at);
                CREATE TABLE events (
                    id TEXT PRIMARY KEY NOT NULL,
                    session_id TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    owner TEXT NOT NULL,
                    received_at TEXT NOT NULL,
                    json TEXT NOT NULL
                );
                CREATE INDEX events_by_session ON events(session_id, seq);
                """)
        }
        // Sessions and events are keyed by owner too, so one principal's ids neither collide
        // with nor reveal another's.
        migrator.registerMigration("v2: sessions and events per owner") { db in
            try db.execute(sql: """
                CREATE TABLE sessions_by_owner (
                    id TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    agent TEXT NOT NULL,
                    host TEXT,
                    cwd TEXT,
                    started_at TEXT NOT NULL,
                    last_seen_at TEXT NOT NULL,
                    ended_at TEXT,
                    exit_code INTEGER,
                    PRIMARY KEY (owner, id)
                );
                INSERT INTO sessions_by_owner (id, owner, agent, host, cwd, started_at, last_seen_at, ended_at, exit_code)
                    SELECT id, owner, agent, host, cwd, started_at, last_seen_at, ended_at, exit_code FROM sessions;
                DROP TABLE sessions;
                ALTER TABLE sessions_by_owner RENAME TO sessions;
                CREATE INDEX sessions_by_start ON sessions(started_at);
                CREATE TABLE events_by_owner (
                    id TEXT NOT NULL,
                    session_id TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    owner TEXT NOT NULL,
                    received_at TEXT NOT NULL,
                    json TEXT NOT NULL,
                    PRIMARY KEY (owner, id)
                );
                INSERT INTO events_by_owner (id, session_id, seq, owner, received_at, json)
                    SELECT id, session_id, seq, owner, received_at, json FROM events;
                DROP TABLE events;
                ALTER TABLE events_by_owner RENAME TO events;
                CREATE INDEX events_by_session ON events(session_id, seq);
                """)
        }
        migrator.registerMigration("v3: refused exchange counters") { db in
            try db.execute(sql: """
                CREATE TABLE refused_exchanges (
                    minute TEXT NOT NULL,
                    client TEXT NOT NULL,
                    result TEXT NOT NULL,
                    count INTEGER NOT NULL,
                    PRIMARY KEY (minute, client, result)
                );
                """)
        }
        migrator.registerMigration("v4: audit hash chain") { db in
            try db.execute(sql: """
                ALTER TABLE sessions ADD COLUMN chain_seq INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE sessions ADD COLUMN chain_hash TEXT;
                ALTER TABLE sessions ADD COLUMN chain_problem TEXT;
                ALTER TABLE sessions ADD COLUMN witnessed_seq INTEGER;
                ALTER TABLE sessions ADD COLUMN witnessed_hash TEXT;
                ALTER TABLE sessions ADD COLUMN witnessed_at TEXT;
                """)
        }
        // The OpenTelemetry export's outbox: an event is pending until it is marked exported.
        migrator.registerMigration("v5: OpenTelemetry export marks") { db in
            try db.execute(sql: """
                ALTER TABLE events ADD COLUMN otlp_exported_at TEXT;
                CREATE INDEX events_otlp_pending ON events(received_at) WHERE otlp_exported_at IS NULL;
                """)
        }
        migrator.registerMigration("v6: audit witness key") { db in
            try db.execute(sql: """
                CREATE TABLE broker_keys (
                    name TEXT PRIMARY KEY NOT NULL,
                    key_id TEXT NOT NULL,
                    sealed BLOB NOT NULL,
                    created_at TEXT NOT NULL
                );
                ALTER TABLE sessions ADD COLUMN signing_key TEXT;
                """)
        }
        Self.registerApprovalMigration(&migrator)
        do {
            try migrator.migrate(pool)
        } catch {
            throw KontextError.usage("cannot migrate the broker database \(path): \(error)")
        }
    }

    // MARK: Vault

    private static func credential(_ row: Row) -> StoredCredential {
        StoredCredential(owner: row["owner"], target: row["target"],
                         kind: StoredCredential.Kind(rawValue: row["kind"]) ?? .staticKey,
                         sealed: SealedSecret(keyID: row["key_id"], bytes: Array(row["sealed"] as Data)),
                         version: row["version"], connected: row["connected"], updatedAt: row["updated_at"])
    }

    public func putCredential(_ c: StoredCredential) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO credentials (owner, target, kind, key_id, sealed, version, connected, updated_at)
                VALUES (?, ?, ?, ?, ?, 1, ?, ?)
                ON CONFLICT (owner, target) DO UPDATE SET kind = excluded.kind, key_id = excluded.key_id,
                    sealed = excluded.sealed, version = credentials.version + 1, connected = excluded.connected,
                    updated_at = excluded.updated_at
                """, arguments: [c.owner, c.target, c.kind.rawValue, c.sealed.keyID, Data(c.sealed.bytes), c.connected, c.updatedAt])
        }
    }

    public func credential(owner: String, target: String) async throws -> StoredCredential? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM credentials WHERE owner = ? AND target = ?", arguments: [owner, target])
                .map(Self.credential)
        }
    }

    public func firstCredential(_ candidates: [(owner: String, target: String)]) async throws -> StoredCredential? {
        try await pool.read { db in
            // Cached: the exchange path runs this for every request.
            let statement = try db.cachedStatement(sql: "SELECT * FROM credentials WHERE owner = ? AND target = ?")
            for candidate in candidates {
                if let row = try Row.fetchOne(statement, arguments: [candidate.owner, candidate.target]) {
                    return Self.credential(row)
                }
            }
            return nil
        }
    }

    public func credentials() async throws -> [StoredCredential] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM credentials ORDER BY owner, target").map(Self.credential)
        }
    }

    public func removeCredential(owner: String, target: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM credentials WHERE owner = ? AND target = ?", arguments: [owner, target])
            return db.changesCount > 0
        }
    }

    public func replaceCredential(_ c: StoredCredential, expectedVersion: Int64) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE credentials SET kind = ?, key_id = ?, sealed = ?, version = version + 1, connected = ?, updated_at = ?
                WHERE owner = ? AND target = ? AND version = ?
                """, arguments: [c.kind.rawValue, c.sealed.keyID, Data(c.sealed.bytes), c.connected, c.updatedAt,
                                 c.owner, c.target, expectedVersion])
            return db.changesCount > 0
        }
    }

    // MARK: Exchange log

    public func recordExchange(_ entry: ExchangeLogEntry) async throws {
        try await pool.write { db in
            try db.cachedStatement(sql: "INSERT INTO exchanges (time, principal, target, result) VALUES (?, ?, ?, ?)")
                .execute(arguments: [entry.time, entry.principal, entry.target, entry.result])
        }
    }

    public func exchangeLog(limit: Int) async throws -> [ExchangeLogEntry] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM exchanges ORDER BY position DESC LIMIT ?", arguments: [limit]).map {
                ExchangeLogEntry(time: $0["time"], principal: $0["principal"], target: $0["target"], result: $0["result"])
            }
        }
    }

    public func countRefusedExchange(_ refused: RefusedExchanges) async throws {
        try await pool.write { db in
            try db.cachedStatement(sql: """
                INSERT INTO refused_exchanges (minute, client, result, count) VALUES (?, ?, ?, ?)
                ON CONFLICT (minute, client, result) DO UPDATE SET count = refused_exchanges.count + excluded.count
                """).execute(arguments: [refused.minute, refused.client, refused.result, refused.count])
        }
    }

    public func refusedExchanges(limit: Int) async throws -> [RefusedExchanges] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM refused_exchanges ORDER BY minute DESC, client, result LIMIT ?", arguments: [limit]).map {
                RefusedExchanges(minute: $0["minute"], client: $0["client"], result: $0["result"], count: $0["count"])
            }
        }
    }

    // MARK: Audit

    public func ownedSessions(_ ids: [String], owner: String) async throws -> Set<String> {
        try await pool.read { db in
            let statement = try db.cachedStatement(sql: "SELECT 1 FROM sessions WHERE owner = ? AND id = ?")
            return Set(try ids.filter { try Bool.fetchOne(statement, arguments: [owner, $0]) != nil })
        }
    }

    public func ingest(_ events: [IngestedEvent], owner: String, receivedAt: String) async throws -> (accepted: Int, duplicates: Int) {
        try await pool.write { db in
            var accepted = 0
            let statement = try db.cachedStatement(sql: """
                INSERT INTO events (id, session_id, seq, owner, received_at, json) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (owner, id) DO NOTHING
                """)
            for event in events {
                try statement.execute(arguments: [event.id, event.sessionID, event.seq, owner, receivedAt, event.json])
                accepted += db.changesCount
            }
            return (accepted, events.count - accepted)
        }
    }

    public func createSession(_ s: BrokerSession) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO sessions (id, owner, agent, host, cwd, started_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (owner, id) DO NOTHING
                """, arguments: [s.id, s.owner, s.agent, s.host, s.cwd, s.startedAt, s.lastSeenAt])
            return db.changesCount > 0
        }
    }

    public func touchSession(id: String, owner: String?, at time: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "UPDATE sessions SET last_seen_at = ? WHERE id = ? AND (? IS NULL OR owner = ?)",
                           arguments: [time, id, owner, owner])
            return db.changesCount > 0
        }
    }

    public func endSession(id: String, owner: String?, endedAt: String, exitCode: Int?, at time: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE sessions SET ended_at = ?, exit_code = ?, last_seen_at = ? WHERE id = ? AND (? IS NULL OR owner = ?)
                """, arguments: [endedAt, exitCode, time, id, owner, owner])
            return db.changesCount > 0
        }
    }

    public func events(sessionID: String, owner: String?, after: Int, limit: Int) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT json FROM events WHERE session_id = ? AND seq > ? AND (? IS NULL OR owner = ?)
                ORDER BY seq, id LIMIT ?
                """, arguments: [sessionID, after, owner, owner, limit])
        }
    }

    public func sessions(owner: String?, limit: Int) async throws -> [BrokerSession] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM sessions WHERE (? IS NULL OR owner = ?) ORDER BY started_at DESC, id LIMIT ?
                """, arguments: [owner, owner, limit]).map {
                BrokerSession(id: $0["id"], owner: $0["owner"], agent: $0["agent"], host: $0["host"], cwd: $0["cwd"],
                              startedAt: $0["started_at"], lastSeenAt: $0["last_seen_at"], endedAt: $0["ended_at"],
                              exitCode: $0["exit_code"])
            }
        }
    }

    public func chainState(sessionID: String, owner: String?) async throws -> BrokerChainState? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: """
                SELECT chain_seq, chain_hash, chain_problem, witnessed_seq, witnessed_hash, witnessed_at FROM sessions
                WHERE id = ? AND (? IS NULL OR owner = ?) ORDER BY owner LIMIT 1
                """, arguments: [sessionID, owner, owner]).map {
                BrokerChainState(seq: $0[0], hash: $0[1], problem: $0[2], witnessedSeq: $0[3], witnessedHash: $0[4], witnessedAt: $0[5])
            }
        }
    }

    public func advanceChain(sessionID: String, owner: String, seq: Int, hash: String?, problem: String?) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE sessions SET chain_seq = ?, chain_hash = ?, chain_problem = coalesce(chain_problem, ?)
                WHERE owner = ? AND id = ?
                """, arguments: [seq, hash, problem, owner, sessionID])
        }
    }

    public func witness(sessionID: String, owner: String, seq: Int, hash: String, at time: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE sessions SET witnessed_seq = ?, witnessed_hash = ?, witnessed_at = ?
                WHERE owner = ? AND id = ? AND (witnessed_seq IS NULL OR witnessed_seq < ?)
                """, arguments: [seq, hash, time, owner, sessionID, seq])
            if db.changesCount > 0 { return true }
            return try Bool.fetchOne(db, sql: "SELECT 1 FROM sessions WHERE owner = ? AND id = ?", arguments: [owner, sessionID]) != nil
        }
    }

    public func close() async {
        try? pool.close()
    }

    // MARK: OpenTelemetry export

    /// One broker per file, so no lock is needed: read, export (no transaction is held
    /// meanwhile, so ingest goes on), then mark.
    public func exportPendingEvents(limit: Int, at time: String, _ export: @escaping @Sendable ([String]) async throws -> Void) async throws -> Int {
        let batch = try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT owner, id, json FROM events WHERE otlp_exported_at IS NULL ORDER BY received_at, session_id, seq LIMIT ?
                """, arguments: [limit]).map { (owner: $0[0] as String, id: $0[1] as String, json: $0[2] as String) }
        }
        if batch.isEmpty { return 0 }
        try await export(batch.map(\.json))
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: "UPDATE events SET otlp_exported_at = ? WHERE owner = ? AND id = ?")
            for event in batch { try statement.execute(arguments: [time, event.owner, event.id]) }
        }
        return batch.count
    }

    public func pendingExportCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE otlp_exported_at IS NULL") ?? 0 }
    }

    // MARK: The audit witness

    public func brokerKey(name: String, storingIfAbsent candidate: SealedSecret, at time: String) async throws -> SealedSecret {
        try await pool.write { db in
            try db.execute(sql: "INSERT INTO broker_keys (name, key_id, sealed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                           arguments: [name, candidate.keyID, Data(candidate.bytes), time])
            let row = try Row.fetchOne(db, sql: "SELECT key_id, sealed FROM broker_keys WHERE name = ?", arguments: [name])!
            return SealedSecret(keyID: row["key_id"], bytes: Array(row["sealed"] as Data))
        }
    }

    public func bindSigningKey(sessionID: String, owner: String, publicKey: String) async throws -> String? {
        try await pool.write { db in
            try db.execute(sql: "UPDATE sessions SET signing_key = ? WHERE owner = ? AND id = ? AND signing_key IS NULL",
                           arguments: [publicKey, owner, sessionID])
            let row = try Row.fetchOne(db, sql: "SELECT signing_key FROM sessions WHERE owner = ? AND id = ?", arguments: [owner, sessionID])
            return row.flatMap { $0["signing_key"] as String? }
        }
    }

    public func resealBrokerKey(name: String, from current: SealedSecret, to resealed: SealedSecret) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "UPDATE broker_keys SET key_id = ?, sealed = ? WHERE name = ? AND key_id = ? AND sealed = ?",
                           arguments: [resealed.keyID, Data(resealed.bytes), name, current.keyID, Data(current.bytes)])
            return db.changesCount > 0
        }
    }
}
