// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "kontext",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kontext", targets: ["kontext"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // System libraries, reached through small inline shims (their C APIs are variadic).
        .systemLibrary(name: "CLibSecret", pkgConfig: "libsecret-1",
                       providers: [.apt(["libsecret-1-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),

        .target(name: "KontextCore"),
        .target(name: "KontextEnvFile", dependencies: ["KontextCore"]),
        .target(name: "KontextKeyring", dependencies: ["KontextCore", "CLibSecret"]),
        .target(name: "KontextHTTP", dependencies: ["KontextCore", "CCurl"]),
        .target(name: "KontextExchange",
                dependencies: ["KontextCore", "KontextEnvFile", "KontextHTTP"]),
        .target(name: "KontextBroker", dependencies: [
            "KontextCore", "KontextKeyring", "KontextExchange",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "KontextProcess", dependencies: ["KontextCore"]),
        // Orchestration shared by `run`, `start` and `env`: mode, credential resolution, launch.
        .target(name: "KontextRun", dependencies: [
            "KontextCore", "KontextEnvFile", "KontextKeyring", "KontextExchange",
            "KontextBroker", "KontextProcess",
        ]),
        .executableTarget(name: "kontext", dependencies: [
            "KontextCore", "KontextEnvFile", "KontextKeyring", "KontextRun",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "KontextEnvFileTests", dependencies: ["KontextEnvFile"]),
        .testTarget(name: "KontextKeyringTests", dependencies: ["KontextKeyring", "KontextTestSupport"]),
        .testTarget(name: "KontextExchangeTests", dependencies: [
            "KontextExchange", "KontextBroker", "KontextKeyring", "KontextTestSupport",
        ]),
        .testTarget(name: "KontextCLITests", dependencies: ["KontextTestSupport", "kontext"]),
        .target(name: "KontextTestSupport", path: "Tests/KontextTestSupport"),
    ]
)
