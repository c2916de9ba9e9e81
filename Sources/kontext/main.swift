#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextAgent
import KontextHookWire

// The `kontext` front. `kontext hook …` runs on every agent tool call, so it is answered
// here by a static binary that loads nothing; every other command is handed, arguments
// untouched, to the full `kontext-cli` installed beside this file.

let arguments = CommandLine.arguments
if arguments.count > 1, arguments[1] == "hook",
   !arguments.contains("--help"), !arguments.contains("-h") {
    exit(HookClient.run(arguments: Array(arguments.dropFirst(2)), agents: AgentAdapters.all) { name in
        getenv(name).map { String(cString: $0) }
    })
}

let full = executableDirectory() + "/kontext-cli"
var argv: [UnsafeMutablePointer<CChar>?] = [strdup("kontext")] + arguments.dropFirst().map { strdup($0) } + [nil]
execv(full, &argv)
let reason = String(cString: strerror(errno))
writeFully(2, Array("kontext: cannot run \(full): \(reason); install kontext-cli next to kontext\n".utf8))
exit(5)
