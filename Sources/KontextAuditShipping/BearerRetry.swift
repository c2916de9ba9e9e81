import KontextHTTP

extension BearerSource {
    /// Why no answer could be had with a bearer token: no token at all, or the server
    /// answered 401 and renewing the refused token failed.
    public enum RetryError: Error {
        case noToken(any Error)
        case renewalFailed(any Error)
    }

    /// Sends with the current token; when the server answers 401, renews that token once and
    /// sends again. Any other answer, and the second one, is the caller's to judge.
    public func send(
        _ attempt: (_ token: String) async -> Result<HTTPResponse, HTTPTransportError>
    ) async throws(RetryError) -> Result<HTTPResponse, HTTPTransportError> {
        let token: String
        do { token = try await current() } catch { throw .noToken(error) }
        let answer = await attempt(token)
        guard case .success(let response) = answer, response.status == 401 else { return answer }
        let renewed: String
        do { renewed = try await renew(token) } catch { throw .renewalFailed(error) }
        return await attempt(renewed)
    }
}
