#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextCore

/// Launches a program with an explicit environment (secrets travel only in `envp`, never
/// in argv or a file), forwards termination signals to it, and reports its exit the way a
/// shell does: the exit code, or 128+N when signal N killed it.
public struct ChildProcess: Sendable {
    public var executable: String
    public var arguments: [String]
    public var environment: [(key: String, value: String)]

    public init(executable: String, arguments: [String], environment: [(key: String, value: String)]) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    /// Finds `name` on PATH (or takes it as a path when it has a slash).
    public static func locate(_ name: String, path: String?) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = directory + "/" + name
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// Spawns the program and returns its pid (for callers that wait themselves).
    public func spawn() throws -> pid_t {
        try spawn(actions: nil)
    }

    /// Runs the program to its end with stdin and stderr on /dev/null, for a short query
    /// such as `--version`: its exit status and the start of its stdout.
    public func output(limit: Int = 64 * 1024) throws -> (status: Int32, stdout: [UInt8]) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw KontextError(.launch, "cannot run \(executable): no pipe") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let pid: pid_t
        do {
            pid = try spawn(actions: &actions)
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        close(fds[1])
        let bytes = readAll(from: fds[0], limit: limit) ?? []
        close(fds[0])
        return (ChildProcess.wait(for: pid), bytes)
    }

    private func spawn(actions: UnsafePointer<posix_spawn_file_actions_t>?) throws -> pid_t {
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            // The child has its own copy; wipe ours before freeing (it may hold secrets).
            for entry in envp { if let entry { memset(entry, 0, strlen(entry)); free(entry) } }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child starts with default dispositions and an empty mask, whatever ours are.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in ChildProcess.forwardedSignals { sigaddset(&defaults, signal) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, actions, &attributes, argv, envp)
        guard status == 0 else {
            throw KontextError(.launch, "cannot launch \(executable): \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// Spawns, forwards SIGINT/SIGTERM/SIGHUP sent to kontext by other processes, runs
    /// `launched` once the child exists, waits.
    public func run(launched: () -> Void = {}) throws -> Int32 {
        let forwarder = SignalForwarder.install()
        defer { forwarder.uninstall() }
        let pid = try spawn()
        forwarder.forward(to: pid)
        launched()
        return ChildProcess.wait(for: pid)
    }

    /// Blocks until `pid` ends; returns its shell-style exit status.
    public static func wait(for pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 1 }
        }
        return exitStatus(fromWaitStatus: status)
    }

    public static func exitStatus(fromWaitStatus status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }  // exited
        return 128 + signal  // killed by a signal
    }

    static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
}
