import Foundation
@testable import KontextAudit
import KontextCore
import KontextTestSupport
import Testing

/// The broker as the witness (SPEC section 12, `AuditWitness`): its key, kept in its database
/// across restarts and replicas; its certificate of a session's checkpoint key; its
/// countersignatures of the heads clients report.
@Suite(.serialized) struct AuditWitnessAPITests {
    func witnessKey(_ base: String) async throws -> String {
        let answer = try await call("GET", base + "/v1/audit/witness-key", token: nil)
        #expect(answer.status == 200 && answer.body["algorithm"]?.stringValue == "Ed25519", "\(answer.text)")
        return try #require(answer.body["public_key"]?.stringValue)
    }

    @Test(arguments: ["sqlite", "postgres"])
    func theWitnessKeySurvivesARestartAndIsSharedByReplicas(store: String) async throws {
        let setup = try await BrokerSetup.make("witness-key-\(store)", database: store == "postgres" ? try TestSupport.makePostgresDatabase() : nil)
        let first = try await setup.serve()
        let key = try await witnessKey(first.baseURL)
        #expect(AuditSigner.isPublicKey(key))
        if store == "postgres" {
            // A second replica on the same database, running at the same time.
            let second = try await setup.serve()
            #expect(try await witnessKey(second.baseURL) == key)
            await second.stop()
        }
        await first.stop()
        // A new vault key first: the witness key opens with the old one and is resealed
        // with the new, so the old one can then go.
        var rotated = setup.environment
        rotated["KONTEXT_BROKER_VAULT_KEYS"] = vaultKeys(["k2", "k1"])
        let rotating = try await setup.serve(environment: rotated)
        #expect(try await witnessKey(rotating.baseURL) == key)
        await rotating.stop()
        rotated["KONTEXT_BROKER_VAULT_KEYS"] = vaultKeys(["k2"])
        let restarted = try await setup.serve(environment: rotated)
        #expect(try await witnessKey(restarted.baseURL) == key)
        // The private half is in the database only sealed: no row holds it in clear.
        let answer = try await call("GET", restarted.baseURL + "/v1/audit/witness-key", token: nil)
        #expect(!answer.text.contains("private"))
        await restarted.stop()
        if store == "sqlite" {
            let database = String(setup.database.dropFirst("sqlite:".count))
            let dumped = try runProcess(process("/usr/bin/sqlite3", [database, "SELECT name, key_id, length(sealed) FROM broker_keys"]),
                                        stdin: nil, timeout: 30)
            #expect(dumped.stdout.hasPrefix("audit-witness|k2|"), "\(dumped.stdout)\(dumped.stderr)")
        }
        await setup.idp.stop()
    }

    func process(_ path: String, _ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        return process
    }

    @Test func theBrokerCertifiesOneKeyPerSessionAndCountersignsOnlyTheHighestHead() async throws {
        let setup = try await BrokerSetup.make("witness-api")
        let broker = try await setup.serve()
        let base = broker.baseURL
        let alice = try await setup.token(sub: "alice")
        let key = try await witnessKey(base)
        let brokerPublicKey = try #require(AuditSigner.publicKey(key))
        let sessionKey = AuditSigner.generate().publicKeyBase64

        let created = try await call("POST", base + "/v1/sessions", token: alice,
                                     body: #"{"session_id":"w-1","agent":"claude","public_key":"\#(sessionKey)"}"#)
        #expect(created.status == 201, "\(created.text)")
        let certificate = try #require(created.body["certificate"])
        #expect(certificate["session_id"]?.stringValue == "w-1" && certificate["public_key"]?.stringValue == sessionKey)
        #expect(certificate["subject"]?.stringValue == setup.user("alice"))
        #expect(AuditSigner.isValid(certificate["signature"]?.stringValue, AuditWitness.certificateMessage(
            sessionID: "w-1", subject: setup.user("alice"), publicKey: sessionKey,
            issuedAt: certificate["issued_at"]?.stringValue ?? ""), key: brokerPublicKey))
        // Asking again with the same key is answered again; another key is refused.
        let again = try await call("POST", base + "/v1/sessions", token: alice,
                                   body: #"{"session_id":"w-1","agent":"claude","public_key":"\#(sessionKey)"}"#)
        #expect(again.status == 200 && again.body["certificate"]?["public_key"]?.stringValue == sessionKey, "\(again.text)")
        let otherKey = AuditSigner.generate().publicKeyBase64
        let refused = try await call("POST", base + "/v1/sessions", token: alice,
                                     body: #"{"session_id":"w-1","agent":"claude","public_key":"\#(otherKey)"}"#)
        #expect(refused.status == 409 && refused.error == "conflict", "\(refused.text)")
        let malformed = try await call("POST", base + "/v1/sessions", token: alice,
                                       body: #"{"session_id":"w-2","agent":"claude","public_key":"not a key"}"#)
        #expect(malformed.status == 400, "\(malformed.text)")

        let hash5 = String(repeating: "a", count: 64), hash7 = String(repeating: "b", count: 64)
        func report(_ seq: Int, _ hash: String, final: Bool = false) async throws -> Answer {
            try await call("POST", base + "/v1/sessions/w-1/checkpoints", token: alice,
                           body: #"{"seq":\#(seq),"hash":"\#(hash)"\#(final ? #","final":true"# : "")}"#)
        }
        let five = try await report(5, hash5)
        #expect(five.status == 200, "\(five.text)")
        let witness = try #require(five.body["witness"])
        #expect(witness["seq"] == .number(5) && witness["hash"]?.stringValue == hash5 && witness["final"] == .bool(false))
        #expect(AuditSigner.isValid(witness["signature"]?.stringValue, AuditWitness.witnessMessage(
            sessionID: "w-1", subject: setup.user("alice"), seq: 5, hash: hash5, final: false,
            witnessedAt: witness["witnessed_at"]?.stringValue ?? ""), key: brokerPublicKey))
        // Another hash at the same position is refused; so is a final seal below the head seen.
        let rewritten = try await report(5, hash7)
        #expect(rewritten.status == 409, "\(rewritten.text)")
        #expect(try await report(7, hash7).body["witness"]?["seq"] == .number(7))
        let late = try await report(5, hash5)
        #expect(late.status == 200 && late.body["witness"] == .null, "a late, lower head is recorded, not countersigned: \(late.text)")
        let lowSeal = try await report(5, hash5, final: true)
        #expect(lowSeal.status == 409, "\(lowSeal.text)")
        let seal = try await report(7, hash7, final: true)
        #expect(seal.status == 200 && seal.body["witness"]?["final"] == .bool(true), "\(seal.text)")

        // `verify` names the broker's key.
        let verified = try await call("GET", base + "/v1/sessions/w-1/verify", token: alice)
        #expect(verified.body["witness_key"]?.stringValue == key, "\(verified.text)")
        await broker.stop()
        await setup.idp.stop()
    }
}
