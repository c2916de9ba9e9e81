import KontextCore

/// Opens `url` with `$BROWSER` (the first of its colon-separated commands; `%s` stands for
/// the URL) or `xdg-open`; false when neither can be started. The browser is not waited for:
/// it may be the very thing that answers (a login's redirect, the audit page).
public func openInBrowser(_ url: String, environment: [String: String]) -> Bool {
    var command: [String]
    if let browser = environment["BROWSER"]?.split(separator: ":").first.map(String.init), !browser.isEmpty {
        let words = browser.split(separator: " ").map(String.init)
        command = words.contains("%s") ? words.map { $0 == "%s" ? url : $0 } : words + [url]
    } else {
        command = ["xdg-open", url]
    }
    guard let program = ChildProcess.locate(command[0], path: environment["PATH"]) else { return false }
    let child = ChildProcess(executable: program, arguments: Array(command.dropFirst()),
                             environment: environment.map { (key: $0.key, value: $0.value) })
    guard let pid = try? child.spawn() else { return false }
    startThread { _ = ChildProcess.wait(for: pid) }
    return true
}
