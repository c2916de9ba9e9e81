import Crypto
import Foundation
import Synchronization
import NIOSSL
import X509

/// The session's certificate authority (SPEC section 11): made when the session starts, its
/// private key only in this process's memory, never written anywhere. It signs one leaf
/// certificate per bound host the agent connects to; the child trusts it through the CA
/// bundle the session writes (the certificate only).
public final class SessionCA: Sendable {
    /// The CA certificate in PEM, for the child's CA bundle.
    public let certificatePEM: String
    private let certificate: Certificate
    private let key: P256.Signing.PrivateKey
    /// Every leaf shares one key: a fresh key per host would add work per new host and no
    /// protection (all leaves live in the same process as the CA key).
    private let leafKey: P256.Signing.PrivateKey
    private let leafKeyForTLS: NIOSSLPrivateKey
    private let notBefore: Date
    private let notAfter: Date
    private let contexts = Mutex<[String: NIOSSLContext]>([:])

    /// Valid from an hour ago (clock skew) for `lifetime` seconds: long enough for any session.
    public init(lifetime: TimeInterval = 7 * 24 * 3600) throws {
        let key = P256.Signing.PrivateKey()
        let leafKey = P256.Signing.PrivateKey()
        let now = Date()
        let notBefore = now - 3600
        let notAfter = now + lifetime
        self.key = key
        self.leafKey = leafKey
        self.notBefore = notBefore
        self.notAfter = notAfter
        leafKeyForTLS = try NIOSSLPrivateKey(bytes: Array(leafKey.pemRepresentation.utf8), format: .pem)
        let name = try DistinguishedName {
            OrganizationName("kontext")
            CommonName("kontext session CA \(UUID().uuidString.prefix(8))")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey), notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        self.certificate = certificate
        certificatePEM = try certificate.serializeAsPEM().pemString
    }

    /// A leaf certificate for `host` (a DNS name), signed by this CA.
    func leaf(for host: String) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: .init(leafKey.publicKey), notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(host) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([.dnsName(host)])
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: .init(key.publicKey)).keyIdentifier)
            },
            issuerPrivateKey: .init(key))
    }

    /// The TLS server context presenting `host`'s leaf, made once per host. HTTP/1.1 only:
    /// the proxy speaks HTTP/1.1 to the client, and says so in ALPN.
    func serverContext(for host: String) throws -> NIOSSLContext {
        if let cached = contexts.withLock({ $0[host] }) { return cached }
        let leafPEM = try leaf(for: host).serializeAsPEM().pemString
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(leafPEM.utf8), format: .pem))],
            privateKey: .privateKey(leafKeyForTLS))
        configuration.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: configuration)
        // Bounded by the bound hosts a session talks to; a few dozen at most.
        return contexts.withLock { cache in
            if let raced = cache[host] { return raced }
            cache[host] = context
            return context
        }
    }
}
