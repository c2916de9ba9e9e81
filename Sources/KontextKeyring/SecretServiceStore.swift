import CLibSecret
import KontextCore

/// The freedesktop Secret Service (gnome-keyring, KeePassXC, …) through libsecret.
public struct SecretServiceStore: CredentialStore {
    private let busAddress: String?

    public init(environment: [String: String]) {
        busAddress = environment["DBUS_SESSION_BUS_ADDRESS"]
    }

    public func store(_ secret: String, kind: CredentialKind, key: String, label: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        guard kx_secret_store(kind.rawValue, key, label, secret, &message) == 0 else {
            throw unavailable(message)
        }
    }

    public func lookup(kind: CredentialKind, key: String) throws -> String? {
        var secret: UnsafeMutablePointer<CChar>?
        var message: UnsafeMutablePointer<CChar>?
        switch kx_secret_lookup(kind.rawValue, key, &secret, &message) {
        case 1:
            defer { kx_secret_free(secret) }
            return String(cString: secret!)
        case 0:
            return nil
        default:
            throw unavailable(message)
        }
    }

    public func remove(kind: CredentialKind, key: String) throws -> Bool {
        var message: UnsafeMutablePointer<CChar>?
        let result = kx_secret_clear(kind.rawValue, key, &message)
        guard result >= 0 else { throw unavailable(message) }
        return result == 1
    }

    public func keys(kind: CredentialKind) throws -> [String] {
        var list: UnsafeMutablePointer<CChar>?
        var message: UnsafeMutablePointer<CChar>?
        guard kx_secret_list(kind.rawValue, &list, &message) == 0 else { throw unavailable(message) }
        defer { kx_g_free(list) }
        return String(cString: list!).split(separator: "\n").map(String.init).sorted()
    }

    private func unavailable(_ message: UnsafeMutablePointer<CChar>?) -> KontextError {
        let reason = message.map { String(cString: $0) } ?? "unknown error"
        kx_g_free(message)
        let hint = busAddress == nil
            ? "no D-Bus session bus: run inside a desktop session or `dbus-run-session`, start a Secret Service (e.g. `gnome-keyring-daemon --unlock`), or set KONTEXT_KEYRING=file"
            : "start and unlock a Secret Service (e.g. `gnome-keyring-daemon --unlock`), or set KONTEXT_KEYRING=file"
        return KontextError(.usage, "the OS keyring (Secret Service) is not usable: \(reason)", hint: hint)
    }
}
