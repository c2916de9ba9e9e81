import Foundation
import Testing

/// The layering of ARCHITECTURE.md, checked against the package as SwiftPM sees it
/// (`swift package describe`) and against the imports in every target's sources.
@Suite struct LayerTests {
    @Test func everyDependencyEdgeFollowsTheLayers() throws {
        let package = try PackageDescription.current.get()
        var violations: [String] = []
        for target in package.productionTargets {
            guard let from = LayerRule.layer[target.name] else {
                violations.append("\(target.name) has no layer: add it to LayerRule.layer and ARCHITECTURE.md")
                continue
            }
            for dependency in target.targetDependencies {
                guard let to = LayerRule.layer[dependency] else { continue }
                if let reason = LayerRule.forbids(from: target.name, from, to: dependency, to) {
                    violations.append("\(target.name) → \(dependency): \(reason)")
                }
            }
            for product in target.productDependencies where from != .tooling {
                if let allowed = LayerRule.productUsers[product], !allowed.contains(target.name) {
                    violations.append("\(target.name) → \(product): only \(allowed.sorted().joined(separator: ", ")) may link \(product)")
                } else if LayerRule.productUsers[product] == nil {
                    violations.append("\(target.name) → \(product): \(product) is not in LayerRule.productUsers")
                }
            }
        }
        #expect(violations.isEmpty, "layer violations:\n\(violations.joined(separator: "\n"))")
    }

    /// Direct edges are checked above; this names the whole path when a client-side module
    /// reaches a server module or a server library through any chain.
    @Test func clientModulesNeverReachTheServerSide() throws {
        let package = try PackageDescription.current.get()
        var violations: [String] = []
        for target in package.productionTargets {
            guard let layer = LayerRule.layer[target.name], layer.isClientSide else { continue }
            for (reached, path) in package.closure(of: target.name)
            where LayerRule.layer[reached] == .server || LayerRule.serverProducts.contains(reached) {
                violations.append("\(target.name) reaches the server side: \(path.joined(separator: " → "))")
            }
        }
        #expect(violations.isEmpty, "client → server edges:\n\(violations.sorted().joined(separator: "\n"))")
    }

    @Test func theStaticFrontStaysSmallAndFoundationFree() throws {
        let package = try PackageDescription.current.get()
        var violations: [String] = []
        let closure = package.closure(of: "kontext")
        for (reached, path) in closure where !LayerRule.frontClosure.contains(reached) {
            violations.append("the front links \(reached): \(path.joined(separator: " → "))")
        }
        for name in closure.keys {
            guard let target = package.target(named: name) else { continue }
            for (file, module) in try package.imports(of: target) where LayerRule.foundationModules.contains(module) {
                violations.append("\(file) imports \(module), and the front links \(name)")
            }
        }
        #expect(violations.isEmpty, "the front's closure:\n\(violations.sorted().joined(separator: "\n"))")
    }

    @Test func architectureDocumentNamesEveryModule() throws {
        let package = try PackageDescription.current.get()
        let document = try String(contentsOf: package.root.appendingPathComponent("ARCHITECTURE.md"), encoding: .utf8)
        let missing = LayerRule.layer.filter { $0.value != .tooling && !document.contains("`\($0.key)`") }.keys.sorted()
        #expect(missing.isEmpty, "ARCHITECTURE.md does not place: \(missing.joined(separator: ", "))")
    }

    @Test func everyImportedPackageModuleIsADeclaredDependency() throws {
        let package = try PackageDescription.current.get()
        let packageModules = package.moduleNames
        var violations: [String] = []
        for target in package.targets {
            let declared = Set(target.targetDependencies.compactMap { package.target(named: $0)?.moduleName })
                .union(target.productDependencies)
            for (file, module) in try package.imports(of: target)
            where packageModules.contains(module) && module != target.moduleName && !declared.contains(module) {
                violations.append("\(file) imports \(module), which \(target.name) does not list in Package.swift")
            }
        }
        #expect(violations.isEmpty, "undeclared imports:\n\(violations.sorted().joined(separator: "\n"))")
    }
}

/// The rule of ARCHITECTURE.md as a table. Keep the two in step.
enum LayerRule {
    enum Layer: Int, Comparable {
        case system, core, format, client, session, orchestration, command
        /// The broker's HTTP server, store and service: their own column beside the client stack.
        case server
        /// Test helpers and benchmarks: free to use anything, used by nothing that ships.
        case tooling

        static func < (lhs: Layer, rhs: Layer) -> Bool { lhs.rawValue < rhs.rawValue }

        /// Modules that run in a developer's session or a CI job and never link a server.
        var isClientSide: Bool { self <= .session }
    }

    static let layer: [String: Layer] = [
        "KontextSystem": .system, "CKontextProcess": .system, "CKontextBuildInfo": .system, "CLibSecret": .system, "CCurl": .system,
        "KontextCore": .core,
        "KontextEnvFile": .format, "KontextHookWire": .format, "KontextPattern": .format, "KontextHostBindings": .format,
        "KontextHTTP": .client, "KontextKeyring": .client, "KontextProcess": .client, "KontextExchange": .client,
        "KontextExchangeCore": .client, "KontextTrust": .client, "KontextOIDC": .client, "KontextWorkload": .client,
        "KontextPolicy": .session, "KontextAudit": .session, "KontextAuditShipping": .session, "KontextAgent": .session,
        "KontextSidecar": .session, "KontextConsent": .session, "KontextProxy": .session,
        "KontextRun": .orchestration,
        "KontextCLI": .command, "kontext-cli": .command, "kontext": .command,
        "KontextBroker": .server, "KontextBrokerStore": .server, "KontextBrokerService": .server,
        "KontextTestSupport": .tooling, "KontextTestIssuer": .tooling,
        "kontext-bench-issuer": .tooling, "kontext-bench-audit": .tooling,
    ]

    /// Who may link each external library directly.
    static let productUsers: [String: Set<String>] = [
        "ArgumentParser": ["KontextCLI"],
        "TOMLKit": ["KontextPolicy", "KontextRun", "KontextBrokerService", "KontextHostBindings"],
        "GRDB": ["KontextAudit", "KontextBrokerStore"],
        "JWTKit": ["KontextTrust"],
        "Crypto": ["KontextAudit", "KontextConsent", "KontextOIDC", "KontextBrokerStore", "KontextProxy"],
        "Hummingbird": ["KontextBroker", "KontextBrokerService"],
        "ServiceLifecycle": ["KontextBroker"],
        "UnixSignals": ["KontextBroker", "KontextBrokerService"],
        "Logging": ["KontextBroker", "KontextBrokerService", "KontextBrokerStore", "KontextCLI"],
        "PostgresNIO": ["KontextBrokerStore"],
        // The credential proxy is a TLS-terminating HTTP proxy inside the session: SwiftNIO and
        // NIOSSL are its network stack, X509 makes the session CA's certificates.
        "NIOSSL": ["KontextBrokerStore", "KontextProxy"],
        "NIOCore": ["KontextProxy"], "NIOPosix": ["KontextProxy"], "NIOHTTP1": ["KontextProxy"], "NIOTLS": ["KontextProxy"],
        "X509": ["KontextProxy"],
    ]

    /// Libraries that only a server has any business linking. (NIOSSL is not one: the
    /// session's credential proxy terminates TLS with it.)
    static let serverProducts: Set<String> = ["Hummingbird", "ServiceLifecycle", "UnixSignals", "PostgresNIO"]

    /// Everything the static `kontext` front may link (itself included).
    /// The agent adapters are in it so that the front answers in each agent's dialect from
    /// the one list of agents (KontextAgent needs only KontextCore's JSON, also Foundation-free).
    static let frontClosure: Set<String> = ["kontext", "KontextHookWire", "KontextSystem", "KontextAgent", "KontextCore"]
    static let foundationModules: Set<String> = ["Foundation", "FoundationEssentials", "FoundationNetworking", "Dispatch"]

    /// Why `from → to` breaks the layering, or nil when it is allowed.
    static func forbids(from: String, _ fromLayer: Layer, to: String, _ toLayer: Layer) -> String? {
        switch (fromLayer, toLayer) {
        case (.tooling, _):
            return nil
        case (_, .tooling):
            return "shipping modules never depend on test or benchmark helpers"
        case (.server, .server):
            return nil
        case (.server, _):
            return toLayer <= .session ? nil : "the server may use client-side pieces up to the session layer, not \(toLayer)"
        case (.command, .server):
            return from == "kontext" ? "the front never links the server" : nil
        case (_, .server):
            return "\(fromLayer) modules never depend on the server column"
        default:
            return toLayer <= fromLayer ? nil : "\(fromLayer) may not depend on the higher \(toLayer) layer"
        }
    }
}

/// What `swift package describe --type json` says about the package.
struct PackageDescription: Decodable {
    struct Target: Decodable {
        var name: String
        var c99name: String
        var type: String
        var path: String
        var sources: [String]?
        private var listedTargets: [String]?
        private var listedProducts: [String]?

        enum CodingKeys: String, CodingKey {
            case name, c99name, type, path, sources
            case listedTargets = "target_dependencies"
            case listedProducts = "product_dependencies"
        }

        var targetDependencies: [String] { listedTargets ?? [] }
        var productDependencies: [String] { listedProducts ?? [] }

        var moduleName: String { c99name }
    }

    var targets: [Target]
    /// Set by `load()`: where `path` and `sources` are relative to.
    var root = URL(fileURLWithPath: "/")

    enum CodingKeys: String, CodingKey { case targets }

    /// Everything that ships: not test targets.
    var productionTargets: [Target] { targets.filter { $0.type != "test" } }

    var moduleNames: Set<String> {
        Set(targets.map(\.moduleName)).union(targets.flatMap(\.productDependencies))
    }

    func target(named name: String) -> Target? { targets.first { $0.name == name } }

    /// Every target and product `name` reaches, each with the first path found to it.
    func closure(of name: String) -> [String: [String]] {
        var paths: [String: [String]] = [name: [name]]
        var queue = [name]
        while !queue.isEmpty {
            let current = queue.removeFirst()
            guard let target = target(named: current) else { continue }
            for next in target.targetDependencies + target.productDependencies where paths[next] == nil {
                paths[next] = paths[current]! + [next]
                queue.append(next)
            }
        }
        return paths
    }

    /// (file, module) for every `import` line of the target's Swift sources.
    func imports(of target: Target) throws -> [(String, String)] {
        let importLine = try Regex(#"^\s*(?:@\w+\s+)*import\s+(?:(?:enum|struct|class|protocol|func|typealias|var|let)\s+)?(\w+)"#)
        var found: [(String, String)] = []
        for source in target.sources ?? [] where source.hasSuffix(".swift") {
            let file = "\(target.path)/\(source)"
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                if let match = try importLine.firstMatch(in: line), let module = match.output[1].substring {
                    found.append((file, String(module)))
                }
            }
        }
        return found
    }

    /// Described once for all the tests (they run in parallel).
    static let current = Result { try load() }

    static func load() throws -> PackageDescription {
        // Tests/KontextArchitectureTests/LayerTests.swift → the package root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("kontext-describe-\(UUID().uuidString).json")
        // A scratch path of its own: `swift test` may hold the lock on .build while this runs.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kontext-describe-scratch-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: output)
            try? FileManager.default.removeItem(at: scratch)
        }
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift", "package", "--package-path", root.path, "--scratch-path", scratch.path,
                             "describe", "--type", "json"]
        process.standardOutput = handle
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(180)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            process.terminate()
            throw DescribeFailure(message: "`swift package describe` did not finish within 180 s")
        }
        try handle.close()
        guard process.terminationStatus == 0 else {
            throw DescribeFailure(message: "`swift package describe --type json` exited with \(process.terminationStatus) in \(root.path)")
        }
        var description = try JSONDecoder().decode(PackageDescription.self, from: Data(contentsOf: output))
        description.root = root
        return description
    }
}

struct DescribeFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
