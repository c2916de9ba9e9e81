#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextAgent
import KontextAudit
import KontextAuditShipping
import KontextConsent
import KontextCore
import KontextEnvFile
import KontextHookWire
import KontextPolicy
import KontextProcess
import KontextProxy
import KontextSidecar

/// `kontext start`: what to launch and how.
public struct StartOptions: Sendable {
    /// An adapter's agent (one of `AgentAdapters.names`), or nil with `agentCommand`.
    public var agentName: String?
    /// Any executable, launched the same way but with no generated hook settings.
    public var agentCommand: String?
    public var agentArguments: [String]
    /// The env file and project policy, as read once.
    public var project: Project
    public var allowPartial: Bool
    /// `--mode`; nil means `KONTEXT_MODE`, else observe.
    public var mode: PolicyMode?
    /// `--proxy`; false still honours `KONTEXT_PROXY` and config `proxy = true`.
    public var proxy: Bool

    public init(agentName: String?, agentCommand: String?, agentArguments: [String], project: Project,
                allowPartial: Bool, mode: PolicyMode?, proxy: Bool = false) {
        self.proxy = proxy
        self.agentName = agentName
        self.agentCommand = agentCommand
        self.agentArguments = agentArguments
        self.project = project
        self.allowPartial = allowPartial
        self.mode = mode
    }
}

/// One agent session: credentials resolved, a sidecar on a private socket answering the
/// agent's hooks, the agent launched with both, and everything ended when it exits.
public enum AgentSession {
    /// `settings` is what kontext acts on (environment plus config.toml); the agent inherits
    /// the environment.
    public static func run(_ options: StartOptions, settings: Settings) async throws -> Int32 {
        let environment = settings.environment
        let adapter: (any AgentAdapter)?
        let program: String
        if let command = options.agentCommand {
            adapter = options.agentName.flatMap(AgentAdapters.named)
            program = try locateProgram(command, environment: environment)
        } else {
            let name = options.agentName ?? AgentAdapters.names[0]
            guard let known = AgentAdapters.named(name) else {
                throw KontextError.usage("unknown agent '\(name)'",
                                         hint: "supported: \(AgentAdapters.names.joined(separator: ", ")); or launch any program with --agent-command PATH")
            }
            adapter = known
            program = try locateProgram(known.executableName, environment: environment, hint: known.installHint)
        }
        let mode = try options.mode ?? PolicyMode(settings: settings)
        let projectDirectory = options.project.directory
        let layers = try sessionPolicyLayers(project: options.project, userPolicyPath: options.project.userPolicyPath, settings: settings)
        let identity = try await RunIdentity.establish(settings: settings)
        let proxied = ProxyLaunch.requested(flag: options.proxy, settings: settings)
        let (resolution, source) = try await resolveCredentials(options.project.envFile?.content, settings: settings,
                                                                identity: identity, allowPartial: options.allowPartial,
                                                                keepSource: proxied)
        // kontext's own secrets stay out of the agent and out of every record it leaves.
        let ownSecrets = OwnSecrets.present(in: environment, settings: settings)
            + (identity.workload.map { [(service: "workload-token", value: $0.token)] } ?? [])
        let redactor = Redactor(secrets: resolution.secrets + ownSecrets)

        let sessionID = AuditIdentifier.random()
        let directory = try SessionDirectory.create(id: sessionID, environment: environment)
        defer { directory.remove() }
        let store = try sessionAuditStore(identity: identity, directory: directory, environment: environment)
        let (writer, witnessing) = sessionAuditWriter(store: store, identity: identity, settings: settings, sessionID: sessionID)
        defer { writer.close() }
        let agentLabel = adapter?.name ?? (options.agentCommand ?? "command")
        let session = SessionInfo(id: sessionID, agent: agentLabel, actor: identity.actor, host: hostName(), cwd: projectDirectory)
        try store.recordSessionStart(AuditSession(id: sessionID, agent: agentLabel, actor: session.actor,
                                                  host: session.host, cwd: session.cwd,
                                                  destination: AuditUpload.destination(settings: settings, identity: identity)))
        let shipper = AuditUpload.shipper(settings: settings, store: store, identity: identity, witnessing: witnessing)
            .map { BackgroundShipper(shipper: $0, sessionID: sessionID) }
        shipper?.start()
        let exporter = AuditUpload.exporter(settings: settings, store: store)
        let organisation = await OrganisationPolicy.load(settings: settings, identity: identity)
        var evaluator = PolicyEvaluator(layers: PolicyLayers(organisation?.inserted(into: layers) ?? layers),
                                        secretGuard: SecretGuard(secrets: resolution.secrets + ownSecrets))
        evaluator.policyVersion = organisation?.version
        let handler = HookHandler(session: session, adapter: adapter ?? AgentAdapters.all[0], evaluator: evaluator,
                                  mode: mode, redactor: redactor, writer: writer,
                                  approvals: try approvalGate(identity: identity, settings: settings, adapter: adapter,
                                                              arguments: options.agentArguments, directory: directory))
        var proxy: ProxyLaunch?
        if proxied {
            proxy = try await ProxyLaunch.start(
                file: options.project.envFile?.content ?? EnvFile(path: "", variables: []), resolution: resolution, source: source,
                settings: settings, directory: directory.path, evaluator: evaluator, mode: mode,
                session: EgressSession(id: sessionID, agent: agentLabel, actor: session.actor, host: session.host, cwd: session.cwd),
                writer: writer)
        }
        func stopProxy() async {
            await proxy?.stop()
        }
        let sidecar: SidecarServer
        do {
            sidecar = try SidecarServer.start(socketPath: directory.path + "/hook.sock") { handler.handle($0) }
        } catch {
            await stopProxy()
            throw error
        }

        let sessionVariables: [(key: String, value: String)] = [
            (SessionVariable.sessionID, sessionID), (SessionVariable.socket, sidecar.socketPath), (SessionVariable.mode, mode.rawValue),
        ]
        var arguments = options.agentArguments
        let hooked = adapter != nil && options.agentCommand == nil
        if let adapter, hooked {
            let front = shellQuoted(hookExecutable())
            let name = adapter.name
            let launch = adapter.hookedLaunch(HookWiring(command: { "\(front) hook \($0.rawValue) --agent \(name)" },
                                                         environment: sessionVariables, failClosed: mode.enforces,
                                                         directory: directory.path, digest: contentDigest),
                                              arguments: arguments)
            for file in launch.files { try writePrivateFile(file.path, file.contents) }
            arguments = launch.arguments
        }
        let child = ChildProcess(executable: program, arguments: arguments, environment: childEnvironment(
            base: environment, removing: OwnSecrets.variables(settings: settings, platform: true),
            resolved: proxy?.variables ?? resolution.variables, extra: sessionVariables + (proxy?.proxyVariables ?? [])))
        let status: Int32
        do {
            status = try await offload { try child.run(launched: { SessionMemory.settle() }) }
        } catch {
            sidecar.stop()
            await stopProxy()
            await writer.seal(sessionID: sessionID, witness: shipper)
            try? store.endSession(id: sessionID, exitCode: nil)
            await finishShipping(shipper, settings: settings)
            await AuditUpload.finishExport(exporter, settings: settings)
            throw error
        }
        sidecar.stop()
        await stopProxy()
        if hooked && !handler.activity.sawSessionStart {
            printError("kontext: warning: \(HookHandler.hooksMissingReason) (recorded in the audit)")
            try handler.recordHooksMissing()
        }
        await writer.seal(sessionID: sessionID, witness: shipper)
        try store.endSession(id: sessionID, exitCode: status)
        await finishShipping(shipper, settings: settings)
        await AuditUpload.finishExport(exporter, settings: settings)
        return status
    }

    /// Where `approve` decisions are recorded for `kontext approve` in another terminal (or an
    /// approver at the broker). A CI job persists nothing: its approvals live in the session
    /// directory, and only the broker's approvers can decide them (with no broker, such calls
    /// are plain denials). Interactive Claude asks its user itself.
    static func approvalGate(identity: RunIdentity, settings: Settings, adapter: (any AgentAdapter)?,
                             arguments: [String], directory: SessionDirectory) throws -> ApprovalGate? {
        let remote = BrokerApprovals.forSession(settings: settings, identity: identity)
        if identity.workload != nil {
            guard let remote else { return nil }
            return ApprovalGate(store: try ApprovalStore(path: directory.path + "/approvals.db"), ttl: settings.approvalTTL, remote: remote)
        }
        return ApprovalGate(store: try ApprovalStore(environment: settings.environment), ttl: settings.approvalTTL,
                            interactive: adapter?.asksItsUser(arguments: arguments, onTerminal: isatty(0) == 1) ?? false,
                            terminal: controllingTerminal(),
                            remote: remote)
    }

    /// Sends what is left (a few seconds at most); what cannot be sent now stays in the
    /// store for the next kontext command.
    static func finishShipping(_ shipper: BackgroundShipper?, settings: Settings) async {
        guard let shipper else { return }
        let (unsent, problem) = await shipper.finish(within: 5)
        reportUnsent(unsent, "sent to", settings.auditURL ?? "the audit backend", problem)
    }

    /// The note for events a session leaves for the next kontext command to send.
    static func reportUnsent(_ unsent: Int, _ verb: String, _ destination: String, _ problem: String?) {
        guard unsent > 0 else { return }
        printError("kontext: \(unsent) audit event\(unsent == 1 ? "" : "s") not yet \(verb) \(destination)"
                   + (problem.map { " (\($0))" } ?? "") + "; the next kontext command will send them")
    }

    /// The `kontext` front beside this binary answers hooks fastest; without one, this binary.
    static func hookExecutable() -> String {
        let directory = executableDirectory()
        let front = directory + "/kontext"
        return access(front, X_OK) == 0 ? front : directory + "/kontext-cli"
    }
}

/// The session's private directory: socket and generated settings, 0700, removed at exit.
struct SessionDirectory {
    let path: String

    static func create(id: String, environment: [String: String]) throws -> SessionDirectory {
        let base: String
        if let runtime = XDGDirectories(environment: environment).runtime {
            base = runtime + "/kontext"
        } else {
            base = "/tmp/kontext-\(getuid())"
        }
        try makeDirectories(base, mode: 0o700)
        // A shared /tmp parent could be pre-created by someone else: insist it is ours and private.
        var info = stat()
        guard lstat(base, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid(),
              info.st_mode & 0o077 == 0 else {
            throw KontextError(.usage, "\(base) is not a private directory owned by you",
                               hint: "remove it, or set XDG_RUNTIME_DIR")
        }
        removeAbandoned(in: base)
        let path = base + "/" + String(id.prefix(12))
        guard mkdir(path, 0o700) == 0 else {
            throw KontextError(.usage, "cannot create session directory \(path): \(String(cString: strerror(errno)))")
        }
        let directory = SessionDirectory(path: path)
        // Who owns it, so a later session can tell it was abandoned (kill -9 skips cleanup).
        try writePrivateFile(path + "/pid", "\(getpid())\n")
        return directory
    }

    /// Removes session directories whose kontext process is gone. A directory without a
    /// pid file yet is being created right now and is left alone.
    static func removeAbandoned(in base: String) {
        guard let dir = opendir(base) else { return }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names {
            guard let bytes = readFile(base + "/" + name + "/pid", limit: 64),
                  let pid = Int32(String(decoding: bytes.filter { (48...57).contains($0) }, as: UTF8.self)),
                  pid > 0, kill(pid, 0) != 0, errno == ESRCH else { continue }
            SessionDirectory(path: base + "/" + name).remove()
        }
    }

    func remove() {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}

func writePrivateFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw KontextError(.usage, "cannot write \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    writeAll(text, to: fd)
}

func shellQuoted(_ text: String) -> String {
    "'" + text.replacingAll("'", with: "'\\''") + "'"
}

func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, buffer.count - 1)
    return String(cString: buffer)
}

/// Local mode's actor: the OS user (remote mode takes it from the ID token).
public func localActor() -> AuditActor {
    let name = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? String(getuid())
    return AuditActor(sub: "local:\(name)", email: nil)
}

/// Where a session records: the user's audit store, except that a CI job persists nothing,
/// so its store lives in the session directory, is shipped while the session runs, and goes
/// with the directory.
func sessionAuditStore(identity: RunIdentity, directory: SessionDirectory, environment: [String: String]) throws -> AuditStore {
    identity.workload == nil ? try AuditStore(environment: environment) : try AuditStore(path: directory.path + "/audit.db")
}
