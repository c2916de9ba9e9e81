import KontextCore
import TOMLKit

/// SPEC section 3's precedence: flag > environment variable > config.toml > default. The
/// config file's keys are the variables' names without `KONTEXT_`, in lower case
/// (`issuer_url = "https://…"`, `mode = "enforce"`); flags are applied by each command.
public enum Configuration {
    static let variables: [String: String] = [
        "issuer_url": "KONTEXT_ISSUER_URL", "client_id": "KONTEXT_CLIENT_ID",
        "token_endpoint": "KONTEXT_TOKEN_ENDPOINT", "scopes": "KONTEXT_SCOPES",
        "redirect_uri": "KONTEXT_REDIRECT_URI", "audit_url": "KONTEXT_AUDIT_URL",
        "mode": "KONTEXT_MODE", "policy": "KONTEXT_POLICY", "keyring": "KONTEXT_KEYRING",
        "ca_bundle": "KONTEXT_CA_BUNDLE", "debug": "KONTEXT_DEBUG",
        "audience": "KONTEXT_AUDIENCE", "id_token_file": "KONTEXT_ID_TOKEN_FILE",
        "id_token_variable": "KONTEXT_ID_TOKEN_VARIABLE", "allow_http": "KONTEXT_ALLOW_HTTP",
        "proxy": "KONTEXT_PROXY",
    ]

    /// The settings naming servers that get tokens or audit events.
    static let urlSettings = ["KONTEXT_ISSUER_URL", "KONTEXT_TOKEN_ENDPOINT", "KONTEXT_AUDIT_URL"]

    public static func path(environment: [String: String]) -> String {
        XDGDirectories(environment: environment).config + "/kontext/config.toml"
    }

    /// The settings kontext acts on: the environment, with config.toml's values for the
    /// variables it does not set. Only kontext reads these; children get the real environment.
    public static func settings(environment: [String: String]) throws -> [String: String] {
        let settings = try merged(environment: environment)
        // Before anything is sent: plain HTTP off loopback only when the user opted in.
        let allowHTTP = Transport.allowsHTTP(settings)
        for name in urlSettings {
            if let url = settings[name], !url.isEmpty { try Transport.check(url, name: name, allowHTTP: allowHTTP) }
        }
        return settings
    }

    static func merged(environment: [String: String]) throws -> [String: String] {
        let path = path(environment: environment)
        guard let bytes = readFile(path, limit: 1 << 20) else { return environment }
        guard let text = String(validating: bytes, as: UTF8.self), !text.utf8.contains(0) else {
            throw KontextError.usage("\(path): not UTF-8 text")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw KontextError.usage("\(path):\(error.source.begin.line):\(error.source.begin.column): invalid TOML: \(error.description)")
        }
        var settings = environment
        for (key, value) in table {
            if key == "client_secret" {
                throw KontextError.usage("\(path): client_secret does not belong in a config file",
                                         hint: "set KONTEXT_CLIENT_SECRET in the environment instead")
            }
            guard let variable = variables[key] else {
                throw KontextError.usage("\(path): unknown setting \"\(key)\"",
                                         hint: "known settings: \(variables.keys.sorted().joined(separator: ", "))")
            }
            let text: String
            if let string = value.string {
                text = string
            } else if let flag = value.bool {
                text = flag ? "1" : "0"
            } else {
                throw KontextError.usage("\(path): \(key) must be a string")
            }
            if settings[variable] == nil { settings[variable] = text }
        }
        return settings
    }
}
