// swift-tools-version: 6.1
import PackageDescription

// What `kontext --version` prints: scripts/package sets both from `git describe`; only the
// small C target below sees them, so a new version rebuilds it, KontextCLI and the link.
let buildVersion = Context.environment["KONTEXT_VERSION"] ?? "0.0.0+dev"
let buildCommit = Context.environment["KONTEXT_COMMIT"] ?? "unknown"
// The functions a session runs while it serves hooks, placed together by the release link so
// the pages they need stay few (bench/order-symbols writes the list; README, Performance).
let hotSymbols = Context.packageDirectory + "/Sources/kontext-cli/hot-symbols.order"

let package = Package(
    name: "kontext",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kontext", targets: ["kontext"]),
        .executable(name: "kontext-cli", targets: ["kontext-cli"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
    ],
    targets: [
        // System libraries, reached through small inline shims (their C APIs are variadic).
        .systemLibrary(name: "CLibSecret", pkgConfig: "libsecret-1",
                       providers: [.apt(["libsecret-1-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),

        // libc-only file-descriptor I/O, shared by everything including the hook front.
        .target(name: "KontextSystem"),
        .target(name: "KontextCore", dependencies: ["KontextSystem"]),
        .target(name: "KontextEnvFile", dependencies: ["KontextCore"]),
        .target(name: "KontextKeyring", dependencies: ["KontextCore", "CLibSecret"]),
        .target(name: "KontextHTTP", dependencies: ["KontextCore", "CCurl"]),
        .target(name: "KontextExchange",
                dependencies: ["KontextCore", "KontextEnvFile", "KontextHTTP"]),
        // The STS logic of SPEC section 6 without any server: subject verification, vaults,
        // answers, and local mode's verifier and keyring vault. Clients (OIDC, trust) build on
        // its types; it never links Hummingbird.
        .target(name: "KontextExchangeCore",
                dependencies: ["KontextCore", "KontextEnvFile", "KontextExchange", "KontextKeyring"]),
        // The broker's HTTP server (Hummingbird) carrying an exchange core; the server side.
        .target(name: "KontextBroker", dependencies: [
            "KontextCore", "KontextExchangeCore", "KontextHTTP",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // prctl(2) with fixed arguments (Swift cannot call variadic C functions).
        .target(name: "CKontextProcess"),
        .target(name: "CKontextBuildInfo", cSettings: [
            .define("KONTEXT_VERSION", to: "\"\(buildVersion)\""),
            .define("KONTEXT_COMMIT", to: "\"\(buildCommit)\""),
        ]),
        .target(name: "KontextProcess", dependencies: ["KontextCore", "CKontextProcess"]),
        // Consent to a project's files (SPEC section 10): the env file and project policy as
        // read once, with the digest of those bytes, and the user's trust store.
        .target(name: "KontextConsent", dependencies: [
            "KontextCore", "KontextEnvFile", "KontextPolicy",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Subject tokens from trusted issuers: JWTs checked against the issuer's JWKS.
        .target(name: "KontextTrust", dependencies: [
            "KontextCore", "KontextHTTP", "KontextExchange", "KontextExchangeCore",
            .product(name: "JWTKit", package: "jwt-kit"),
        ]),
        // OIDC login (PKCE loopback, device flow), refresh, revocation; the login in the keyring.
        .target(name: "KontextOIDC", dependencies: [
            "KontextCore", "KontextSystem", "KontextHTTP", "KontextKeyring", "KontextExchange", "KontextExchangeCore",
            "KontextTrust", "KontextProcess", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // CI jobs' own OIDC identity (GitHub Actions, GitLab, CircleCI, Buildkite, Kubernetes).
        .target(name: "KontextWorkload", dependencies: ["KontextCore", "KontextHTTP", "KontextProcess"]),
        // Sends the local audit store's unsent records to KONTEXT_AUDIT_URL.
        .target(name: "KontextAuditShipping", dependencies: ["KontextAudit", "KontextCore", "KontextSystem", "KontextHTTP"]),
        // The self-hosted broker's storage: vault (AES-GCM at rest), exchange log, audit ingest;
        // SQLite (GRDB) or PostgreSQL (postgres-nio) behind one protocol. Never linked into `kontext`.
        .target(name: "KontextBrokerStore", dependencies: [
            "KontextCore", "KontextAudit",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `kontext broker serve`: broker.toml, principals and grants, the vault with upstream
        // OAuth refresh, the audit ingest API, and the server's lifecycle.
        .target(name: "KontextBrokerService", dependencies: [
            "KontextCore", "KontextBroker", "KontextTrust", "KontextBrokerStore", "KontextHTTP",
            "KontextAudit", "KontextEnvFile", "KontextExchange", "KontextPattern", "KontextHostBindings", "KontextPolicy", "KontextConsent",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // Globs and `re:` regular expressions (libc regex, no Foundation), compiled once: the
        // policy's matchers and the broker's principal and grant rules.
        .target(name: "KontextPattern", dependencies: ["KontextCore"]),
        // Which hosts a service's credential may be sent to (SPEC section 11): hosts.toml,
        // the built-in defaults, broker.toml's [[service]] tables read with the same rules.
        .target(name: "KontextHostBindings", dependencies: [
            "KontextCore", "KontextPattern", .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        .target(name: "KontextPolicy", dependencies: [
            "KontextCore", "KontextHookWire", "KontextPattern", .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        .target(name: "KontextAudit", dependencies: [
            "KontextCore", "KontextHookWire", .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Agent adapters: each agent's hook dialect and settings.
        .target(name: "KontextAgent", dependencies: ["KontextCore", "KontextHookWire"]),
        // The session sidecar: policy and durable audit for every hook call.
        .target(name: "KontextSidecar", dependencies: [
            "KontextCore", "KontextHookWire", "KontextAgent", "KontextPolicy", "KontextAudit",
        ]),
        // Orchestration shared by `run`, `start` and `env`: mode, credential resolution, launch.
        .target(name: "KontextRun", dependencies: [
            "KontextCore", "KontextEnvFile", "KontextKeyring", "KontextExchange", "KontextExchangeCore",
            "KontextProcess", "KontextSidecar", "KontextAgent", "KontextAudit", "KontextPolicy",
            "KontextOIDC", "KontextHTTP", "KontextAuditShipping", "KontextWorkload", "KontextConsent", "KontextHookWire",
            "KontextProxy", "KontextHostBindings",
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        // The credential proxy (SPEC section 11): loopback HTTP proxy with CONNECT, TLS
        // interception for bound hosts under a per-session CA, handle swap, egress audit.
        .target(name: "KontextProxy", dependencies: [
            "KontextCore", "KontextPolicy", "KontextAudit", "KontextHostBindings",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The hook wire format and client: no Foundation, nothing else linked, so that the
        // `kontext` front starts in about a millisecond.
        .target(name: "KontextHookWire", dependencies: ["KontextSystem"]),
        // `kontext`: a small static front that answers `kontext hook …` itself (the hot path,
        // SPEC section 9) and hands every other command to `kontext-cli` beside it. It links
        // the agent adapters (Foundation-free) for their names and their deny answers.
        .executableTarget(name: "kontext", dependencies: ["KontextHookWire", "KontextAgent"],
                          swiftSettings: [.unsafeFlags(["-Osize"])],
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // Every command, defined once with swift-argument-parser (help, man page, completions),
        // each run with the context `Kontext.main` builds.
        .target(name: "KontextCLI", dependencies: [
            "KontextCore", "KontextEnvFile", "KontextKeyring", "KontextRun", "KontextHookWire",
            "KontextAudit", "KontextPolicy", "KontextAgent", "KontextHTTP", "KontextProcess", "KontextOIDC", "KontextWorkload",
            "KontextBrokerService", "KontextBrokerStore", "KontextConsent", "CKontextBuildInfo",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `kontext-cli`: the commands' `main`.
        // Release links use lld: packed relative relocations (RELR) instead of 3 MB of RELA that
        // the loader reads at every start, and no export of the program's 55,000 symbols (the
        // static Swift runtime's link file asks for it; nothing looks them up). Both shrink the
        // pages a session keeps resident (README, Performance).
        .executableTarget(name: "kontext-cli", dependencies: ["KontextCLI"], exclude: ["hot-symbols.order"],
                          linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                                                         "-Xlinker", "--no-export-dynamic",
                                                         "-Xlinker", "--symbol-ordering-file=\(hotSymbols)",
                                                         "-Xlinker", "--no-warn-symbol-ordering"], .when(configuration: .release))]),

        .testTarget(name: "KontextEnvFileTests", dependencies: ["KontextEnvFile"]),
        // The layers of ARCHITECTURE.md, checked against `swift package describe` and the imports.
        .testTarget(name: "KontextArchitectureTests"),
        .testTarget(name: "KontextTrustTests", dependencies: [
            "KontextTrust", "KontextTestIssuer", "KontextBroker", "KontextExchange", "KontextEnvFile", "KontextHTTP", "KontextCore",
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // JSONValue against RFC 8259 and the JSONTestSuite in ../shared/testdata.
        .testTarget(name: "KontextCoreTests", dependencies: ["KontextCore", "KontextSystem"]),
        // SPEC section 3's settings in process: flag > environment > config.toml > default.
        .testTarget(name: "KontextSettingsTests", dependencies: [
            "KontextCLI", "KontextRun", "KontextCore", "KontextPolicy", "KontextOIDC", "KontextTestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The hook path in process: wire format, front fallback, adapters, the sidecar's handler
        // over a real audit store, the session process's memory. No session bus, no built binaries.
        .testTarget(name: "KontextHookPathTests", dependencies: [
            "KontextHookWire", "KontextSidecar", "KontextAgent", "KontextAudit", "KontextPolicy", "KontextCore",
            "KontextTestSupport", "KontextConsent", "KontextProcess",
        ]),
        // The proxy against real loopback TLS servers with a test CA.
        .testTarget(name: "KontextProxyTests", dependencies: [
            "KontextProxy", "KontextHostBindings", "KontextPolicy", "KontextAudit", "KontextCore", "KontextHTTP", "KontextTestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "KontextPolicyTests", dependencies: ["KontextPolicy", "KontextPattern", "KontextCore"]),
        // The kill -9 durability test drives the ingest benchmark binary.
        .testTarget(name: "KontextAuditTests", dependencies: ["KontextAudit", "KontextCore", "kontext-bench-audit"]),
        // The bearer retry shared by audit shipping and `audit --remote`.
        .testTarget(name: "KontextAuditShippingTests", dependencies: ["KontextAuditShipping", "KontextHTTP"]),
        .testTarget(name: "KontextKeyringTests", dependencies: ["KontextKeyring", "KontextTestSupport"]),
        .testTarget(name: "KontextExchangeTests", dependencies: [
            "KontextExchange", "KontextBroker", "KontextKeyring", "KontextTestSupport",
            "KontextCore", "KontextEnvFile", "KontextHTTP",
        ]),
        // bench/broker-throughput's identity provider: a JWKS on loopback and a subject token.
        .executableTarget(name: "kontext-bench-issuer", dependencies: [
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "bench/BenchIssuer"),
        .executableTarget(name: "kontext-bench-audit", dependencies: ["KontextAudit", "KontextCore", "KontextSystem"], path: "bench/AuditIngest"),
        // Runs the built `kontext` and `kontext-cli` binaries (swift build --build-tests builds them).
        .testTarget(name: "KontextCLITests", dependencies: ["KontextTestSupport", "KontextKeyring", "KontextAgent",
                                                           .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "KontextTestSupport", path: "Tests/KontextTestSupport"),
        // A loopback identity provider (discovery, JWKS, signing keys) shared by the trust and broker tests.
        .target(name: "KontextTestIssuer", dependencies: [
            "KontextCore",
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/KontextTestIssuer"),
        .testTarget(name: "KontextBrokerServiceTests", dependencies: [
            "KontextBrokerService", "KontextBrokerStore", "KontextBroker", "KontextTrust", "KontextAudit",
            "KontextHTTP", "KontextCore", "KontextTestIssuer", "KontextTestSupport", "KontextExchange", "KontextEnvFile",
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
