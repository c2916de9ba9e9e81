import Foundation
import Hummingbird
import KontextBroker
import KontextCore
import KontextExchange
import KontextPattern
import Logging
import Synchronization

/// SPEC section 12 at the broker: the organisation's policy (`GET /v1/policy`) and
/// organisation approvals (`/v1/approvals`). Every call carries a Bearer subject token
/// checked like an exchange's.
///
/// Approvals live in the broker's memory: they last minutes (the session's TTL), and a
/// restart only means the agent's retry opens a new one. With several replicas, point the
/// sessions and the approvers at one (README, Organisation policy).
struct PolicyAPI: Sendable {
    let policy: BrokerConfig.OrganisationPolicy?
    let approvers: [MatchPattern]
    let verifier: any SubjectVerifier
    let logger: Logger
    let approvals = ApprovalBook()

    /// The version served when there are no `[[policy]]` rules: the digest of empty text.
    static let emptyPolicyText = ""

    func register(on router: Router<BrokerRequestContext>) {
        router.get("/v1/policy") { request, _ in await respond { try await getPolicy(request) } }
        router.post("/v1/approvals") { request, _ in await respond { try await openApproval(request) } }
        router.get("/v1/approvals/:id") { request, context in
            await respond { try await getApproval(request, id: context.parameters.get("id") ?? "") }
        }
        router.post("/v1/approvals/:id") { request, context in
            await respond { try await decide(request, id: context.parameters.get("id") ?? "") }
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
    private func openApproval(_ request: Request) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request, verifier: verifier)
        let body = try await readJSON(request, limit: 256 * 1024)
        guard let id = body["approval_id"]?.stringValue, id.hasPrefix("apr_"), id.count <= 64 else {
            throw OAuthError("invalid_request", "approval_id (apr_…) is required")
        }
        guard case .number(let expiresAt)? = body["expires_at"], expiresAt > 0 else {
            throw OAuthError("invalid_request", "expires_at (Unix seconds) is required")
        }
        let entry = ApprovalBook.Entry(id: id, requester: principal.subject, details: body, expiresAt: expiresAt)
        guard approvals.open(entry) else {
            throw OAuthError(status: 409, "conflict", "approval '\(clipped(id))' exists")
        }
        logger.info("approval opened", metadata: ["approval_id": "\(id)", "requester": "\(principal.subject)"])
        return jsonResponse(201, entry.json.serialized)
    }

    /// The requester and the approvers may read an approval; anyone else gets 404.
    private func getApproval(_ request: Request, id: String) async throws(OAuthError) -> Response {
        let principal = try await authenticate(request, verifier: verifier)
        guard let entry = approvals.entry(id), entry.requester == principal.subject || isApprover(principal.subject) else {
            throw OAuthError(status: 404, "not_found", "no approval '\(clipped(id))'")
        }
        return jsonResponse(200, entry.json.serialized)
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
        switch approvals.decide(id: id, approve: word == "approve", by: principal.subject, now: Date().timeIntervalSince1970) {
        case .notFound:
            throw OAuthError(status: 404, "not_found", "no approval '\(clipped(id))'")
        case .ownRequest:
            throw OAuthError(status: 403, "forbidden", "an approver cannot decide an approval their own session asked for")
        case .expired:
            throw OAuthError(status: 409, "expired", "approval '\(clipped(id))' expired")
        case .alreadyDecided(let entry):
            throw OAuthError(status: 409, "conflict", "approval '\(clipped(id))' is already \(entry.state)")
        case .decided(let entry):
            logger.info("approval decided", metadata: ["approval_id": "\(id)", "by": "\(principal.subject)", "state": "\(entry.state)"])
            return jsonResponse(200, entry.json.serialized)
        }
    }

    private func isApprover(_ subject: String) -> Bool {
        approvers.contains { $0.matches(subject) }
    }
}

public enum BrokerPolicyVersion {
    /// What `GET /v1/policy` says when broker.toml has no `[[policy]]`.
    public static let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}

/// Open approvals by id, in memory; expired ones are dropped as they are met.
final class ApprovalBook: Sendable {
    struct Entry: Sendable {
        var id: String
        var requester: String
        var details: JSONValue
        var expiresAt: Double
        var state = "pending"
        var decidedBy: String?

        var json: JSONValue {
            var members: [(String, JSONValue)] = [("approval_id", .string(id)), ("state", .string(state)),
                                                  ("requester", .string(requester)), ("expires_at", .number(expiresAt))]
            members.append(("decided_by", decidedBy.map(JSONValue.string) ?? .null))
            for key in ["session_id", "tool_name", "input", "reason", "rule", "risk"] {
                if let value = details[key]?.stringValue { members.append((key, .string(value))) }
            }
            return .object(members)
        }
    }

    enum Decision {
        case decided(Entry), notFound, ownRequest, expired, alreadyDecided(Entry)
    }

    /// More than this many open approvals is abuse, not work.
    static let capacity = 10_000
    private let entries = Mutex<[String: Entry]>([:])

    func open(_ entry: Entry) -> Bool {
        entries.withLock { entries in
            let now = Date().timeIntervalSince1970
            if entries.count >= Self.capacity { entries = entries.filter { $0.value.expiresAt > now } }
            guard entries[entry.id] == nil, entries.count < Self.capacity else { return false }
            entries[entry.id] = entry
            return true
        }
    }

    func entry(_ id: String) -> Entry? { entries.withLock { $0[id] } }

    func decide(id: String, approve: Bool, by principal: String, now: Double) -> Decision {
        entries.withLock { entries in
            guard var entry = entries[id] else { return .notFound }
            guard entry.requester != principal else { return .ownRequest }
            guard entry.state == "pending" else { return .alreadyDecided(entry) }
            guard entry.expiresAt > now else { return .expired }
            entry.state = approve ? "approved" : "denied"
            entry.decidedBy = principal
            entries[id] = entry
            return .decided(entry)
        }
    }
}
