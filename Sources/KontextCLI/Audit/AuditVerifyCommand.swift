import ArgumentParser
import KontextAudit
import KontextCore
import KontextHTTP
import KontextRun

extension AuditCommand {
    /// `kontext audit verify [SESSION | --file F | --remote]`: checks every link of the
    /// sessions' hash chains (SPEC section 12) and names the first bad event. Exit 0 when
    /// everything verifies, 1 when a chain does not (like `git fsck`: the check ran and found
    /// a problem), SPEC section 8's codes when the check could not run.
    struct Verify: KontextCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check the audit hash chain: of the local store, of an export file, or of the backend's copy.")

        @Argument(help: ArgumentHelp("Session id or prefix (every session when omitted; the whole id with --remote).",
                                     valueName: "session"))
        var session: String?

        @Option(name: .long, help: ArgumentHelp("An export (`kontext audit export --format jsonl`) to check instead of the store.",
                                                valueName: "file"))
        var file: String?

        @Flag(name: .long, help: "Ask the audit backend (KONTEXT_AUDIT_URL) for its verdict on the session it received.")
        var remote = false

        @Option(name: .long, help: ArgumentHelp(
            "The Ed25519 public key (base64) that must have signed the checkpoints, at least one of them; `kontext audit key` prints yours. Without it, the keyring's key (if any) must have signed those there are.",
            valueName: "key"))
        var publicKey: String?

        @Option(name: .long, help: ArgumentHelp(
            "The broker's audit witness key (base64 Ed25519, from GET /v1/audit/witness-key or `verify --remote`): its certificate must bind the checkpoint key to the session, its countersignatures must match the chain, and it must have witnessed the final seal.",
            valueName: "key"))
        var witnessKey: String?

        func run(context: CommandContext) async throws {
            if remote {
                guard let session, file == nil, witnessKey == nil else {
                    throw KontextError.usage("--remote checks one session: give its id, and no --file or --witness-key")
                }
                try await verifyRemote(session, context: context)
                return
            }
            let reports: [AuditChainReport]
            if let publicKey, !AuditSigner.isPublicKey(publicKey) {
                throw KontextError.usage("--public-key must be an Ed25519 public key: 32 bytes in base64")
            }
            if let witnessKey, !AuditSigner.isPublicKey(witnessKey) {
                throw KontextError.usage("--witness-key must be an Ed25519 public key: 32 bytes in base64",
                                         hint: "`kontext audit verify --remote SESSION` prints the broker's")
            }
            // The keyring's key signed this machine's sessions; with neither it nor --public-key,
            // signatures are checked against the keys the checkpoints carry.
            let trustedKey = publicKey ?? (try? AuditSigning.keyringSigner(settings: context.settings(), create: false))?.publicKeyBase64
            if let file {
                reports = try AuditVerify.reportsOfExport(path: file, session: session, trustedKey: trustedKey,
                                                          requireSignature: publicKey != nil, witnessKey: witnessKey)
            } else {
                let store = try AuditCommand.openStore(context)
                let ids = try session.map { [try store.resolveSession($0).id] } ?? store.sessions().reversed().map(\.id)
                reports = try ids.map { id in
                    let events = try store.eventObjects(sessionID: id)
                    return AuditChain.verify(sessionID: id, events: events, trustedKey: trustedKey,
                                             requireSignature: publicKey != nil && !events.isEmpty, witnessKey: witnessKey)
                }
            }
            guard !reports.isEmpty else {
                throw KontextError.usage(file == nil ? "no sessions recorded yet" : "no audit events in \(file!)")
            }
            for report in reports { context.streams.print(AuditVerify.describe(report)) }
            let failed = reports.filter { !$0.verified }.count
            if failed > 0 {
                context.streams.printError("kontext: the audit chain of \(failed) session\(failed == 1 ? "" : "s") does not verify")
                throw ExitCode(1)
            }
        }

        private func verifyRemote(_ id: String, context: CommandContext) async throws {
            let settings = try context.settings()
            let answer = try await RemoteAudit.get("/v1/sessions/\(formEncode(id))/verify", settings: settings)
            let verified = answer["verified"] == .bool(true)
            var count = 0
            if case .number(let number)? = answer["event_count"] { count = Int(number) }
            context.streams.print("\(sanitized(id))  \(verified ? "verified" : "FAILED")  \(count) event\(count == 1 ? "" : "s") at the audit backend")
            if case .number(let seq)? = answer["witnessed_seq"] {
                context.streams.print("  witnessed through #\(Int(seq)) at \(sanitized(answer["witnessed_at"]?.stringValue ?? "?"))")
            }
            if let key = answer["witness_key"]?.stringValue {
                context.streams.print("  witness key: \(sanitized(key))")
            }
            for finding in answer["findings"]?.arrayValue ?? [] {
                context.streams.print("  " + sanitized(finding["message"]?.stringValue ?? finding.serialized, limit: 4096))
            }
            if !verified {
                context.streams.printError("kontext: the audit backend's copy of session \(sanitized(id)) does not verify")
                throw ExitCode(1)
            }
        }
    }
}

extension AuditCommand {
    /// `kontext audit key`: the public half of the keyring's audit signing key, for
    /// `kontext audit verify --public-key` elsewhere.
    struct Key: KontextCommand {
        static let configuration = CommandConfiguration(commandName: "key", abstract: "Print the public key that signs this machine's audit checkpoints.")

        func run(context: CommandContext) async throws {
            guard let signer = try AuditSigning.keyringSigner(settings: context.settings(), create: false) else {
                throw KontextError.usage("no audit signing key yet", hint: "`kontext start` makes one with its first session")
            }
            context.streams.print(signer.publicKeyBase64)
        }
    }
}

enum AuditVerify {
    static func reportsOfExport(path: String, session: String?, trustedKey: String?, requireSignature: Bool,
                                witnessKey: String? = nil) throws -> [AuditChainReport] {
        guard let bytes = readFile(path, limit: 1 << 30) else {
            throw KontextError.usage("cannot read \(path)", hint: "write one with `kontext audit export --format jsonl > FILE`")
        }
        var objects: [JSONValue] = []
        var lineNumber = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0d || $0 == 0x09 }) { continue }
            do {
                let object = try JSONValue.parse(Array(line))
                guard object.objectValue != nil else { throw KontextError.usage("not an object") }
                objects.append(object)
            } catch {
                throw KontextError.usage("\(path):\(lineNumber) is not an audit event (a JSON object per line): \(error)")
            }
        }
        let reports = AuditChain.verify(objects: objects, trustedKey: trustedKey, requireSignature: requireSignature, witnessKey: witnessKey)
        guard let session else { return reports }
        let chosen = reports.filter { $0.sessionID == session || $0.sessionID.hasPrefix(session) }
        guard chosen.count == 1 else {
            throw KontextError.usage(chosen.isEmpty ? "no session in \(path) matches \"\(session)\""
                                                     : "session prefix \"\(session)\" matches \(chosen.count) sessions in \(path)")
        }
        return chosen
    }

    static func describe(_ report: AuditChainReport) -> String {
        let count = "\(report.eventCount) event\(report.eventCount == 1 ? "" : "s")"
        guard !report.verified else {
            var line = "\(sanitized(report.sessionID))  verified  \(count)\(report.ended ? ", ended" : ", not ended")"
            if let signed = report.signedThrough {
                line += report.sealed ? ", sealed" : ", signed through #\(signed)"
                line += " by " + report.signingKeys.map { sanitized($0) }.joined(separator: ", ")
            } else {
                line += ", no signed checkpoint"
            }
            if let witnessed = report.witnessedThrough {
                line += "; witnessed by the broker through #\(witnessed), sealed, for \(sanitized(report.witnessSubject ?? "?"))"
            }
            return line
        }
        return (["\(sanitized(report.sessionID))  FAILED  \(count)"]
            + report.findings.map { "  " + sanitized($0.message, limit: 4096) }).joined(separator: "\n")
    }
}
