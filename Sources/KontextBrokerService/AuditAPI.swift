import Foundation
import Hummingbird
import KontextAudit
import KontextBroker
import KontextBrokerStore
import KontextCore
import KontextExchange
import KontextPattern
import Logging

/// The audit backend of SPEC section 7 (`KONTEXT_AUDIT_URL`): event ingest, idempotent by
/// event `id`; sessions; and the query API. Every call carries `Authorization: Bearer` with a
/// subject token checked like an exchange's.
struct AuditAPI: Sendable {
    let store: any BrokerStore
    let verifier: any SubjectVerifier
    let readers: [MatchPattern]
    /// The broker's key as the witness of clients' chains (`AuditWitness`); nil when no
    /// configured vault key opens it.
    let witness: AuditSigner?
    let logger: Logger

    static let maximumBatchBytes = 16 << 20
    static let maximumBatchEvents = 10_000

    func register(on router: Router<BrokerRequestContext>) {
        router.post("/v1/audit/events") { request, _ in await respond { try await ingest(request) } }
        router.get("/v1/audit/events") { request, _ in await respond { try await listEvents(request) } }
        router.post("/v1/sessions") { request, _ in await respond { try await createSession(request) } }
        router.get("/v1/sessions") { request, _ in await respond { try await listSessions(request) } }
        router.post("/v1/sessions/:id/heartbeat") { request, context in
            await respond { try await heartbeat(request, id: context.parameters.get("id") ?? "") }
        }
        router.post("/v1/sessions/:id/end") { request, context in
            await respond { try await endSession(request, id: context.parameters.get("id") ?? "") }
        }
        router.post("/v1/sessions/:id/checkpoints") { request, context in
            await respond { try await witness(request, id: context.parameters.get("id") ?? "") }
        }
        router.get("/v1/sessions/:id/verify") { request, context in
            await respond { try await verify(request, id: context.parameters.get("id") ?? "") }
        }
        // Public: verifying an export offline needs it, and it signs nothing by being read.
        router.get("/v1/audit/witness-key") { _, _ in
            await respond {
                guard let witness else { throw Self.noWitness }
                return jsonResponse(200, JSONValue.object([("algorithm", .string("Ed25519")),
                                                           ("public_key", .string(witness.publicKeyBase64))]).serialized)
            }
        }
    }

    // MARK: Handlers

    private func ingest(_ request: Request) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request)
        let body = try await json(request, limit: Self.maximumBatchBytes)
        guard case .array(let items)? = body["events"] else {
            throw OAuthError("invalid_request", "the body must be {\"events\":[…]}")
        }
        guard items.count <= Self.maximumBatchEvents else {
            throw OAuthError("invalid_request", "a batch holds at most \(Self.maximumBatchEvents) events")
        }
        var events: [IngestedEvent] = []
        var received: [String: [JSONValue]] = [:]
        events.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            do {
                let event = try AuditEvent(json: item)
                guard !event.id.isEmpty, !event.sessionID.isEmpty else {
                    throw KontextError.usage("id and session_id must not be empty")
                }
                // The backend writes it (the client's `actor`, beside the authenticated one).
                guard item["claimed_actor"] == nil else {
                    throw KontextError.usage("claimed_actor is the backend's to set")
                }
                events.append(IngestedEvent(id: event.id, sessionID: event.sessionID, seq: event.seq,
                                            json: Self.attributed(item, to: principal).serialized))
                received[event.sessionID, default: []].append(item)
            } catch let error as KontextError {
                throw OAuthError("invalid_request", "event \(index): \(error.message.replacingOccurrences(of: "invalid audit event: ", with: ""))")
            } catch {
                throw OAuthError("invalid_request", "event \(index) is not an audit event")
            }
        }
        // Only into the poster's own sessions: one that is another's and one that does not
        // exist get the same answer, so the refusal tells nothing about other principals.
        let sessionIDs = Array(Set(events.map(\.sessionID)))
        let owned = try await storing { try await store.ownedSessions(sessionIDs, owner: principal.subject) }
        if let index = events.firstIndex(where: { !owned.contains($0.sessionID) }) {
            throw OAuthError(status: 404, "not_found",
                             "event \(index): you have no session '\(clipped(events[index].sessionID))'; create it with POST /v1/sessions first")
        }
        let (accepted, duplicates) = try await storing { try await store.ingest(events, owner: principal.subject, receivedAt: AuditTime.now()) }
        for (session, items) in received {
            try await checkContinuity(session, items, owner: principal.subject)
        }
        logger.debug("audit batch", metadata: ["principal": "\(principal.subject)", "accepted": "\(accepted)", "duplicates": "\(duplicates)"])
        return jsonResponse(200, JSONValue.object([("accepted", .number(Double(accepted))), ("duplicates", .number(Double(duplicates)))]).serialized)
    }

    private func listEvents(_ request: Request) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request)
        let query = request.uri.queryParameters
        guard let session = query.get("session_id"), !session.isEmpty else {
            throw OAuthError("invalid_request", "session_id is required")
        }
        let after = try integer(query.get("after"), name: "after", default: 0, range: 0...Int(Int32.max) * 1000)
        let limit = try integer(query.get("limit"), name: "limit", default: 1000, range: 1...10_000)
        let texts = try await storing { try await store.events(sessionID: session, owner: owner(principal), after: after, limit: limit) }
        return jsonResponse(200, "{\"events\":[" + texts.joined(separator: ",") + "]}")
    }

    private func createSession(_ request: Request) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request)
        let body = try await json(request, limit: 64 * 1024)
        guard let id = body["session_id"]?.stringValue, !id.isEmpty, id.count <= 200 else {
            throw OAuthError("invalid_request", "session_id (a non-empty string) is required")
        }
        guard let agent = body["agent"]?.stringValue, !agent.isEmpty else {
            throw OAuthError("invalid_request", "agent (a non-empty string) is required")
        }
        let now = AuditTime.now()
        let session = BrokerSession(id: id, owner: principal.subject, agent: agent,
                                    host: try optionalString(body, "host"), cwd: try optionalString(body, "cwd"),
                                    startedAt: try optionalString(body, "started_at") ?? now, lastSeenAt: now)
        let created = try await storing { try await store.createSession(session) }
        var answer: [(String, JSONValue)] = [("session_id", .string(id)), ("created", .bool(created))]
        if let key = try optionalString(body, "public_key"), let witness {
            answer.append(("certificate", try await certify(key, session: id, principal: principal, at: now, by: witness)))
        }
        return jsonResponse(created ? 201 : 200, JSONValue.object(answer).serialized)
    }

    /// The broker's certificate binding the key that signs the session's checkpoints to the
    /// session and its principal. Once bound, a session's key stays: someone with the same
    /// login cannot have a key of their own certified for it later.
    private func certify(_ key: String, session id: String, principal: Principal, at now: String,
                         by witness: AuditSigner) async throws(OAuthError) -> JSONValue {
        guard AuditSigner.isPublicKey(key) else {
            throw OAuthError("invalid_request", "public_key must be an Ed25519 public key: 32 bytes in base64")
        }
        let bound = try await storing { try await store.bindSigningKey(sessionID: id, owner: principal.subject, publicKey: key) }
        guard bound == key else {
            throw OAuthError(status: 409, "conflict", "session '\(clipped(id))' has another checkpoint key certified already")
        }
        return AuditWitness.certificate(sessionID: id, subject: principal.subject, publicKey: key, issuedAt: now, by: witness)
    }

    private func heartbeat(_ request: Request, id: String) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request)
        // Writes, even an audit reader's, touch only the caller's own sessions.
        let found = try await storing { try await store.touchSession(id: id, owner: principal.subject, at: AuditTime.now()) }
        guard found else { throw OAuthError(status: 404, "not_found", "no session '\(clipped(id))'") }
        return Response(status: .noContent)
    }

    private func endSession(_ request: Request, id: String) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request)
        let body = try await json(request, limit: 64 * 1024)
        let exitCode: Int?
        switch body["exit_code"] {
        case nil, .null?: exitCode = nil
        case .number(let value)? where value == value.rounded() && abs(value) < 1e9: exitCode = Int(value)
        default: throw OAuthError("invalid_request", "exit_code must be an integer or null")
        }
        let now = AuditTime.now()
        let endedAt = try optionalString(body, "ended_at") ?? now
        let found = try await storing { try await store.endSession(id: id, owner: principal.subject, endedAt: endedAt, exitCode: exitCode, at: now) }
        guard found else { throw OAuthError(status: 404, "not_found", "no session '\(clipped(id))'") }
        return Response(status: .noContent)
    }

    private func listSessions(_ request: Request) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request)
        let limit = try integer(request.uri.queryParameters.get("limit"), name: "limit", default: 100, range: 1...10_000)
        let sessions = try await storing { try await store.sessions(owner: owner(principal), limit: limit) }
        let items: [JSONValue] = sessions.map { session in
            .object([
                ("session_id", .string(session.id)), ("owner", .string(session.owner)), ("agent", .string(session.agent)),
                ("host", session.host.map(JSONValue.string) ?? .null), ("cwd", session.cwd.map(JSONValue.string) ?? .null),
                ("started_at", .string(session.startedAt)), ("last_seen_at", .string(session.lastSeenAt)),
                ("ended_at", session.endedAt.map(JSONValue.string) ?? .null),
                ("exit_code", session.exitCode.map { .number(Double($0)) } ?? .null),
            ])
        }
        return jsonResponse(200, JSONValue.object([("sessions", .array(items))]).serialized)
    }

    // MARK: Hash chain (SPEC section 12)

    /// Checks a batch against the head the broker has checked the session up to: each event
    /// must be the next `seq` and link to the one before. A gap, a broken link or a changed
    /// event is recorded on the session (the first one found is kept) and reported by
    /// `GET /v1/sessions/{id}/verify`; the events are stored either way, as evidence.
    private func checkContinuity(_ session: String, _ items: [JSONValue], owner: String) async throws(OAuthError) {
        guard let state = try await storing({ try await store.chainState(sessionID: session, owner: owner) }) else { return }
        let fresh = items.filter { (AuditChain.seqOf($0) ?? 0) > state.seq }
            .sorted { (AuditChain.seqOf($0) ?? 0) < (AuditChain.seqOf($1) ?? 0) }
        guard let last = fresh.last else { return }
        let after = state.hash.map { (seq: state.seq, hash: $0) }
        let report = AuditChain.verify(sessionID: session, events: fresh, after: state.seq > 0 ? after : nil)
        let problem = report.findings.first.map { "at ingest: \($0.message)" }
        if let problem {
            logger.warning("audit chain problem", metadata: ["session": "\(session)", "owner": "\(owner)", "problem": "\(problem)"])
        }
        try await storing {
            try await store.advanceChain(sessionID: session, owner: owner, seq: AuditChain.seqOf(last) ?? state.seq,
                                         hash: last["hash"]?.stringValue, problem: problem)
        }
    }

    /// `POST /v1/sessions/{id}/checkpoints` `{"seq":N,"hash":H}`: the client's chain head while
    /// the session runs, recorded before its events arrive, so events cut from the end of
    /// the local store later show as missing.
    private func witness(_ request: Request, id: String) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request)
        let body = try await json(request, limit: 64 * 1024)
        guard let seq = AuditChain.seqOf(body), seq > 0 else {
            throw OAuthError("invalid_request", "seq must be a positive integer")
        }
        guard let hash = body["hash"]?.stringValue, hash.count == 64, hash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw OAuthError("invalid_request", "hash must be 64 lowercase hex digits")
        }
        let final: Bool
        switch body["final"] {
        case nil, .null?: final = false
        case .bool(let value)?: final = value
        default: throw OAuthError("invalid_request", "final must be a boolean")
        }
        let now = AuditTime.now()
        let found = try await storing { try await store.witness(sessionID: id, owner: principal.subject, seq: seq, hash: hash, at: now) }
        guard found, let state = try await storing({ try await store.chainState(sessionID: id, owner: principal.subject) }) else {
            throw OAuthError(status: 404, "not_found", "no session '\(clipped(id))'")
        }
        // Countersigned only when it is the highest head witnessed: a lower one (a late
        // report) proves nothing new, and the broker never signs two hashes at one position
        // nor a final seal below a head it saw.
        var countersignature = JSONValue.null
        if state.witnessedSeq == seq && state.witnessedHash == hash, let witness {
            countersignature = AuditWitness.countersignature(sessionID: id, subject: principal.subject, seq: seq, hash: hash, final: final,
                                                             witnessedAt: now, by: witness)
        } else if state.witnessedSeq != seq && final || state.witnessedSeq == seq && state.witnessedHash != hash {
            logger.warning("audit head refused", metadata: ["session": "\(id)", "owner": "\(principal.subject)", "seq": "\(seq)"])
            throw OAuthError(status: 409, "conflict",
                             "the broker witnessed this session's chain at #\(state.witnessedSeq ?? 0) with another head (\(state.witnessedAt ?? "")); it does not countersign #\(seq) with this hash")
        }
        return jsonResponse(200, JSONValue.object([("session_id", .string(id)), ("seq", .number(Double(seq))),
                                                   ("hash", .string(hash)), ("witnessed_at", .string(now)),
                                                   ("witness", countersignature)]).serialized)
    }

    /// `GET /v1/sessions/{id}/verify`: the whole stored chain checked again, the head the
    /// client reported while the session ran, and what ingest found.
    private func verify(_ request: Request, id: String) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request)
        let reader = owner(principal)
        guard let state = try await storing({ try await store.chainState(sessionID: id, owner: reader) }) else {
            throw OAuthError(status: 404, "not_found", "no session '\(clipped(id))'")
        }
        var objects: [JSONValue] = []
        var after = 0
        while true {
            let page = try await storing { try await store.events(sessionID: id, owner: reader, after: after, limit: 1000) }
            for text in page {
                guard let object = try? JSONValue.parse(text) else { continue }
                objects.append(Self.asSent(object))
                after = max(after, AuditChain.seqOf(object) ?? after)
            }
            if page.count < 1000 { break }
        }
        var report = AuditChain.verify(sessionID: id, events: objects)
        var findings = report.findings
        if let witnessed = state.witnessedSeq {
            let head = report.headSeq ?? 0
            if witnessed > head {
                let range = witnessed == head + 1 ? "#\(witnessed) is" : "#\(head + 1)–#\(witnessed) are"
                findings.append(AuditChainFinding(seq: witnessed, eventID: nil, message:
                    "event \(range) missing: the client reported its chain at #\(witnessed) (\(state.witnessedAt ?? "")), but the backend holds events only up to #\(head)"))
            } else if let match = objects.first(where: { AuditChain.seqOf($0) == witnessed }), match["hash"]?.stringValue != state.witnessedHash {
                findings.append(AuditChainFinding(seq: witnessed, eventID: match["id"]?.stringValue, message:
                    "event #\(witnessed) (\(match["id"]?.stringValue ?? "no id")) is not the event the client reported at that position while the session ran"))
            }
        }
        if let problem = state.problem, !findings.contains(where: { problem.hasSuffix($0.message) }) {
            findings.append(AuditChainFinding(seq: nil, eventID: nil, message: problem))
        }
        report.findings = findings
        var answer = Self.verification(report, state: state)
        if case .object(var members) = answer {
            members.append(("witness_key", witness.map { .string($0.publicKeyBase64) } ?? .null))
            answer = .object(members)
        }
        return jsonResponse(200, answer.serialized)
    }

    static let noWitness = OAuthError(status: 503, "temporarily_unavailable",
                                      "the broker's audit witness key cannot be opened; an administrator must check the vault keys")

    static func verification(_ report: AuditChainReport, state: BrokerChainState) -> JSONValue {
        func optional(_ value: Int?) -> JSONValue { value.map { .number(Double($0)) } ?? .null }
        return .object([
            ("session_id", .string(report.sessionID)), ("verified", .bool(report.verified)),
            ("event_count", .number(Double(report.eventCount))), ("head_seq", optional(report.headSeq)),
            ("head_hash", report.headHash.map(JSONValue.string) ?? .null), ("ended", .bool(report.ended)),
            ("witnessed_seq", optional(state.witnessedSeq)), ("witnessed_hash", state.witnessedHash.map(JSONValue.string) ?? .null),
            ("witnessed_at", state.witnessedAt.map(JSONValue.string) ?? .null),
            ("ingest_problem", state.problem.map(JSONValue.string) ?? .null),
            ("findings", .array(report.findings.map { finding in
                .object([("seq", optional(finding.seq)), ("event_id", finding.eventID.map(JSONValue.string) ?? .null),
                         ("message", .string(finding.message))])
            })),
        ])
    }

    // MARK: Pieces

    private func authenticate(_ request: Request) async throws(OAuthError) -> Principal {
        try await KontextBrokerService.authenticate(request, verifier: verifier)
    }

    /// The event as stored: `actor` is the authenticated principal (its name and email), and
    /// what the client said goes beside it as `claimed_actor` (the user's login `sub`, say).
    static func attributed(_ event: JSONValue, to principal: Principal) -> JSONValue {
        guard case .object(var members) = event else { return event }
        let actor = JSONValue.object([("sub", .string(principal.subject)), ("email", principal.email.map(JSONValue.string) ?? .null)])
        if let index = members.firstIndex(where: { $0.0 == "actor" }) {
            members.append(("claimed_actor", members[index].1))
            members[index].1 = actor
        }
        return .object(members)
    }

    /// The event as its client sent it (the object its `hash` covers): `attributed` undone.
    static func asSent(_ stored: JSONValue) -> JSONValue {
        guard case .object(var members) = stored, let claimed = members.lastIndex(where: { $0.0 == "claimed_actor" }) else { return stored }
        let actor = members.remove(at: claimed).1
        if let index = members.firstIndex(where: { $0.0 == "actor" }) { members[index].1 = actor }
        return .object(members)
    }

    /// Audit readers see everything; everyone else sees what they posted.
    private func owner(_ principal: Principal) -> String? {
        readers.contains { $0.matches(principal.subject) } ? nil : principal.subject
    }

    private func json(_ request: Request, limit: Int) async throws(OAuthError) -> JSONValue {
        try await readJSON(request, limit: limit)
    }

    private func optionalString(_ body: JSONValue, _ key: String) throws(OAuthError) -> String? {
        switch body[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw OAuthError("invalid_request", "\(key) must be a string or null")
        }
    }

    private func integer(_ text: String?, name: String, default value: Int, range: ClosedRange<Int>) throws(OAuthError) -> Int {
        guard let text else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw OAuthError("invalid_request", "\(name) must be an integer in \(range.lowerBound)…\(range.upperBound)")
        }
        return number
    }

    private func storing<T>(_ work: () async throws -> T) async throws(OAuthError) -> T {
        try await storeCall("audit", logger: logger, work)
    }
}

/// A handler's call into the broker store: a failure is logged and answered 503, its reason
/// never shown to the client. `what` names the store in both ("audit", "approval").
func storeCall<T>(_ what: String, logger: Logger, _ work: () async throws -> T) async throws(OAuthError) -> T {
    do {
        return try await work()
    } catch {
        logger.error("\(what) store failure", metadata: ["reason": "\(error)"])
        throw OAuthError(status: 503, "temporarily_unavailable", "the \(what) store is unavailable; try again later")
    }
}

func jsonResponse(_ status: Int, _ body: String) -> Response {
    Response(status: .init(code: status), headers: [.contentType: "application/json", .cacheControl: "no-store"],
             body: .init(byteBuffer: ByteBuffer(string: body)))
}

func clipped(_ text: String) -> String { text.count > 80 ? String(text.prefix(80)) + "…" : text }

// Shared by the broker's JSON APIs (audit, policy, approvals).

/// RFC 6750: a missing or refused bearer token is 401 `invalid_token`.
func authenticate(_ request: Request, verifier: any SubjectVerifier) async throws(OAuthError) -> Principal {
    guard let header = request.headers[.authorization], header.count > 7,
          header.prefix(7).lowercased() == "bearer " else {
        throw OAuthError(status: 401, "invalid_token", "an Authorization: Bearer subject token is required")
    }
    let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    do {
        return try await verifier.verify(token: token, type: TokenTypeURN.jwt)
    } catch {
        if error.status >= 500 { throw error }
        throw OAuthError(status: 401, "invalid_token", error.description)
    }
}

func readJSON(_ request: Request, limit: Int) async throws(OAuthError) -> JSONValue {
    let buffer: ByteBuffer
    do {
        buffer = try await request.body.collect(upTo: limit)
    } catch {
        throw OAuthError(status: 413, "invalid_request", "the body is larger than \(limit / 1024) KiB")
    }
    let value: JSONValue
    do {
        value = try JSONValue.parse(Array(buffer.readableBytesView), maxDepth: 64)
    } catch {
        throw OAuthError("invalid_request", "the body is not JSON: \(error)")
    }
    guard value.objectValue != nil else { throw OAuthError("invalid_request", "the body must be a JSON object") }
    return value
}

func respond(_ work: () async throws -> Response) async -> Response {
    do {
        return try await work()
    } catch {
        let error = (error as? OAuthError) ?? OAuthError(status: 500, "server_error", "internal error")
        var body: [(String, JSONValue)] = [("error", .string(error.code)), ("error_description", .string(error.description))]
        for (key, value) in error.extra.sorted(by: { $0.key < $1.key }) { body.append((key, .string(value))) }
        var response = jsonResponse(error.status, JSONValue.object(body).serialized)
        if error.status == 401 {
            response.headers[.wwwAuthenticate] = "Bearer error=\"invalid_token\""
        }
        return response
    }
}
