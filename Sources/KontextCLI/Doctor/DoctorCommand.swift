import ArgumentParser
import KontextAgent
import KontextAudit
import KontextConsent
import KontextCore
import KontextEnvFile
import KontextKeyring
import KontextPolicy
import KontextProcess
import KontextOIDC
import KontextRun
import KontextWorkload

struct DoctorCommand: KontextCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check configuration, issuer, keyring, audit store, policy and agent; say what to fix.",
        discussion: "Exits 0 when every check passes, 2 when any fails. Never prints a secret.")
    @OptionGroup var diagnostics: DiagnosticOptions


    @Option(name: .long, help: ArgumentHelp("The agent to look for: \(AgentAdapters.names.joined(separator: ", ")).", valueName: "name"),
            completion: .list(AgentAdapters.names))
    var agent: String = AgentAdapters.names[0]

    @Option(name: .long, help: ArgumentHelp("The env file to check (default: .env.kontext).", valueName: "file"),
            completion: .file())
    var envFile: String?

    func run(context: CommandContext) async throws {
        let environment = context.environment
        var report = DoctorReport()
        let settings: Settings
        do {
            settings = try context.settings()
            let path = Configuration.path(environment: environment)
            report.pass("config", readFile(path, limit: 1 << 20) == nil ? "no \(path) (defaults and environment)" : path)
        } catch let error as KontextError {
            report.fail("config", error.message, fix: error.hint)
            settings = Settings(environment: environment)
        }

        switch Mode.detect(settings) {
        case .local:
            report.pass("mode", "local: embedded broker, credentials from the OS keyring")
        case .ci(let platform):
            do {
                let workload = try await WorkloadIdentity.fetch(settings: settings)
                report.pass("mode", "ci: workload identity from \(platform.rawValue) (sub \(workload?.claim("sub") ?? "?"))")
            } catch let error as KontextError {
                report.fail("mode", "ci (\(platform.rawValue)): " + error.message, fix: error.hint)
            }
        case .remote(let issuer):
            let oidc = OIDCSettings(settings: settings)!
            do {
                let metadata = try await IssuerMetadata.discover(issuer: issuer, http: context.httpClient(settings), allowHTTP: oidc.allowHTTP)
                report.pass("issuer", "\(issuer) publishes its metadata (token endpoint \(metadata.tokenEndpoint))")
                if let login = try Authenticator(settings: oidc, store: context.credentialStore(settings)).load() {
                    report.pass("login", "logged in as \(login.subject)\(login.refreshToken == nil ? " (no refresh token: the login ends with its access token)" : "")")
                } else {
                    report.fail("login", "not logged in to \(issuer)", fix: "run `kontext login`")
                }
            } catch let error as KontextError {
                report.fail("issuer", error.message, fix: error.hint ?? "check KONTEXT_ISSUER_URL and the network")
            }
        }

        do {
            let store = try context.credentialStore(settings)
            let count = try store.keys(kind: .provider).count
            report.pass("keyring", "\(settings.keyring ?? "secret-service") reachable, \(count) provider credential\(count == 1 ? "" : "s")")
        } catch let error as KontextError {
            report.fail("keyring", error.message, fix: error.hint)
        }

        do {
            // Looking must not create the store.
            let path = AuditStore.defaultPath(environment: environment)
            if AuditStore.exists(path: path) {
                report.pass("audit", "\(path): \(try AuditStore(path: path).eventCount()) events")
            } else {
                report.pass("audit", "no store yet at \(path) (the first session creates it)")
            }
        } catch let error as KontextError {
            report.fail("audit", error.message, fix: error.hint ?? "check the permissions of $XDG_STATE_HOME/kontext")
        }

        do {
            let paths = try Policy.locate(settings: settings, projectDirectory: currentWorkingDirectory())
            var layers: [String] = []
            for (kind, path) in [("user", paths.user), ("project", paths.project)] {
                guard let path else { continue }
                let policy = try Policy.load(path: path)
                layers.append("\(kind) \(path): \(policy.ruleCount) rule\(policy.ruleCount == 1 ? "" : "s")")
            }
            report.pass("policy", layers.isEmpty ? "no policy file: built-in guards only" : layers.joined(separator: "; "))
            _ = try PolicyMode(settings: settings)
        } catch let error as KontextError {
            report.fail("policy", error.message, fix: error.hint)
        }

        do {
            let project = try Project.load(directory: currentWorkingDirectory(), envFilePath: envFile)
            if let file = project.envFile?.content {
                let untrusted = try project.untrustedFiles(in: TrustStore(environment: environment))
                report.pass("env file", "\(file.path): \(file.variables.count) variables, \(file.placeholders.count) placeholders"
                            + (untrusted.isEmpty ? ", trusted" : "; not trusted yet (run `\(project.trustCommand)` after reviewing it)"))
            } else {
                report.pass("env file", "no .env.kontext here (nothing to inject)")
            }
        } catch let error as EnvFileSyntaxError {
            report.fail("env file", error.description, fix: "fix the file")
        } catch let error as KontextError {
            report.fail("env file", error.message, fix: error.hint)
        }

        if let adapter = AgentAdapters.named(agent) {
            checkAgent(adapter, environment: environment, into: &report)
        } else {
            report.fail("agent", "no adapter for '\(agent)'", fix: "supported: \(AgentAdapters.names.joined(separator: ", "))")
        }

        context.streams.print(report.text)
        if report.failed { throw ExitCode(ExitStatus.usage.rawValue) }
    }
}

extension DoctorCommand {
    /// The agent's binary on PATH and, where kontext's hooks need a version of it or later,
    /// what its `--version` says.
    func checkAgent(_ adapter: any AgentAdapter, environment: [String: String], into report: inout DoctorReport) {
        guard let path = ChildProcess.locate(adapter.executableName, path: environment["PATH"]) else {
            report.fail("agent", "\(adapter.executableName) is not on PATH", fix: adapter.installHint)
            return
        }
        let query = ChildProcess(executable: path, arguments: ["--version"],
                                 environment: environment.map { (key: $0.key, value: $0.value) })
        let version = (try? query.output(limit: 4096)).flatMap { result in
            result.status == 0 ? versionNumber(in: String(decoding: result.stdout, as: UTF8.self)) : nil
        }
        let shown = version.map { $0.map(String.init).joined(separator: ".") }
        guard let minimum = adapter.minimumVersion else {
            report.pass("agent", "\(adapter.name)\(shown.map { " \($0)" } ?? ""): \(path)")
            return
        }
        let needed = minimum.map(String.init).joined(separator: ".")
        guard let version, let shown else {
            report.fail("agent", "\(path) did not say its version (`\(adapter.executableName) --version`); kontext needs \(needed) or later",
                        fix: adapter.installHint)
            return
        }
        if KontextAgent.version(version, isAtLeast: minimum) {
            report.pass("agent", "\(adapter.name) \(shown): \(path)")
        } else {
            report.fail("agent", "\(adapter.name) \(shown) at \(path) is older than \(needed), the first kontext's hooks work with",
                        fix: adapter.installHint)
        }
    }
}

struct DoctorReport {
    private var lines: [String] = []
    private(set) var failed = false

    mutating func pass(_ check: String, _ detail: String) {
        lines.append("ok    \(check): \(detail)")
    }

    mutating func fail(_ check: String, _ detail: String, fix: String?) {
        failed = true
        lines.append("FAIL  \(check): \(detail)" + (fix.map { "\n      fix: \($0)" } ?? ""))
    }

    var text: String { lines.joined(separator: "\n") }
}
