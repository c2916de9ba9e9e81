#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextHookWire

// The `kontext` front. `kontext hook …` runs on every agent tool call, so it is answered
// here by a static binary that loads nothing; every other command is handed, arguments
// untouched, to the full `kontext-cli` installed beside this file.

let arguments = CommandLine.arguments
if arguments.count > 1, arguments[1] == "hook",
   !arguments.contains("--help"), !arguments.contains("-h") {
    exit(HookClient.run(arguments: Array(arguments.dropFirst(2))) { name in
        getenv(name).map { String(cString: $0) }
    })
}

/// The directory holding this executable, from /proc (argv[0] may be a bare name on PATH).
func ownDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let path = length > 0 ? String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : arguments[0]
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return String(path[..<slash])
}

let full = ownDirectory() + "/kontext-cli"
var argv: [UnsafeMutablePointer<CChar>?] = [strdup("kontext")] + arguments.dropFirst().map { strdup($0) } + [nil]
execv(full, &argv)
let reason = String(cString: strerror(errno))
writeFully(2, Array("kontext: cannot run \(full): \(reason); install kontext-cli next to kontext\n".utf8))
exit(5)
