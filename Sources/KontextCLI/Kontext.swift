import ArgumentParser
import KontextRun
import KontextCore
import KontextEnvFile

/// The `kontext-cli` command line; Sources/kontext-cli runs it with `runCommandLine()`.
public struct Kontext: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kontext",
        abstract: "Short-lived credentials for AI coding agents, injected only where they are used.",
        discussion: """
            kontext reads .env.kontext, exchanges every <<kontext:SERVICE>> placeholder for a \
            credential (OAuth 2.0 Token Exchange, RFC 8693) and launches a command with those \
            values only in its environment. With no issuer configured it works locally: an \
            embedded broker serves credentials kept in the OS keyring.
            """,
        version: "0.1.0",
        subcommands: [StartCommand.self, RunCommand.self, EnvCommand.self, HookCommand.self,
                      LoginCommand.self, LogoutCommand.self, WhoamiCommand.self,
                      ProviderCommand.self, AuditCommand.self, TrustCommand.self, PolicyCommand.self, ApproveCommand.self,
                      DenyCommand.self, DoctorCommand.self, BrokerCommand.self])

    public init() {}

    /// Runs the command the arguments name with this process's context, and maps every
    /// failure to one clear stderr message and SPEC section 8's exit codes.
    public static func runCommandLine() async {
        do {
            var command = try parseAsRoot()
            // Audit events an earlier session could not send go out after the next command
            // (SPEC section 7); `start` sends them with its own session's.
            let sendsBacklog = !(command is StartCommand || command is HookCommand)
            let context = CommandContext(environment: currentEnvironment())
            // A broken config.toml is reported by the commands that use settings.
            let settings = try? context.settings()
            Diagnostics.enable((command as? any Diagnosable)?.diagnostics.verbose == true || settings?.debug == true)
            do {
                if let contextual = command as? any KontextCommand {
                    try await contextual.run(context: context)
                } else if var asyncCommand = command as? any AsyncParsableCommand {
                    try await asyncCommand.run()
                } else {
                    try command.run()
                }
            } catch {
                if sendsBacklog, let settings { await AuditUpload.sendBacklog(settings: settings) }
                throw error
            }
            if sendsBacklog, let settings { await AuditUpload.sendBacklog(settings: settings) }
        } catch let error as KontextError {
            printError(error.description)
            exit(withError: ExitCode(error.status.rawValue))
        } catch let error as EnvFileSyntaxError {
            printError(error.kontextError.description)
            exit(withError: ExitCode(ExitStatus.usage.rawValue))
        } catch let code as ExitCode {
            exit(withError: code)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)
            }
            printError(fullMessage(for: error))
            exit(withError: ExitCode(code == .validationFailure ? ExitStatus.usage.rawValue : code.rawValue))
        }
    }
}
