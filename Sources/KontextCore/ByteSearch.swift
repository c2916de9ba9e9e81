#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Substring search over UTF-8 bytes: exact, byte for byte, so a secret is found wherever its
/// bytes occur (String's own search compares characters, which can miss a value that ends
/// just before a combining mark). libc's vectorised `memchr` finds candidate first bytes and
/// `memcmp` checks them (`memmem` is a GNU extension the Glibc module does not export).
/// An empty needle is found at `start`.
public enum ByteSearch {
    public static func firstIndex(of needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>, from start: Int = 0) -> Int? {
        guard let first = needle.first else { return start }
        guard let base = haystack.baseAddress, start >= 0 else { return nil }
        return needle.withUnsafeBytes { needleBytes -> Int? in
            let lastStart = haystack.count - needle.count
            var position = start
            while position <= lastStart {
                guard let candidate = memchr(base + position, Int32(first), lastStart - position + 1) else { return nil }
                position = UnsafeRawPointer(candidate) - UnsafeRawPointer(base)
                if memcmp(candidate, needleBytes.baseAddress!, needle.count) == 0 { return position }
                position += 1
            }
            return nil
        }
    }

    public static func contains(_ needle: [UInt8], in text: String) -> Bool {
        if let found = text.utf8.withContiguousStorageIfAvailable({ firstIndex(of: needle, in: $0) != nil }) {
            return found
        }
        return Array(text.utf8).withUnsafeBufferPointer { firstIndex(of: needle, in: $0) != nil }
    }
}
