import ArgumentParser
import KontextBrokerService
import KontextCore
import Logging

struct BrokerServeCommand: KontextCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the token exchange endpoint and the audit API until SIGTERM or SIGINT.",
        discussion: """
            Listens on HOST:PORT (plain HTTP: put a TLS reverse proxy in front, see README). \
            Serves POST /oauth2/token (RFC 8693), the audit API under /v1 and GET /healthz. \
            Prints the base URL on stdout once listening; logs are JSON lines on stderr. Several \
            replicas may share one PostgreSQL database.
            """)

    @OptionGroup var location: BrokerLocation

    @Option(help: ArgumentHelp("Address to listen on (default: listen in broker.toml, else \(BrokerServe.defaultListen)); port 0 picks a free one.",
                               valueName: "host:port"))
    var listen: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("The least severe level logged.", valueName: "level"))
    var logLevel = Choice(Logger.Level.info)

    func run(context: CommandContext) async throws {
        let level = try logLevel.value(of: "--log-level")
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level) }
        let logger = Logger(label: "kontext.broker")
        // The broker's environment only: a user's config.toml is not the server's configuration.
        let settings = Settings(environment: context.environment)
        if let otlp = settings.otlp { try Transport.check(otlp.logsURL, name: otlp.source, allowHTTP: settings.allowHTTP) }
        let options = BrokerServeOptions(configPath: location.config, listen: listen, database: location.database, logLevel: level,
                                         otlp: settings.otlp)
        let broker = try await BrokerServe.start(options: options, environment: context.environment, logger: logger,
                                                 signals: [.sigterm, .sigint])
        context.streams.print("kontext broker: listening on \(broker.baseURL)")
        try await broker.wait()
        logger.info("broker stopped")
    }
}
