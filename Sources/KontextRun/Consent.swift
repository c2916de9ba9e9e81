#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextConsent
import KontextCore
import KontextPolicy

/// SPEC section 10's gates in front of every credential resolution.
public enum ProjectConsent {
    /// Inside a session the agent runs arbitrary commands as the user; a nested `kontext
    /// run --env-file other.env` would hand it credentials the project never asked for, and a
    /// `kontext trust` would consent on the user's behalf.
    public static func refuseInsideSession(_ environment: [String: String], command: String,
                                           refusal: String = "resolves no credentials",
                                           hint: String = "run it outside the agent's session") throws {
        guard let session = environment[SessionVariable.sessionID] ?? environment[SessionVariable.socket], !session.isEmpty else { return }
        throw KontextError.usage("kontext \(command) \(refusal) inside a kontext session (\(SessionVariable.sessionID) is set)", hint: hint)
    }

    /// Whether the project's allow rules count, and permission to exchange: a project that
    /// asks for credentials and is not trusted in its current content gets the question
    /// (interactive) or exit 2 naming `kontext trust`. CI mode runs the job's own repository
    /// and needs no consent.
    /// Returns whether the project is trusted (its policy's allow rules then count).
    @discardableResult
    public static func require(_ project: Project, settings: Settings) throws -> Bool {
        if case .ci = Mode.detect(settings) { return true }
        let store = TrustStore(environment: settings.environment)
        let untrusted = try project.untrustedFiles(in: store)
        if untrusted.isEmpty { return true }
        guard project.asksForCredentials else { return false }
        if let answer = askOnTerminal(project: project), answer {
            try store.trust(project.files)
            return true
        }
        throw KontextError.usage("\(untrusted.joined(separator: " and ")) \(untrusted.count == 1 ? "is" : "are") not trusted (new, or changed since you trusted \(untrusted.count == 1 ? "it" : "them")); nothing was exchanged",
                                 hint: "review what it asks for, then run `\(project.trustCommand)` in \(project.directory)")
    }

    /// nil when there is no terminal to ask on (stdin or stderr redirected, as in scripts).
    static func askOnTerminal(project: Project) -> Bool? {
        guard isatty(0) == 1, isatty(2) == 1 else { return nil }
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
        guard tty >= 0 else { return nil }
        defer { close(tty) }
        let question = (["kontext: this project asks for credentials and is not trusted yet (new, or changed since you trusted it):"]
                        + project.summary.map { "  " + $0 }
                        + ["Trust it and go on? [y/N] "]).joined(separator: "\n")
        _ = writeFully(tty, Array(question.utf8))
        var answer: [UInt8] = []
        var byte: UInt8 = 0
        while answer.count < 16, read(tty, &byte, 1) == 1, byte != 10 { answer.append(byte) }
        let word = String(decoding: answer, as: UTF8.self).lowercased()
        return word == "y" || word == "yes"
    }
}

/// kontext's own secrets, which no child may inherit (SPEC section 10): the OAuth client
/// secret and the CI identity tokens (and the tokens that request them). `platform` also
/// removes the CI platforms' own request tokens: `start` does (the agent must not mint the
/// job's identity), `run` keeps them for deploy scripts that use the platform's OIDC
/// themselves.
public enum OwnSecrets {
    public static let kontextVariables = [Settings.Name.clientSecret.variable, Settings.Name.idToken.variable]
    public static let platformVariables = ["ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL",
                                           "CIRCLE_OIDC_TOKEN", "CIRCLE_OIDC_TOKEN_V2", "BUILDKITE_AGENT_ACCESS_TOKEN"]

    /// The names to remove: the lists above plus the variable `KONTEXT_ID_TOKEN_VARIABLE` names.
    public static func variables(settings: Settings, platform: Bool) -> [String] {
        var names = kontextVariables
        if let named = settings.idTokenVariable { names.append(named) }
        if platform { names += platformVariables }
        return names
    }

    /// (name, value) of each present one, for the redactor.
    public static func present(in environment: [String: String], settings: Settings) -> [(service: String, value: String)] {
        variables(settings: settings, platform: true).compactMap { name in
            environment[name].flatMap { $0.isEmpty ? nil : (service: name, value: $0) }
        }
    }
}

/// A session's policy layers: the user's, then the project's, whose `allow` rules count only
/// when the user trusts the project (SPEC section 10).
func sessionPolicyLayers(project: Project, userPolicyPath: String?, settings: Settings) throws -> [PolicyLayer] {
    let userPolicy = try userPolicyPath.map { try Policy.load(path: $0) }
    let projectTrusted = try ProjectConsent.require(project, settings: settings)
    return policyLayers(user: userPolicy, project: project, projectTrusted: projectTrusted)
}

/// The layers as they stand, asking nothing: for `kontext policy check|show`. The project
/// counts as trusted in CI mode or when its files are trusted in their current content.
public func currentPolicyLayers(project: Project, userPolicyPath: String?, settings: Settings) throws -> (layers: [PolicyLayer], projectTrusted: Bool) {
    let userPolicy = try userPolicyPath.map { try Policy.load(path: $0) }
    var trusted = true
    if case .ci = Mode.detect(settings) {} else {
        trusted = try project.untrustedFiles(in: TrustStore(environment: settings.environment)).isEmpty
    }
    return (policyLayers(user: userPolicy, project: project, projectTrusted: trusted), trusted)
}

func policyLayers(user userPolicy: Policy?, project: Project, projectTrusted: Bool) -> [PolicyLayer] {
    var layers: [PolicyLayer] = userPolicy.map { [PolicyLayer(kind: .user, policy: $0)] } ?? []
    if let projectPolicy = project.policy?.content {
        layers.append(PolicyLayer(kind: .project, policy: projectPolicy, allowsCount: projectTrusted))
    }
    return layers
}
