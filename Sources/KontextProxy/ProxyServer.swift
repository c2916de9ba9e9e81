#if canImport(Glibc)
import Glibc
#endif
import KontextCore
import KontextHostBindings
import KontextPolicy
import NIOCore
import NIOPosix
import NIOSSL

/// What the proxy needs from the session.
public struct ProxyConfiguration: Sendable {
    public var bindings: HostBindings
    public var handles: HandleTable
    public var credentials: CredentialVault
    public var evaluator: PolicyEvaluator
    public var mode: PolicyMode
    /// nil: nothing is recorded (only for tests and the benchmark).
    public var audit: EgressAudit?
    /// `KONTEXT_CA_BUNDLE`: extra roots trusted for upstream servers, beside the system's.
    public var extraRootsFile: String?
    /// One line per problem (bad input, an upstream that failed); never a credential.
    public var log: @Sendable (String) -> Void

    public init(bindings: HostBindings, handles: HandleTable, credentials: CredentialVault, evaluator: PolicyEvaluator,
                mode: PolicyMode, audit: EgressAudit?, extraRootsFile: String?, log: @escaping @Sendable (String) -> Void) {
        self.bindings = bindings
        self.handles = handles
        self.credentials = credentials
        self.evaluator = evaluator
        self.mode = mode
        self.audit = audit
        self.extraRootsFile = extraRootsFile
        self.log = log
    }
}

/// Everything a connection handler shares with the others.
final class ProxyShared: Sendable {
    let configuration: ProxyConfiguration
    let authority: SessionCA
    let upstreamTLS: NIOSSLContext

    init(configuration: ProxyConfiguration, authority: SessionCA, upstreamTLS: NIOSSLContext) {
        self.configuration = configuration
        self.authority = authority
        self.upstreamTLS = upstreamTLS
    }

    func log(_ line: String) { configuration.log(line) }
}

/// The session's credential proxy (SPEC section 11): an HTTP proxy on 127.0.0.1 that tunnels
/// `CONNECT` blind to hosts no service is bound to, and terminates TLS (with a leaf from the
/// session CA) for bound hosts, where it swaps handles for credentials, applies egress
/// policy and audits each request.
public final class ProxyServer: Sendable {
    public let port: Int
    public let authority: SessionCA
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    private init(port: Int, authority: SessionCA, group: MultiThreadedEventLoopGroup, channel: any Channel) {
        self.port = port
        self.authority = authority
        self.group = group
        self.channel = channel
    }

    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY` and friends.
    public var url: String { "http://127.0.0.1:\(port)" }

    public static func start(_ configuration: ProxyConfiguration, threads: Int = 2) async throws -> ProxyServer {
        let authority = try SessionCA()
        var tls = TLSConfiguration.makeClientConfiguration()
        if let file = configuration.extraRootsFile, !file.isEmpty {
            tls.additionalTrustRoots = [.file(file)]
        }
        tls.applicationProtocols = ["http/1.1"]
        let upstreamTLS: NIOSSLContext
        do {
            upstreamTLS = try NIOSSLContext(configuration: tls)
        } catch {
            throw KontextError.usage("the credential proxy cannot load its trusted CAs: \(error)",
                                     hint: configuration.extraRootsFile.map { "check KONTEXT_CA_BUNDLE=\($0) (PEM certificates)" })
        }
        let shared = ProxyShared(configuration: configuration, authority: authority, upstreamTLS: upstreamTLS)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 256)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try ProxyConnectionHandler.installFront(on: channel, shared: shared)
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            return ProxyServer(port: channel.localAddress?.port ?? 0, authority: authority, group: group, channel: channel)
        } catch {
            try? await group.shutdownGracefully()
            throw KontextError.usage("the credential proxy cannot listen on 127.0.0.1: \(error)")
        }
    }

    /// Stops listening and closes every connection.
    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    /// The CA bundle the child trusts (SPEC section 11): the system's CAs, `extraRootsFile`,
    /// and this session's CA certificate. Written 0600; never holds a key.
    public func writeCABundle(to path: String, extraRootsFile: String?) throws {
        var text = ""
        for system in Self.systemBundles {
            if let bytes = readFile(system, limit: 16 << 20) {
                text += String(decoding: bytes, as: UTF8.self)
                break
            }
        }
        if let extra = extraRootsFile, !extra.isEmpty, let bytes = readFile(extra, limit: 16 << 20) {
            if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
            text += String(decoding: bytes, as: UTF8.self)
        }
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        text += authority.certificatePEM
        if !text.hasSuffix("\n") { text += "\n" }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw KontextError.usage("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        writeAll(text, to: fd)
    }

    static let systemBundles = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"]
}
