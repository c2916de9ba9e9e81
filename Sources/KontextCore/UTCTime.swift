#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 3339 timestamps in UTC with milliseconds (`2026-11-22T10:23:43.123Z`), digits written
/// by hand: every audit event takes one on the hook path, and this fixed-width form sorts
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

    /// Milliseconds since 1970 of a time in this form (`YYYY-MM-DDTHH:MM:SS[.fff]Z`); nil for
    /// any other text. `timegm` is libc's inverse of `gmtime_r`.
    public static func epochMilliseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return nil }
                value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19) else { return nil }
        var milliseconds = 0
        if bytes[19] == UInt8(ascii: ".") {
            guard bytes.count == 24, let fraction = number(20..<23) else { return nil }
            milliseconds = fraction
        } else if bytes.count != 20 {
            return nil
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        return Int64(timegm(&parts)) * 1000 + Int64(milliseconds)
    }

    /// Formats seconds since 1970 (an OAuth `exp`, say), to the millisecond.
    public static func format(epochSeconds: Double) -> String {
        format(epochMilliseconds: Int64((epochSeconds * 1000).rounded()))
    }

    /// Formats milliseconds since 1970-01-01T00:00:00Z (years 0000–9999). The calendar
    /// arithmetic is libc's `gmtime_r`; the digits are written by hand because `strftime`
    /// has no milliseconds and this runs once per audit event.
    public static func format(epochMilliseconds: Int64) -> String {
        let seconds = floorDivide(epochMilliseconds, 1000)
        let milliseconds = epochMilliseconds - seconds * 1000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)

        var bytes = [UInt8](repeating: 0, count: 24)
        func put(_ value: Int64, at offset: Int, width: Int) {
            var rest = value
            for position in stride(from: offset + width - 1, through: offset, by: -1) {
                bytes[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
        }
        put(Int64(parts.tm_year) + 1900, at: 0, width: 4)
        bytes[4] = UInt8(ascii: "-")
        put(Int64(parts.tm_mon) + 1, at: 5, width: 2)
        bytes[7] = UInt8(ascii: "-")
        put(Int64(parts.tm_mday), at: 8, width: 2)
        bytes[10] = UInt8(ascii: "T")
        put(Int64(parts.tm_hour), at: 11, width: 2)
        bytes[13] = UInt8(ascii: ":")
        put(Int64(parts.tm_min), at: 14, width: 2)
        bytes[16] = UInt8(ascii: ":")
        put(Int64(parts.tm_sec), at: 17, width: 2)
        bytes[19] = UInt8(ascii: ".")
        put(milliseconds, at: 20, width: 3)
        bytes[23] = UInt8(ascii: "Z")
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }
}
