#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The child the signal handler forwards to (0: not spawned yet), and a signal that arrived
/// before it was; globals because a C signal handler cannot capture context. Atomics make
/// the hand-over race-free: whichever of the handler and `target`'s setter runs second
/// takes the pending signal and delivers it, exactly once.
private let forwardTarget = Atomic<Int32>(0)
private let pendingSignal = Atomic<Int32>(0)

/// Forwards SIGINT, SIGTERM and SIGHUP to the child. A signal the kernel generated for the
/// terminal's process group (Ctrl-C) already reached the child, which shares that group,
/// so only signals sent by a process (`kill`, a supervisor) are passed on — as sudo does —
/// and the child never sees one keypress twice.
final class SignalForwarder: Sendable {
    private let previous: [(Int32, sigaction)]

    private init(previous: [(Int32, sigaction)]) {
        self.previous = previous
    }

    /// Sets the child to forward to, delivering any signal that came before it existed.
    func forward(to pid: pid_t) {
        forwardTarget.store(pid, ordering: .sequentiallyConsistent)
        let early = pendingSignal.exchange(0, ordering: .sequentiallyConsistent)
        if early != 0 { kill(pid, early) }
    }

    static func install() -> SignalForwarder {
        forwardTarget.store(0, ordering: .sequentiallyConsistent)
        pendingSignal.store(0, ordering: .sequentiallyConsistent)
        var previous: [(Int32, sigaction)] = []
        for signal in ChildProcess.forwardedSignals {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { signal, info, _ in
                guard info.map({ $0.pointee.si_code <= 0 }) ?? true else { return }
                let target = forwardTarget.load(ordering: .sequentiallyConsistent)
                if target > 0 {
                    kill(target, signal)
                    return
                }
                pendingSignal.store(signal, ordering: .sequentiallyConsistent)
                let late = forwardTarget.load(ordering: .sequentiallyConsistent)
                if late > 0 {
                    let early = pendingSignal.exchange(0, ordering: .sequentiallyConsistent)
                    if early != 0 { kill(late, early) }
                }
            }
            action.sa_flags = SA_SIGINFO | SA_RESTART
            sigemptyset(&action.sa_mask)
            var old = sigaction()
            sigaction(signal, &action, &old)
            previous.append((signal, old))
        }
        return SignalForwarder(previous: previous)
    }

    func uninstall() {
        for (signal, old) in previous {
            var old = old
            sigaction(signal, &old, nil)
        }
        forwardTarget.store(0, ordering: .sequentiallyConsistent)
    }
}
