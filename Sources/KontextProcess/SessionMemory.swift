import CKontextProcess

/// A session process starts once and then serves hooks for hours (SPEC section 9's RSS target
/// is the sidecar's, not start-up's). Once the agent runs, `settle()` gives back the pages of
/// code and constants start-up used (only the program's read-only segments: clean file pages,
/// which fault back in from the page cache when used again) and the heap start-up freed, and
/// keeps the hook threads to two malloc arenas.
public enum SessionMemory {
    /// Bytes of the program's read-only segments released (0 where unsupported).
    @discardableResult
    public static func settle() -> Int {
        kontext_settle_session_memory()
    }
}
