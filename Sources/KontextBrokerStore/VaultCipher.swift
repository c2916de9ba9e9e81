import Crypto
import Foundation
import KontextCore

/// A credential as stored: AES-256-GCM ciphertext (nonce, ciphertext and tag, combined) and
/// the id of the key that sealed it, so that keys can rotate while old rows stay readable.
public struct SealedSecret: Sendable, Equatable {
    public var keyID: String
    public var bytes: [UInt8]

    public init(keyID: String, bytes: [UInt8]) {
        self.keyID = keyID
        self.bytes = bytes
    }
}

/// The vault's encryption keys: the current one seals, every listed one opens.
///
/// Key text (a key file, or the `KONTEXT_BROKER_VAULT_KEYS` variable): one key a line,
/// `ID:BASE64` with 32 random bytes (`head -c 32 /dev/urandom | base64`); `#` starts a
/// comment. The first key is the current one. To rotate, put a new key first and keep the
/// old ones below it until `kontext broker provider rekey` has resealed every credential.
public struct VaultCipher: Sendable {
    public let currentKeyID: String
    private let keys: [String: SymmetricKey]

    public var keyIDs: [String] { keys.keys.sorted() }

    public init(keys: [(id: String, key: [UInt8])]) throws(KontextError) {
        guard let first = keys.first else {
            throw KontextError.usage("no vault key is configured", hint: VaultCipher.keyHint)
        }
        var table: [String: SymmetricKey] = [:]
        for (id, key) in keys {
            guard key.count == 32 else {
                throw KontextError.usage("vault key '\(id)' is \(key.count) bytes; AES-256 needs 32", hint: VaultCipher.keyHint)
            }
            guard table[id] == nil else { throw KontextError.usage("vault key id '\(id)' is listed twice") }
            table[id] = SymmetricKey(data: key)
        }
        currentKeyID = first.id
        self.keys = table
    }

    static let keyHint = "list keys one a line as ID:BASE64 of 32 random bytes, e.g. k1:$(head -c 32 /dev/urandom | base64); the first seals, all open"

    /// Parses key text (see the type's comment); `source` names it in errors, never its content.
    public static func parse(_ text: String, source: String) throws(KontextError) -> VaultCipher {
        var keys: [(id: String, key: [UInt8])] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if line.isEmpty { continue }
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty,
                  parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
                  let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)) else {
                throw KontextError.usage("\(source): line \(number + 1) is not ID:BASE64", hint: keyHint)
            }
            keys.append((String(parts[0]), Array(data)))
        }
        do {
            return try VaultCipher(keys: keys)
        } catch {
            throw KontextError.usage("\(source): \(error.message)", hint: error.hint)
        }
    }

    /// Seals `plaintext` with the current key. `context` (owner, target, kind) is
    /// authenticated, so a ciphertext copied to another row does not open there.
    public func seal(_ plaintext: String, context: String) throws(KontextError) -> SealedSecret {
        do {
            let box = try AES.GCM.seal(Array(plaintext.utf8), using: keys[currentKeyID]!, authenticating: Array(context.utf8))
            guard let combined = box.combined else { throw KontextError.usage("AES-GCM produced no combined box") }
            return SealedSecret(keyID: currentKeyID, bytes: Array(combined))
        } catch {
            throw KontextError.usage("cannot encrypt a credential: \(error)")
        }
    }

    /// Opens a sealed credential; fails when its key is not configured or it was tampered with.
    public func open(_ sealed: SealedSecret, context: String) throws(KontextError) -> String {
        guard let key = keys[sealed.keyID] else {
            throw KontextError.usage("a credential is sealed with vault key '\(sealed.keyID)', which is not configured",
                                     hint: "keep old keys listed (after the current one) until every credential is resealed")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed.bytes)
            let plain = try AES.GCM.open(box, using: key, authenticating: Array(context.utf8))
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw KontextError.usage("a credential does not decrypt with vault key '\(sealed.keyID)' (wrong key or altered row)")
        }
    }
}
