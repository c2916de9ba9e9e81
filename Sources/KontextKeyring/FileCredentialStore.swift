import Foundation
import KontextCore

/// The explicit opt-in store (`KONTEXT_KEYRING=file`) for machines with no Secret Service:
/// one JSON file, mode 0600, in a 0700 directory. Not encrypted; kontext warns on each use.
public struct FileCredentialStore: CredentialStore {
    public let path: String
    private let directory: String

    public init(directory: String) {
        self.directory = directory
        self.path = directory + "/credentials.json"
    }

    private typealias Contents = [String: [String: String]]

    public func store(_ secret: String, kind: CredentialKind, key: String, label: String) throws {
        var contents = try load()
        contents[kind.rawValue, default: [:]][key] = secret
        try save(contents)
    }

    public func lookup(kind: CredentialKind, key: String) throws -> String? {
        try load()[kind.rawValue]?[key]
    }

    public func remove(kind: CredentialKind, key: String) throws -> Bool {
        var contents = try load()
        guard contents[kind.rawValue]?.removeValue(forKey: key) != nil else { return false }
        try save(contents)
        return true
    }

    public func keys(kind: CredentialKind) throws -> [String] {
        (try load()[kind.rawValue] ?? [:]).keys.sorted()
    }

    private func load() throws -> Contents {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        do {
            return try JSONDecoder().decode(Contents.self, from: data)
        } catch {
            throw KontextError(.usage, "\(path) is not a kontext credentials file",
                               hint: "move it away; kontext will start a new one")
        }
    }

    private func save(_ contents: Contents) throws {
        try makeDirectories(directory, mode: 0o700)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = try encoder.encode(contents)
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw KontextError(.usage, "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        fchmod(fd, 0o600)
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == data.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw KontextError(.usage, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
