/// Tokens, credentials and audit events cross the network only over TLS: a plain `http://`
/// URL is accepted for this machine (loopback) and otherwise only when the user opts in with
/// `KONTEXT_ALLOW_HTTP=1` (SPEC section 10; `Settings.allowHTTP`).
public enum Transport {
    /// `url` is `http://` to a host that is not loopback.
    public static func isPlainHTTPOffLoopback(_ url: String) -> Bool {
        guard url.lowercased().hasPrefix("http://") else { return false }
        return !isLoopbackHost(host(of: url))
    }

    /// A usage error (exit 2) naming `name` when `url` is plain HTTP off loopback and the user
    /// did not opt in.
    public static func check(_ url: String, name: String, allowHTTP: Bool) throws(KontextError) {
        guard !allowHTTP, isPlainHTTPOffLoopback(url) else { return }
        throw KontextError.usage("\(name) \(url) is plain HTTP to \(host(of: url)), which is not this machine: tokens would cross the network unencrypted; use https://, or set \(Settings.Name.allowHTTP)=1 to allow it")
    }

    /// 127.0.0.0/8, `::1`, `localhost` and names under `.localhost` (RFC 6761).
    public static func isLoopbackHost(_ host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name.hasSuffix(".") { name.removeLast() }
        if name == "localhost" || name.hasSuffix(".localhost") || name == "::1" || name == "0:0:0:0:0:0:0:1" { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) && Int($0)! <= 255 })
        else { return false }
        return parts[0] == "127"
    }

    /// The host of an `scheme://[userinfo@]host[:port]/…` URL, without brackets or port.
    public static func host(of url: String) -> String {
        var rest = Substring(url)
        if let scheme = rest.firstRange(of: "://") { rest = rest[scheme.upperBound...] }
        rest = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            return String(rest[rest.index(after: rest.startIndex)..<close])
        }
        if let colon = rest.lastIndex(of: ":") { rest = rest[..<colon] }
        return String(rest)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
