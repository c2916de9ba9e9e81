#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import KontextAudit
import KontextAuditShipping
import KontextCore
import KontextHTTP
import KontextPolicy
import KontextSidecar

/// One authenticated JSON call to the broker's API at `KONTEXT_AUDIT_URL` (SPEC sections 7
/// and 12): the run's bearer token, renewed once on a 401.
public enum BrokerCall {
    public enum Failure: Error, CustomStringConvertible, @unchecked Sendable {
        /// No answer (the broker is down, TLS failed).
        case unreachable(String)
        /// No token to send, or a refused one could not be renewed.
        case noToken(any Error)
        /// An HTTP answer other than 2xx, with the broker's `error_description` if any.
        case refused(status: Int, reason: String)

        public var description: String {
            switch self {
            case .unreachable(let reason): reason
            case .noToken(let reason): "no token for the broker: \(reason)"
            case .refused(let status, let reason): "HTTP \(status): \(reason)"
            }
        }
    }

    public static func send(_ method: String, _ path: String, body: JSONValue? = nil, base: String, bearer: BearerSource,
                            http: HTTPClient, timeout: Double = 10) async -> Result<JSONValue, Failure> {
        var url = base
        while url.hasSuffix("/") { url.removeLast() }
        url += path
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let bytes = body.map { Array($0.serialized.utf8) } ?? []
        let answer: Result<HTTPResponse, HTTPTransportError>
        do {
            answer = try await bearer.send { token in
                await http.perform(HTTPRequest(method: method, url: url, headers: headers + [("Authorization", "Bearer " + token)],
                                               body: bytes, timeout: timeout))
            }
        } catch {
            switch error {
            case .noToken(let reason), .renewalFailed(let reason): return .failure(.noToken(reason))
            }
        }
        switch answer {
        case .failure(let error):
            return .failure(.unreachable(error.reason))
        case .success(let response):
            let document = try? JSONValue.parse(response.body)
            guard (200..<300).contains(response.status), let document else {
                let reason = document?["error_description"]?.stringValue.map { sanitized($0) } ?? "HTTP \(response.status)"
                return .failure(.refused(status: response.status, reason: reason))
            }
            return .success(document)
        }
    }
}

/// The organisation's policy (SPEC sections 10 and 12): fetched from the broker at session
/// start in remote and CI mode, evaluated as the `org:` layer, its version stamped on every
/// event. Remote mode keeps the last copy in `$XDG_STATE_HOME/kontext/org-policy.json` (0600)
/// and uses it for `maximumCacheAge` when the broker cannot be reached; a CI job persists
/// nothing, so it has no cache.
public struct OrganisationPolicy: Sendable {
    public var policy: Policy
    public var version: String

    /// How long a cached copy stands in for a broker that cannot be reached: 7 days.
    public static let maximumCacheAge: Double = 7 * 24 * 3600
    static let label = "broker"

    public static func cachePath(environment: [String: String]) -> String {
        XDGDirectories(environment: environment).state + "/kontext/org-policy.json"
    }

    /// The policy in force for a session, or nil (no broker, or a broker that serves none).
    /// Never fails the session: what went wrong is said on stderr.
    public static func load(settings: Settings, identity: RunIdentity, now: Double = Double(time(nil))) async -> OrganisationPolicy? {
        let mode = Mode.detect(settings)
        if case .local = mode { return nil }
        guard let base = settings.auditURL, let bearer = identity.bearer else { return nil }
        let caches: Bool
        if case .remote = mode { caches = true } else { caches = false }
        let cachePath = Self.cachePath(environment: settings.environment)
        switch await BrokerCall.send("GET", "/v1/policy", base: base, bearer: bearer, http: HTTPClient(settings: settings)) {
        case .success(let document):
            guard let text = document["policy"]?.stringValue, let version = document["version"]?.stringValue,
                  let policy = try? Policy.parse(text, path: label) else {
                printError("kontext: warning: the organisation policy from \(base) is not valid; running without it")
                return nil
            }
            if caches {
                let record = JSONValue.object([("url", .string(base)), ("version", .string(version)), ("policy", .string(text)),
                                               ("fetched_at", .number(now))])
                writeCache(record.serialized, to: cachePath)
            }
            return OrganisationPolicy(policy: policy, version: version)
        case .failure(.refused(404, _)):
            return nil  // an audit backend that serves no policy
        case .failure(let failure):
            if caches, let cached = cached(path: cachePath, base: base, now: now) {
                printError("kontext: warning: cannot fetch the organisation policy from \(base) (\(failure)); using the copy cached "
                           + "\(AuditTimeText.since(cached.fetchedAt, now: now)) ago (version \(cached.policy.version))")
                return cached.policy
            }
            printError("kontext: warning: cannot fetch the organisation policy from \(base) (\(failure)) and no cached copy "
                       + "(at most \(Int(maximumCacheAge / 86400)) days old) is at hand; running without the organisation's rules")
            return nil
        }
    }

    /// The layers with this one as the `org:` layer: after the user's, before the project's
    /// (SPEC section 10's order, which names the earlier layer among equal answers).
    public func inserted(into layers: [PolicyLayer]) -> [PolicyLayer] {
        var result = layers
        let index = result.firstIndex { $0.kind == .project } ?? result.endIndex
        result.insert(PolicyLayer(kind: .org, policy: policy), at: index)
        return result
    }

    /// The copy a session would fall back to, without asking the broker (`kontext policy`).
    public static func cachedCopy(settings: Settings, now: Double = Double(time(nil))) -> OrganisationPolicy? {
        guard case .remote = Mode.detect(settings), let base = settings.auditURL else { return nil }
        return cached(path: cachePath(environment: settings.environment), base: base, now: now)?.policy
    }

    static func cached(path: String, base: String, now: Double) -> (policy: OrganisationPolicy, fetchedAt: Double)? {
        guard let bytes = readFile(path, limit: 2 << 20), let document = try? JSONValue.parse(bytes),
              document["url"]?.stringValue == base, let text = document["policy"]?.stringValue,
              let version = document["version"]?.stringValue, case .number(let fetchedAt)? = document["fetched_at"],
              now - fetchedAt <= maximumCacheAge, let policy = try? Policy.parse(text, path: label) else { return nil }
        return (OrganisationPolicy(policy: policy, version: version), fetchedAt)
    }

    /// Written whole under a temporary name and renamed, 0600.
    static func writeCache(_ text: String, to path: String) {
        guard let slash = path.lastIndex(of: "/"), (try? makeDirectories(String(path[..<slash]), mode: 0o700)) != nil else { return }
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        writeAll(text, to: fd)
        fsync(fd)
        close(fd)
        rename(temporary, path)
    }
}

enum AuditTimeText {
    /// "3 min", "2 h", "1 d".
    static func since(_ then: Double, now: Double) -> String {
        let seconds = max(0, Int(now - then))
        if seconds < 120 { return "\(seconds) s" }
        if seconds < 7200 { return "\(seconds / 60) min" }
        if seconds < 172_800 { return "\(seconds / 3600) h" }
        return "\(seconds / 86400) d"
    }
}

/// `RemoteApprovals` against the broker at `KONTEXT_AUDIT_URL`, with the session's identity.
struct BrokerApprovals: RemoteApprovals {
    let base: String
    let bearer: BearerSource
    let http: HTTPClient

    func register(_ approval: Approval) -> String? {
        var body: [(String, JSONValue)] = [
            ("approval_id", .string(approval.id)), ("session_id", .string(approval.sessionID)),
            ("tool_name", .string(approval.toolName)), ("input", .string(approval.input)),
            ("expires_at", .number(approval.expiresAt)),
        ]
        for (key, value) in [("reason", approval.reason), ("rule", approval.rule), ("risk", approval.risk?.rawValue)] {
            if let value { body.append((key, .string(value))) }
        }
        let request = JSONValue.object(body)
        switch waitFor({ [self] in await BrokerCall.send("POST", "/v1/approvals", body: request, base: base, bearer: bearer, http: http, timeout: 5) }) {
        case .success: return nil
        case .failure(let failure): return failure.description
        }
    }

    func decision(of approval: Approval) -> (approved: Bool, by: String)? {
        let path = "/v1/approvals/" + approval.id
        guard case .success(let document) = waitFor({ [self] in
            await BrokerCall.send("GET", path, base: base, bearer: bearer, http: http, timeout: 5)
        }), let state = document["state"]?.stringValue, let by = document["decided_by"]?.stringValue else { return nil }
        switch state {
        case "denied":
            return (false, by)
        case "approved":
            // Used at the broker first: one conditional update there, so of several attempts
            // (other replicas, other processes with this login) exactly one gets it.
            let call = JSONValue.object([("session_id", .string(approval.sessionID)), ("tool_name", .string(approval.toolName)),
                                         ("input", .string(approval.input))])
            guard case .success(let used) = waitFor({ [self] in
                await BrokerCall.send("POST", path + "/use", body: call, base: base, bearer: bearer, http: http, timeout: 5)
            }), used["state"]?.stringValue == "used" else { return nil }
            return (true, by)
        default:
            return nil
        }
    }

    /// For the session's sidecar threads (never the cooperative pool's): blocks until done.
    private func waitFor<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        Task {
            box.value = await work()
            done.signal()
        }
        done.wait()
        return box.value!
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

extension BrokerApprovals {
    /// The session's broker approvals, when it has a broker and an identity to call it with.
    static func forSession(settings: Settings, identity: RunIdentity) -> BrokerApprovals? {
        guard let base = settings.auditURL, let bearer = identity.bearer else { return nil }
        if case .local = Mode.detect(settings) { return nil }
        return BrokerApprovals(base: base, bearer: bearer, http: HTTPClient(settings: settings))
    }
}

/// `kontext approve|deny ID --remote`: an approver decides through the broker.
public enum RemoteApprovalDecision {
    public static func decide(id: String, approve: Bool, settings: Settings) async throws -> JSONValue {
        let body = JSONValue.object([("decision", .string(approve ? "approve" : "deny"))])
        return try await BrokerCall.asCommand("POST", "/v1/approvals/" + id, body: body, settings: settings, server: "the broker") { status, reason in
            KontextError(status == 401 || status == 403 ? .authentication : .usage,
                         "the broker refused to \(approve ? "approve" : "deny") \(sanitized(id, limit: 64)): \(reason)")
        }
    }
}

extension BrokerCall {
    /// For a command's `--remote`: the run's own identity (a login, or a CI job's), and every
    /// failure a kontext error; `refusal` words an HTTP refusal (status, the server's reason).
    static func asCommand(_ method: String, _ path: String, body: JSONValue? = nil, settings: Settings, server: String,
                          refusal: (Int, String) -> KontextError) async throws -> JSONValue {
        guard let base = settings.auditURL else {
            throw KontextError.usage("--remote needs \(Settings.Name.auditURL), \(server)'s base URL")
        }
        let identity = try await RunIdentity.establish(settings: settings)
        guard let bearer = identity.bearer else {
            throw KontextError.usage("--remote needs a login (remote mode) or a CI job's identity",
                                     hint: "set KONTEXT_ISSUER_URL and run `kontext login`")
        }
        switch await send(method, path, body: body, base: base, bearer: bearer, http: HTTPClient(settings: settings), timeout: 30) {
        case .success(let document):
            return document
        case .failure(.noToken(let reason)):
            throw reason
        case .failure(.unreachable(let reason)):
            throw KontextError.usage("cannot reach \(server) at \(base): \(reason)")
        case .failure(.refused(let status, let reason)):
            throw refusal(status, reason)
        }
    }
}
