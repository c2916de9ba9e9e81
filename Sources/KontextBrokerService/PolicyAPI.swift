import Foundation
import Hummingbird
import KontextBroker
import KontextBrokerStore
import KontextConsent
import KontextCore
import KontextExchange
import KontextPattern
import Logging

/// SPEC section 12 at the broker: the organisation's policy (`GET /v1/policy`) and
/// organisation approvals (`/v1/approvals`). Every call carries a Bearer subject token
/// checked like an exchange's.
///
/// Approvals live in the broker's database, so they outlive a restart and every replica on
/// one PostgreSQL sees the same ones; deciding and using are conditional updates there
/// (README, Organisation policy).
struct PolicyAPI: Sendable {
    let policy: BrokerConfig.OrganisationPolicy?
    let approvers: [MatchPattern]
    let verifier: any SubjectVerifier
    let store: any BrokerStore
    let logger: Logger

    /// The version served when there are no `[[policy]]` rules: the digest of empty text.
    static let emptyPolicyText = ""
    /// More open approvals than this for one principal is abuse, not work.
    static let capacity = 10_000
    /// The longest an approval may wait (the session's TTL is 300 s by default).
    static let longestWait: Double = 24 * 3600
    /// Approvals whose deadline passed longer ago than this are deleted (as new ones come in).
    static let retention: Double = 24 * 3600

    func register(on router: Router<BrokerRequestContext>) {
        router.get("/v1/policy") { request, _ in await respond { try await getPolicy(request) } }
        router.post("/v1/approvals") { request, _ in await respond { try await openApproval(request) } }
        router.get("/v1/approvals/:id") { request, context in
            await respond { try await getApproval(request, id: context.parameters.get("id") ?? "") }
        }
        router.post("/v1/approvals/:id") { request, context in
            await respond { try await decide(request, id: context.parameters.get("id") ?? "") }
        }
        router.post("/v1/approvals/:id/use") { request, context in
            await respond { try await use(request, id: context.parameters.get("id") ?? "") }
        }
    }

    private func getPolicy(_ request: Request) async throws(OAuthError) -> Response {
        _ = try await authenticate(request, verifier: verifier)
        let body = JSONValue.object([
            ("version", .string(policy?.version ?? BrokerPolicyVersion.empty)),
            ("policy", .string(policy?.text ?? Self.emptyPolicyText)),
            ("rules", policy?.rules ?? .array([])),
        ])
        return jsonResponse(200, body.serialized)
    }

    /// A session's sidecar registers an approval it opened, so that an approver can decide it.
    /// It waits until the session's `expires_at`, counted on the database's clock.
    private func openApproval(_ request: Request) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request, verifier: verifier)
        let body = try await readJSON(request, limit: 256 * 1024)
        guard let id = body["approval_id"]?.stringValue, id.hasPrefix("apr_"), id.count <= 64 else {
            throw OAuthError("invalid_request", "approval_id (apr_…) is required")
        }
        guard case .number(let expiresAt)? = body["expires_at"], expiresAt > 0 else {
            throw OAuthError("invalid_request", "expires_at (Unix seconds) is required")
        }
        let (sessionID, toolName, input) = try callBinding(body)
        let ttl = min(max(expiresAt - Date().timeIntervalSince1970, 1), Self.longestWait)
        let approval = OrganisationApproval(id: id, requester: principal.subject, sessionID: sessionID, toolName: toolName, input: input,
                                            inputDigest: contentDigest(Array(input.utf8)), reason: body["reason"]?.stringValue,
                                            rule: body["rule"]?.stringValue, risk: body["risk"]?.stringValue, ttl: ttl)
        let opened: OrganisationApproval
        switch try await storing({ try await store.openApproval(approval, capacity: Self.capacity) }) {
        case .opened(let stored): opened = stored
        case .exists: throw OAuthError(status: 409, "conflict", "approval '\(clipped(id))' exists")
        case .full: throw OAuthError(status: 429, "temporarily_unavailable", "too many approvals are open for \(principal.subject)")
        }
        logger.info("approval opened", metadata: ["approval_id": "\(id)", "requester": "\(principal.subject)"])
        do {
            let pruned = try await store.pruneApprovals(olderThan: Self.retention)
            if pruned > 0 { logger.info("approvals pruned", metadata: ["count": "\(pruned)"]) }
        } catch {
            logger.warning("approvals not pruned", metadata: ["reason": "\(error)"])
        }
        return jsonResponse(201, json(opened).serialized)
    }

    /// The requester and the approvers may read an approval; anyone else gets 404.
    private func getApproval(_ request: Request, id: String) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request, verifier: verifier)
        guard let approval = try await storing({ try await store.approval(id: id) }),
              approval.requester == principal.subject || isApprover(principal.subject) else {
            throw OAuthError(status: 404, "not_found", "no approval '\(clipped(id))'")
        }
        return jsonResponse(200, json(approval).serialized)
    }

    /// `{"decision": "approve"|"deny"}` by a principal listed in `approvers`, who is not the
    /// one whose session asked: 403 otherwise.
    private func decide(_ request: Request, id: String) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request, verifier: verifier)
        let body = try await readJSON(request, limit: 16 * 1024)
        let word = body["decision"]?.stringValue ?? "approve"
        guard word == "approve" || word == "deny" else {
            throw OAuthError("invalid_request", "decision must be \"approve\" or \"deny\"")
        }
        guard isApprover(principal.subject) else {
            logger.warning("approval refused", metadata: ["approval_id": "\(clipped(id))", "principal": "\(principal.subject)"])
            throw OAuthError(status: 403, "forbidden", "\(principal.subject) is not an approver on this broker (broker.toml approvers)")
        }
        if let decided = try await storing({ try await store.decideApproval(id: id, approve: word == "approve", by: principal.subject) }) {
            logger.info("approval decided", metadata: ["approval_id": "\(id)", "by": "\(principal.subject)", "state": "\(decided.state)"])
            return jsonResponse(200, json(decided).serialized)
        }
        // Nothing changed: say why, from the row as it is now.
        guard let approval = try await storing({ try await store.approval(id: id) }) else {
            throw OAuthError(status: 404, "not_found", "no approval '\(clipped(id))'")
        }
        if approval.requester == principal.subject {
            throw OAuthError(status: 403, "forbidden", "an approver cannot decide an approval their own session asked for")
        }
        throw refusal(approval)
    }

    /// The session's retry uses an approved approval: `{"session_id","tool_name","input"}` of
    /// the call, which must be the one approved; only its requester, and only once.
    private func use(_ request: Request, id: String) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request, verifier: verifier)
        let body = try await readJSON(request, limit: 256 * 1024)
        let (sessionID, toolName, input) = try callBinding(body)
        let digest = contentDigest(Array(input.utf8))
        if let used = try await storing({
            try await store.useApproval(id: id, requester: principal.subject, sessionID: sessionID, toolName: toolName, inputDigest: digest)
        }) {
            logger.info("approval used", metadata: ["approval_id": "\(id)", "requester": "\(principal.subject)"])
            return jsonResponse(200, json(used).serialized)
        }
        guard let approval = try await storing({ try await store.approval(id: id) }), approval.requester == principal.subject else {
            throw OAuthError(status: 404, "not_found", "no approval '\(clipped(id))'")
        }
        if approval.sessionID != sessionID || approval.toolName != toolName || approval.inputDigest != digest {
            throw OAuthError(status: 409, "conflict", "approval '\(clipped(id))' is for another call")
        }
        throw refusal(approval)
    }

    /// Why an approval in this state cannot be decided or used.
    private func refusal(_ approval: OrganisationApproval) -> OAuthError {
        approval.state == .expired
            ? OAuthError(status: 409, "expired", "approval '\(clipped(approval.id))' expired")
            : OAuthError(status: 409, "conflict", "approval '\(clipped(approval.id))' is already \(approval.state.rawValue)")
    }

    /// The call an approval is bound to.
    private func callBinding(_ body: JSONValue) throws(OAuthError) -> (sessionID: String, toolName: String, input: String) {
        guard let sessionID = body["session_id"]?.stringValue, let toolName = body["tool_name"]?.stringValue,
              let input = body["input"]?.stringValue else {
            throw OAuthError("invalid_request", "session_id, tool_name and input (strings) are required")
        }
        return (sessionID, toolName, input)
    }

    private func json(_ approval: OrganisationApproval) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("approval_id", .string(approval.id)), ("state", .string(approval.state.rawValue)),
            ("requester", .string(approval.requester)), ("expires_at", .number(approval.expiresAt)),
            ("decided_by", approval.decidedBy.map(JSONValue.string) ?? .null),
            ("session_id", .string(approval.sessionID)), ("tool_name", .string(approval.toolName)), ("input", .string(approval.input)),
        ]
        for (key, value) in [("reason", approval.reason), ("rule", approval.rule), ("risk", approval.risk)] {
            if let value { members.append((key, .string(value))) }
        }
        return .object(members)
    }

    private func storing<T>(_ work: () async throws -> T) async throws(OAuthError) -> T {
        try await storeCall("approval", logger: logger, work)
    }

    private func isApprover(_ subject: String) -> Bool {
        approvers.contains { $0.matches(subject) }
    }
}

public enum BrokerPolicyVersion {
    /// What `GET /v1/policy` says when broker.toml has no `[[policy]]`.
    public static let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}
