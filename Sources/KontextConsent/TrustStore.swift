#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextCore

/// One file the user trusted in one content.
public struct TrustRecord: Sendable, Equatable {
    public var path: String
    public var digest: String
    /// Seconds since 1970 when the user trusted it.
    public var trustedAt: Int

    public init(path: String, digest: String, trustedAt: Int) {
        self.path = path
        self.digest = digest
        self.trustedAt = trustedAt
    }
}

/// The user's consent, by path and content digest, in `$XDG_STATE_HOME/kontext/trust`
/// (SPEC section 10): one line per file, `DIGEST<TAB>TIME<TAB>PATH`. A file changed since
/// it was trusted no longer matches its record and needs trusting again.
public struct TrustStore: Sendable {
    public let path: String

    public init(environment: [String: String]) {
        path = XDGDirectories(environment: environment).state + "/kontext/trust"
    }

    public func records() throws -> [TrustRecord] {
        errno = 0
        guard let bytes = readFile(path, limit: 16 << 20) else {
            if errno == ENOENT { return [] }
            throw KontextError.usage("cannot read \(path): \(errno == 0 ? "too large" : String(cString: strerror(errno)))",
                                     hint: "fix or remove the file (it lists the projects you trusted)")
        }
        var records: [TrustRecord] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[0].hasPrefix("sha256:"), let time = Int(fields[1]), fields[2].hasPrefix("/") else { continue }
            records.append(TrustRecord(path: String(fields[2]), digest: String(fields[0]), trustedAt: time))
        }
        return records
    }

    /// Records each file in its current content, replacing what was recorded for its path.
    public func trust(_ files: [(path: String, digest: String)], at time: Int = Int(time(nil))) throws {
        for file in files where file.path.contains(where: { $0 == "\n" || $0 == "\t" }) {
            throw KontextError.usage("cannot trust \(file.path.debugDescription): its path contains a tab or a line break",
                                     hint: "rename the directory")
        }
        let paths = Set(files.map(\.path))
        var records = try records().filter { !paths.contains($0.path) }
        records += files.map { TrustRecord(path: $0.path, digest: $0.digest, trustedAt: time) }
        try save(records)
    }

    /// Forgets the given paths; returns how many records went.
    @discardableResult
    public func revoke(paths: Set<String>) throws -> Int {
        let records = try records()
        let kept = records.filter { !paths.contains($0.path) }
        if kept.count != records.count { try save(kept) }
        return records.count - kept.count
    }

    /// Written whole to a private temporary file and renamed over the old one, so a reader
    /// never sees half a list.
    private func save(_ records: [TrustRecord]) throws {
        let directory = String(path[..<path.lastIndex(of: "/")!])
        try makeDirectories(directory, mode: 0o700)
        var text = "# kontext trust: the env files and project policies you trusted, by content digest\n"
        for record in records { text += "\(record.digest)\t\(record.trustedAt)\t\(record.path)\n" }
        let temporary = path + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw KontextError.usage("cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        let written = writeFully(fd, Array(text.utf8))
        let synced = fsync(fd) == 0
        close(fd)
        guard written, synced, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw KontextError.usage("cannot write \(path): \(reason)")
        }
    }
}
