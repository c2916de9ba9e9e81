/// Text kontext did not write (a server's answer, an agent's tool call, a repository's
/// policy) as it may be shown to a person: one line, at most `limit` characters, with every
/// control character (C0, DEL, C1: terminal escapes such as an OSC title change, carriage
/// returns that overprint) and every bidirectional override replaced by a space.
public func sanitized(_ text: String, limit: Int = 300) -> String {
    var line = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        line.append(isHiddenFromDisplay(scalar) ? " " : scalar)
    }
    var trimmed = Substring(String(line))
    while trimmed.first == " " { trimmed.removeFirst() }
    while trimmed.last == " " { trimmed.removeLast() }
    return trimmed.count > limit ? String(trimmed.prefix(limit)) + "…" : String(trimmed)
}

/// Characters a terminal acts on instead of showing, or that reorder what is shown.
private func isHiddenFromDisplay(_ scalar: Unicode.Scalar) -> Bool {
    if scalar.properties.generalCategory == .control { return true }
    switch scalar.value {
    case 0x202A...0x202E, 0x2066...0x2069: return true  // bidi embeddings, overrides, isolates
    default: return false
    }
}
