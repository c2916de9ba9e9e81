#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CCurl
import KontextCore

public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Whole-request limit, seconds.
    public var timeout: Double

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                body: [UInt8] = [], timeout: Double = 30) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }

    /// An `application/x-www-form-urlencoded` POST.
    public static func form(url: String, fields: [(String, String)], headers: [(name: String, value: String)] = [],
                            timeout: Double = 30) -> HTTPRequest {
        let body = fields.map { formEncode($0.0) + "=" + formEncode($0.1) }.joined(separator: "&")
        return HTTPRequest(method: "POST", url: url,
                           headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")] + headers,
                           body: Array(body.utf8), timeout: timeout)
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String?
    public var body: [UInt8]

    public init(status: Int, contentType: String?, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// The request never got an HTTP answer: refused, timed out, TLS failed, answer too large.
public struct HTTPTransportError: Error, Sendable, CustomStringConvertible {
    public var url: String
    public var reason: String
    public var description: String { "\(url): \(reason)" }
}

/// A libcurl client. `send` runs any number of requests concurrently on one thread with a
/// multi handle, so independent exchanges cost about as much as the slowest one.
public struct HTTPClient: Sendable {
    /// Extra trusted CA certificates (PEM), in addition to the system's (`KONTEXT_CA_BUNDLE`).
    public var caBundlePath: String?
    /// Largest response body accepted; anything bigger is treated as a broken server.
    public var maximumBodySize = 4 << 20

    private static let globalInit: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    public init(caBundlePath: String? = nil) {
        self.caBundlePath = caBundlePath
    }

    /// The client every kontext component builds from its settings: the system's CAs plus
    /// those in `KONTEXT_CA_BUNDLE` when set.
    public init(settings: Settings) {
        self.init(caBundlePath: settings.caBundle)
    }

    public func send(_ request: HTTPRequest) -> Result<HTTPResponse, HTTPTransportError> {
        send([request])[0]
    }

    /// The same, on a dispatch thread: callers in async code must not block the cooperative
    /// pool, which may be serving the very server they are calling (the embedded broker).
    public func perform(_ requests: [HTTPRequest]) async -> [Result<HTTPResponse, HTTPTransportError>] {
        let client = self
        return (try? await offload { client.send(requests) }) ?? []
    }

    public func perform(_ request: HTTPRequest) async -> Result<HTTPResponse, HTTPTransportError> {
        await perform([request])[0]
    }

    public func send(_ requests: [HTTPRequest]) -> [Result<HTTPResponse, HTTPTransportError>] {
        _ = Self.globalInit
        guard let multi = curl_multi_init() else {
            return requests.map { .failure(HTTPTransportError(url: $0.url, reason: "libcurl could not start")) }
        }
        defer { curl_multi_cleanup(multi) }
        let caBlob = caBundlePath.flatMap(Self.combinedCABundle)
        var transfers: [Transfer] = []
        for request in requests {
            let transfer = Transfer(request: request, limit: maximumBodySize)
            transfer.configure(caBlob: caBlob)
            curl_multi_add_handle(multi, transfer.handle)
            transfers.append(transfer)
        }
        var running: Int32 = 0
        repeat {
            curl_multi_perform(multi, &running)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                guard message.pointee.msg == CURLMSG_DONE else { continue }
                if let transfer = transfers.first(where: { $0.handle == message.pointee.easy_handle }) {
                    transfer.finish(code: message.pointee.data.result)
                }
            }
            if running > 0 { curl_multi_poll(multi, nil, 0, 1000, nil) }
        } while running > 0
        return transfers.map { transfer in
            curl_multi_remove_handle(multi, transfer.handle)
            return transfer.result ?? .failure(HTTPTransportError(url: transfer.request.url, reason: "no answer"))
        }
    }

    /// Whether `url` names this machine (localhost, 127.0.0.0/8, ::1), as libcurl itself
    /// parses it. Such requests never use a proxy from the environment (`http_proxy`,
    /// `ALL_PROXY`, …): the proxy would see the embedded broker's subject token and the
    /// credentials it hands out.
    public static func isLoopback(url: String) -> Bool {
        guard let parsed = curl_url() else { return false }
        defer { curl_url_cleanup(parsed) }
        var host: UnsafeMutablePointer<CChar>?
        guard curl_url_set(parsed, CURLUPART_URL, url, 0) == CURLUE_OK,
              curl_url_get(parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK, let host else { return false }
        defer { curl_free(host) }
        return Transport.isLoopbackHost(String(cString: host))
    }

    /// libcurl's CAINFO replaces the system bundle; kontext adds to it instead.
    private static func combinedCABundle(extra path: String) -> [UInt8]? {
        guard let extra = readFile(path) else { return nil }
        let system = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"].lazy.compactMap { readFile($0) }.first ?? []
        return system + [10] + extra
    }
}

/// One easy handle and what it has received. Owned by a single `send` call.
private final class Transfer {
    let request: HTTPRequest
    let handle: UnsafeMutableRawPointer
    let limit: Int
    var body: [UInt8] = []
    var overflowed = false
    var result: Result<HTTPResponse, HTTPTransportError>?
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var caBlob: [UInt8] = []

    init(request: HTTPRequest, limit: Int) {
        self.request = request
        self.limit = limit
        self.handle = curl_easy_init()
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
    }

    func configure(caBlob: [UInt8]?) {
        kx_curl_set_string(handle, CURLOPT_URL, request.url)
        kx_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
        kx_curl_set_long(handle, CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000))
        kx_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(min(request.timeout, 10) * 1000))
        // Token endpoints must not redirect credentials elsewhere.
        kx_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        kx_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        // An empty proxy turns off the environment's proxy for this transfer.
        if HTTPClient.isLoopback(url: request.url) { kx_curl_set_string(handle, CURLOPT_PROXY, "") }
        if request.method == "GET" {
            kx_curl_set_long(handle, CURLOPT_HTTPGET, 1)
        } else {
            if request.method != "POST" { kx_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method) }
            kx_curl_set_long(handle, CURLOPT_POSTFIELDSIZE, request.body.count)
            if request.body.isEmpty {
                kx_curl_set_string(handle, CURLOPT_COPYPOSTFIELDS, "")
            } else {
                request.body.withUnsafeBytes { bytes in
                    _ = kx_curl_set_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress!))
                }
            }
        }
        for header in request.headers {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        // An empty Expect stops libcurl from waiting for 100-continue on larger bodies.
        headerList = curl_slist_append(headerList, "Expect:")
        kx_curl_set_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList))
        if let caBlob {
            self.caBlob = caBlob
            var blob = self.caBlob.withUnsafeMutableBytes { curl_blob(data: $0.baseAddress, len: $0.count, flags: UInt32(CURL_BLOB_COPY)) }
            withUnsafeMutablePointer(to: &blob) { _ = kx_curl_set_pointer(handle, CURLOPT_CAINFO_BLOB, UnsafeMutableRawPointer($0)) }
        }
        kx_curl_set_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(self).toOpaque())
        kx_curl_set_write_function(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard transfer.body.count + length <= transfer.limit else {
                transfer.overflowed = true
                return 0
            }
            data.map { transfer.body.append(contentsOf: UnsafeRawBufferPointer(start: $0, count: length)) }
            return length
        }
    }

    func finish(code: CURLcode) {
        guard code == CURLE_OK else {
            let reason = overflowed ? "answer larger than \(limit) bytes" : String(cString: curl_easy_strerror(code))
            result = .failure(HTTPTransportError(url: request.url, reason: reason))
            return
        }
        var status = 0
        kx_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var contentType: UnsafeMutableRawPointer?
        kx_curl_get_pointer(handle, CURLINFO_CONTENT_TYPE, &contentType)
        result = .success(HTTPResponse(status: status,
                                       contentType: contentType.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) },
                                       body: body))
    }
}

/// application/x-www-form-urlencoded, as RFC 6749 appendix B asks.
public func formEncode(_ text: String) -> String {
    var result = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "_"), UInt8(ascii: "*"):
            result.unicodeScalars.append(UnicodeScalar(byte))
        case UInt8(ascii: " "):
            result += "+"
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            result += "%"
            result.unicodeScalars.append(UnicodeScalar(hex[Int(byte >> 4)]))
            result.unicodeScalars.append(UnicodeScalar(hex[Int(byte & 15)]))
        }
    }
    return result
}

/// Parses an `application/x-www-form-urlencoded` body. Byte by byte: the broker decodes one
/// per exchange, and String slicing per `%XX` made this a tenth of an exchange's CPU.
public func formDecode(_ body: String) -> [String: String] {
    var result: [String: String] = [:]
    var body = body
    body.withUTF8 { bytes in
        for pair in bytes.split(separator: UInt8(ascii: "&")) {
            if let equals = pair.firstIndex(of: UInt8(ascii: "=")) {
                result[percentDecode(pair[..<equals])] = percentDecode(pair[(equals + 1)...])
            } else {
                result[percentDecode(pair)] = ""
            }
        }
    }
    return result
}

private func percentDecode(_ text: Slice<UnsafeBufferPointer<UInt8>>) -> String {
    func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.count)
    var index = text.startIndex
    while index < text.endIndex {
        let byte = text[index]
        if byte == UInt8(ascii: "+") {
            bytes.append(UInt8(ascii: " "))
        } else if byte == UInt8(ascii: "%"), text.endIndex - index >= 3,
                  let high = hexValue(text[index + 1]), let low = hexValue(text[index + 2]) {
            bytes.append(high << 4 | low)
            index += 2
        } else {
            // A `%` without two hex digits stays as it is, as before.
            bytes.append(byte)
        }
        index += 1
    }
    return String(decoding: bytes, as: UTF8.self)
}
