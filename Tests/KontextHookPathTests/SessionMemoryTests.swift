import Foundation
import KontextProcess
import Testing

/// A session process gives back the pages its start-up used once the agent runs (SPEC section
/// 9's sidecar RSS): only the program's read-only segments, so its data survives and its code
/// keeps running.
@Suite struct SessionMemoryTests {
    /// Changed at run time, so a release that wrongly dropped writable pages would reset it.
    nonisolated(unsafe) static var written = 0

    /// Resident kilobytes of this program's read-only mappings, from /proc/self/smaps.
    static func residentReadOnlyKB() throws -> Int {
        let program = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var inProgram = false
        var total = 0
        for line in try String(contentsOfFile: "/proc/self/smaps", encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, range.contains("-"), fields.count >= 5 {
                inProgram = fields.count >= 6 && fields[5] == program && !fields[1].contains("w")
            } else if inProgram, fields.first == "Rss:", fields.count >= 2 {
                total += Int(fields[1]) ?? 0
            }
        }
        return total
    }

    @Test func theProgramsReadOnlyPagesAreGivenBackAndItsDataStays() throws {
        Self.written = Int.random(in: 1...1_000_000)
        let expected = Self.written
        let before = try Self.residentReadOnlyKB()
        let released = SessionMemory.settle()
        let after = try Self.residentReadOnlyKB()
        #expect(released > 0)
        #expect(before > 1024, "the test program should have touched more than 1 MB of code by now (\(before) KB)")
        #expect(after < before / 2, "resident read-only pages: \(before) KB before, \(after) KB after")
        #expect(Self.written == expected)
    }
}
