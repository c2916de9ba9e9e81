import KontextAudit
import KontextCore
import KontextHostBindings
import KontextEnvFile
import KontextExchange
import KontextPolicy
import KontextProxy

/// `--proxy` (SPEC section 11): the child gets a handle in place of each credential whose
/// service has hosts bound to it, and a proxy on loopback puts the credential on the wire
/// only toward those hosts. Placeholders of services without bound hosts are injected as
/// without `--proxy`.
public struct ProxyLaunch {
    let server: ProxyServer
    /// The env file's variables, with handles in place of proxied credentials.
    let variables: [(key: String, value: String)]
    /// The proxy and CA bundle variables for the child.
    let proxyVariables: [(key: String, value: String)]
    /// Handles, for redacting egress events.
    let handles: HandleTable

    /// `KONTEXT_PROXY=1` (or config `proxy = true`) asks for it when the flag is absent.
    public static func requested(flag: Bool, settings: Settings) -> Bool {
        flag || settings.proxy
    }

    /// The targets (`SERVICE` or `SERVICE/RESOURCE`) of the file's placeholders that
    /// `--proxy` would carry as handles, per the user's host bindings (for `kontext env`).
    public static func proxiedTargets(in file: EnvFile, settings: Settings) throws -> Set<String> {
        Set(proxied(file, bindings: try HostBindings.load(environment: settings.environment)).map(\.target))
    }

    /// Which placeholders of the file the proxy carries, per the bindings.
    static func proxied(_ file: EnvFile, bindings: HostBindings) -> Set<Placeholder> {
        Set(file.placeholders.filter { bindings.binding(for: $0.service) != nil })
    }

    /// The hosts the token service bound each exchanged service to (remote and CI mode, our
    /// broker's `[[service]]` tables). A binding that does not check out is left out, said once.
    static func suppliedBindings(_ resolution: Resolution) -> [HostBindings.Binding] {
        var bindings: [String: HostBindings.Binding] = [:]
        for (placeholder, issued) in resolution.issued.sorted(by: { $0.key.target < $1.key.target }) {
            guard let bound = issued.boundHosts, bindings[placeholder.service] == nil else { continue }
            do {
                bindings[placeholder.service] = try HostBindings.checked(service: placeholder.service, hosts: bound.hosts, headers: bound.headers)
            } catch let error as KontextError {
                printError("kontext: the token service's host binding for \(placeholder.service) is ignored: \(error.message)")
            } catch {}
        }
        return bindings.values.sorted { $0.service < $1.service }
    }

    static func start(file: EnvFile, resolution: Resolution, source: CredentialSource?, settings: Settings,
                      directory: String, evaluator: PolicyEvaluator, mode: PolicyMode,
                      session: EgressSession, writer: AuditWriter) async throws -> ProxyLaunch {
        let bindings = try HostBindings.load(environment: settings.environment, supplied: suppliedBindings(resolution))
        let proxied = proxied(file, bindings: bindings).filter { resolution.issued[$0] != nil }
        let handles = HandleTable(services: proxied.map(\.target).sorted())
        var credentials: [String: LiveCredential] = [:]
        for placeholder in proxied {
            let issued = resolution.issued[placeholder]!
            credentials[placeholder.target] = LiveCredential(value: issued.value, expiresIn: issued.expiresIn)
        }
        let byTarget = Dictionary(uniqueKeysWithValues: proxied.map { ($0.target, $0) })
        var renew: CredentialVault.Renewal?
        if let source {
            renew = { @Sendable (target: String) async throws -> LiveCredential in
                guard let placeholder = byTarget[target] else {
                    throw KontextError(.credentialResolution, "no placeholder \(target) in this session")
                }
                let fresh = try await source.exchangeAgain(placeholder)
                return LiveCredential(value: fresh.value, expiresIn: fresh.expiresIn)
            }
        }
        let vault = CredentialVault(credentials, renew: renew, onRenewed: { target, value in
            Diagnostics.mask([(service: target, value: value)])
        })
        let secrets = resolution.secrets + handles.handles.map { (service: $0.key, value: $0.value) }
        let log: @Sendable (String) -> Void = { line in printError("kontext: proxy: " + line) }
        let caBundle = settings.caBundle
        let server = try await ProxyServer.start(ProxyConfiguration(
            bindings: bindings, handles: handles, credentials: vault, evaluator: evaluator, mode: mode,
            audit: EgressAudit(session: session, writer: writer, redactor: Redactor(secrets: secrets), log: log),
            extraRootsFile: caBundle, log: log))
        let bundle = directory + "/ca-bundle.pem"
        do {
            try server.writeCABundle(to: bundle, extraRootsFile: caBundle)
        } catch {
            await server.stop()
            throw error
        }
        var variables: [(key: String, value: String)] = []
        let skipped = Set(resolution.skippedVariables)
        for variable in file.variables where !skipped.contains(variable.key) {
            let value = variable.value { placeholder in
                if proxied.contains(placeholder) { return handles.handles[placeholder.target]! }
                return resolution.issued[placeholder]?.value ?? ""
            }
            variables.append((variable.key, value))
        }
        for variable in file.variables where !skipped.contains(variable.key) && !variable.placeholders.isEmpty {
            let carried = variable.placeholders.filter(proxied.contains)
            let injected = variable.placeholders.filter { !proxied.contains($0) }
            if !carried.isEmpty {
                Diagnostics.log("--proxy: \(variable.key) holds a handle for \(carried.map(\.target).joined(separator: ", ")); the credential stays in kontext")
            }
            if !injected.isEmpty {
                Diagnostics.log("--proxy: \(variable.key) holds the credential of \(injected.map(\.target).joined(separator: ", ")) itself: no hosts are bound to that service (hosts.toml)")
            }
        }
        let proxyVariables: [(key: String, value: String)] = [
            ("HTTPS_PROXY", server.url), ("HTTP_PROXY", server.url), ("https_proxy", server.url), ("http_proxy", server.url),
            ("NO_PROXY", "127.0.0.1,::1"), ("no_proxy", "127.0.0.1,::1"),
            ("SSL_CERT_FILE", bundle), ("NODE_EXTRA_CA_CERTS", bundle), ("REQUESTS_CA_BUNDLE", bundle),
            ("CURL_CA_BUNDLE", bundle), ("GIT_SSL_CAINFO", bundle),
        ]
        return ProxyLaunch(server: server, variables: variables, proxyVariables: proxyVariables, handles: handles)
    }

    func stop() async {
        await server.stop()
    }
}
