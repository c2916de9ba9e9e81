/// SPEC section 3's settings, read once per process: each `KONTEXT_*` setting is named and
/// read here and nowhere else, and the modules below the commands take this value, not the
/// environment. Precedence: a command's flag (the command sets it on this value) > the
/// environment > config.toml > the built-in default (applied where the setting is used).
public struct Settings: Sendable {
    /// A setting's environment variable and, when config.toml may hold it, its key there:
    /// the variable's name without `KONTEXT_`, in lower case.
    public struct Name: Sendable, CustomStringConvertible {
        public let variable: String
        public let configKey: String?

        public var description: String { variable }
    }

    /// The process environment: what children inherit, and the variables that are not
    /// kontext's own (`HOME`, `XDG_*`, `PATH`, the CI platforms').
    public var environment: [String: String]
    public var issuerURL: String?
    public var clientID: String?
    /// From the environment only: a secret does not belong in a file.
    public var clientSecret: String?
    /// Where exchanges go when not the issuer's token endpoint.
    public var tokenEndpoint: String?
    public var scopes: String?
    public var redirectURI: String?
    public var auditURL: String?
    /// `observe` or `enforce` as written: `PolicyMode(settings:)` checks it where a session
    /// needs a mode, so a typo fails the session and nothing else.
    public var mode: String?
    public var policy: String?
    /// `secret-service` or `file` as written, checked where a store is opened.
    public var keyring: String?
    public var caBundle: String?
    public var debug: Bool
    public var audience: String?
    public var idTokenFile: String?
    /// From the environment only, like every token.
    public var idToken: String?
    /// The name of the variable holding a GitLab job's ID token.
    public var idTokenVariable: String?
    /// Plain HTTP to hosts that are not loopback is allowed.
    public var allowHTTP: Bool
    /// Sessions carry handles through the credential proxy (SPEC section 11) without `--proxy`.
    public var proxy: Bool
    /// Where audit events also go as OpenTelemetry log records (SPEC section 12), nil when
    /// neither `KONTEXT_OTLP_ENDPOINT` nor the standard `OTEL_EXPORTER_OTLP_*` variables say.
    public var otlp: OTLPSettings?

    /// `KONTEXT_APPROVAL_TTL` (config `approval_ttl`): seconds an approval waits for the user
    /// and, once approved, for the agent's retry (SPEC section 12; default 300). Unparsable
    /// or non-positive values fall back to the default.
    public var approvalTTL: Int

    public static let defaultApprovalTTL = 300

    /// `file` is config.toml's values by key; a variable set in the environment, even to the
    /// empty string, wins over it. Empty values count as unset.
    public init(environment: [String: String], file: [String: String] = [:]) {
        self.environment = environment
        func value(_ name: Name) -> String? {
            let text = environment[name.variable] ?? name.configKey.flatMap { file[$0] }
            return text?.isEmpty == false ? text : nil
        }
        issuerURL = value(.issuerURL)
        clientID = value(.clientID)
        clientSecret = value(.clientSecret)
        tokenEndpoint = value(.tokenEndpoint)
        scopes = value(.scopes)
        redirectURI = value(.redirectURI)
        auditURL = value(.auditURL)
        mode = value(.mode)
        policy = value(.policy)
        keyring = value(.keyring)
        caBundle = value(.caBundle)
        debug = value(.debug).map { $0 == "1" || $0 == "true" } ?? false
        audience = value(.audience)
        idTokenFile = value(.idTokenFile)
        idToken = value(.idToken)
        idTokenVariable = value(.idTokenVariable)
        func enabled(_ name: Name) -> Bool { value(name).map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false }
        allowHTTP = enabled(.allowHTTP)
        proxy = enabled(.proxy)
        otlp = OTLPSettings(kontextEndpoint: value(.otlpEndpoint), environment: environment)
        approvalTTL = value(.approvalTTL).flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil } ?? Self.defaultApprovalTTL
    }

    /// Before anything is sent: the servers that get tokens or audit events are reached over
    /// TLS unless they are this machine or the user opted in (SPEC section 10).
    public func checkTransport() throws(KontextError) {
        for (name, url) in [(Name.issuerURL, issuerURL), (.tokenEndpoint, tokenEndpoint), (.auditURL, auditURL)] {
            if let url { try Transport.check(url, name: name.variable, allowHTTP: allowHTTP) }
        }
        if let otlp { try Transport.check(otlp.logsURL, name: otlp.source, allowHTTP: allowHTTP) }
    }
}

extension Settings.Name {
    public static let issuerURL = Self(variable: "KONTEXT_ISSUER_URL", configKey: "issuer_url")
    public static let clientID = Self(variable: "KONTEXT_CLIENT_ID", configKey: "client_id")
    public static let clientSecret = Self(variable: "KONTEXT_CLIENT_SECRET", configKey: nil)
    public static let tokenEndpoint = Self(variable: "KONTEXT_TOKEN_ENDPOINT", configKey: "token_endpoint")
    public static let scopes = Self(variable: "KONTEXT_SCOPES", configKey: "scopes")
    public static let redirectURI = Self(variable: "KONTEXT_REDIRECT_URI", configKey: "redirect_uri")
    public static let auditURL = Self(variable: "KONTEXT_AUDIT_URL", configKey: "audit_url")
    public static let mode = Self(variable: SessionVariable.mode, configKey: "mode")
    public static let policy = Self(variable: "KONTEXT_POLICY", configKey: "policy")
    public static let keyring = Self(variable: "KONTEXT_KEYRING", configKey: "keyring")
    public static let caBundle = Self(variable: "KONTEXT_CA_BUNDLE", configKey: "ca_bundle")
    public static let debug = Self(variable: "KONTEXT_DEBUG", configKey: "debug")
    public static let audience = Self(variable: "KONTEXT_AUDIENCE", configKey: "audience")
    public static let idTokenFile = Self(variable: "KONTEXT_ID_TOKEN_FILE", configKey: "id_token_file")
    public static let idToken = Self(variable: "KONTEXT_ID_TOKEN", configKey: nil)
    public static let idTokenVariable = Self(variable: "KONTEXT_ID_TOKEN_VARIABLE", configKey: "id_token_variable")
    public static let allowHTTP = Self(variable: "KONTEXT_ALLOW_HTTP", configKey: "allow_http")
    public static let proxy = Self(variable: "KONTEXT_PROXY", configKey: "proxy")
    public static let otlpEndpoint = Self(variable: "KONTEXT_OTLP_ENDPOINT", configKey: "otlp_endpoint")
    public static let approvalTTL = Self(variable: "KONTEXT_APPROVAL_TTL", configKey: "approval_ttl")

    public static let all: [Self] = [
        .issuerURL, .clientID, .clientSecret, .tokenEndpoint, .scopes, .redirectURI, .auditURL, .mode, .policy,
        .keyring, .caBundle, .debug, .audience, .idTokenFile, .idToken, .idTokenVariable, .allowHTTP, .proxy,
        .approvalTTL, .otlpEndpoint,
    ]

    /// The setting config.toml's `key` sets, or nil for a key it may not hold.
    public static func configured(by key: String) -> Self? {
        all.first { $0.configKey == key }
    }
}

/// The OpenTelemetry exporter's settings: `KONTEXT_OTLP_ENDPOINT` (or config.toml's
/// `otlp_endpoint`), else the standard variables of the OpenTelemetry specification:
/// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` (used as it is), `OTEL_EXPORTER_OTLP_ENDPOINT` (a base:
/// `/v1/logs` is appended, as for `KONTEXT_OTLP_ENDPOINT` unless its path already ends so),
/// `OTEL_EXPORTER_OTLP[_LOGS]_HEADERS` (`k=v,k2=v2`, values percent-decoded),
/// `OTEL_EXPORTER_OTLP[_LOGS]_PROTOCOL` (`http/protobuf`, the default, or `http/json`),
/// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`.
public struct OTLPSettings: Sendable, Equatable {
    public enum Encoding: String, Sendable, Equatable {
        case protobuf = "http/protobuf"
        case json = "http/json"
    }

    /// Where OTLP/HTTP log export requests go.
    public var logsURL: String
    /// The variable `logsURL` came from, for messages.
    public var source: String
    /// nil: a protocol kontext does not speak (`grpc`), named in `unsupportedProtocol`.
    public var encoding: Encoding?
    public var unsupportedProtocol: String?
    /// Extra request headers (a collector's API key, say): secrets, never printed.
    public var headers: [(String, String)]
    public var serviceName: String
    public var resourceAttributes: [(String, String)]

    public static func == (lhs: OTLPSettings, rhs: OTLPSettings) -> Bool {
        lhs.logsURL == rhs.logsURL && lhs.encoding == rhs.encoding && lhs.serviceName == rhs.serviceName
            && lhs.headers.map { "\($0.0)=\($0.1)" } == rhs.headers.map { "\($0.0)=\($0.1)" }
            && lhs.resourceAttributes.map { "\($0.0)=\($0.1)" } == rhs.resourceAttributes.map { "\($0.0)=\($0.1)" }
    }

    init?(kontextEndpoint: String?, environment: [String: String]) {
        func variable(_ name: String) -> String? {
            environment[name].flatMap { $0.trimmingWhitespace.isEmpty ? nil : $0.trimmingWhitespace }
        }
        if let base = kontextEndpoint {
            logsURL = Self.logsURL(base: base)
            source = Settings.Name.otlpEndpoint.variable
        } else if let logs = variable("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") {
            logsURL = logs
            source = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
        } else if let base = variable("OTEL_EXPORTER_OTLP_ENDPOINT") {
            logsURL = Self.logsURL(base: base)
            source = "OTEL_EXPORTER_OTLP_ENDPOINT"
        } else {
            return nil
        }
        let protocolName = variable("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL") ?? variable("OTEL_EXPORTER_OTLP_PROTOCOL") ?? Encoding.protobuf.rawValue
        encoding = Encoding(rawValue: protocolName)
        unsupportedProtocol = encoding == nil ? protocolName : nil
        headers = Self.pairs(variable("OTEL_EXPORTER_OTLP_HEADERS")) + Self.pairs(variable("OTEL_EXPORTER_OTLP_LOGS_HEADERS"))
        serviceName = variable("OTEL_SERVICE_NAME") ?? "kontext"
        resourceAttributes = Self.pairs(variable("OTEL_RESOURCE_ATTRIBUTES"))
    }

    static func logsURL(base: String) -> String {
        var url = base
        if url.hasSuffix("/v1/logs") { return url }
        while url.hasSuffix("/") { url.removeLast() }
        return url + "/v1/logs"
    }

    /// `k=v,k2=v2` with percent-encoded values (the W3C baggage form the specification uses).
    static func pairs(_ text: String?) -> [(String, String)] {
        guard let text else { return [] }
        var result: [(String, String)] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let key = String(parts[0]).trimmingWhitespace
            if !key.isEmpty { result.append((key, percentDecoded(String(parts[1]).trimmingWhitespace))) }
        }
        return result
    }

    static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
               let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (Foundation-free, for the settings).
    var trimmingWhitespace: String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return String(self[first...last])
    }
}
