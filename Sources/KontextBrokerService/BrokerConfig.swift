import Foundation
import KontextBrokerStore
import KontextCore
import KontextConsent
import KontextHostBindings
import KontextPattern
import KontextPolicy
import KontextTrust
import TOMLKit

/// `broker.toml`: everything `kontext broker serve` and `kontext broker provider` need
/// besides the database. No secret lives in it: vault keys come from a key file or the
/// environment, OAuth client secrets from the environment.
public struct BrokerConfig: Sendable {
    /// `HOST:PORT`, when `--listen` does not say.
    public var listen: String?
    /// The database URL, when `--db` does not say.
    public var database: String?
    /// `expires_in` of exchange results, seconds (default 900): credentials are short-lived.
    public var tokenLifetime: Int
    public var issuers: [IssuerConfig]
    public var principals: [PrincipalRule]
    public var grants: [Grant]
    public var providers: [String: OAuthProvider]
    /// Principals that may read every session and event; the others read only their own.
    public var auditReaders: [MatchPattern]
    public var vault: VaultKeySource
    public var limits = Limits()
    /// `[[service]]`: the hosts each service's credentials may be sent to, told to clients in
    /// exchange answers for their credential proxy (SPEC section 11; same tables as hosts.toml).
    public var hostBindings: [HostBindings.Binding] = []
    /// The organisation's policy (`[[policy]]` tables, the grammar of a policy file's
    /// `[[rule]]`), served at `GET /v1/policy`; nil when the file has none.
    public var policy: OrganisationPolicy?
    /// Principals who may approve other principals' approvals (`POST /v1/approvals/{id}`).
    public var approvers: [MatchPattern] = []

    /// The `[[policy]]` rules as one policy document: its TOML text (`[[rule]]` tables, what
    /// clients compile), the same as JSON for people, and `version`, the text's SHA-256.
    public struct OrganisationPolicy: Sendable {
        public var text: String
        public var rules: JSONValue
        public var version: String
    }

    /// `[limits]`: what one client may cost the broker.
    public struct Limits: Sendable {
        /// Seconds a connection may go without completing a request part (a header, say).
        public var idleTimeout = 30
        /// Token requests per second per client address, sustained (0: no limit) …
        public var tokenRate = 20.0
        /// … and at once.
        public var tokenBurst = 100
        /// Behind a reverse proxy on this host: the header naming the client (`X-Forwarded-For`).
        public var clientAddressHeader: String?
    }

    public struct IssuerConfig: Sendable {
        public var trusted: TrustedIssuer
        /// Tokens of this issuer that no `[[principal]]` rule names become `user:ISSUER_HOST:SUB`;
        /// off by default, since a public issuer (a CI platform's) signs tokens for anyone.
        public var users: Bool
    }

    /// A claim rule: a token from `issuer` (any trusted one when nil) whose claims all match
    /// becomes the principal `name`, in which `{claim}` is replaced by that claim's value.
    public struct PrincipalRule: Sendable {
        public var name: String
        public var issuer: String?
        public var claims: [(name: String, pattern: MatchPattern)]
    }

    /// Principals matching `principals` may exchange for `services`: patterns matched against the
    /// whole requested target, so `github` grants only `github`, `github/*` every resource of it.
    public struct Grant: Sendable {
        public var principals: [MatchPattern]
        public var services: [MatchPattern]
    }

    /// An upstream OAuth provider whose refresh tokens the broker redeems.
    public struct OAuthProvider: Sendable {
        public var service: String
        public var tokenEndpoint: String
        public var clientID: String
        /// The environment variable holding the client secret, if the provider wants one.
        public var clientSecretEnv: String?
        /// Where a person connects (or reconnects) this provider; sent with `provider_not_connected`.
        public var connectURL: String?
        public var scope: String?
    }

    public enum VaultKeySource: Sendable, Equatable {
        case file(String)
        case environment(String)
    }

    public static let defaultVaultKeyVariable = "KONTEXT_BROKER_VAULT_KEYS"

    /// Loads and checks the file; every problem is a usage error naming the file.
    public static func load(path: String) throws(KontextError) -> BrokerConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KontextError.usage("\(path): cannot read the broker configuration", hint: "pass --config broker.toml (see README, Broker)")
        }
        guard let text = String(data: data, encoding: .utf8), !text.utf8.contains(0) else {
            throw KontextError.usage("\(path): the broker configuration is not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws(KontextError) -> BrokerConfig {
        do {
            return try parseThrowing(text, path: path)
        } catch let error as KontextError {
            throw error
        } catch let error as TOMLParseError {
            throw KontextError.usage("\(path):\(error.source.begin.line):\(error.source.begin.column): invalid TOML: \(error.description)")
        } catch {
            throw KontextError.usage("\(path): \(error)")
        }
    }

    private static func parseThrowing(_ text: String, path: String) throws -> BrokerConfig {
        let table = try TOMLTable(string: text)
        func fail(_ message: String) -> KontextError { KontextError.usage("\(path): \(message)") }
        func string(_ table: TOMLTable, _ key: String, in place: String) throws -> String? {
            guard let value = table[key] else { return nil }
            guard let text = value.string else { throw fail("\(place)\(key) must be a string") }
            return text
        }
        func strings(_ table: TOMLTable, _ key: String, in place: String) throws -> [String]? {
            guard let value = table[key] else { return nil }
            if let text = value.string { return [text] }
            guard let array = value.array, array.allSatisfy({ $0.string != nil }) else {
                throw fail("\(place)\(key) must be a string or an array of strings")
            }
            return array.map { $0.string! }
        }
        func patterns(_ sources: [String], _ place: String) throws -> [MatchPattern] {
            try sources.map { source in
                do { return try MatchPattern(source) } catch let error as KontextError { throw fail("\(place): \(error.message)") }
            }
        }
        func tables(_ key: String) throws -> [TOMLTable] {
            guard let value = table[key] else { return [] }
            guard let array = value.array, array.allSatisfy({ $0.table != nil }) else {
                throw fail("\(key) must be written as [[\(key)]] tables")
            }
            return array.map { $0.table! }
        }
        func checkKeys(_ table: TOMLTable, _ allowed: Set<String>, _ place: String) throws {
            for key in table.keys where !allowed.contains(key) {
                throw fail("unknown key \"\(key)\"\(place.isEmpty ? "" : " in " + place) (known: \(allowed.sorted().joined(separator: ", ")))")
            }
        }

        try checkKeys(table, ["listen", "db", "token_lifetime", "audit_readers", "vault", "limits", "issuer", "principal", "grant", "provider",
                              "service", "policy", "approvers"], "")
        var config = BrokerConfig(listen: try string(table, "listen", in: ""), database: try string(table, "db", in: ""),
                                  tokenLifetime: 900, issuers: [], principals: [], grants: [], providers: [:],
                                  auditReaders: try patterns(try strings(table, "audit_readers", in: "") ?? [], "audit_readers"),
                                  vault: .environment(defaultVaultKeyVariable))
        if let value = table["token_lifetime"] {
            guard let seconds = value.int, seconds >= 30, seconds <= 86_400 else {
                throw fail("token_lifetime must be a number of seconds between 30 and 86400")
            }
            config.tokenLifetime = seconds
        }
        if let value = table["limits"] {
            guard let limits = value.table else { throw fail("limits must be a [limits] table") }
            try checkKeys(limits, ["idle_timeout", "token_rate", "token_burst", "client_address_header"], "[limits]")
            if let value = limits["idle_timeout"] {
                guard let seconds = value.int, (1...3600).contains(seconds) else {
                    throw fail("limits.idle_timeout must be a number of seconds between 1 and 3600")
                }
                config.limits.idleTimeout = seconds
            }
            if let value = limits["token_rate"] {
                guard let rate = value.double ?? value.int.map(Double.init), rate >= 0 else {
                    throw fail("limits.token_rate must be a number of requests per second (0: no limit)")
                }
                config.limits.tokenRate = rate
            }
            if let value = limits["token_burst"] {
                guard let burst = value.int, burst >= 1 else { throw fail("limits.token_burst must be a whole number of requests, at least 1") }
                config.limits.tokenBurst = burst
            }
            config.limits.clientAddressHeader = try string(limits, "client_address_header", in: "limits.")
        }
        if let value = table["vault"] {
            guard let vault = value.table else { throw fail("vault must be a [vault] table") }
            try checkKeys(vault, ["key_file", "key_env"], "[vault]")
            switch (try string(vault, "key_file", in: "vault."), try string(vault, "key_env", in: "vault.")) {
            case (let file?, nil): config.vault = .file(file)
            case (nil, let variable?): config.vault = .environment(variable)
            case (nil, nil): break
            case (_?, _?): throw fail("[vault] takes key_file or key_env, not both")
            }
        }
        for (index, issuer) in try tables("issuer").enumerated() {
            let place = "issuer \(index + 1): "
            try checkKeys(issuer, ["issuer", "audiences", "jwks_url", "algorithms", "leeway", "subject_claim", "email_claim", "users"],
                          "[[issuer]] \(index + 1)")
            guard let url = try string(issuer, "issuer", in: place) else { throw fail("\(place)issuer (the iss URL) is required") }
            for (key, value) in [("issuer", url), ("jwks_url", try string(issuer, "jwks_url", in: place))] {
                if let value, value.lowercased().hasPrefix("http://"), Transport.isPlainHTTPOffLoopback(value) {
                    throw fail("\(place)\(key) must be https (http only on loopback)")
                }
            }
            var trusted = TrustedIssuer(issuer: url, audiences: try strings(issuer, "audiences", in: place) ?? [],
                                        jwksURL: try string(issuer, "jwks_url", in: place))
            if let algorithms = try strings(issuer, "algorithms", in: place) { trusted.algorithms = Set(algorithms) }
            if let leeway = issuer["leeway"] {
                guard let seconds = leeway.int ?? leeway.double.map(Int.init) else { throw fail("\(place)leeway must be seconds") }
                trusted.leeway = Double(seconds)
            }
            if let claim = try string(issuer, "subject_claim", in: place) { trusted.claimMapping.subject = claim }
            if let claim = try string(issuer, "email_claim", in: place) { trusted.claimMapping.email = claim.isEmpty ? nil : claim }
            var users = false
            if let value = issuer["users"] {
                guard let flag = value.bool else { throw fail("\(place)users must be true or false") }
                users = flag
            }
            config.issuers.append(IssuerConfig(trusted: trusted, users: users))
        }
        for (index, rule) in try tables("principal").enumerated() {
            let place = "principal \(index + 1): "
            try checkKeys(rule, ["name", "issuer", "claims"], "[[principal]] \(index + 1)")
            guard let name = try string(rule, "name", in: place), !name.isEmpty else { throw fail("\(place)name is required") }
            var claims: [(String, MatchPattern)] = []
            if let value = rule["claims"] {
                guard let claimTable = value.table else { throw fail("\(place)claims must be a table of claim = pattern") }
                for key in claimTable.keys.sorted() {
                    guard let source = claimTable[key]?.string else { throw fail("\(place)claims.\(key) must be a pattern string") }
                    claims.append((key, try patterns([source], "\(place)claims.\(key)")[0]))
                }
            }
            config.principals.append(PrincipalRule(name: name, issuer: try string(rule, "issuer", in: place), claims: claims))
        }
        if let value = table["service"] {
            guard let array = value.array else { throw fail("service must be written as [[service]] tables") }
            config.hostBindings = try HostBindings.serviceTables(
                array, path: path, hint: #"write [[service]] tables: name = "github", hosts = ["api.github.com"], optional headers = ["x-api-key"]"#)
        }
        for (index, grant) in try tables("grant").enumerated() {
            let place = "grant \(index + 1): "
            try checkKeys(grant, ["principals", "services"], "[[grant]] \(index + 1)")
            guard let principals = try strings(grant, "principals", in: place), !principals.isEmpty,
                  let services = try strings(grant, "services", in: place), !services.isEmpty else {
                throw fail("\(place)principals and services are both required")
            }
            config.grants.append(Grant(principals: try patterns(principals, place + "principals"),
                                       services: try patterns(services, place + "services")))
        }
        for (index, provider) in try tables("provider").enumerated() {
            let place = "provider \(index + 1): "
            try checkKeys(provider, ["service", "token_endpoint", "client_id", "client_secret_env", "connect_url", "scope"],
                          "[[provider]] \(index + 1)")
            guard let service = try string(provider, "service", in: place),
                  let endpoint = try string(provider, "token_endpoint", in: place),
                  let clientID = try string(provider, "client_id", in: place) else {
                throw fail("\(place)service, token_endpoint and client_id are required")
            }
            guard endpoint.hasPrefix("https://") || (endpoint.lowercased().hasPrefix("http://") && !Transport.isPlainHTTPOffLoopback(endpoint)) else {
                throw fail("\(place)token_endpoint must be https (http only on loopback)")
            }
            guard config.providers[service] == nil else { throw fail("\(place)service '\(service)' is configured twice") }
            config.providers[service] = OAuthProvider(service: service, tokenEndpoint: endpoint, clientID: clientID,
                                                      clientSecretEnv: try string(provider, "client_secret_env", in: place),
                                                      connectURL: try string(provider, "connect_url", in: place),
                                                      scope: try string(provider, "scope", in: place))
        }
        config.approvers = try patterns(try strings(table, "approvers", in: "") ?? [], "approvers")
        if table["policy"] != nil {
            guard let array = table["policy"]?.array, array.allSatisfy({ $0.table != nil }) else {
                throw fail("policy must be written as [[policy]] tables (the rules of a policy file's [[rule]])")
            }
            let document = TOMLTable(inline: false)
            document["rule"] = array
            let text = document.convert(to: .toml)
            do {
                _ = try Policy.parse(text, path: "\(path) [[policy]]")
            } catch let error as KontextError {
                throw KontextError.usage(error.message.replacingOccurrences(of: "rule ", with: "policy "), hint: error.hint)
            }
            let rules = (try? JSONValue.parse(document.convert(to: .json)))?["rule"] ?? .array([])
            config.policy = OrganisationPolicy(text: text, rules: rules, version: contentDigest(Array(text.utf8)))
        }
        return config
    }

    /// The vault cipher from the configured key file or variable.
    public func cipher(environment: [String: String]) throws(KontextError) -> VaultCipher {
        switch vault {
        case .file(let path):
            var status = stat()
            guard stat(path, &status) == 0, let data = FileManager.default.contents(atPath: path) else {
                throw KontextError.usage("cannot read the vault key file \(path)", hint: VaultCipher.keyHintText)
            }
            guard status.st_mode & 0o077 == 0 else {
                throw KontextError.usage("the vault key file \(path) is readable by others (mode \(String(status.st_mode & 0o777, radix: 8)))",
                                         hint: "chmod 600 \(path)")
            }
            return try VaultCipher.parse(String(decoding: data, as: UTF8.self), source: path)
        case .environment(let variable):
            guard let text = environment[variable], !text.isEmpty else {
                throw KontextError.usage("no vault key: \(variable) is not set", hint: VaultCipher.keyHintText)
            }
            return try VaultCipher.parse(text.replacingOccurrences(of: ",", with: "\n"), source: variable)
        }
    }
}

extension VaultCipher {
    static let keyHintText = "set [vault] key_file or KONTEXT_BROKER_VAULT_KEYS to lines ID:BASE64 (32 random bytes: head -c 32 /dev/urandom | base64)"
}
