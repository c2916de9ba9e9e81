#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `kontext hook EVENT --agent NAME`: relays the agent's hook input to the session's sidecar
/// and its answer back to the agent. Kept free of Foundation: it runs for every tool call.
public enum HookClient {
    /// Runs the hook with the given arguments (after `hook`) and returns the exit code.
    /// `agents` is every dialect kontext speaks (`AgentAdapters.all`).
    public static func run(arguments: [String], agents: [any HookDialect], environment: (String) -> String?) -> Int32 {
        // A sidecar that closes early (over its connection cap, or gone) is a failed call to
        // fall back from, not a SIGPIPE that kills the hook before it can answer.
        signal(SIGPIPE, SIG_IGN)
        var event: String?
        var agent: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--agent", index + 1 < arguments.count {
                agent = arguments[index + 1]
                index += 2
                continue
            }
            if argument.hasPrefix("--agent=") {
                agent = String(argument.dropFirst("--agent=".count))
            } else if event == nil, !argument.hasPrefix("-") {
                event = argument
            } else {
                return usage("unexpected argument '\(argument)'")
            }
            index += 1
        }
        guard let event else { return usage("missing EVENT (one of: \(HookEvent.names))") }
        guard HookEvent(rawValue: event) != nil else {
            return usage("unknown hook event '\(event)' (expected one of: \(HookEvent.names))")
        }
        guard let agent else { return usage("missing --agent NAME") }
        guard let dialect = agents.first(where: { $0.name == agent }) else {
            return usage("unknown agent '\(agent)' (supported: \(agents.map(\.name).joined(separator: ", ")))")
        }
        let input = readToEnd(0, limit: HookWire.maximumInput) ?? ([], false)
        let request = HookWire.Request(event: event, agent: agent, truncated: input.truncated, payload: input.bytes)
        let enforce = environment(SessionVariable.mode) == "enforce"
        guard let socketPath = environment(SessionVariable.socket), !socketPath.isEmpty else {
            return relay(HookFallback.answer(event: event, dialect: dialect, enforce: enforce,
                                             problem: "\(SessionVariable.socket) is not set (is this agent running under `kontext start`?)"))
        }
        switch exchange(request, socketPath: socketPath) {
        case .success(let answer):
            return relay(answer)
        case .failure(let problem):
            return relay(HookFallback.answer(event: event, dialect: dialect, enforce: enforce, problem: problem.text))
        }
    }

    struct Problem: Error { var text: String }

    static func exchange(_ request: HookWire.Request, socketPath: String) -> Result<HookWire.Answer, Problem> {
        guard var address = unixSocketAddress(socketPath) else {
            return .failure(Problem(text: "socket path too long: \(socketPath)"))
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(Problem(text: "cannot create a socket")) }
        defer { close(fd) }
        // The sidecar answers in milliseconds; a wedged one must not hang the agent.
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            return .failure(Problem(text: "cannot reach the kontext sidecar at \(socketPath): \(String(cString: strerror(errno)))"))
        }
        guard writeFully(fd, HookWire.encode(request)) else {
            return .failure(Problem(text: "the kontext sidecar closed the connection"))
        }
        shutdown(fd, Int32(SHUT_WR))
        guard let reply = readToEnd(fd, limit: 16 << 20), !reply.truncated,
              let answer = HookWire.decodeAnswer(reply.bytes) else {
            return .failure(Problem(text: "the kontext sidecar gave no valid answer"))
        }
        return .success(answer)
    }

    static func relay(_ answer: HookWire.Answer) -> Int32 {
        writeFully(1, answer.stdout)
        writeFully(2, answer.stderr)
        return answer.exitCode
    }

    static func usage(_ message: String) -> Int32 {
        writeFully(2, Array("kontext hook: \(message)\nusage: kontext hook EVENT --agent NAME (EVENT: \(HookEvent.names))\n".utf8))
        return 2
    }
}

/// What the hook answers when the sidecar cannot: observe mode lets the call through and
/// says so; enforce mode blocks what can be blocked (SPEC section 7), in the agent's own
/// dialect: the same deny answer the sidecar would give.
public enum HookFallback {
    public static func answer(event: String, dialect: any HookDialect, enforce: Bool, problem: String) -> HookWire.Answer {
        guard enforce else {
            return HookWire.Answer(exitCode: 0, stdout: "", stderr: "kontext: \(problem); observe mode lets this through\n")
        }
        let reason = "kontext cannot check this call (\(problem)); enforce mode blocks it"
        var answer = HookEvent(rawValue: event).map { dialect.answer(event: $0, decision: .deny, reason: reason) }
            ?? HookWire.Answer(exitCode: 0)
        answer.stderr += Array("kontext: \(problem)\n".utf8)
        return answer
    }
}
