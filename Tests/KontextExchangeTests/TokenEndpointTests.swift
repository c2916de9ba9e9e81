import Foundation
import KontextCore
@testable import KontextExchange
import KontextHTTP
import Testing

/// The one token-endpoint client: `client_secret_basic` and RFC 6749 section 5 answers.
@Suite struct TokenEndpointTests {
    func answer(_ status: Int, _ body: String) -> TokenEndpointAnswer {
        OAuthTokenEndpoint.parse(HTTPResponse(status: status, contentType: "application/json", body: Array(body.utf8)))
    }

    /// The credentials a server decodes from the header, before form-decoding.
    func decodedBasic(_ header: String) throws -> String {
        #expect(header.hasPrefix("Basic "))
        let data = try #require(Data(base64Encoded: String(header.dropFirst("Basic ".count))))
        return String(decoding: data, as: UTF8.self)
    }

    @Test func basicFormEncodesIDAndSecretBeforeJoining() throws {
        let credentials = OAuthClientCredentials(clientID: "my:client id", clientSecret: "p%ss+w:rd é")
        #expect(try decodedBasic(credentials.basicAuthorization) == "my%3Aclient+id:p%25ss%2Bw%3Ard+%C3%A9")
    }

    @Test func basicLeavesUnreservedCharactersAlone() throws {
        let credentials = OAuthClientCredentials(clientID: "kontext-cli_1.0", clientSecret: "s3cr*t")
        #expect(try decodedBasic(credentials.basicAuthorization) == "kontext-cli_1.0:s3cr*t")
    }

    @Test func requestIsAFormPostWithBasicOnlyWhenGiven() throws {
        let anonymous = OAuthTokenEndpoint.request("https://idp.example/token", fields: [("grant_type", "refresh_token"), ("client_id", "a b")])
        #expect(anonymous.method == "POST")
        #expect(anonymous.url == "https://idp.example/token")
        #expect(String(decoding: anonymous.body, as: UTF8.self) == "grant_type=refresh_token&client_id=a+b")
        #expect(anonymous.headers.contains { $0.name == "Content-Type" && $0.value == "application/x-www-form-urlencoded" })
        #expect(!anonymous.headers.contains { $0.name == "Authorization" })
        #expect(anonymous.timeout == 30)

        let confidential = OAuthTokenEndpoint.request("https://idp.example/token", fields: [("grant_type", "x")],
                                                      basic: OAuthClientCredentials(clientID: "id", clientSecret: "secret"),
                                                      timeout: 15)
        let authorization = try #require(confidential.headers.first { $0.name == "Authorization" }?.value)
        #expect(try decodedBasic(authorization) == "id:secret")
        #expect(confidential.timeout == 15)
    }

    @Test func readsEverySuccessMember() {
        let body = #"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","id_token":"it","issued_token_type":"urn:x"}"#
        #expect(answer(200, body) == .issued(TokenGrant(accessToken: "at", tokenType: "Bearer", expiresIn: 3600,
                                                        refreshToken: "rt", idToken: "it", issuedTokenType: "urn:x")))
    }

    @Test func missingOptionalMembersStayNil() {
        #expect(answer(200, #"{"access_token":"at"}"#) == .issued(TokenGrant(accessToken: "at")))
    }

    @Test(arguments: [(#""expires_in":3600"#, 3600.0), (#""expires_in":"3600""#, 3600.0), (#""expires_in":1.5"#, 1.5),
                      (#""expires_in":"soon""#, nil), (#""expires_in":"inf""#, nil), (#""expires_in":null"#, nil),
                      (#""expires_in":true"#, nil)] as [(String, Double?)])
    func expiresInIsANumberOrANumericString(member: String, seconds: Double?) {
        guard case .issued(let grant) = answer(200, #"{"access_token":"at","#.appending(member + "}")) else {
            Issue.record("not issued")
            return
        }
        #expect(grant.expiresIn == seconds)
    }

    @Test func successWithoutAUsableAccessTokenIsUnreadable() {
        #expect(answer(200, #"{"token_type":"Bearer"}"#) == .unreadable(status: 200, .noAccessToken))
        #expect(answer(200, #"{"access_token":""}"#) == .unreadable(status: 200, .noAccessToken))
        #expect(answer(200, #"{"access_token":42}"#) == .unreadable(status: 200, .noAccessToken))
        #expect(answer(200, "not json") == .unreadable(status: 200, .notJSONObject))
        #expect(answer(200, "") == .unreadable(status: 200, .notJSONObject))
        #expect(answer(200, #"["access_token"]"#) == .unreadable(status: 200, .notJSONObject))
    }

    @Test func readsErrorObjects() throws {
        let body = #"{"error":"invalid_grant","error_description":"expired","error_uri":"https://idp/e","connect_url":"https://c"}"#
        guard case .refused(let refusal) = answer(400, body) else {
            Issue.record("not refused")
            return
        }
        #expect(refusal.status == 400)
        #expect(refusal.code == "invalid_grant")
        #expect(refusal.description == "expired")
        #expect(refusal.errorURI == "https://idp/e")
        #expect(refusal.document["connect_url"]?.stringValue == "https://c")

        guard case .refused(let bare) = answer(401, #"{"error":"invalid_client"}"#) else {
            Issue.record("not refused")
            return
        }
        #expect(bare.status == 401 && bare.code == "invalid_client" && bare.description == nil && bare.errorURI == nil)
    }

    @Test func otherStatusesWithoutAnErrorObjectAreUnreadable() {
        #expect(answer(500, "<html>oops</html>") == .unreadable(status: 500, .noErrorObject))
        #expect(answer(400, #"{"error":7}"#) == .unreadable(status: 400, .noErrorObject))
        #expect(answer(401, "") == .unreadable(status: 401, .noErrorObject))
        #expect(answer(302, #"{"access_token":"at"}"#) == .unreadable(status: 302, .noErrorObject))
    }

    @Test func anErrorObjectIsNotASuccessEvenWithAnAccessToken() {
        guard case .refused(let refusal) = answer(400, #"{"error":"invalid_request","access_token":"at"}"#) else {
            Issue.record("not refused")
            return
        }
        #expect(refusal.code == "invalid_request")
    }

    @Test func exchangesTakeExpiresInAsAStringToo() {
        let result = TokenExchanger.interpret(HTTPResponse(status: 200, contentType: "application/json",
                                                           body: Array(#"{"access_token":"t","expires_in":"90.7"}"#.utf8)))
        #expect(result == .success(IssuedCredential(value: "t", issuedTokenType: TokenTypeURN.accessToken,
                                                    tokenType: "N_A", expiresIn: 90)))
        let huge = TokenExchanger.interpret(HTTPResponse(status: 200, contentType: nil,
                                                         body: Array(#"{"access_token":"t","expires_in":1e300}"#.utf8)))
        #expect(huge == .success(IssuedCredential(value: "t", issuedTokenType: TokenTypeURN.accessToken,
                                                  tokenType: "N_A", expiresIn: nil)))
    }
}
