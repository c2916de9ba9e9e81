#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKontextProcess
import KontextCore

/// A process that holds credentials in memory keeps them from other processes of the same
/// user: not dumpable (no ptrace attach, /proc/PID/mem, environ and maps become root's) and
/// no core files. Children start dumpable again at exec (the kernel resets the flag), but
/// inherit the core limit of 0, so a crashing agent leaves no core with its secrets either.
public enum ProcessHardening {
    public static func protectMemory() {
        _ = kontext_set_dumpable(0)
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(coreLimitResource, &none)
    }

    #if canImport(Glibc)
    private static let coreLimitResource = __rlimit_resource_t(RLIMIT_CORE.rawValue)
    #else
    private static let coreLimitResource = RLIMIT_CORE
    #endif
}
