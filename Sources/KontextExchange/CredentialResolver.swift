import KontextCore
import KontextEnvFile

/// The outcome of resolving an env file: the variables to inject, the secret values (for
/// redaction), and every placeholder that failed — all of them, so one run lists them all.
public struct Resolution: Sendable {
    public struct Failure: Sendable {
        public var placeholder: Placeholder
        public var reason: ExchangeFailure
        /// The variables that use this placeholder.
        public var variables: [String]
    }

    /// Variables in file order, literal values included.
    public var variables: [(key: String, value: String)]
    /// Each exchanged value with the SERVICE it stands for.
    public var secrets: [(service: String, value: String)]
    public var failures: [Failure]
    /// Variables left out because one of their placeholders failed (with `--allow-partial`).
    public var skippedVariables: [String]
    /// Each exchanged placeholder's credential with its lifetime (the credential proxy
    /// renews it before `expiresIn` runs out).
    public var issued: [Placeholder: IssuedCredential] = [:]

    public var redactor: Redactor { Redactor(secrets: secrets) }

    public static let empty = Resolution(variables: [], secrets: [], failures: [], skippedVariables: [])

    /// The error listing every failure at once (exit 4).
    public func failureError(endpoint: String) -> KontextError {
        let lines = failures.map { failure in
            "\(failure.variables.joined(separator: ", ")): \(failure.placeholder): "
                + failure.reason.explanation(for: failure.placeholder, endpoint: endpoint)
        }
        let count = failures.count
        return KontextError(.credentialResolution,
                            "could not resolve \(count) placeholder\(count == 1 ? "" : "s"); nothing was launched",
                            details: lines,
                            hint: "fix the above, or pass --allow-partial to launch without those variables")
    }
}

public enum CredentialResolver {
    /// Exchanges every placeholder of `file` and builds the variables to inject.
    public static func resolve(_ file: EnvFile, with exchanger: TokenExchanger) async -> Resolution {
        resolve(file, results: await exchanger.exchange(file.placeholders))
    }

    /// Builds the variables to inject from the exchange results of the file's placeholders.
    public static func resolve(_ file: EnvFile,
                               results: [Placeholder: Result<IssuedCredential, ExchangeFailure>]) -> Resolution {
        var variables: [(key: String, value: String)] = []
        var secrets: [(service: String, value: String)] = []
        var skipped: [String] = []
        var failedVariables: [Placeholder: [String]] = [:]
        for variable in file.variables {
            var complete = true
            for placeholder in variable.placeholders {
                if case .failure = results[placeholder] {
                    complete = false
                    failedVariables[placeholder, default: []].append(variable.key)
                }
            }
            guard complete else { skipped.append(variable.key); continue }
            let value = variable.value { placeholder in
                guard case .success(let credential) = results[placeholder] else { return "" }
                return credential.value
            }
            variables.append((variable.key, value))
        }
        var failures: [Resolution.Failure] = []
        for placeholder in file.placeholders {
            switch results[placeholder] {
            case .success(let credential)?:
                secrets.append((placeholder.service, credential.value))
            case .failure(let reason)?:
                failures.append(.init(placeholder: placeholder, reason: reason,
                                      variables: failedVariables[placeholder] ?? []))
            case nil:
                break
            }
        }
        var resolution = Resolution(variables: variables, secrets: secrets, failures: failures, skippedVariables: skipped)
        resolution.issued = results.compactMapValues { try? $0.get() }
        return resolution
    }
}
