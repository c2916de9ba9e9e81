import KontextCore

/// The audit log's timestamps (defined in KontextCore, shared with modules that keep no log).
public typealias AuditTime = UTCTime

/// Identifiers: 128 bits as 32 lowercase hex digits, never colliding across machines.
public enum AuditIdentifier {
    /// Entirely random (CSPRNG): for sessions, so that short prefixes are evenly spread
    /// (`kontext audit show` accepts a prefix, like git).
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return hex(generator.next(), generator.next())
    }

    /// 48 bits of Unix milliseconds then 80 random bits (the layout of a UUIDv7, without
    /// version bits or dashes): for events, so the store's unique index on `id` grows at its
    /// end, like the table, instead of touching a random page of a large index per insert.
    public static func timeOrdered(epochMilliseconds: Int64 = AuditTime.currentEpochMilliseconds()) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = generator.next() as UInt64
        let high = UInt64(truncatingIfNeeded: epochMilliseconds) << 16 | random >> 48
        return hex(high, generator.next())
    }

    private static func hex(_ high: UInt64, _ low: UInt64) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var bytes = [UInt8](repeating: 0, count: 32)
        for (half, word) in [high, low].enumerated() {
            for position in 0..<16 {
                bytes[half * 16 + position] = digits[Int(word >> (60 - 4 * UInt64(position)) & 0xf)]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
