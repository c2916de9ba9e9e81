import Foundation
import KontextKeyring
import KontextTestSupport
import Testing

@Suite struct SecretServiceStoreTests {
    @Test(.enabled(if: TestSupport.hasSessionBus, "needs dbus-run-session and gnome-keyring (scripts/test sets them up)"))
    func storeLookupListRemoveAgainstGnomeKeyring() throws {
        let store = SecretServiceStore(environment: ProcessInfo.processInfo.environment)
        let key = "unit-\(UUID().uuidString.prefix(8))/res"
        let secret = TestSupport.secret("keyring-unit")
        try store.store(secret, kind: .provider, key: key, label: "kontext test")
        #expect(try store.lookup(kind: .provider, key: key) == secret)
        #expect(try store.keys(kind: .provider).contains(key))
        // Kinds are separate namespaces.
        #expect(try store.lookup(kind: .oidcSession, key: key) == nil)
        try store.store(secret + "-2", kind: .provider, key: key, label: "kontext test")
        #expect(try store.lookup(kind: .provider, key: key) == secret + "-2")
        #expect(try store.remove(kind: .provider, key: key))
        #expect(try store.lookup(kind: .provider, key: key) == nil)
        #expect(try store.remove(kind: .provider, key: key) == false)
    }
}

@Suite struct FileCredentialStoreTests {
    @Test func storesWithOwnerOnlyPermissions() throws {
        let directory = TestSupport.makeTemporaryDirectory("filestore").appendingPathComponent("kontext")
        let store = FileCredentialStore(directory: directory.path)
        // Not a suite secret: this store is the documented plaintext opt-in, removed below.
        try store.store("file-store-value", kind: .provider, key: "svc", label: "x")
        #expect(try store.lookup(kind: .provider, key: "svc") == "file-store-value")
        #expect(try store.keys(kind: .provider) == ["svc"])
        let attributes = try FileManager.default.attributesOfItem(atPath: store.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let dirAttributes = try FileManager.default.attributesOfItem(atPath: directory.path)
        #expect((dirAttributes[.posixPermissions] as? Int) == 0o700)
        #expect(try store.remove(kind: .provider, key: "svc"))
        #expect(try store.keys(kind: .provider).isEmpty)
    }
}
