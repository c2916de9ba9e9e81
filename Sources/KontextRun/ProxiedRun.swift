import KontextAudit
import KontextConsent
import KontextCore
import KontextEnvFile
import KontextPolicy
import KontextProcess
import KontextAuditShipping
import KontextProxy

/// `kontext run --proxy`: the command gets handles and the credential proxy, as an agent
/// does under `start --proxy`; its requests to bound hosts are checked against the egress
/// rules and audited in a session of its own (agent `run`). There are no hooks.
public enum ProxiedRun {
    public static func run(program: String, arguments: [String], project: Project, environment: [String: String],
                           settings: Settings, allowPartial: Bool) async throws -> Int32 {
        let mode = try PolicyMode(settings: settings)
        let layers = try sessionPolicyLayers(project: project,
                                             userPolicyPath: try Policy.locate(settings: settings, projectDirectory: project.directory).user,
                                             settings: settings)
        let identity = try await RunIdentity.establish(settings: settings)
        let (resolution, source) = try await resolveCredentials(project.envFile?.content, settings: settings, identity: identity,
                                                                allowPartial: allowPartial, keepSource: true)
        let sessionID = AuditIdentifier.random()
        let directory = try SessionDirectory.create(id: sessionID, environment: environment)
        defer { directory.remove() }
        let store = try sessionAuditStore(identity: identity, directory: directory, environment: environment)
        let (writer, witnessing) = sessionAuditWriter(store: store, identity: identity, settings: settings, sessionID: sessionID)
        defer { writer.close() }
        let session = EgressSession(id: sessionID, agent: "run", actor: identity.actor, host: hostName(), cwd: project.directory)
        try store.recordSessionStart(AuditSession(id: sessionID, agent: "run", actor: session.actor, host: session.host,
                                                  cwd: session.cwd,
                                                  destination: AuditUpload.destination(settings: settings, identity: identity)))
        let shipper = AuditUpload.shipper(settings: settings, store: store, identity: identity, witnessing: witnessing)
            .map { BackgroundShipper(shipper: $0, sessionID: sessionID) }
        shipper?.start()
        let exporter = AuditUpload.exporter(settings: settings, store: store)
        let proxy: ProxyLaunch
        do {
            proxy = try await ProxyLaunch.start(
                file: project.envFile?.content ?? EnvFile(path: "", variables: []), resolution: resolution, source: source,
                settings: settings, directory: directory.path,
                evaluator: PolicyEvaluator(layers: PolicyLayers(layers), secretGuard: SecretGuard(secrets: resolution.secrets)),
                mode: mode, session: session, writer: writer)
        } catch {
            await writer.seal(sessionID: sessionID, witness: shipper)
            try? store.endSession(id: sessionID, exitCode: nil)
            await AgentSession.finishShipping(shipper, settings: settings)
            await AuditUpload.finishExport(exporter, settings: settings)
            throw error
        }
        let child = ChildProcess(executable: program, arguments: arguments, environment: childEnvironment(
            base: environment, removing: OwnSecrets.variables(settings: settings, platform: false),
            resolved: proxy.variables, extra: proxy.proxyVariables))
        let status: Int32?
        var failure: (any Error)?
        do {
            status = try await offload { try child.run(launched: { SessionMemory.settle() }) }
        } catch {
            status = nil
            failure = error
        }
        await proxy.stop()
        await writer.seal(sessionID: sessionID, witness: shipper)
        try store.endSession(id: sessionID, exitCode: status)
        await AgentSession.finishShipping(shipper, settings: settings)
        await AuditUpload.finishExport(exporter, settings: settings)
        if let failure { throw failure }
        return status ?? 0
    }
}
