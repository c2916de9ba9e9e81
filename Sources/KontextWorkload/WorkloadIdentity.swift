import Foundation
import KontextCore
import KontextHTTP
import KontextProcess

/// A CI job's own OIDC identity (SPEC section 5, "ci"): a JWT the platform issues to the job,
/// used as the RFC 8693 subject token. Nothing about it is stored.
public struct WorkloadToken: Sendable {
    public enum Platform: String, Sendable {
        case idTokenFile = "id-token-file"
        case environment = "KONTEXT_ID_TOKEN"
        case githubActions = "github-actions"
        case gitlab
        case circleci
        case buildkite
        case kubernetes
    }

    public var platform: Platform
    public var token: String
    /// The payload, decoded but not verified (the token service verifies it): for display
    /// and attribution only.
    public var claims: [(String, JSONValue)]

    public func claim(_ name: String) -> String? {
        switch claims.last(where: { $0.0 == name })?.1 {
        case .string(let text)?: text
        case .number(let number)?: number == number.rounded() ? String(Int64(number)) : String(number)
        default: nil
        }
    }

    public var expiresAt: Double? {
        if case .number(let exp)? = claims.last(where: { $0.0 == "exp" })?.1 { return exp }
        return nil
    }
}

/// Finds the workload identity of the CI job kontext runs in, if any.
public enum WorkloadIdentity {
    /// Where Kubernetes projects a service-account token meant for kontext, by convention.
    public static let kubernetesTokenPath = "/var/run/secrets/tokens/kontext"
    public static let defaultAudience = "kontext"

    /// The platform whose identity would be used, without fetching anything; nil outside CI.
    /// Order: `--id-token-file`/`KONTEXT_ID_TOKEN_FILE`, `KONTEXT_ID_TOKEN`, GitHub Actions,
    /// GitLab (the variable `KONTEXT_ID_TOKEN_VARIABLE` names), CircleCI, Buildkite, Kubernetes.
    public static func platform(settings: Settings) -> WorkloadToken.Platform? {
        let environment = settings.environment
        func has(_ name: String) -> Bool { !(environment[name] ?? "").isEmpty }
        if settings.idTokenFile != nil { return .idTokenFile }
        if settings.idToken != nil { return .environment }
        if has("ACTIONS_ID_TOKEN_REQUEST_URL") && has("ACTIONS_ID_TOKEN_REQUEST_TOKEN") { return .githubActions }
        if environment["GITLAB_CI"] == "true", let variable = settings.idTokenVariable, has(variable) { return .gitlab }
        if has("CIRCLE_OIDC_TOKEN_V2") { return .circleci }
        if environment["BUILDKITE"] == "true", has("BUILDKITE_AGENT_ACCESS_TOKEN") { return .buildkite }
        if has("KUBERNETES_SERVICE_HOST"), access(kubernetesTokenPath, R_OK) == 0 { return .kubernetes }
        return nil
    }

    /// The job's token, or nil outside CI. Failures are exit 3 with what to check.
    public static func fetch(settings: Settings, now: Double = Date().timeIntervalSince1970) async throws -> WorkloadToken? {
        guard let platform = platform(settings: settings) else { return nil }
        let audience = settings.audience ?? defaultAudience
        let raw: String
        switch platform {
        case .idTokenFile:
            raw = try readTokenFile(settings.idTokenFile!, platform: platform)
        case .kubernetes:
            raw = try readTokenFile(kubernetesTokenPath, platform: platform)
        case .environment:
            raw = settings.idToken!
        case .gitlab:
            raw = settings.environment[settings.idTokenVariable!]!
        case .circleci:
            raw = settings.environment["CIRCLE_OIDC_TOKEN_V2"]!
        case .githubActions:
            raw = try await githubActionsToken(settings: settings, audience: audience)
        case .buildkite:
            raw = try buildkiteToken(settings: settings, audience: audience)
        }
        let token = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let claims = decodePayload(token) else {
            throw KontextError(.authentication, "the workload identity from \(platform.rawValue) is not a JWT",
                               hint: "check that the CI job is configured to issue an OIDC ID token")
        }
        let workload = WorkloadToken(platform: platform, token: token, claims: claims)
        Diagnostics.mask([("workload-token", token)])
        if let expiry = workload.expiresAt, expiry < now {
            throw KontextError(.authentication, "the workload token from \(platform.rawValue) expired at \(UTCTime.format(epochSeconds: expiry))",
                               hint: platform == .idTokenFile || platform == .kubernetes
                                   ? "the file must hold a current token (Kubernetes refreshes projected tokens; check the mount)"
                                   : "request a fresh token: rerun the job step")
        }
        Diagnostics.log("ci: workload identity from \(platform.rawValue), sub \(workload.claim("sub") ?? "?"), iss \(workload.claim("iss") ?? "?")")
        return workload
    }

    static func readTokenFile(_ path: String, platform: WorkloadToken.Platform) throws -> String {
        guard let bytes = readFile(path, limit: 64 * 1024), let text = String(validating: bytes, as: UTF8.self) else {
            throw KontextError(.authentication, "cannot read the workload token file \(path): \(String(cString: strerror(errno)))",
                               hint: platform == .kubernetes ? "mount a projected service-account token at \(path)" : "check --id-token-file / KONTEXT_ID_TOKEN_FILE")
        }
        return text
    }

    /// GitHub Actions: GET ACTIONS_ID_TOKEN_REQUEST_URL&audience=… with the request token.
    static func githubActionsToken(settings: Settings, audience: String) async throws -> String {
        let base = settings.environment["ACTIONS_ID_TOKEN_REQUEST_URL"]!
        let url = base + (base.contains("?") ? "&" : "?") + "audience=" + formEncode(audience)
        let answer = await HTTPClient(settings: settings).perform(HTTPRequest(
            url: url, headers: [("Authorization", "Bearer " + settings.environment["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]!),
                                ("Accept", "application/json")], timeout: 30))
        switch answer {
        case .failure(let error):
            throw KontextError(.authentication, "cannot get the job's ID token from GitHub Actions: \(error.reason)")
        case .success(let response):
            guard response.status == 200, let value = (try? JSONValue.parse(response.body))?["value"]?.stringValue else {
                throw KontextError(.authentication, "GitHub Actions refused the job's ID token request (HTTP \(response.status))",
                                   hint: "give the job `permissions: id-token: write`")
            }
            return value
        }
    }

    /// Buildkite: `buildkite-agent oidc request-token --audience …`, whose stdout is the JWT.
    static func buildkiteToken(settings: Settings, audience: String) throws -> String {
        guard let agent = ChildProcess.locate("buildkite-agent", path: settings.environment["PATH"]) else {
            throw KontextError(.authentication, "BUILDKITE is set but buildkite-agent is not on PATH")
        }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw KontextError(.authentication, "cannot run buildkite-agent: no pipe") }
        let child = ChildProcess(executable: agent, arguments: ["oidc", "request-token", "--audience", audience],
                                 environment: settings.environment.map { (key: $0.key, value: $0.value) })
        let saved = dup(1)
        dup2(fds[1], 1)
        let pid = try? child.spawn()
        dup2(saved, 1)
        close(saved)
        close(fds[1])
        defer { close(fds[0]) }
        guard let pid else { throw KontextError(.authentication, "cannot run buildkite-agent") }
        let output = readAll(from: fds[0], limit: 64 * 1024) ?? []
        guard ChildProcess.wait(for: pid) == 0 else {
            throw KontextError(.authentication, "buildkite-agent could not issue an OIDC token",
                               hint: "check the pipeline's OIDC policy for audience \(audience)")
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The JWT's payload as JSON, or nil when it is not a JWT.
    static func decodePayload(_ token: String) -> [(String, JSONValue)]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        guard let bytes = base64URLDecode(parts[1].utf8), let payload = try? JSONValue.parse(bytes) else { return nil }
        return payload.objectValue
    }
}
