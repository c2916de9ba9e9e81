// kontext-bench-issuer: a throwaway identity provider for bench/broker-throughput. Serves a
// JWKS with one fresh ES256 key on a loopback port, prints `ISSUER <url>` and `TOKEN <jwt>`
// (a subject token valid for an hour, audience kontext-broker), then serves until stdin closes.
import Foundation
import Hummingbird
import JWTKit
import Logging

struct Claims: JWTPayload {
    var iss: String
    var sub: String
    var aud: AudienceClaim
    var exp: Double
    var iat: Double
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

let key = ES256PrivateKey()
let signer = JWTKeyCollection()
await signer.add(ecdsa: key, kid: JWKIdentifier(string: "bench"))
let (x, y) = key.publicKey.parameters!
let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"bench","x":""# + x + #"","y":""# + y + #""}]}"#

var logger = Logger(label: "kontext.bench.issuer")
logger.logLevel = .critical
let router = Router()
router.get("/jwks") { _, _ in
    Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: jwks)))
}
let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
                      onServerRunning: { channel in
                          continuation.yield(channel.localAddress?.port ?? 0)
                          continuation.finish()
                      }, logger: logger)
let server = Task { try await app.runService(gracefulShutdownSignals: []) }
var bound = 0
for await port in ports {
    bound = port
    break
}
let port = bound
guard port != 0 else { fatalError("cannot listen") }
let issuer = "http://127.0.0.1:\(port)"
let now = Date().timeIntervalSince1970
let token = try await signer.sign(Claims(iss: issuer, sub: "bench", aud: AudienceClaim(value: ["kontext-broker"]),
                                         exp: now + 3600, iat: now - 5), kid: JWKIdentifier(string: "bench"))
FileHandle.standardOutput.write(Data("ISSUER \(issuer)\nTOKEN \(token)\n".utf8))
// Serve until the bench closes our stdin.
_ = try? await Task.detached { FileHandle.standardInput.readDataToEndOfFile() }.value
server.cancel()
