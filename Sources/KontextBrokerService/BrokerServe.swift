import Foundation
import Hummingbird
import KontextAuditShipping
import KontextAudit
import KontextBroker
import KontextBrokerStore
import KontextCore
import KontextExchange
import KontextHTTP
import KontextTrust
import Logging
import UnixSignals

/// What `kontext broker serve` was asked for; flags win over broker.toml.
public struct BrokerServeOptions: Sendable {
    public var configPath: String
    public var listen: String?
    public var database: String?
    public var logLevel: Logger.Level
    /// Where ingested audit events also go as OTLP log records (`KONTEXT_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_*` in the broker's environment); nil: nowhere.
    public var otlp: OTLPSettings?

    public init(configPath: String, listen: String? = nil, database: String? = nil, logLevel: Logger.Level = .info,
                otlp: OTLPSettings? = nil) {
        self.configPath = configPath
        self.listen = listen
        self.database = database
        self.logLevel = logLevel
        self.otlp = otlp
    }
}

/// A running self-hosted broker: the STS, the audit API and `/healthz` on one listener.
public final class RunningBroker: Sendable {
    public let server: BrokerServer
    public let store: any BrokerStore
    let exporter: BackgroundExporter?
    public var baseURL: String { server.baseURL }

    init(server: BrokerServer, store: any BrokerStore, exporter: BackgroundExporter?) {
        self.server = server
        self.store = store
        self.exporter = exporter
    }

    /// Returns after a graceful shutdown (signal or `stop`), with the store closed.
    public func wait() async throws {
        do {
            try await server.wait()
        } catch {
            await close()
            throw error
        }
        await close()
    }

    public func stop() async {
        await server.stop()
        await close()
    }

    /// What the collector has not acknowledged stays marked pending in the store for the
    /// next start (or another replica).
    private func close() async {
        _ = await exporter?.finish(within: 5)
        await store.close()
    }
}

public enum BrokerServe {
    public static let defaultListen = "127.0.0.1:8080"

    /// The database to use: `--db`, else `KONTEXT_BROKER_DB`, else `db` in broker.toml.
    static func databaseURL(flag: String?, environment: [String: String], config: BrokerConfig) -> String? {
        flag ?? environment["KONTEXT_BROKER_DB"] ?? config.database
    }

    /// Opens the store named by the flag or broker.toml.
    public static func openStore(config: BrokerConfig, database flag: String?, environment: [String: String]) async throws -> any BrokerStore {
        guard let url = databaseURL(flag: flag, environment: environment, config: config) else {
            throw KontextError.usage("no database: pass --db sqlite:PATH or postgres://…, or set db in broker.toml")
        }
        let store = try await BrokerStores.open(url, environment: environment)
        do {
            try await store.migrate()
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    /// Starts serving; with `signals`, SIGTERM/SIGINT shut it down gracefully.
    public static func start(options: BrokerServeOptions, environment: [String: String], logger: Logger,
                             signals: [UnixSignal] = [], http: HTTPClient = HTTPClient(),
                             keyCachePolicy: KeyCachePolicy = KeyCachePolicy()) async throws -> RunningBroker {
        let config = try BrokerConfig.load(path: options.configPath)
        let (host, port) = try parseListen(options.listen ?? config.listen ?? defaultListen)
        let cipher = try config.cipher(environment: environment)
        let jwt = try JWTSubjectVerifier(issuers: config.issuers.map(\.trusted), http: http, cachePolicy: keyCachePolicy)
        let mapper = PrincipalMapper(config: config, jwt: jwt)
        let store = try await openStore(config: config, database: options.database, environment: environment)
        let vault = BrokerVault(store: store, cipher: cipher, config: config, environment: environment, http: http, logger: logger)
        var service = TokenExchangeService(verifier: mapper, vault: vault, lifetime: config.tokenLifetime,
                                           recorder: StoreExchangeRecorder(store: store),
                                           missingCredentialHint: { "no credential for '\($0.target)' on this broker; an administrator adds one with `kontext broker provider add \($0.target)`" })
        for binding in config.hostBindings {
            service.boundHosts[binding.service] = BoundHosts(hosts: binding.hosts, headers: binding.headers)
        }
        let witness: AuditSigner?
        do {
            witness = try await AuditWitnessKey.load(store: store, cipher: cipher)
        } catch {
            await store.close()
            throw error
        }
        if witness == nil {
            logger.error("the audit witness key cannot be opened with the configured vault keys; sessions are neither certified nor countersigned")
        }
        let audit = AuditAPI(store: store, verifier: mapper, readers: config.auditReaders, witness: witness, logger: logger)
        let policy = PolicyAPI(policy: config.policy, approvers: config.approvers, verifier: mapper, store: store, logger: logger)
        let server: BrokerServer
        do {
            let limits = BrokerLimits(idleTimeout: .seconds(config.limits.idleTimeout),
                                      tokenRate: config.limits.tokenRate > 0
                                          ? TokenRateLimiter(rate: config.limits.tokenRate, burst: config.limits.tokenBurst) : nil,
                                      clientAddressHeader: config.limits.clientAddressHeader)
            server = try await BrokerServer.start(service: service, host: host, port: port, logger: logger, shutdownSignals: signals,
                                                  limits: limits) { router in
                router.get("/healthz") { _, _ -> Response in
                    do {
                        _ = try await store.exchangeLog(limit: 1)
                        return jsonResponse(200, #"{"status":"ok"}"#)
                    } catch {
                        return jsonResponse(503, #"{"status":"database unavailable"}"#)
                    }
                }
                audit.register(on: router)
                policy.register(on: router)
            }
        } catch {
            await store.close()
            throw error
        }
        let exporter: BackgroundExporter?
        do {
            exporter = try options.otlp.map { try startExport($0, store: store, http: http, logger: logger) }
        } catch {
            await server.stop()
            await store.close()
            throw error
        }
        logger.info("broker listening", metadata: [
            "url": "\(server.baseURL)", "token_endpoint": "\(server.tokenURL)",
            "database": "\(BrokerStores.redactedURL(databaseURL(flag: options.database, environment: environment, config: config) ?? ""))",
            "issuers": "\(config.issuers.map(\.trusted.issuer).joined(separator: ","))", "vault_key": "\(cipher.currentKeyID)",
        ])
        return RunningBroker(server: server, store: store, exporter: exporter)
    }

    /// `HOST:PORT` or `[IPv6]:PORT`.
    public static func parseListen(_ text: String) throws(KontextError) -> (String, Int) {
        let bad = KontextError.usage("--listen '\(text)' is not HOST:PORT", hint: "e.g. --listen 127.0.0.1:8080 or --listen [::1]:8080")
        guard let colon = text.lastIndex(of: ":") else { throw bad }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { throw bad }
        return (host, port)
    }
}

/// One JSON object a line on stderr: time, level, label, message and metadata. Tokens and
/// secrets are never passed to the logger, so nothing here redacts.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        var members: [(String, JSONValue)] = [
            ("time", .string(Date().formatted(.iso8601))), ("level", .string(level.rawValue)),
            ("logger", .string(label)), ("message", .string(message.description)),
        ]
        for (key, value) in metadata.merging(extra ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            members.append((key, .string("\(value)")))
        }
        writeAll(JSONValue.object(members).serialized + "\n", to: 2)
    }
}
