import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KontextTestSupport
import Testing

/// `kontext audit verify` (SPEC section 12) on sessions recorded by `kontext start`: an
/// untouched session verifies, in the store and in its export; deleting, changing,
/// reordering or appending an event after the end, with sqlite3 in the store or with a text
/// editor in the export, makes it exit 1 naming the event.
@Suite(.enabled(if: TestSupport.hasSessionBus, "needs a Secret Service: run scripts/test"))
struct AuditVerifyTests {
    /// Eight tool calls and the session's end through `kontext hook`, as an agent's hooks
    /// would make them.
    static let agentScript = """
        i=1
        while [ $i -le 8 ]; do
          printf '{"tool_name":"Bash","tool_input":{"command":"echo %s"}}' "$i" | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null || exit 9
          i=$((i+1))
        done
        printf '{"reason":"exit"}' | "$KONTEXT_HOOK" hook session-end --agent claude >/dev/null || exit 9
        printf '%s' "$KONTEXT_SESSION_ID" > session-id
        """

    func sessionEnvironment(_ sandbox: Sandbox) throws -> [String: String] {
        let runtime = sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return ["KONTEXT_HOOK": TestSupport.kontextPath, "XDG_RUNTIME_DIR": runtime.path]
    }

    /// An independent hash of an exported line: Python's json with sorted keys and no
    /// whitespace is RFC 8785 for these values (ASCII keys, integers, plain strings).
    func pythonRehash(_ sandbox: Sandbox, _ script: String, _ input: String) throws -> String {
        let result = try sandbox.run("/usr/bin/python3", ["-c", """
            import hashlib, json, sys
            def chain_hash(event):
                body = {k: v for k, v in event.items() if k != "hash"}
                text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                return hashlib.sha256(text.encode()).hexdigest()
            \(script)
            """], stdin: input)
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout
    }

    @Test func anUntouchedSessionVerifiesAndEveryTamperingIsNamed() throws {
        let sandbox = Sandbox("audit-verify")
        let environment = try sessionEnvironment(sandbox)
        sandbox.write("agent.sh", Self.agentScript)
        let run = try sandbox.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"], environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        let session = try String(contentsOf: sandbox.workingDirectory.appendingPathComponent("session-id"), encoding: .utf8)

        // Eight calls, the end, and kontext's final checkpoint signed with the keyring's key.
        let key = try sandbox.kontext(["audit", "key"])
        #expect(key.status == 0, "\(key.stderr)")
        let publicKey = key.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Data(base64Encoded: publicKey)?.count == 32, "\(key.stdout)")
        let verified = try sandbox.kontext(["audit", "verify"])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(verified.stdout.contains("\(session)  verified  10 events, ended, sealed by \(publicKey)"), "\(verified.stdout)")

        // The export: every line carries prev_hash and hash, and an independent implementation
        // computes the same hashes and links.
        let export = try sandbox.kontext(["audit", "export", "--format", "jsonl"])
        let lines = export.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 10)
        #expect(lines.last?.contains(#""event":"checkpoint""#) == true && lines.last?.contains(#""final":true"#) == true)
        let rehashed = try pythonRehash(sandbox, """
            events = [json.loads(line) for line in sys.stdin]
            ok = all(chain_hash(e) == e["hash"] for e in events)
            ok = ok and all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:]))
            genesis = hashlib.sha256(json.dumps({"session_id": events[0]["session_id"], "start": events[0]["time"]},
                                                sort_keys=True, separators=(",", ":")).encode()).hexdigest()
            print("ok" if ok and events[0]["prev_hash"] == genesis else "mismatch")
            """, export.stdout)
        #expect(rehashed == "ok\n")
        let file = sandbox.root.appendingPathComponent("export.jsonl")
        func verifyFile(_ lines: [String]) throws -> ProcessResult {
            try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            return try sandbox.kontext(["audit", "verify", "--file", file.path])
        }
        func id(_ line: String) -> String {
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["id"] as? String ?? "?"
        }
        #expect(try verifyFile(lines).status == 0)
        var result = try sandbox.kontext(["audit", "verify", "--file", file.path, "--public-key", publicKey])
        #expect(result.status == 0, "\(result.stdout)")
        // Pinned to another key, the same file fails: its checkpoint is not that key's.
        let otherKey = Data(repeating: 7, count: 32).base64EncodedString()
        result = try sandbox.kontext(["audit", "verify", "--file", file.path, "--public-key", otherKey])
        #expect(result.status == 1 && result.stdout.contains("is signed by another key"), "\(result.stdout)")

        var deleted = lines
        deleted.remove(at: 3)
        result = try verifyFile(deleted)
        #expect(result.status == 1 && result.stdout.contains("event #4 is missing before event #5 (\(id(lines[4])))"), "\(result.stdout)")
        #expect(result.stderr.contains("does not verify"))

        var changed = lines
        changed[5] = changed[5].replacingOccurrences(of: "echo 6", with: "echo X")
        result = try verifyFile(changed)
        #expect(result.status == 1 && result.stdout.contains("event #6 (\(id(lines[5]))) was changed"), "\(result.stdout)")

        var reordered = lines
        reordered.swapAt(2, 3)
        result = try verifyFile(reordered)
        #expect(result.status == 1 && result.stdout.contains("event #4 (\(id(lines[3]))) is out of order"), "\(result.stdout)")

        // Appended after the end by someone who knows the scheme: a valid seq, link and hash.
        let forged = try pythonRehash(sandbox, """
            events = [json.loads(line) for line in sys.stdin]
            forged = dict(events[2], id="forged-event", seq=11, prev_hash=events[-1]["hash"])
            forged["hash"] = chain_hash(forged)
            print(json.dumps(forged))
            """, export.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
        result = try verifyFile(lines + [forged])
        #expect(result.status == 1 && result.stdout.contains("event #11 (forged-event) was appended after the session ended"),
                "\(result.stdout)")

        // A forger who changes #6 and recomputes every later hash: each link holds, but the
        // signed checkpoint names #9's original hash.
        let rewritten = try pythonRehash(sandbox, """
            events = [json.loads(line) for line in sys.stdin]
            events[5]["tool_input"]["command"] = "echo X"
            for index in range(5, len(events)):
                if index > 5:
                    events[index]["prev_hash"] = events[index - 1]["hash"]
                events[index]["hash"] = chain_hash(events[index])
            print("\\n".join(json.dumps(e) for e in events))
            """, export.stdout).split(separator: "\n").map(String.init)
        result = try verifyFile(rewritten)
        #expect(result.status == 1 && result.stdout.contains("checkpoint event #10 (\(id(lines[9]))) signed event #9 with another hash"),
                "\(result.stdout)")
        // ... and without the checkpoint: the ended session is no longer sealed by the key
        // (the keyring's, by default).
        result = try verifyFile(Array(rewritten.dropLast()))
        #expect(result.status == 1 && result.stdout.contains("no final signed checkpoint seals it"), "\(result.stdout)")
        try (rewritten.dropLast().joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        result = try sandbox.kontext(["audit", "verify", "--file", file.path, "--public-key", publicKey])
        #expect(result.status == 1 && result.stdout.contains("no checkpoint signed by the given key"), "\(result.stdout)")

        // The same in the SQLite store, each on a fresh copy of the untouched file.
        let store = sandbox.home.appendingPathComponent(".local/state/kontext/audit.db").path
        let pristine = sandbox.root.appendingPathComponent("pristine.db").path
        #expect(try sandbox.run("/usr/bin/sqlite3", [store, ".backup '\(pristine)'"]).status == 0)
        func tamperStore(_ sql: String) throws -> ProcessResult {
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: store + suffix) }
            try? FileManager.default.removeItem(atPath: store)
            try FileManager.default.copyItem(atPath: pristine, toPath: store)
            let edit = try sandbox.run("/usr/bin/sqlite3", [store, sql])
            #expect(edit.status == 0, "\(edit.stderr)")
            return try sandbox.kontext(["audit", "verify", String(session.prefix(8))])
        }
        let bySeq = "session_id = '\(session)' AND seq ="
        result = try tamperStore("DELETE FROM events WHERE \(bySeq) 4")
        #expect(result.status == 1 && result.stdout.contains("event #4 is missing before event #5 (\(id(lines[4])))"), "\(result.stdout)")
        result = try tamperStore("UPDATE events SET json = replace(json, 'echo 6', 'echo X') WHERE \(bySeq) 6")
        #expect(result.status == 1 && result.stdout.contains("event #6 (\(id(lines[5]))) was changed"), "\(result.stdout)")
        result = try tamperStore("UPDATE events SET seq = -3 WHERE \(bySeq) 3; UPDATE events SET seq = 3 WHERE \(bySeq) 4; UPDATE events SET seq = 4 WHERE \(bySeq) -3")
        #expect(result.status == 1 && result.stdout.contains("event #4 (\(id(lines[3]))) is out of order"), "\(result.stdout)")
        let forgedSQL = forged.replacingOccurrences(of: "'", with: "''")
        result = try tamperStore("INSERT INTO events (id, session_id, seq, time, event, json) VALUES ('forged-event', '\(session)', 11, '2030-01-01T00:00:00.000Z', 'pre-tool', '\(forgedSQL)')")
        #expect(result.status == 1 && result.stdout.contains("event #11 (forged-event) was appended after the session ended"),
                "\(result.stdout)")
        // And back to the untouched store.
        result = try tamperStore("SELECT 1")
        #expect(result.status == 0, "\(result.stdout)")

        // What cannot run is SPEC section 8's usage error, not a verdict.
        let missing = try sandbox.kontext(["audit", "verify", "--file", sandbox.root.appendingPathComponent("nope.jsonl").path])
        #expect(missing.status == 2 && missing.stderr.hasPrefix("kontext: cannot read"), "\(missing.stderr)")
        try "not json\n".write(to: file, atomically: true, encoding: .utf8)
        let garbage = try sandbox.kontext(["audit", "verify", "--file", file.path])
        #expect(garbage.status == 2 && garbage.stderr.contains("export.jsonl:1 is not an audit event"), "\(garbage.stderr)")
    }
}

/// The broker as the witness: a remote session whose last events were recorded, reported as
/// the chain head, and then cut from the local store after kill -9 before they shipped.
@Suite(.enabled(if: TestSupport.hasSessionBus, "needs a Secret Service: run scripts/test"))
struct AuditWitnessTests {
    /// A device-flow issuer approving `subject`, and a broker trusting it on SQLite in `scratch`.
    struct WitnessBroker {
        let scratch: URL
        let issuer: LoopbackServer
        let environment: [String: String]

        init(_ scratch: URL, subject: String) throws {
            self.scratch = scratch
            issuer = try LoopbackServer(script: "oidc_issuer.py", arguments: [
                "--auto-approve", subject, "--auto-email", "\(subject)@example.test", "--auto-after", "1", "--interval", "1",
                "--jwt-access-tokens",
            ], in: scratch)
            try """
                [[issuer]]
                issuer = "\(issuer.baseURL)"
                audiences = ["kontext-test"]
                jwks_url = "\(issuer.baseURL)/jwks"
                users = true
                """.write(to: scratch.appendingPathComponent("broker.toml"), atomically: true, encoding: .utf8)
            var environment = ProcessInfo.processInfo.environment
            environment["KONTEXT_BROKER_VAULT_KEYS"] = "k1:" + Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            self.environment = environment
        }

        /// `kontext broker serve` on the same database each time.
        func serve(log: String = "broker.log") throws -> ServedBroker {
            try ServedBroker(config: scratch.appendingPathComponent("broker.toml").path,
                             database: "sqlite:" + scratch.appendingPathComponent("broker.db").path,
                             environment: environment, log: scratch.appendingPathComponent(log))
        }
    }

    @Test func theBrokerReportsEventsCutFromTheLocalStoreAfterKillNine() throws {
        let scratch = TestSupport.makeTemporaryDirectory("audit-witness")
        let served = try WitnessBroker(scratch, subject: "bob")
        let issuer = served.issuer
        let broker = try served.serve()
        // Event batches are held at the gate; session records and chain heads pass.
        let hold = scratch.appendingPathComponent("hold")
        FileManager.default.createFile(atPath: hold.path, contents: nil)
        let gate = try LoopbackServer(script: "audit_gate.py", arguments: ["--upstream", broker.baseURL, "--hold", hold.path], in: scratch)

        var user = RemoteUser("audit-witness", issuer: issuer.baseURL, extra: ["KONTEXT_AUDIT_URL": gate.baseURL])
        let login = try user.kontext(["login", "--device"])
        #expect(login.status == 0, "\(login.stderr)")
        let runtime = user.sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        user.environment["KONTEXT_HOOK"] = TestSupport.kontextPath
        user.environment["XDG_RUNTIME_DIR"] = runtime.path
        user.sandbox.write("agent.sh", """
            echo $$ > agent-pid
            i=1
            while [ $i -le 10 ]; do
              printf '{"tool_name":"Bash","tool_input":{"command":"echo %s"}}' "$i" | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null || exit 9
              i=$((i+1))
            done
            printf '%s' "$KONTEXT_SESSION_ID" > session-id
            exec sleep 120
            """)
        let session = Process()
        session.executableURL = URL(fileURLWithPath: TestSupport.kontextPath)
        session.arguments = ["start", "--agent-command", "/bin/sh", "--", "agent.sh"]
        session.currentDirectoryURL = user.sandbox.workingDirectory
        session.environment = user.sandbox.environment.merging(user.environment) { $1 }
        session.standardError = FileHandle.nullDevice
        session.standardOutput = FileHandle.nullDevice
        try session.run()
        let idFile = user.sandbox.workingDirectory.appendingPathComponent("session-id")
        var deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: idFile.path), Date() < deadline, session.isRunning { usleep(50_000) }
        let sessionID = try String(contentsOf: idFile, encoding: .utf8)

        // The head (#10) reached the broker while the events are still held.
        func headReported() throws -> Bool {
            let forwarded = try gate.getJSON("/control/forwarded") as? [[String: Any]] ?? []
            return forwarded.contains { ($0["path"] as? String)?.hasSuffix("/checkpoints") == true && $0["status"] as? Int == 200
                && ($0["body"] as? [String: Any])?["seq"] as? Int == 10 }
        }
        deadline = Date().addingTimeInterval(30)
        while try !headReported(), Date() < deadline { usleep(100_000) }
        let forwarded = try gate.getJSON("/control/forwarded")
        #expect(try headReported(), "the chain head was not reported: \(forwarded)")

        kill(session.processIdentifier, SIGKILL)
        // Then the orphaned agent, which Foundation's wait would otherwise outlive.
        if let agent = Int32((try? String(contentsOf: user.sandbox.workingDirectory.appendingPathComponent("agent-pid"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") {
            kill(agent, SIGKILL)
        }
        session.waitUntilExit()
        // The last five events, gone from the local store before they were sent.
        let store = user.sandbox.home.appendingPathComponent(".local/state/kontext/audit.db").path
        let cut = try user.sandbox.run("/usr/bin/sqlite3", [store, "DELETE FROM events WHERE session_id = '\(sessionID)' AND seq > 5"])
        #expect(cut.status == 0, "\(cut.stderr)")
        // Locally the shortened chain is consistent: nothing alone shows the cut.
        let local = try user.kontext(["audit", "verify", sessionID])
        #expect(local.status == 0 && local.stdout.contains("verified  5 events, not ended"), "\(local.stdout)\(local.stderr)")

        // The backlog ships with the next command; the broker holds #1–#5 and knew of #10.
        try FileManager.default.removeItem(at: hold)
        #expect(try user.kontext(["whoami"]).status == 0)
        let remote = try user.kontext(["audit", "verify", "--remote", sessionID])
        #expect(remote.status == 1, "\(remote.stdout)\(remote.stderr)")
        #expect(remote.stdout.contains("FAILED  5 events at the audit backend"), "\(remote.stdout)")
        #expect(remote.stdout.contains("event #6–#10 are missing: the client reported its chain at #10"), "\(remote.stdout)")
        user.expectNoTokens(try user.storedTokens())
    }

    /// A remote session against `kontext broker serve`: the broker certifies the session's
    /// checkpoint key and countersigns its heads, the client records both in its chain, and
    /// the export alone proves, with the broker's public key, what the broker witnessed.
    @Test func anExportIsVerifiedOfflineWithTheBrokersWitnessKey() throws {
        let scratch = TestSupport.makeTemporaryDirectory("audit-witnessed")
        let served = try WitnessBroker(scratch, subject: "carol")
        let issuer = served.issuer
        var broker: ServedBroker? = try served.serve()
        let base = broker!.baseURL
        let witnessKey = try #require(try publicJSON(base + "/v1/audit/witness-key")["public_key"] as? String)

        var user = RemoteUser("audit-witnessed", issuer: issuer.baseURL, extra: ["KONTEXT_AUDIT_URL": base])
        #expect(try user.kontext(["login", "--device"]).status == 0)
        let runtime = user.sandbox.root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        user.environment["KONTEXT_HOOK"] = TestSupport.kontextPath
        user.environment["XDG_RUNTIME_DIR"] = runtime.path
        user.sandbox.write("agent.sh", """
            for i in 1 2 3 4 5 6; do
              printf '{"tool_name":"Bash","tool_input":{"command":"echo %s"}}' "$i" | "$KONTEXT_HOOK" hook pre-tool --agent claude >/dev/null || exit 9
              sleep 0.3
            done
            printf '%s' "$KONTEXT_SESSION_ID" > session-id
            """)
        let run = try user.kontext(["start", "--agent-command", "/bin/sh", "--", "agent.sh"])
        #expect(run.status == 0, "\(run.stderr)")
        let sessionID = try String(contentsOf: user.sandbox.workingDirectory.appendingPathComponent("session-id"), encoding: .utf8)
        let export = try user.kontext(["audit", "export", "--session", sessionID, "--format", "jsonl"])
        #expect(export.status == 0, "\(export.stderr)")
        let lines = export.stdout.split(separator: "\n").map(String.init)
        let file = scratch.appendingPathComponent("export.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        // The seal carries the broker's certificate of the session key (or an earlier checkpoint
        // does) and its countersignature of the sealed head.
        let last = try #require(lines.last)
        let seal = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        let sealWitness = (seal["tool_input"] as? [String: Any])?["witness"] as? [String: Any]
        #expect(seal["event"] as? String == "checkpoint" && sealWitness?["final"] as? Bool == true, "\(seal)")

        let verified = try user.kontext(["audit", "verify", "--file", file.path, "--witness-key", witnessKey])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(verified.stdout.contains("witnessed by the broker through #\(lines.count - 1), sealed, for user:"), "\(verified.stdout)")

        // Restarted on the same database, the broker has the same key.
        broker = nil
        broker = try served.serve(log: "broker-2.log")
        #expect(try publicJSON(broker!.baseURL + "/v1/audit/witness-key")["public_key"] as? String == witnessKey)

        // Cut from the end, seal and all: consistent alone, refused with the broker's key.
        let cut = scratch.appendingPathComponent("cut.jsonl")
        try (lines.dropLast(3).joined(separator: "\n") + "\n").write(to: cut, atomically: true, encoding: .utf8)
        #expect(try user.kontext(["audit", "verify", "--file", cut.path]).status == 0)
        let refused = try user.kontext(["audit", "verify", "--file", cut.path, "--witness-key", witnessKey])
        #expect(refused.status == 1, "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stdout.contains("the chain ends at event #\(lines.count - 3) without a final checkpoint sealing a head the broker countersigned as final"),
                "\(refused.stdout)")
        // Another broker's key (or a forger's) proves nothing.
        let other = try user.kontext(["audit", "verify", "--file", file.path, "--witness-key", "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="])
        #expect(other.status == 2, "a key that is not 32 raw bytes is a usage error: \(other.stderr)")
        let strangerKey = Curve25519.Signing.PrivateKey().publicKey.rawRepresentation.base64EncodedString()
        let wrong = try user.kontext(["audit", "verify", "--file", file.path, "--witness-key", strangerKey])
        #expect(wrong.status == 1 && wrong.stdout.contains("no certificate of the broker (the given witness key)"), "\(wrong.stdout)\(wrong.stderr)")
        user.expectNoTokens(try user.storedTokens())
    }

    func publicJSON(_ url: String) throws -> [String: Any] {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var body = Data()
        URLSession.shared.dataTask(with: URL(string: url)!) { data, _, _ in
            body = data ?? Data()
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 20)
        return (try JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:]
    }
}
