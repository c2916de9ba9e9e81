import KontextCore
import Testing

/// Exact strings at the calendar's edges: the formatter takes its date from `gmtime_r`, so
/// these pin the fixed-width output the audit store sorts by.
@Suite struct UTCTimeTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-86_400_000, "1969-12-31T00:00:00.000Z"),
        (-2_208_988_800_000, "1900-01-01T00:00:00.000Z"),
        (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
        (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
        (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
        (2_147_483_648_000, "2038-01-19T03:14:08.000Z"),
        (1_795_843_685_399, "2026-11-28T05:28:05.399Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ])
    func formatsMilliseconds(_ epochMilliseconds: Int64, _ expected: String) {
        #expect(UTCTime.format(epochMilliseconds: epochMilliseconds) == expected)
    }

    @Test func formatsSecondsRoundedToTheMillisecond() {
        #expect(UTCTime.format(epochSeconds: 1_709_164_800.0004) == "2024-02-29T00:00:00.000Z")
        #expect(UTCTime.format(epochSeconds: 1_709_164_800.0006) == "2024-02-29T00:00:00.001Z")
        #expect(UTCTime.format(epochSeconds: -0.5) == "1969-12-31T23:59:59.500Z")
    }

    @Test func nowHasTheFixedWidthForm() {
        let now = UTCTime.now()
        #expect(now.utf8.count == 24)
        #expect(now.hasSuffix("Z"))
        #expect(now >= "2026-")
    }
}
