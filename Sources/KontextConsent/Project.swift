#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import KontextCore
import KontextEnvFile
import KontextPolicy

/// A repository file as read once: what it says, and the digest of exactly those bytes, so
/// that what the user trusted is what is used (no second read between check and use).
public struct ProjectFile<Content: Sendable>: Sendable {
    /// Canonical absolute path: the key consent is recorded under.
    public var path: String
    /// `sha256:` and the hex SHA-256 of the bytes parsed into `content`.
    public var digest: String
    public var content: Content

    static func read(_ path: String, reading: (String) throws -> [UInt8],
                     parsing: ([UInt8]) throws -> Content) throws -> ProjectFile {
        let bytes = try reading(path)
        let content = try parsing(bytes)
        let absolute = realPath(path) ?? path
        return ProjectFile(path: absolute, digest: contentDigest(bytes), content: content)
    }
}

/// How consent names a file's content: `sha256:` and the hex SHA-256 of its bytes.
public func contentDigest(_ bytes: [UInt8]) -> String {
    "sha256:" + SHA256.hash(data: bytes).map { byte in
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }.joined()
}

/// What a project (the current directory) gives kontext: its env file and its policy. Both
/// are someone else's input until the user trusts them (SPEC section 10).
public struct Project: Sendable {
    public static let defaultEnvFile = ".env.kontext"
    public static let policyFile = ".kontext/policy.toml"

    public var directory: String
    public var envFile: ProjectFile<EnvFile>?
    /// `.kontext/policy.toml`, unless it is the same file as the user's `KONTEXT_POLICY`.
    public var policy: ProjectFile<Policy>?
    /// True when the env file was named with `--env-file` (the hint repeats it).
    public var envFileNamed: Bool
    /// The user's own policy file (`Policy.locate`), when the caller evaluates policy.
    public var userPolicyPath: String?

    /// Reads the env file the user named, or `.env.kontext` when there is one, and the
    /// project's policy file.
    public static func load(directory: String, envFilePath: String?, userPolicyPath: String? = nil) throws -> Project {
        var envFile: ProjectFile<EnvFile>?
        let envPath = envFilePath ?? Self.defaultEnvFile
        if envFilePath != nil || exists(join(directory, envPath)) {
            envFile = try ProjectFile.read(envPath, reading: EnvFile.readBytes(path:),
                                           parsing: { try EnvFile.parse(bytes: $0, path: envPath) })
        }
        var policy: ProjectFile<Policy>?
        let policyPath = join(directory, Self.policyFile)
        if exists(policyPath), userPolicyPath.flatMap(realPath) != realPath(policyPath) {
            policy = try ProjectFile.read(policyPath, reading: Policy.readBytes(path:),
                                          parsing: { try Policy.parse(bytes: $0, path: Self.policyFile) })
        }
        return Project(directory: directory, envFile: envFile, policy: policy, envFileNamed: envFilePath != nil,
                       userPolicyPath: userPolicyPath)
    }

    /// Whether running here would exchange anything: consent is needed only then.
    public var asksForCredentials: Bool {
        !(envFile?.content.placeholders.isEmpty ?? true)
    }

    /// The files consent covers, as (path, digest).
    public var files: [(path: String, digest: String)] {
        var files: [(path: String, digest: String)] = []
        if let envFile { files.append((envFile.path, envFile.digest)) }
        if let policy { files.append((policy.path, policy.digest)) }
        return files
    }

    /// The files not trusted in their current content.
    public func untrustedFiles(in store: TrustStore) throws -> [String] {
        let records = try store.records()
        return files.filter { file in !records.contains { $0.path == file.path && $0.digest == file.digest } }.map(\.path)
    }

    /// What the project asks for, for a person deciding whether to trust it. Every piece of
    /// text from the files is made printable (a rule's reason could drive the terminal).
    public var summary: [String] {
        var lines: [String] = []
        if let envFile {
            lines.append(sanitized(envFile.path, limit: 4096) + " sets:")
            for variable in envFile.content.variables {
                let services = variable.placeholders.map(\.target)
                lines.append("  " + sanitized(variable.key, limit: 200) + "  "
                             + (services.isEmpty ? "(a literal value)" : "credentials: " + services.joined(separator: ", ")))
            }
        }
        if let policy {
            lines.append(sanitized(policy.path, limit: 4096) + " has \(policy.content.ruleCount) rule\(policy.content.ruleCount == 1 ? "" : "s")"
                         + " (its deny and ask rules apply anyway; its allow rules only once trusted):")
            lines += policy.content.ruleSummaries.map { "  " + sanitized($0, limit: 500) }
        }
        return lines
    }

    /// The command that records consent for this project.
    public var trustCommand: String {
        guard envFileNamed, let envFile else { return "kontext trust" }
        return "kontext trust --env-file \(envFile.content.path)"
    }

    static func join(_ directory: String, _ relative: String) -> String {
        if relative.hasPrefix("/") { return relative }
        return directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}
