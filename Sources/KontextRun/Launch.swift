#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextCore
import KontextEnvFile
import KontextExchange
import KontextProcess

/// Resolves every placeholder of the file; without `allowPartial` any failure stops here
/// with all failures listed (exit 4). `identity` defaults to the one `settings` call for
/// (remote mode: the stored login).
public func resolveCredentials(_ file: EnvFile?, settings: Settings, identity: RunIdentity? = nil,
                               allowPartial: Bool) async throws -> Resolution {
    let (resolution, _) = try await resolveCredentials(file, settings: settings, identity: identity,
                                                       allowPartial: allowPartial, keepSource: false)
    return resolution
}

/// The same, optionally handing back the credential source, for the credential proxy's
/// re-exchanges during the session.
func resolveCredentials(_ file: EnvFile?, settings: Settings, identity: RunIdentity?,
                        allowPartial: Bool, keepSource: Bool) async throws -> (Resolution, CredentialSource?) {
    guard let file else { return (.empty, nil) }
    guard !file.placeholders.isEmpty else { return (CredentialResolver.resolve(file, results: [:]), nil) }
    let established: RunIdentity
    if let identity { established = identity } else { established = try await RunIdentity.establish(settings: settings) }
    let source = try await CredentialSource.open(settings: settings, identity: established)
    let resolution = try await source.resolve(file)
    Diagnostics.mask(resolution.secrets)
    if !resolution.failures.isEmpty {
        let failure = resolution.failureError(endpoint: source.endpointDescription)
        guard allowPartial else { throw failure }
        var warning = failure
        warning.message = "launching without \(resolution.skippedVariables.joined(separator: ", ")) (--allow-partial)"
        warning.hint = nil
        printError(warning.description)
    }
    return (resolution, keepSource ? source : nil)
}

/// The child's environment: kontext's own less `removing` (kontext's own secrets), with the
/// resolved variables set over it.
public func childEnvironment(base: [String: String], removing: [String], resolved: [(key: String, value: String)],
                             extra: [(key: String, value: String)] = []) -> [(key: String, value: String)] {
    var merged = base
    for name in removing { merged[name] = nil }
    for (key, value) in resolved + extra { merged[key] = value }
    return merged.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
}

/// Finds the program to launch or fails with exit 5.
public func locateProgram(_ name: String, environment: [String: String], hint: String? = nil) throws -> String {
    guard let path = ChildProcess.locate(name, path: environment["PATH"]) else {
        throw KontextError(.launch, "\(name): command not found", hint: hint ?? "check the name, or give its full path")
    }
    return path
}
