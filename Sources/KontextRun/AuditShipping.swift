import KontextAudit
import KontextAuditShipping
import KontextCore
import KontextHTTP
import KontextOIDC

/// SPEC section 7's shipping, as `start` and every other command use it.
public enum AuditUpload {
    /// The shipper for `KONTEXT_AUDIT_URL`, or nil when none is set. Shipping needs a login
    /// to authenticate with, so local mode keeps its audit local.
    public static func shipper(settings: [String: String], store: AuditStore, identity: RunIdentity) -> AuditShipper? {
        guard let url = settings["KONTEXT_AUDIT_URL"], !url.isEmpty, let bearer = identity.bearer else { return nil }
        return AuditShipper(store: store, baseURL: url, http: HTTPClient(caBundlePath: settings["KONTEXT_CA_BUNDLE"]),
                            bearer: bearer)
    }

    /// What an earlier session left unsent (the backend was down, or kontext was killed),
    /// sent by whichever kontext command runs next. Quiet unless something remains unsent,
    /// and never fails the command it rides on.
    public static func sendBacklog(settings: [String: String], within seconds: Double = 10) async {
        // A CI job keeps no store between commands, so it has no backlog.
        guard let url = settings["KONTEXT_AUDIT_URL"], !url.isEmpty, case .remote = Mode.detect(settings) else { return }
        let path = AuditStore.defaultPath(environment: settings)
        guard AuditStore.exists(path: path), let store = try? AuditStore(path: path) else { return }
        let pending = ((try? store.pendingEventCount()) ?? 0) + ((try? store.pendingSessions(start: true).count) ?? 0)
            + ((try? store.pendingSessions(start: false).count) ?? 0)
        guard pending > 0 else { return }
        guard let identity = try? await RunIdentity.establish(settings: settings),
              let shipper = shipper(settings: settings, store: store, identity: identity) else { return }
        let attempt = Task { () -> String? in
            do { try await shipper.shipPending(); return nil } catch { return String(describing: error) }
        }
        let timer = Task {
            try? await Task.sleep(for: .seconds(seconds))
            attempt.cancel()
        }
        let problem = await attempt.value
        timer.cancel()
        let unsent = shipper.pendingCount()
        if unsent > 0 {
            printError("kontext: \(unsent) audit event\(unsent == 1 ? "" : "s") still unsent to \(url)\(problem.map { " (\($0))" } ?? ""); kontext will try again")
        }
    }
}
