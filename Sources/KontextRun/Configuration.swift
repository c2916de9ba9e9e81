import KontextCore
import TOMLKit

/// config.toml, the third place of SPEC section 3's precedence (flag > environment variable >
/// config.toml > default). Its keys are the variables' names without `KONTEXT_`, in lower
/// case (`issuer_url = "https://…"`, `mode = "enforce"`); `Settings` says which may appear.
public enum Configuration {
    public static func path(environment: [String: String]) -> String {
        XDGDirectories(environment: environment).config + "/kontext/config.toml"
    }

    /// The settings kontext acts on: the environment, with config.toml's values for the
    /// variables it does not set. Only kontext reads these; children get the real environment.
    public static func load(environment: [String: String]) throws -> Settings {
        let settings = Settings(environment: environment, file: try fileValues(environment: environment))
        try settings.checkTransport()
        return settings
    }

    /// config.toml's values by key, as text (`true`/`false` as `1`/`0`); empty without a file.
    static func fileValues(environment: [String: String]) throws -> [String: String] {
        let path = path(environment: environment)
        guard let bytes = readFile(path, limit: 1 << 20) else { return [:] }
        guard let text = String(validating: bytes, as: UTF8.self), !text.utf8.contains(0) else {
            throw KontextError.usage("\(path): not UTF-8 text")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw KontextError.usage("\(path):\(error.source.begin.line):\(error.source.begin.column): invalid TOML: \(error.description)")
        }
        var values: [String: String] = [:]
        for (key, value) in table {
            if key == "client_secret" {
                throw KontextError.usage("\(path): client_secret does not belong in a config file",
                                         hint: "set \(Settings.Name.clientSecret) in the environment instead")
            }
            guard Settings.Name.configured(by: key) != nil else {
                throw KontextError.usage("\(path): unknown setting \"\(key)\"",
                                         hint: "known settings: \(Settings.Name.all.compactMap(\.configKey).sorted().joined(separator: ", "))")
            }
            if let string = value.string {
                values[key] = string
            } else if let flag = value.bool {
                values[key] = flag ? "1" : "0"
            } else {
                throw KontextError.usage("\(path): \(key) must be a string")
            }
        }
        return values
    }
}
