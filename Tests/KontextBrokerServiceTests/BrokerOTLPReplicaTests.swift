import Foundation
import KontextCore
import KontextTestSupport
import Testing

/// SPEC section 12's OpenTelemetry export from the broker's ingest, with two `kontext broker
/// serve` replicas on one PostgreSQL database and a slow collector (so that both exporters
/// are at work at once): every event reaches the collector exactly once.
@Suite(.serialized) struct BrokerOTLPReplicaTests {
    @Test func twoBrokersOnOnePostgresDatabaseExportEachEventOnce() async throws {
        let setup = try await BrokerSetup.make("otlp-replicas", database: try TestSupport.makePostgresDatabase())
        let collector = try LoopbackServer(script: "otlp_receiver.py", arguments: ["--delay", "1.5"], in: setup.directory)
        var environment = setup.environment
        environment["KONTEXT_OTLP_ENDPOINT"] = collector.baseURL
        let replicas = [try BrokerProcess(config: setup.configPath, database: setup.database, environment: environment),
                        try BrokerProcess(config: setup.configPath, database: setup.database, environment: environment)]
        let token = try await setup.token(sub: "alice")
        var ids: [String] = []
        // Small batches to both replicas in turn, while both export.
        for round in 0..<12 {
            let base = replicas[round % 2].baseURL
            let session = "replicas-\(round)"
            let created = try await call("POST", base + "/v1/sessions", token: token, body: #"{"session_id":"\#(session)","agent":"claude"}"#)
            #expect(created.status == 201, "\(created.text)")
            let events = (1...10).map { seq in auditEvent(id: "\(session)-\(seq)", session: session, seq: seq) }
            ids += (1...10).map { "\(session)-\($0)" }
            let posted = try await call("POST", base + "/v1/audit/events", token: token, body: batch(events))
            #expect(posted.status == 200, "\(posted.text)")
            try await Task.sleep(for: .milliseconds(400))
        }
        func received() throws -> [String] {
            let records = try collector.getJSON("/control/records") as? [[String: Any]] ?? []
            return records.compactMap { ($0["attributes"] as? [String: Any])?["kontext.event.id"] as? String }
        }
        let deadline = Date().addingTimeInterval(90)
        while try Set(received()).count < ids.count, Date() < deadline { try await Task.sleep(for: .milliseconds(250)) }
        // A few more polls of both exporters: nothing goes out again.
        try await Task.sleep(for: .seconds(4))
        let got = try received()
        #expect(Set(got) == Set(ids), "\(Set(ids).subtracting(got).count) events never exported")
        #expect(got.count == ids.count, "\(got.count - Set(got).count) events exported twice")
        let records = try collector.getJSON("/control/records") as? [[String: Any]] ?? []
        let users = Set(records.compactMap { ($0["resource"] as? [String: Any])?["user.id"] as? String })
        #expect(users == [setup.user("alice")], "the broker principal is the user: \(users)")
        for replica in replicas {
            let (status, log) = replica.stop()
            #expect(status == 0, "\(log.suffix(2000))")
        }
    }

    /// The collector takes 8 s to answer each export: ingest answers at once all the same.
    @Test func ingestNeverWaitsOnTheCollector() async throws {
        let setup = try await BrokerSetup.make("otlp-slow")
        let collector = try LoopbackServer(script: "otlp_receiver.py", arguments: ["--delay", "8"], in: setup.directory)
        var environment = setup.environment
        environment["KONTEXT_OTLP_ENDPOINT"] = collector.baseURL
        let broker = try BrokerProcess(config: setup.configPath, database: setup.database, environment: environment)
        let token = try await setup.token(sub: "alice")
        let created = try await call("POST", broker.baseURL + "/v1/sessions", token: token, body: #"{"session_id":"slow","agent":"claude"}"#)
        #expect(created.status == 201, "\(created.text)")
        for seq in 1...4 {
            let started = ContinuousClock.now
            let posted = try await call("POST", broker.baseURL + "/v1/audit/events", token: token,
                                        body: batch([auditEvent(id: "slow-\(seq)", session: "slow", seq: seq)]))
            let took = ContinuousClock.now - started
            #expect(posted.status == 200 && took < .seconds(2), "ingest took \(took) while the collector was busy: \(posted.text)")
            try await Task.sleep(for: .milliseconds(1500))
        }
        _ = broker.stop()
    }
}
