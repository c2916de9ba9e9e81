import Testing
@testable import KontextEnvFile

@Suite struct EnvFileGrammarTests {
    @Test func parsesEveryFormOfSection4() throws {
        let file = try EnvFile.parse("""
            # a comment line

            GITHUB_TOKEN=<<kontext:github>>
            export LINEAR_API_KEY="<<kontext:linear>>"
            DATABASE_URL=postgres://app:<<kontext:postgres/app-ro>>@db.internal/app
            LOG_LEVEL=debug            # literal values pass through untouched
            LEGACY={{kontext:legacy.svc}}
            SINGLE='<<kontext:single_q-1>> and # not a comment'
            TWO=<<kontext:a>>:<<kontext:b/r.1>>
            HASH=a#b
            SPACED = spaced value   
            ESCAPED="line1\\nline2 \\"q\\" \\$HOME"
            EMPTY=
            """)
        let values = Dictionary(uniqueKeysWithValues: file.variables.map { ($0.key, $0.value { "[\($0.target)]" }) })
        #expect(values == [
            "GITHUB_TOKEN": "[github]",
            "LINEAR_API_KEY": "[linear]",
            "DATABASE_URL": "postgres://app:[postgres/app-ro]@db.internal/app",
            "LOG_LEVEL": "debug",
            "LEGACY": "[legacy.svc]",
            "SINGLE": "[single_q-1] and # not a comment",
            "TWO": "[a]:[b/r.1]",
            "HASH": "a#b",
            "SPACED": "spaced value",
            "ESCAPED": "line1\nline2 \"q\" $HOME",
            "EMPTY": "",
        ])
        #expect(file.variables.map(\.key).first == "GITHUB_TOKEN")
        #expect(file.placeholders.map(\.target) == ["github", "linear", "postgres/app-ro", "legacy.svc", "single_q-1", "a", "b/r.1"])
        let database = file.variables.first { $0.key == "DATABASE_URL" }!
        #expect(database.placeholders == [Placeholder(service: "postgres", resource: "app-ro")])
        #expect(database.line == 5)
    }

    @Test func laterDefinitionWinsAndPlaceholdersAreDeduplicated() throws {
        let file = try EnvFile.parse("A=<<kontext:x>>\nB=<<kontext:x>>\nA=literal\n")
        #expect(file.variables.map(\.key) == ["A", "B"])
        #expect(file.variables[0].segments == [.literal("literal")])
        #expect(file.placeholders == [Placeholder(service: "x")])
    }

    @Test func multiLineQuotedValueAndCRLF() throws {
        let file = try EnvFile.parse("KEY=\"first\nsecond <<kontext:svc>>\"\r\nNEXT=ok\r\n")
        #expect(file.variables.map { $0.value { _ in "V" } } == ["first\nsecond V", "ok"])
    }

    @Test func legacyAndNewSyntaxAreTheSamePlaceholder() throws {
        let file = try EnvFile.parse("A=<<kontext:gh>>\nB={{kontext:gh}}\n")
        #expect(file.placeholders.count == 1)
    }

    @Test func serviceNamesFromCommandLine() {
        #expect(Placeholder(target: "postgres/app-ro") == Placeholder(service: "postgres", resource: "app-ro"))
        #expect(Placeholder(target: "github")?.resource == nil)
        for bad in ["", "/x", "x/", "a b", "a/b/c", "a$"] { #expect(Placeholder(target: bad) == nil) }
    }
}

@Suite struct EnvFileErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var text: String
        var line: Int
        var column: Int
        var reason: String
        var testDescription: String { reason }
    }

    static let cases: [Case] = [
        Case(text: "OK=1\nA=<<kontext:>>\n", line: 2, column: 3, reason: "empty service name"),
        Case(text: "A=x <<kontext:github\n", line: 1, column: 5, reason: "unclosed placeholder"),
        Case(text: "A=<<kontext:git hub>>\n", line: 1, column: 16, reason: "invalid character ' ' in placeholder"),
        Case(text: "A=\"{{kontext:gh$}}\"\n", line: 1, column: 16, reason: "invalid character '$' in placeholder"),
        Case(text: "\n\nA=\"unterminated\nB=2\n", line: 3, column: 3, reason: "unclosed \" quote"),
        Case(text: "A='x\n", line: 1, column: 3, reason: "unclosed ' quote"),
        Case(text: "=value\n", line: 1, column: 1, reason: "empty variable name"),
        Case(text: "  =value\n", line: 1, column: 3, reason: "empty variable name"),
        Case(text: "1A=x\n", line: 1, column: 1, reason: "invalid character '1' in variable name"),
        Case(text: "JUSTAWORD\n", line: 1, column: 10, reason: "expected '=' after JUSTAWORD"),
        Case(text: "A=<<kontext:svc/>>\n", line: 1, column: 3, reason: "empty resource name"),
        Case(text: "A=\"v\" trailing\n", line: 1, column: 7, reason: "unexpected text after closing"),
    ]

    @Test(arguments: cases) func malformedInputNamesLineAndColumn(_ c: Case) {
        #expect {
            try EnvFile.parse(c.text, path: "f.env")
        } throws: { error in
            guard let error = error as? EnvFileSyntaxError else { return false }
            return error.path == "f.env" && error.line == c.line && error.column == c.column
                && error.reason.contains(c.reason)
                && error.description.hasPrefix("f.env:\(c.line):\(c.column): ")
        }
    }
}
