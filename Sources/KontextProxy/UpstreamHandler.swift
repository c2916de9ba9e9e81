import NIOCore
import NIOHTTP1

/// The proxy's side of one upstream connection: hands the response to the client
/// connection part by part, and reads more only while the client can take it.
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private weak var owner: ProxyConnectionHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var error: (any Error)?

    init(owner: ProxyConnectionHandler) {
        self.owner = owner
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func begin(method: HTTPMethod) {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): owner?.upstreamHead(head)
        case .body(let buffer): owner?.upstreamBody(buffer)
        case .end: owner?.upstreamEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamFlush()
    }

    func read(context: ChannelHandlerContext) {
        if owner?.clientWritable ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func clientBecameWritable() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { owner?.upstreamWritable() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.error == nil { self.error = error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner?.upstreamClosed(context.channel, error: error)
        context.fireChannelInactive()
    }
}
