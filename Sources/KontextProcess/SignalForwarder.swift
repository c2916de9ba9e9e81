#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// The child the signal handler forwards to; a plain global because a C signal handler
/// cannot capture context. 0 means no child yet.
nonisolated(unsafe) private var forwardTarget: pid_t = 0

/// Forwards SIGINT, SIGTERM and SIGHUP to the child. A signal the kernel generated for the
/// terminal's process group (Ctrl-C) already reached the child, which shares that group,
/// so only signals sent by a process (`kill`, a supervisor) are passed on — as sudo does —
/// and the child never sees one keypress twice.
final class SignalForwarder: @unchecked Sendable {
    private var previous: [Int32: sigaction] = [:]

    var target: pid_t {
        get { forwardTarget }
        set { forwardTarget = newValue }
    }

    static func install() -> SignalForwarder {
        let forwarder = SignalForwarder()
        for signal in ChildProcess.forwardedSignals {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { signal, info, _ in
                let fromProcess = info.map { $0.pointee.si_code <= 0 } ?? true
                if forwardTarget > 0 && fromProcess { kill(forwardTarget, signal) }
            }
            action.sa_flags = SA_SIGINFO | SA_RESTART
            sigemptyset(&action.sa_mask)
            var old = sigaction()
            sigaction(signal, &action, &old)
            forwarder.previous[signal] = old
        }
        return forwarder
    }

    func uninstall() {
        for (signal, var old) in previous { sigaction(signal, &old, nil) }
        forwardTarget = 0
    }
}
