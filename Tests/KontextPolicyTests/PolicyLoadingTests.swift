#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KontextCore
import Testing
@testable import KontextPolicy

/// A fresh directory under /tmp, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/kontext-policy-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    func write(_ relative: String, _ text: String) -> String {
        let file = path + "/" + relative
        var directory = file
        directory.removeSubrange(directory.lastIndex(of: "/")!...)
        try! makeDirectories(directory)
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0)
        writeAll(text, to: fd)
        close(fd)
        return file
    }

    func remove() {
        // Only what these tests create: files under .kontext/, kontext/ and the top level.
        for file in [".kontext/policy.toml", "config/kontext/policy.toml", "custom.toml", "bad.toml", "home/.config/kontext/policy.toml"] {
            unlink(path + "/" + file)
        }
        for directory in [".kontext", "config/kontext", "config", "home/.config/kontext", "home/.config", "home", "a-directory", ""] {
            rmdir(path + "/" + directory)
        }
    }
}

/// The usage error that parsing `text` throws.
func loadError(_ text: String, path: String = "policy.toml") -> KontextError? {
    #expect(throws: KontextError.self) { try Policy.parse(text, path: path) }
}

@Suite struct PolicyLoadingErrorTests {
    @Test func badTOMLNamesFileAndPosition() {
        let error = loadError("""
            [[rule]]
            tool = "Bash
            decision = "deny"
            """)
        #expect(error?.status == .usage)
        #expect(error?.message.hasPrefix("policy.toml: invalid TOML at line 2, column ") == true, "\(error?.message ?? "")")
        #expect(error?.hint != nil)
    }

    @Test func unknownDecisionNamesRuleNumber() {
        let error = loadError("""
            [[rule]]
            decision = "allow"

            [[rule]]
            tool = "Bash"
            decision = "block"
            """)
        #expect(error?.status == .usage)
        #expect(error?.message == #"policy.toml: rule 2: unknown decision "block""#)
        #expect(error?.hint == #"decision must be "allow", "ask", "deny" or "approve""#)
    }

    @Test func missingDecision() {
        let error = loadError("""
            [[rule]]
            tool = "Bash"
            """)
        #expect(error?.message == "policy.toml: rule 1: no decision")
    }

    @Test func invalidRegexNamesRuleAndKey() {
        let error = loadError("""
            [[rule]]
            decision = "ask"

            [[rule]]
            decision = "ask"

            [[rule]]
            command = "re:curl (unclosed"
            decision = "deny"
            """)
        #expect(error?.status == .usage)
        #expect(error?.message.hasPrefix(#"policy.toml: rule 3: "command": invalid regular expression "curl (unclosed""#) == true,
                "\(error?.message ?? "")")
    }

    @Test func nonStringPatternIsRejectedWithAFix() {
        let error = loadError("""
            [[rule]]
            timeout = 600
            decision = "ask"
            """)
        #expect(error?.message == #"policy.toml: rule 1: "timeout" must be a pattern string or a non-empty array of them, not an integer (write timeout = "600" to match its JSON text)"#)

        #expect(loadError("""
            [[rule]]
            command = ["ls", 1]
            decision = "ask"
            """)?.message.hasPrefix(#"policy.toml: rule 1: "command" must be a pattern string"#) == true)
        #expect(loadError("""
            [[rule]]
            command = []
            decision = "ask"
            """)?.message.hasPrefix(#"policy.toml: rule 1: "command" must be a pattern string"#) == true)
        #expect(loadError("""
            [[rule]]
            decision = "ask"
            [rule.nested]
            x = "y"
            """)?.message.hasPrefix(#"policy.toml: rule 1: "nested" must be a pattern string"#) == true)
    }

    @Test func nonStringDecisionReasonOrId() {
        #expect(loadError("""
            [[rule]]
            decision = true
            """)?.message == #"policy.toml: rule 1: "decision" must be a string, not a boolean"#)
        #expect(loadError("""
            [[rule]]
            decision = "deny"
            id = 7
            """)?.message == #"policy.toml: rule 1: "id" must be a string, not an integer"#)
    }

    @Test func misspeltOrMisshapedRuleTables() {
        #expect(loadError("""
            [[rules]]
            decision = "deny"
            """)?.message == #"policy.toml: unknown top-level key "rules""#)
        #expect(loadError("""
            [rule]
            decision = "deny"
            """)?.message == #"policy.toml: "rule" must be an array of tables, not a table"#)
        #expect(loadError("""
            rule = ["deny"]
            """)?.message == "policy.toml: rule 1 is a string, not a table")
    }

    @Test func emptyFileIsAnEmptyPolicy() throws {
        let policy = try Policy.parse("# nothing yet\n", path: "policy.toml")
        #expect(policy.ruleCount == 0)
        #expect(policy.path == "policy.toml")
    }

    @Test func nulByteIsRejected() {
        #expect(loadError("[[rule]]\ndecision = \"allow\"\0\n")?.message == "policy.toml: the policy file contains a NUL byte")
    }

    @Test func loadReadsFileAndReportsUnreadable() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.write("custom.toml", """
            [[rule]]
            tool = "Bash"
            command = "curl *"
            decision = "deny"
            """)
        let policy = try Policy.load(path: file)
        #expect(policy.evaluate(toolName: "Bash", input: bash("curl x")).rule == "\(file)#1")

        let missing = directory.path + "/absent.toml"
        let error = #expect(throws: KontextError.self) { try Policy.load(path: missing) }
        #expect(error?.message == "\(missing): cannot read the policy file: No such file or directory")

        let bad = directory.write("bad.toml", "[[rule]\n")
        let badError = #expect(throws: KontextError.self) { try Policy.load(path: bad) }
        #expect(badError?.message.hasPrefix("\(bad): invalid TOML at line 1") == true)
    }
}

@Suite struct PolicyLocateTests {
    /// SPEC section 10: the project's file never replaces the user's; both are found.
    @Test func userAndProjectLayers() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let project = directory.path
        let config = directory.path + "/config"
        let environment = ["XDG_CONFIG_HOME": config, "HOME": directory.path + "/home"]

        // Nothing anywhere: no policy.
        #expect(try Policy.locate(settings: Settings(environment: environment), projectDirectory: project) == (nil, nil))

        let user = directory.write("config/kontext/policy.toml", "")
        #expect(try Policy.locate(settings: Settings(environment: environment), projectDirectory: project) == (user, nil))

        // The project's file is a layer of its own: it does not hide the user's.
        let projectFile = directory.write(".kontext/policy.toml", "")
        #expect(try Policy.locate(settings: Settings(environment: environment), projectDirectory: project) == (user, projectFile))

        // KONTEXT_POLICY names the user's layer (relative to the project directory).
        let custom = directory.write("custom.toml", "")
        var explicit = environment
        explicit["KONTEXT_POLICY"] = custom
        #expect(try Policy.locate(settings: Settings(environment: explicit), projectDirectory: project) == (custom, projectFile))
        explicit["KONTEXT_POLICY"] = "custom.toml"
        #expect(try Policy.locate(settings: Settings(environment: explicit), projectDirectory: project) == (custom, projectFile))
        explicit["KONTEXT_POLICY"] = ""
        #expect(try Policy.locate(settings: Settings(environment: explicit), projectDirectory: project) == (user, projectFile))
        // The same file named twice is one layer, the user's.
        explicit["KONTEXT_POLICY"] = ".kontext/policy.toml"
        #expect(try Policy.locate(settings: Settings(environment: explicit), projectDirectory: project) == (projectFile, nil))
    }

    @Test func configDefaultsToHomeDotConfig() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let user = directory.write("home/.config/kontext/policy.toml", "")
        let environment = ["HOME": directory.path + "/home"]
        #expect(try Policy.locate(settings: Settings(environment: environment), projectDirectory: directory.path).user == user)
        // A relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored.
        #expect(try Policy.locate(settings: Settings(environment: environment.merging(["XDG_CONFIG_HOME": "rel"]) { $1 }),
                                  projectDirectory: directory.path).user == user)
    }

    @Test func missingExplicitPolicyIsAUsageError() {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        _ = directory.write(".kontext/policy.toml", "")
        let error = #expect(throws: KontextError.self) {
            try Policy.locate(settings: Settings(environment: ["KONTEXT_POLICY": "/nonexistent/policy.toml"]), projectDirectory: directory.path)
        }
        #expect(error?.status == .usage)
        #expect(error?.message == "KONTEXT_POLICY=/nonexistent/policy.toml: No such file or directory")

        mkdir(directory.path + "/a-directory", 0o700)
        let notFile = #expect(throws: KontextError.self) {
            try Policy.locate(settings: Settings(environment: ["KONTEXT_POLICY": "a-directory"]), projectDirectory: directory.path)
        }
        #expect(notFile?.message == "KONTEXT_POLICY=a-directory: not a regular file")
    }
}
