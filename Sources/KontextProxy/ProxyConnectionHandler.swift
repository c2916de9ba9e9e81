import KontextAudit
import KontextCore
import KontextHostBindings
import KontextPolicy
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

/// The HTTP handlers of a fresh client connection, removed when a CONNECT turns it into a
/// tunnel or an intercepted TLS session.
struct FrontHandlers {
    let decoder: ByteToMessageHandler<HTTPRequestDecoder>
    let encoder: HTTPResponseEncoder
    let pipelining: HTTPServerPipelineHandler
    let errors: HTTPServerProtocolErrorHandler
}

/// One client connection. As `front` it reads proxy requests: `CONNECT` (a blind tunnel, or
/// TLS interception for a bound host) or an absolute `http://` URL (forwarded as is). As
/// `intercepted` it reads the decrypted requests of one CONNECT to a bound host and forwards
/// them over TLS. Requests and responses stream part by part in both directions; reading
/// from one side waits while the other side cannot take more (so a 1 GB body is never held).
/// Upstream connections run on this connection's event loop, so no state crosses threads.
final class ProxyConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum Role {
        case front(FrontHandlers)
        case intercepted(host: String, port: Int)
    }

    enum State {
        /// Between requests.
        case idle
        /// A request head arrived; its credentials or upstream connection are on the way.
        case waiting
        /// The request streams to the upstream.
        case forwarding
        /// Answered by the proxy itself; the rest of the request is read and dropped.
        case refusing
        /// A CONNECT is being turned into a tunnel or a TLS session.
        case switching
        case closed
    }

    /// The request in flight, for its audit event and for deciding what follows.
    struct Exchange {
        var service: String?
        var method: String
        var host: String
        var path: String
        var verdict: PolicyVerdict
        var status = 0
        var bytes = 0
        var clientKeepAlive: Bool
        var requestEnded = false
        var responseStarted = false
        var upstreamCloses = false
    }

    private let shared: ProxyShared
    private let role: Role
    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var buffered: [HTTPServerRequestPart] = []
    private var pendingRead = false
    private var exchange: Exchange?
    private var upstream: Upstream?
    private var connectTarget: (host: String, port: Int)?
    private var loggedError = false

    init(shared: ProxyShared, role: Role) {
        self.shared = shared
        self.role = role
    }

    static func installFront(on channel: any Channel, shared: ProxyShared) throws {
        let front = FrontHandlers(decoder: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                                  encoder: HTTPResponseEncoder(), pipelining: HTTPServerPipelineHandler(),
                                  errors: HTTPServerProtocolErrorHandler())
        try channel.pipeline.syncOperations.addHandlers([
            front.encoder, front.decoder, front.pipelining, front.errors,
            ProxyConnectionHandler(shared: shared, role: .front(front)),
        ])
    }

    private var configuration: ProxyConfiguration { shared.configuration }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: Client → proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            guard state == .idle else {
                // The pipelining handler delivers one request at a time; anything else is a bug
                // in the client's framing.
                fail(context, "a request arrived before the previous one ended")
                return
            }
            receive(head, context: context)
        case .body(let buffer):
            switch state {
            case .waiting: buffered.append(part)
            case .forwarding: upstream?.channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
            default: break
            }
        case .end(let trailers):
            exchange?.requestEnded = true
            switch state {
            case .waiting: buffered.append(part)
            case .forwarding: upstream?.channel.writeAndFlush(HTTPClientRequestPart.end(trailers), promise: nil)
            case .refusing: state = .idle
            case .switching: switchConnect(context: context)
            default: break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if state == .forwarding { upstream?.channel.flush() }
        context.fireChannelReadComplete()
    }

    /// Reading from the client waits for the request's upstream, and for room there.
    func read(context: ChannelHandlerContext) {
        if state == .waiting || state == .switching || (state == .forwarding && upstream?.channel.isWritable == false) {
            pendingRead = true
        } else {
            context.read()
        }
    }

    private func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { upstream?.handler.clientBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange, state == .forwarding || state == .waiting {
            let problem = exchange.requestEnded ? "the client closed the connection before the response ended"
                : "the client closed the connection in the middle of the request"
            shared.log("\(exchange.method) \(exchange.host)\(exchange.path): \(problem)")
            audit(exchange, error: problem)
            self.exchange = nil
        }
        state = .closed
        upstream?.channel.close(promise: nil)
        upstream = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A client that just goes away without TLS close_notify is not an error of its own;
        // a request it cut short is reported when the connection closes.
        if case .uncleanShutdown? = error as? NIOSSLError { loggedError = true }
        if !loggedError {
            loggedError = true
            let peer: String
            switch role {
            case .front: peer = "client"
            case .intercepted(let host, let port): peer = "client of \(host):\(port)"
            }
            shared.log("\(peer): \(Self.describe(error)); connection closed")
            if case .intercepted(let host, _) = role, let service = configuration.bindings.services(for: host).first?.service {
                configuration.audit?.record(service: service, method: exchange?.method ?? "-", host: host, path: exchange?.path ?? "-",
                                            status: 0, bytes: 0, verdict: .noMatch, enforced: configuration.mode.enforces,
                                            error: Self.describe(error))
            }
        }
        context.close(promise: nil)
    }

    // MARK: One request

    private func receive(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let target: (host: String, port: Int, path: String, tls: Bool)
        switch role {
        case .front:
            if head.method == .CONNECT {
                guard let authority = Self.authority(head.uri) else {
                    refuse(context, head: head, status: .badRequest, "kontext proxy: CONNECT needs host:port, got \(sanitized(String(head.uri.prefix(200))))")
                    return
                }
                connectTarget = authority
                state = .switching
                return
            }
            guard let absolute = Self.absoluteHTTP(head.uri) else {
                refuse(context, head: head, status: .badRequest,
                       "kontext proxy: this is an HTTP proxy; send CONNECT host:port or an absolute http:// URL")
                return
            }
            target = (absolute.host, absolute.port, absolute.path, false)
        case .intercepted(let host, let port):
            guard head.method != .CONNECT else {
                refuse(context, head: head, status: .badRequest, "kontext proxy: CONNECT inside a tunnel is not supported")
                return
            }
            target = (host, port, head.uri, true)
        }
        let host = HostBindings.normalized(target.host)
        let bound = configuration.bindings.services(for: host)
        let boundServices = Set(bound.map(\.service))
        let swapHeaders = Set(bound.flatMap(\.headers))
        let scan = HandleSwap.scan(head, table: configuration.handles, swapHeaders: swapHeaders)
        let method = head.method.rawValue
        let path = Self.pathWithoutQuery(target.path)

        // A handle toward a host its service is not bound to (or over plain HTTP) goes nowhere.
        if let service = scan.present.filter({ !target.tls || !boundServices.contains(HandleTable.serviceName($0)) }).sorted().first {
            let reason = target.tls || !boundServices.contains(HandleTable.serviceName(service))
                ? "a \(service) handle was sent to \(host), which is not bound to \(service)"
                : "a \(service) handle was sent to \(host) over plain HTTP; kontext swaps handles only over HTTPS"
            let verdict = PolicyVerdict(decision: .deny, reason: reason, rule: EgressAudit.handleMisuseRule)
            shared.log("refused \(method) \(host)\(path): \(reason)")
            configuration.audit?.record(service: service, method: method, host: host, path: path, status: 403, bytes: 0,
                                        verdict: verdict, enforced: true)
            refuse(context, head: head, status: .forbidden, "kontext proxy: refused: \(reason) (\(EgressAudit.handleMisuseRule))")
            return
        }
        let service = scan.swappable.sorted().first ?? bound.first?.service
        var verdict = PolicyVerdict.noMatch
        if let service {
            verdict = configuration.evaluator.evaluateEgress(service: service, method: method, host: host, path: path)
        }
        if verdict.decision != .allow && configuration.mode.enforces, let service {
            // Nobody can be asked in the middle of a request: `ask` is refused like `deny`.
            let rule = verdict.rule ?? "policy"
            let why = verdict.reason.map { ": \($0)" } ?? ""
            configuration.audit?.record(service: service, method: method, host: host, path: path, status: 403, bytes: 0,
                                        verdict: verdict, enforced: true)
            refuse(context, head: head, status: .forbidden, "kontext proxy: \(method) \(host)\(path) denied by rule \(rule)\(why)")
            return
        }
        exchange = Exchange(service: bound.isEmpty ? nil : service, method: method, host: host, path: path,
                            verdict: verdict, clientKeepAlive: head.isKeepAlive)
        state = .waiting

        let loop = context.eventLoop
        let swapping = target.tls ? scan.swappable.sorted() : []
        let credentials = EventLoopFuture.whenAllSucceed(
            swapping.map { service in configuration.credentials.credential(for: service, on: loop).map { (service, $0) } }, on: loop)
        let (connection, fresh) = upstreamConnection(context: context, host: host, port: target.port, tls: target.tls)
        credentials.and(connection).hop(to: loop).assumeIsolated().whenComplete { [self] result in
            guard state == .waiting, let context = self.context else {
                if case .success(let (_, channel)) = result, fresh != nil { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let (pairs, channel)):
                if let fresh { self.upstream = Upstream(key: fresh.key, channel: channel, handler: fresh.handler) }
                guard let upstream = self.upstream else { return }
                var outgoing = head
                outgoing.uri = target.path
                outgoing.version = .http1_1
                var headers = Self.withoutHopByHop(head.headers)
                if !swapping.isEmpty {
                    headers = HandleSwap.swapped(headers, table: configuration.handles, swapHeaders: swapHeaders,
                                                 credentials: Dictionary(uniqueKeysWithValues: pairs))
                }
                if !headers.contains(name: "host") {
                    headers.add(name: "Host", value: target.port == (target.tls ? 443 : 80) ? target.host : "\(target.host):\(target.port)")
                }
                outgoing.headers = headers
                upstream.handler.begin(method: head.method)
                upstream.channel.write(HTTPClientRequestPart.head(outgoing), promise: nil)
                for part in buffered {
                    switch part {
                    case .body(let buffer): upstream.channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
                    case .end(let trailers): upstream.channel.write(HTTPClientRequestPart.end(trailers), promise: nil)
                    case .head: break
                    }
                }
                buffered.removeAll()
                upstream.channel.flush()
                state = .forwarding
                resumeReading()
            case .failure(let error):
                let problem = Self.describe(error)
                let what = error is ProxyFailure || error is RenewalFailure
                    ? problem : "cannot reach \(host):\(target.port): \(problem)"
                shared.log("\(method) \(host)\(path): \(what)")
                if let exchange { audit(exchange, status: 502, error: what) }
                let ended = exchange?.requestEnded ?? false
                exchange = nil
                buffered.removeAll()
                refuse(context, head: head, status: .badGateway, "kontext proxy: \(what)", requestEnded: ended)
                resumeReading()
            }
        }
    }

    /// Answers the request itself; the rest of its body is read and dropped.
    private func refuse(_ context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, _ text: String,
                        requestEnded: Bool = false) {
        var body = context.channel.allocator.buffer(capacity: text.utf8.count + 1)
        body.writeString(text + "\n")
        var headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "\(body.readableBytes)")])
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let keepAlive = head.isKeepAlive
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
        state = requestEnded ? .idle : .refusing
    }

    private func fail(_ context: ChannelHandlerContext, _ problem: String) {
        shared.log("client: \(problem); connection closed")
        state = .closed
        context.close(promise: nil)
    }

    private func audit(_ exchange: Exchange, status: Int? = nil, error: String? = nil) {
        guard let service = exchange.service else { return }
        configuration.audit?.record(service: service, method: exchange.method, host: exchange.host, path: exchange.path,
                                    status: status ?? exchange.status, bytes: exchange.bytes, verdict: exchange.verdict,
                                    enforced: configuration.mode.enforces, error: error)
    }

    // MARK: Upstream → client (called by `UpstreamHandler`, on this event loop)

    func upstreamHead(_ head: HTTPResponseHead) {
        guard let context, exchange != nil else { return }
        exchange!.status = Int(head.status.code)
        exchange!.responseStarted = true
        exchange!.upstreamCloses = !head.isKeepAlive
        var outgoing = head
        outgoing.version = .http1_1
        outgoing.headers = Self.withoutHopByHop(head.headers)
        if !exchange!.clientKeepAlive { outgoing.headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(outgoing)), promise: nil)
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        guard let context, exchange != nil else { return }
        exchange!.bytes += buffer.readableBytes
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func upstreamFlush() {
        context?.flush()
    }

    var clientWritable: Bool { context?.channel.isWritable ?? false }

    func upstreamEnd() {
        guard let context, let finished = exchange else { return }
        exchange = nil
        audit(finished)
        let keepAlive = finished.clientKeepAlive && finished.requestEnded
        if finished.upstreamCloses || !finished.requestEnded {
            upstream?.channel.close(promise: nil)
            upstream = nil
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
        state = keepAlive ? .idle : .closed
        resumeReading()
    }

    func upstreamWritable() {
        if state == .forwarding { resumeReading() }
    }

    /// The upstream connection ended (reset, TLS failure, closed early).
    func upstreamClosed(_ channel: any Channel, error: (any Error)?) {
        guard upstream?.channel === channel else { return }
        upstream = nil
        guard let context, let current = exchange, state == .forwarding else { return }
        exchange = nil
        let problem = "\(current.host) closed the connection" + (error.map { ": \(Self.describe($0))" } ?? "")
            + (current.responseStarted ? " in the middle of the response" : " before answering")
        shared.log("\(current.method) \(current.host)\(current.path): \(problem)")
        audit(current, status: current.responseStarted ? current.status : 502, error: problem)
        if current.responseStarted {
            // The client has part of a response: only closing tells it the rest is missing.
            state = .closed
            context.close(promise: nil)
        } else {
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/",
                                       headers: current.clientKeepAlive ? [:] : ["Connection": "close"])
            refuse(context, head: head, status: .badGateway, "kontext proxy: \(problem)", requestEnded: current.requestEnded)
            resumeReading()
        }
    }

    // MARK: Upstream connections

    struct Upstream {
        let key: String
        let channel: any Channel
        let handler: UpstreamHandler
    }

    /// The kept-alive upstream connection when it goes to the same place, else a new one
    /// (with its key and handler, recorded once it is connected).
    private func upstreamConnection(context: ChannelHandlerContext, host: String, port: Int, tls: Bool)
        -> (EventLoopFuture<any Channel>, (key: String, handler: UpstreamHandler)?) {
        let key = "\(tls ? "https" : "http")://\(host):\(port)"
        if let upstream, upstream.key == key, upstream.channel.isActive {
            return (context.eventLoop.makeSucceededFuture(upstream.channel), nil)
        }
        upstream?.channel.close(promise: nil)
        upstream = nil
        let handler = UpstreamHandler(owner: self)
        let loopBound = NIOLoopBound(handler, eventLoop: context.eventLoop)
        let upstreamTLS = shared.upstreamTLS
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(30))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: upstreamTLS, serverHostname: Self.isIPAddress(host) ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(loopBound.value)
                }
            }
        return (bootstrap.connect(host: Self.resolvable(host), port: port), (key, handler))
    }

    // MARK: CONNECT

    /// After the CONNECT request ended: a bound host (any named host with `inspect = "all"`) gets TLS
    /// terminated here, any other a tunnel.
    private func switchConnect(context: ChannelHandlerContext) {
        guard case .front(let front) = role, let (host, port) = connectTarget else { return }
        let name = HostBindings.normalized(host)
        let bound = configuration.bindings.services(for: name)
        let intercepts = !bound.isEmpty || configuration.bindings.inspection == .all
        if intercepts && !Self.isIPAddress(name) {
            do {
                let tls = try shared.authority.serverContext(for: name)
                try answerConnect(context, front: front)
                let shared = self.shared
                let inner = ProxyConnectionHandler(shared: shared, role: .intercepted(host: name, port: port))
                let sni = ByteToMessageHandler(SNIHandler { [weak inner] result in
                    // A client hello for another name than the CONNECT named is not what the
                    // client asked the proxy for: refused rather than answered as `name`.
                    if case .hostname(let offered) = result, HostBindings.normalized(offered) != name {
                        let problem = "TLS client hello for \(sanitized(String(offered.prefix(255)))) inside CONNECT to \(name):\(port): refused"
                        shared.log(problem)
                        if let service = bound.first?.service {
                            shared.configuration.audit?.record(
                                service: service, method: "CONNECT", host: name, path: "", status: 0, bytes: 0,
                                verdict: PolicyVerdict(decision: .deny, reason: problem, rule: nil), enforced: true, error: problem)
                        }
                        inner?.loggedError = true
                        context.channel.close(promise: nil)
                    }
                    return context.eventLoop.makeSucceededVoidFuture()
                })
                try context.pipeline.syncOperations.addHandlers(
                    [sni, NIOSSLServerHandler(context: tls), HTTPResponseEncoder(),
                     ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                     HTTPServerPipelineHandler(), HTTPServerProtocolErrorHandler(), inner],
                    position: .after(front.decoder))
                state = .closed
                let channel = context.channel
                context.pipeline.syncOperations.removeHandler(self, promise: nil)
                context.pipeline.syncOperations.removeHandler(front.decoder, promise: nil)
                // This handler held back the channel's read while switching: ask again.
                channel.read()
            } catch {
                shared.log("CONNECT \(name):\(port): cannot intercept: \(Self.describe(error))")
                context.close(promise: nil)
            }
            return
        }
        // Not intercepted: a blind tunnel, nothing decrypted.
        let (local, remote) = GlueHandler.pair()
        let loopBound = NIOLoopBound(remote, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(30))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(loopBound.value) }
            }
            .connect(host: Self.resolvable(name), port: port)
            .hop(to: context.eventLoop)
            .assumeIsolated()
            .whenComplete { [self] result in
                guard let context = self.context, state == .switching else {
                    if case .success(let channel) = result { channel.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let channel):
                    do {
                        try answerConnect(context, front: front)
                        try context.pipeline.syncOperations.addHandler(local, position: .after(front.decoder))
                        state = .closed
                        let client = context.channel
                        context.pipeline.syncOperations.removeHandler(self, promise: nil)
                        context.pipeline.syncOperations.removeHandler(front.decoder, promise: nil)
                        client.read()
                        channel.read()
                    } catch {
                        channel.close(promise: nil)
                        context.close(promise: nil)
                    }
                case .failure(let error):
                    shared.log("CONNECT \(name):\(port): cannot reach it: \(Self.describe(error))")
                    state = .idle
                    let head = HTTPRequestHead(version: .http1_1, method: .CONNECT, uri: "\(name):\(port)", headers: ["Connection": "close"])
                    refuse(context, head: head, status: .badGateway, "kontext proxy: cannot reach \(name):\(port): \(Self.describe(error))",
                           requestEnded: true)
                }
            }
    }

    /// `200` to the CONNECT, written raw after the HTTP handlers are gone (the response
    /// encoder would frame it as a body).
    private func answerConnect(_ context: ChannelHandlerContext, front: FrontHandlers) throws {
        context.pipeline.syncOperations.removeHandler(front.pipelining, promise: nil)
        context.pipeline.syncOperations.removeHandler(front.errors, promise: nil)
        context.pipeline.syncOperations.removeHandler(front.encoder, promise: nil)
        var answer = context.channel.allocator.buffer(capacity: 64)
        answer.writeString("HTTP/1.1 200 Connection Established\r\n\r\n")
        context.writeAndFlush(NIOAny(answer), promise: nil)
    }

    // MARK: Helpers

    /// `host:port` of a CONNECT (`[v6]:port` too).
    static func authority(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.utf8.count <= 253,
              host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "@") }) else { return nil }
        return (host, port)
    }

    /// An absolute-form `http://host[:port]/path` request target.
    static func absoluteHTTP(_ uri: String) -> (host: String, port: Int, path: String)? {
        guard uri.lowercased().hasPrefix("http://") else { return nil }
        let rest = uri.dropFirst(7)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<slash])
        var path = String(rest[slash...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        if authority.contains("@") { return nil }
        if let parsed = Self.authority(authority) { return (parsed.host, parsed.port, path) }
        guard Self.authority(authority + ":80") != nil else { return nil }
        return (authority.hasPrefix("[") ? String(authority.dropFirst().dropLast()) : authority, 80, path)
    }

    static func pathWithoutQuery(_ target: String) -> String {
        String(target.prefix { $0 != "?" && $0 != "#" })
    }

    /// Headers for one hop only (RFC 9110 section 7.6.1), `Expect` (the proxy does not relay
    /// `100 Continue`) and proxy credentials.
    static func withoutHopByHop(_ headers: HTTPHeaders) -> HTTPHeaders {
        var result = headers
        let listed = headers["connection"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        for name in ["connection", "proxy-connection", "keep-alive", "proxy-authorization", "proxy-authenticate",
                     "te", "trailer", "upgrade", "expect"] + listed where name != "transfer-encoding" && name != "content-length" {
            result.remove(name: name)
        }
        return result
    }

    /// RFC 6761: names under `.localhost` are this machine, whatever DNS says.
    static func resolvable(_ host: String) -> String {
        let name = HostBindings.normalized(host)
        return name == "localhost" || name.hasSuffix(".localhost") ? "127.0.0.1" : name
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }

    static func describe(_ error: any Error) -> String {
        if let failure = error as? ProxyFailure { return failure.description }
        if let failure = error as? RenewalFailure { return failure.description }
        if let error = error as? NIOSSLError { return "TLS: \(error)" }
        if let error = error as? BoringSSLError { return "TLS: \(error)" }
        return sanitized(String(describing: error))
    }
}

/// Why a credential could not be renewed, for the 502 body and the audit.
struct RenewalFailure: Error, CustomStringConvertible {
    var description: String
}
