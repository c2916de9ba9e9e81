#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 3339 timestamps in UTC with milliseconds (`2026-11-22T10:23:43.123Z`), formatted by
/// hand: every audit event takes one on the hook path, and this fixed-width form sorts
/// lexicographically in time order, which the audit store relies on for `sessions()`.
/// Here rather than in KontextAudit so that modules without a store (workload identity)
/// print times the same way without linking GRDB.
public enum UTCTime {
    /// The current wall-clock time.
    public static func now() -> String {
        format(epochMilliseconds: currentEpochMilliseconds())
    }

    public static func currentEpochMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    /// Formats seconds since 1970 (an OAuth `exp`, say), to the millisecond.
    public static func format(epochSeconds: Double) -> String {
        format(epochMilliseconds: Int64((epochSeconds * 1000).rounded()))
    }

    /// Formats milliseconds since 1970-01-01T00:00:00Z (years 0000–9999).
    public static func format(epochMilliseconds: Int64) -> String {
        let days = floorDivide(epochMilliseconds, 86_400_000)
        let millisecondOfDay = epochMilliseconds - days * 86_400_000
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        let secondOfDay = millisecondOfDay / 1000

        var bytes = [UInt8](repeating: 0, count: 24)
        func put(_ value: Int64, at offset: Int, width: Int) {
            var rest = value
            for position in stride(from: offset + width - 1, through: offset, by: -1) {
                bytes[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
        }
        put(year, at: 0, width: 4)
        bytes[4] = UInt8(ascii: "-")
        put(month, at: 5, width: 2)
        bytes[7] = UInt8(ascii: "-")
        put(day, at: 8, width: 2)
        bytes[10] = UInt8(ascii: "T")
        put(secondOfDay / 3600, at: 11, width: 2)
        bytes[13] = UInt8(ascii: ":")
        put(secondOfDay / 60 % 60, at: 14, width: 2)
        bytes[16] = UInt8(ascii: ":")
        put(secondOfDay % 60, at: 17, width: 2)
        bytes[19] = UInt8(ascii: ".")
        put(millisecondOfDay % 1000, at: 20, width: 3)
        bytes[23] = UInt8(ascii: "Z")
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Proleptic Gregorian date of a day count from 1970-01-01, computed through 400-year
    /// eras (146,097 days each) counted from 0000-03-01 so that leap days fall last.
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let daysSinceMarchFirstYear0 = daysSinceEpoch + 719_468
        let era = floorDivide(daysSinceMarchFirstYear0, 146_097)
        let dayOfEra = daysSinceMarchFirstYear0 - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }
}
