import GRDB
import KontextCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a session's events may be shipped: the audit backend and the identity (issuer and
/// subject of the login or CI job) it was recorded under. A session without one (local mode)
/// never leaves the machine; one with a destination goes only there, with that identity.
public struct AuditDestination: Sendable, Equatable {
    /// `KONTEXT_AUDIT_URL` without trailing slashes.
    public var url: String
    public var issuer: String
    public var subject: String

    public init(url: String, issuer: String, subject: String) {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        self.url = base
        self.issuer = issuer
        self.subject = subject
    }
}

/// A session as the store knows it (`kontext audit sessions`).
public struct AuditSession: Sendable, Equatable {
    public var id: String
    public var agent: String
    public var actor: AuditActor
    public var host: String?
    public var cwd: String?
    public var startedAt: String
    public var endedAt: String?
    public var exitCode: Int32?
    /// Fixed when the session is first recorded; nil: local only.
    public var destination: AuditDestination?
    /// Filled in by the queries; ignored by `recordSessionStart`.
    public var eventCount: Int
    public var lastEventAt: String?

    public init(id: String, agent: String, actor: AuditActor = AuditActor(), host: String? = nil,
                cwd: String? = nil, startedAt: String = AuditTime.now(), endedAt: String? = nil,
                exitCode: Int32? = nil, destination: AuditDestination? = nil, eventCount: Int = 0,
                lastEventAt: String? = nil) {
        self.id = id
        self.agent = agent
        self.actor = actor
        self.host = host
        self.cwd = cwd
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.exitCode = exitCode
        self.destination = destination
        self.eventCount = eventCount
        self.lastEventAt = lastEventAt
    }
}

/// An event with its place in the store.
public struct AuditRecord: Sendable, Equatable {
    /// Increases with every committed event in this store file (the SQLite rowid): the
    /// cursor for `events(after:)` (`kontext audit tail`) and for shipping order.
    public var position: Int64
    public var event: AuditEvent
}

/// The local audit store of SPEC section 7: one SQLite file, default
/// `$XDG_STATE_HOME/kontext/audit.db` (directory 0700, file 0600).
///
/// Durability: WAL journal with `synchronous=NORMAL`. A committed transaction is in the WAL
/// file (the kernel's page cache) before the commit returns, so it survives the process
/// being killed (kill -9, crash); only a power loss or kernel crash can lose the last
/// commits before the next checkpoint. FULL would fsync every commit and cost the ingest
/// rate of SPEC section 9 for a failure the agent session would not survive either.
///
/// Events are appended through `AuditWriter` (which assigns `seq`); everything here is safe
/// to call from any thread, and other processes (`kontext audit …`) may read concurrently.
public final class AuditStore: Sendable {
    public let path: String
    let pool: DatabasePool

    /// How long a write waits for another process's write lock before failing.
    public static let busyTimeoutSeconds = 5.0

    public static func defaultPath(environment: [String: String] = currentEnvironment()) -> String {
        XDGDirectories(environment: environment).state + "/kontext/audit.db"
    }

    /// Whether a store file exists at `path`, for read-only commands (`kontext audit …`) that
    /// should report "no audit store yet" rather than create an empty one.
    public static func exists(path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Opens (creating if needed) the store at the default path.
    public convenience init(environment: [String: String] = currentEnvironment()) throws {
        try self.init(path: AuditStore.defaultPath(environment: environment))
    }

    /// Opens (creating if needed) the store at `path`; missing parent directories are
    /// created with mode 0700, the database file with 0600 (SQLite gives its -wal and -shm
    /// files the same mode).
    public init(path: String) throws {
        self.path = path
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]), mode: 0o700)
        }
        try AuditStore.createPrivateFile(path)

        var configuration = Configuration()
        configuration.label = "kontext-audit"
        configuration.busyMode = .timeout(AuditStore.busyTimeoutSeconds)
        // Readers serve `kontext audit` queries and the shipper; two keep memory small.
        configuration.maximumReaderCount = 2
        configuration.prepareDatabase { db in
            // GRDB already picks NORMAL for WAL pools; stated here because the durability
            // promise above depends on it.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // 1 MiB of page cache per connection instead of 2: appends touch only the right
            // edge of each B-tree, and SPEC section 9 caps the sidecar at 30 MB of RSS.
            try db.execute(sql: "PRAGMA cache_size = -1024")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try AuditStore.migrator.migrate(pool)
        } catch {
            throw AuditStore.failure("cannot open the audit store \(path)", error)
        }
    }

    private static func createPrivateFile(_ path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw KontextError(.usage, "cannot open the audit store \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var status = stat()
        if fstat(fd, &status) == 0, status.st_mode & 0o077 != 0 {
            fchmod(fd, 0o600)
        }
    }

    // MARK: Schema

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: sessions and events") { db in
            try db.execute(sql: """
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY NOT NULL,
                    agent TEXT NOT NULL,
                    actor_sub TEXT,
                    actor_email TEXT,
                    host TEXT,
                    cwd TEXT,
                    started_at TEXT NOT NULL,
                    ended_at TEXT,
                    exit_code INTEGER
                );
                CREATE INDEX sessions_by_start ON sessions(started_at);

                CREATE TABLE events (
                    position INTEGER PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    session_id TEXT NOT NULL REFERENCES sessions(id),
                    seq INTEGER NOT NULL,
                    time TEXT NOT NULL,
                    event TEXT NOT NULL,
                    tool_name TEXT,
                    decision_outcome TEXT,
                    decision_rule TEXT,
                    decision_enforced INTEGER,
                    json TEXT NOT NULL,
                    shipped_at TEXT,
                    UNIQUE (session_id, seq)
                );
                -- The shipper's queue: only rows not yet shipped, in commit order.
                CREATE INDEX events_unshipped ON events(position) WHERE shipped_at IS NULL;
                """)
        }
        migrator.registerMigration("v2: session lifecycle shipping") { db in
            try db.execute(sql: """
                ALTER TABLE sessions ADD COLUMN start_shipped_at TEXT;
                ALTER TABLE sessions ADD COLUMN end_shipped_at TEXT;
                """)
        }
        migrator.registerMigration("v3: sessions bound to their audit destination") { db in
            // Sessions recorded before have no destination: nothing shows which backend and
            // login (if any) they belonged to, so they stay local.
            try db.execute(sql: """
                ALTER TABLE sessions ADD COLUMN audit_url TEXT;
                ALTER TABLE sessions ADD COLUMN audit_issuer TEXT;
                ALTER TABLE sessions ADD COLUMN audit_subject TEXT;
                -- A destination's queue: its sessions' unshipped events, without reading
                -- the unshipped events of local sessions (which are never shipped).
                CREATE INDEX events_unshipped_by_session ON events(session_id, position) WHERE shipped_at IS NULL;
                """)
        }
        migrator.registerMigration("v4: hash chain") { db in
            // The head of each session's chain is read from here, not parsed from `json`.
            // Events recorded before have none: their sessions stay unchained.
            try db.execute(sql: "ALTER TABLE events ADD COLUMN hash TEXT")
        }
        migrator.registerMigration("v5: OpenTelemetry export cursors") { db in
            // Per collector endpoint: the position of the last event it acknowledged.
            try db.execute(sql: "CREATE TABLE otlp_exports (endpoint TEXT PRIMARY KEY NOT NULL, position INTEGER NOT NULL)")
        }
        return migrator
    }

    // MARK: Sessions

    /// Records a session before its first event (kontext start knows the actor, host, cwd
    /// and audit destination); later calls fill in only what is still unknown, and never
    /// change a destination once set. `AuditWriter` creates the row from the first event of
    /// a session that was not recorded (with no destination: it stays local).
    public func recordSessionStart(_ session: AuditSession) throws {
        let destination = session.destination
        try write("record session \(session.id)") { db in
            try db.execute(sql: """
                INSERT INTO sessions (id, agent, actor_sub, actor_email, host, cwd, started_at,
                                      audit_url, audit_issuer, audit_subject)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET
                    actor_sub = coalesce(actor_sub, excluded.actor_sub),
                    actor_email = coalesce(actor_email, excluded.actor_email),
                    host = coalesce(host, excluded.host),
                    cwd = coalesce(cwd, excluded.cwd),
                    started_at = min(started_at, excluded.started_at),
                    audit_issuer = CASE WHEN audit_url IS NULL THEN excluded.audit_issuer ELSE audit_issuer END,
                    audit_subject = CASE WHEN audit_url IS NULL THEN excluded.audit_subject ELSE audit_subject END,
                    audit_url = coalesce(audit_url, excluded.audit_url)
                """, arguments: [session.id, session.agent, session.actor.sub, session.actor.email,
                                 session.host, session.cwd, session.startedAt,
                                 destination?.url, destination?.issuer, destination?.subject])
        }
    }

    /// Marks a session ended with the agent's exit code (SPEC section 8's code: 128+N for
    /// signal N). A `session-end` event also sets `ended_at` when it is still empty.
    public func endSession(id: String, endedAt: String = AuditTime.now(), exitCode: Int32?) throws {
        try write("end session \(id)") { db in
            try db.execute(sql: "UPDATE sessions SET ended_at = ?, exit_code = coalesce(?, exit_code) WHERE id = ?",
                           arguments: [endedAt, exitCode, id])
            if db.changesCount == 0 {
                throw KontextError(.usage, "no audit session \(id)")
            }
        }
    }

    private static let sessionColumns = """
        SELECT s.id, s.agent, s.actor_sub, s.actor_email, s.host, s.cwd, s.started_at, s.ended_at,
               s.exit_code,
               (SELECT count(*) FROM events e WHERE e.session_id = s.id),
               (SELECT e.time FROM events e WHERE e.session_id = s.id ORDER BY e.seq DESC LIMIT 1),
               s.audit_url, s.audit_issuer, s.audit_subject
        FROM sessions s
        """

    private static func session(from row: Row) -> AuditSession {
        let url: String? = row[11], issuer: String? = row[12], subject: String? = row[13]
        var destination: AuditDestination?
        if let url, let issuer, let subject { destination = AuditDestination(url: url, issuer: issuer, subject: subject) }
        return AuditSession(id: row[0], agent: row[1], actor: AuditActor(sub: row[2], email: row[3]),
                            host: row[4], cwd: row[5], startedAt: row[6], endedAt: row[7],
                            exitCode: (row[8] as Int64?).map { Int32(truncatingIfNeeded: $0) },
                            destination: destination, eventCount: row[9], lastEventAt: row[10])
    }

    /// Sessions, newest first, with their event counts.
    public func sessions(limit: Int? = nil) throws -> [AuditSession] {
        try read("list sessions") { db in
            try Row.fetchAll(db, sql: AuditStore.sessionColumns + " ORDER BY s.started_at DESC, s.rowid DESC LIMIT ?",
                             arguments: [limit ?? -1])
                .map(AuditStore.session(from:))
        }
    }

    public func session(id: String) throws -> AuditSession? {
        try read("read session \(id)") { db in
            try Row.fetchOne(db, sql: AuditStore.sessionColumns + " WHERE s.id = ?", arguments: [id])
                .map(AuditStore.session(from:))
        }
    }

    /// Sessions whose id starts with `prefix` (ASCII case-insensitive), newest first.
    public func sessions(idPrefix prefix: String) throws -> [AuditSession] {
        let pattern = prefix.replacingAll("\\", with: "\\\\").replacingAll("%", with: "\\%")
            .replacingAll("_", with: "\\_") + "%"
        return try read("find sessions \(prefix)") { db in
            try Row.fetchAll(db, sql: AuditStore.sessionColumns
                                + " WHERE s.id LIKE ? ESCAPE '\\' ORDER BY s.started_at DESC, s.rowid DESC",
                             arguments: [pattern])
                .map(AuditStore.session(from:))
        }
    }

    /// The session `kontext audit show ID` means: an exact id, or the one session whose id
    /// starts with ID (like git's short hashes). None or several is an error saying what to do.
    public func resolveSession(_ idOrPrefix: String) throws -> AuditSession {
        guard !idOrPrefix.isEmpty else {
            throw KontextError.usage("no audit session id given", hint: "list them with `kontext audit sessions`")
        }
        if let exact = try session(id: idOrPrefix) { return exact }
        let matches = try sessions(idPrefix: idOrPrefix)
        switch matches.count {
        case 1:
            return matches[0]
        case 0:
            throw KontextError.usage("no audit session matches \"\(idOrPrefix)\"",
                                     hint: "list them with `kontext audit sessions`")
        default:
            let shown = matches.prefix(5).map { "\($0.id) (started \($0.startedAt))" }
            throw KontextError(.usage, "audit session prefix \"\(idOrPrefix)\" is ambiguous: it matches \(matches.count) sessions",
                               details: shown + (matches.count > 5 ? ["…"] : []),
                               hint: "type more characters of the id")
        }
    }

    // MARK: Events

    /// The events of one session in `seq` order.
    public func events(sessionID: String) throws -> [AuditEvent] {
        try read("read events of session \(sessionID)") { db in
            try String.fetchAll(db, sql: "SELECT json FROM events WHERE session_id = ? ORDER BY seq",
                                arguments: [sessionID])
                .map { try AuditEvent(jsonText: $0) }
        }
    }

    /// The events of one session in `seq` order as the JSON objects stored, for
    /// `AuditChain.verify` (which hashes what was stored, not a re-encoding of it).
    public func eventObjects(sessionID: String) throws -> [JSONValue] {
        try read("read events of session \(sessionID)") { db in
            try String.fetchAll(db, sql: "SELECT json FROM events WHERE session_id = ? ORDER BY seq",
                                arguments: [sessionID])
                .map { text in
                    do { return try JSONValue.parse(text) } catch {
                        throw KontextError(.usage, "an event of session \(sessionID) in the audit store is not JSON: \(error)")
                    }
                }
        }
    }

    /// The session's last event, nil when it has none.
    public func lastEvent(sessionID: String) throws -> AuditEvent? {
        try read("read the last event of session \(sessionID)") { db in
            try String.fetchOne(db, sql: "SELECT json FROM events WHERE session_id = ? ORDER BY seq DESC LIMIT 1",
                                arguments: [sessionID]).map { try AuditEvent(jsonText: $0) }
        }
    }

    /// The session's last event: its `seq` and `hash` (nil hash: recorded before chaining).
    public func chainHead(sessionID: String) throws -> (seq: Int, hash: String?)? {
        try read("read the chain head of session \(sessionID)") { db in
            try Row.fetchOne(db, sql: "SELECT seq, hash FROM events WHERE session_id = ? ORDER BY seq DESC LIMIT 1",
                             arguments: [sessionID]).map { (seq: $0[0], hash: $0[1]) }
        }
    }

    public func event(id: String) throws -> AuditEvent? {
        try read("read event \(id)") { db in
            try String.fetchOne(db, sql: "SELECT json FROM events WHERE id = ?", arguments: [id])
                .map { try AuditEvent(jsonText: $0) }
        }
    }

    /// The last `limit` events of the store, oldest first (the start of `kontext audit tail`).
    public func recentEvents(limit: Int) throws -> [AuditRecord] {
        try records("read recent events", sql: """
            SELECT position, json FROM (SELECT position, json FROM events ORDER BY position DESC LIMIT ?)
            ORDER BY position
            """, arguments: [limit])
    }

    /// Events committed after `position`, oldest first (`tail` polls this).
    public func events(after position: Int64, limit: Int = 1000) throws -> [AuditRecord] {
        try records("read new events", sql: "SELECT position, json FROM events WHERE position > ? ORDER BY position LIMIT ?",
                    arguments: [position, limit])
    }

    /// Every event in commit order (loads them all; `forEachEvent` streams).
    public func allEvents() throws -> [AuditEvent] {
        var events: [AuditEvent] = []
        try forEachEvent { events.append($0) }
        return events
    }

    /// Calls `body` with every event in commit order, reading one row at a time so exports
    /// of large stores run in constant memory. Writers are not blocked meanwhile (WAL); the
    /// events are those committed when the call began.
    public func forEachEvent(_ body: (AuditEvent) throws -> Void) throws {
        try read("export events") { db in
            let texts = try String.fetchCursor(db, sql: "SELECT json FROM events ORDER BY position")
            while let text = try texts.next() {
                try body(try AuditEvent(jsonText: text))
            }
        }
    }

    public func eventCount() throws -> Int {
        try read("count events") { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0 }
    }

    // MARK: Shipping queue

    /// Sessions bound to `destination` (all three parts equal).
    private static let boundTo = "s.audit_url = ? AND s.audit_issuer = ? AND s.audit_subject = ?"

    private static func arguments(_ destination: AuditDestination) -> StatementArguments {
        [destination.url, destination.issuer, destination.subject]
    }

    /// The oldest events bound for `destination` not yet shipped, in commit order.
    public func pendingEvents(limit: Int, for destination: AuditDestination) throws -> [AuditRecord] {
        try records("read unshipped events", sql: """
            SELECT e.position, e.json FROM sessions s
            JOIN events e ON e.session_id = s.id AND e.shipped_at IS NULL
            WHERE \(AuditStore.boundTo) ORDER BY e.position LIMIT ?
            """, arguments: AuditStore.arguments(destination) + [limit])
    }

    public func pendingEventCount(for destination: AuditDestination) throws -> Int {
        try read("count unshipped events") { db in
            try Int.fetchOne(db, sql: """
                SELECT count(*) FROM sessions s JOIN events e ON e.session_id = s.id AND e.shipped_at IS NULL
                WHERE \(AuditStore.boundTo)
                """, arguments: AuditStore.arguments(destination)) ?? 0
        }
    }

    /// Unshipped events of sessions bound to the backend at `url`, whoever recorded them.
    public func pendingEventCount(auditURL url: String) throws -> Int {
        let base = AuditDestination(url: url, issuer: "", subject: "").url
        return try read("count unshipped events") { db in
            try Int.fetchOne(db, sql: """
                SELECT count(*) FROM sessions s JOIN events e ON e.session_id = s.id AND e.shipped_at IS NULL
                WHERE s.audit_url = ?
                """, arguments: [base]) ?? 0
        }
    }

    /// Whether a session bound to the backend at `url` has its start or end still to send.
    public func hasPendingSessions(auditURL url: String) throws -> Bool {
        let base = AuditDestination(url: url, issuer: "", subject: "").url
        return try read("read unshipped sessions") { db in
            try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM sessions WHERE audit_url = ?
                               AND (start_shipped_at IS NULL OR (ended_at IS NOT NULL AND end_shipped_at IS NULL)))
                """, arguments: [base]) ?? false
        }
    }

    /// Sessions bound to `destination` whose start (`start`) or end has not reached it yet;
    /// an end is pending only once the session has ended.
    public func pendingSessions(start: Bool, for destination: AuditDestination) throws -> [AuditSession] {
        let condition = start ? "s.start_shipped_at IS NULL" : "s.ended_at IS NOT NULL AND s.end_shipped_at IS NULL"
        return try read("read unshipped sessions") { db in
            try Row.fetchAll(db, sql: AuditStore.sessionColumns + " WHERE \(condition) AND \(AuditStore.boundTo) ORDER BY s.rowid",
                             arguments: AuditStore.arguments(destination))
                .map(AuditStore.session(from:))
        }
    }

    public func markSessionShipped(id: String, start: Bool, at time: String = AuditTime.now()) throws {
        try write("mark session shipped") { db in
            try db.execute(sql: "UPDATE sessions SET \(start ? "start_shipped_at" : "end_shipped_at") = ? WHERE id = ?",
                           arguments: [time, id])
        }
    }

    /// Marks events as accepted by the backend; unknown ids are ignored.
    public func markShipped(ids: [String], at time: String = AuditTime.now()) throws {
        guard !ids.isEmpty else { return }
        try write("mark events shipped") { db in
            // Chunks stay well under SQLite's bound-parameter limit.
            var start = 0
            while start < ids.count {
                let chunk = ids[start..<min(start + 500, ids.count)]
                let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                try db.execute(sql: "UPDATE events SET shipped_at = ? WHERE shipped_at IS NULL AND id IN (\(placeholders))",
                               arguments: StatementArguments([time] + chunk.map { $0 as (any DatabaseValueConvertible)? }))
                start += chunk.count
            }
        }
    }

    // MARK: OpenTelemetry export

    /// The position the collector at `endpoint` has every event up to. An endpoint seen for
    /// the first time starts at the store's last event: it gets the events recorded from
    /// then on, not the whole history.
    public func otlpPosition(endpoint: String) throws -> Int64 {
        try write("read the OpenTelemetry export position") { db in
            try db.execute(sql: """
                INSERT INTO otlp_exports (endpoint, position) VALUES (?, (SELECT coalesce(max(position), 0) FROM events))
                ON CONFLICT(endpoint) DO NOTHING
                """, arguments: [endpoint])
            return try Int64.fetchOne(db, sql: "SELECT position FROM otlp_exports WHERE endpoint = ?", arguments: [endpoint]) ?? 0
        }
    }

    public func setOTLPPosition(endpoint: String, position: Int64) throws {
        try write("record the OpenTelemetry export position") { db in
            try db.execute(sql: "UPDATE otlp_exports SET position = max(position, ?) WHERE endpoint = ?", arguments: [position, endpoint])
        }
    }

    /// Events after `position` (how many a collector has yet to receive).
    public func eventCount(after position: Int64) throws -> Int {
        try read("count events") { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE position > ?", arguments: [position]) ?? 0
        }
    }

    // MARK: Appending (used by AuditWriter)

    /// Commits `events` in one transaction, assigning each its session's next `seq` and its
    /// place in the session's hash chain, and returns each event as stored. If the
    /// transaction fails, each event is retried in a transaction of its own so one bad event
    /// does not fail the others.
    func commit(_ events: [PreparedEvent]) -> [Result<AuditEvent, any Error>] {
        do {
            return try pool.write { db in
                var heads: [String: ChainHead] = [:]
                return try events.map { Result.success(try insert($0, into: db, heads: &heads)) }
            }
        } catch {
            if events.count == 1 { return [.failure(AuditStore.failure("cannot record audit event \(events[0].event.id)", error))] }
        }
        return events.map { event in
            Result {
                do {
                    return try pool.write { db in
                        var heads: [String: ChainHead] = [:]
                        return try insert(event, into: db, heads: &heads)
                    }
                } catch {
                    throw AuditStore.failure("cannot record audit event \(event.event.id)", error)
                }
            }
        }
    }

    /// A session's last event in this transaction: its seq and hash (nil: no event yet, or
    /// one stored before chaining).
    struct ChainHead {
        var seq: Int
        var hash: String?
    }

    /// `heads` caches, per session, the last event in this transaction so each session's
    /// head is read from the index only once per batch.
    private func insert(_ prepared: PreparedEvent, into db: Database, heads: inout [String: ChainHead]) throws -> AuditEvent {
        var event = prepared.event
        let previous: ChainHead
        if let cached = heads[event.sessionID] {
            previous = cached
        } else {
            try db.cachedStatement(sql: """
                INSERT INTO sessions (id, agent, actor_sub, actor_email, host, cwd, started_at)
                VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING
                """).execute(arguments: [event.sessionID, event.agent, event.actor.sub, event.actor.email,
                                         event.host, event.cwd, event.time])
            let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, hash FROM events WHERE session_id = ? ORDER BY seq DESC LIMIT 1"),
                                       arguments: [event.sessionID])
            previous = row.map { ChainHead(seq: $0[0], hash: $0[1]) } ?? ChainHead(seq: 0, hash: nil)
        }
        event.seq = previous.seq + 1
        event.prevHash = previous.seq == 0 ? AuditChain.genesis(sessionID: event.sessionID, start: event.time) : previous.hash
        event.hash = prepared.hash(seq: event.seq, prevHash: event.prevHash)

        try db.cachedStatement(sql: """
            INSERT INTO events (id, session_id, seq, time, event, tool_name, decision_outcome,
                                decision_rule, decision_enforced, json, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING
            """).execute(arguments: [event.id, event.sessionID, event.seq, event.time, event.event.rawValue,
                                     event.toolName, event.decision?.outcome.rawValue, event.decision?.rule,
                                     event.decision?.enforced,
                                     prepared.jsonText(seq: event.seq, prevHash: event.prevHash, hash: event.hash),
                                     event.hash])
        guard db.changesCount > 0 else {
            // Same id already stored (a retried append): idempotent, answer with the stored one.
            heads[event.sessionID] = previous
            guard let stored = try String.fetchOne(db.cachedStatement(sql: "SELECT json FROM events WHERE id = ?"),
                                                   arguments: [event.id]) else {
                throw KontextError(.usage, "audit event \(event.id) was neither inserted nor found")
            }
            return try AuditEvent(jsonText: stored)
        }
        heads[event.sessionID] = ChainHead(seq: event.seq, hash: event.hash)

        if event.event == .sessionEnd {
            try db.cachedStatement(sql: "UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL")
                .execute(arguments: [event.time, event.sessionID])
        }
        return event
    }

    // MARK: Helpers

    private func records(_ what: String, sql: String, arguments: StatementArguments) throws -> [AuditRecord] {
        try read(what) { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                AuditRecord(position: row[0], event: try AuditEvent(jsonText: row[1]))
            }
        }
    }

    private func read<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        do { return try pool.read(body) } catch {
            throw AuditStore.failure("cannot \(what) in the audit store \(path)", error)
        }
    }

    private func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        do { return try pool.write(body) } catch {
            throw AuditStore.failure("cannot \(what) in the audit store \(path)", error)
        }
    }

    /// Keeps kontext's own errors as they are and wraps SQLite's in one a person can read.
    static func failure(_ message: String, _ error: any Error) -> KontextError {
        if let error = error as? KontextError { return error }
        if let error = error as? DatabaseError {
            return KontextError(.usage, "\(message): \(error.message ?? "SQLite error \(error.resultCode.rawValue)")",
                                hint: error.resultCode == .SQLITE_BUSY
                                    ? "another kontext process holds the audit store; retry" : nil)
        }
        return KontextError(.usage, "\(message): \(error)")
    }
}

