import Testing
@testable import KontextPolicy

@Suite struct ShellScannerTests {
    func commands(_ script: String) -> [[String]] {
        ShellScanner.simpleCommands(in: script)
    }

    @Test func separators() {
        #expect(commands("a 1; b 2 && c || d | e & f\ng") == [["a", "1"], ["b", "2"], ["c"], ["d"], ["e"], ["f"], ["g"]])
    }

    @Test func quotingAndEscapes() {
        #expect(commands(#"echo 'a b' "c $d" e\ f "" $'x\'y'"#) == [["echo", "a b", "c $d", "e f", "", "x'y"]])
        #expect(commands("echo a \\\n b") == [["echo", "a", "b"]])
        #expect(commands("echo 'a;b' \"c|d\"") == [["echo", "a;b", "c|d"]])
    }

    @Test func substitutionsAreListedAsTheirOwnCommands() {
        #expect(commands("echo $(date +%s) `whoami` \"$(id -u)\"") == [["date", "+%s"], ["whoami"], ["id", "-u"], ["echo", "$(…)", "$(…)", "$(…)"]])
        #expect(commands("x=$(( 1 + 2 )); (cd sub && make)") == [["1", "+", "2"], ["x=$(…)"], ["cd", "sub"], ["make"]])
        #expect(commands("diff <(sort a) >(tee b)") == [["sort", "a"], ["tee", "b"], ["diff", "$(…)", "$(…)"]])
    }

    @Test func redirectionsAreDropped() {
        #expect(commands("cmd > out 2>&1 < in >> log &> all 3<&- x") == [["cmd", "x"]])
        #expect(commands("cmd 2>err arg") == [["cmd", "arg"]])
        #expect(commands("cat <<< 'here string' | wc") == [["cat"], ["wc"]])
    }

    @Test func heredocBodiesAreSkipped() {
        #expect(commands("cat <<EOF > f\nline one\nenv\nEOF\nls") == [["cat"], ["ls"]])
        #expect(commands("cat <<-'END'\n\tbody\n\tEND\necho done") == [["cat"], ["echo", "done"]])
        #expect(commands("a <<X; b <<Y\nx\nX\ny\nY\nc") == [["a"], ["b"], ["c"]])
    }

    @Test func commentsAreSkipped() {
        #expect(commands("ls # env\necho a#b") == [["ls"], ["echo", "a#b"]])
    }

    @Test func hostileInputDoesNotCrash() {
        _ = commands(String(repeating: "$(", count: 100_000))
        _ = commands(String(repeating: "\"`", count: 10_000))
        _ = commands("echo 'unterminated")
        _ = commands("cat <<EOF\nno end")
        #expect(commands("a)b") == [["a"], ["b"]])
    }
}

@Suite struct ShellScannerInputTests {
    func commands(_ script: String) -> [ShellScanner.SimpleCommand] {
        ShellScanner.commands(in: script)
    }

    @Test func pipesAreMarkedOnTheReadingCommand() {
        #expect(commands("a | b |& c || d; e").map(\.readsPipe) == [false, true, true, false, false])
        #expect(commands("a >| f | b").map(\.readsPipe) == [false, true])
    }

    @Test func hereStringsAndHereDocumentsAreTheCommandsInput() {
        #expect(commands("bash <<< 'ls; env'").map(\.input) == ["ls; env"])
        #expect(commands("sh <<EOF\nenv\nmake\nEOF\nls").map(\.input) == ["env\nmake\n", nil])
        #expect(commands("x $(cat <<-'E'\n\tbody\n\tE\n)").map(\.input) == ["body\n", nil])
    }

    @Test func redirectionTargetsAreKeptApart() {
        #expect(commands("tr a b < in > out 2>&1 x").map(\.redirectTargets) == [["in", "out", "1"]])
        #expect(commands("tr a b < in > out 2>&1 x").map(\.words) == [["tr", "a", "b", "x"]])
    }

    @Test func substitutionsInUnquotedHereDocumentsAreCommands() {
        #expect(commands("cat <<EOF\nvalue: $(env)\nEOF").map(\.words) == [["cat"], ["env"]])
        #expect(commands("cat <<E >f\n`printenv`\nE\nls").map(\.words) == [["cat"], ["printenv"], ["ls"]])
        #expect(commands("cat <<'EOF'\nvalue: $(env)\nEOF").map(\.words) == [["cat"]])
        #expect(commands("cat <<\\EOF\nvalue: $(env)\nEOF").map(\.words) == [["cat"]])
        _ = commands("cat <<EOF\n" + String(repeating: "$(", count: 100_000))
        _ = commands("cat <<EOF\n" + String(repeating: "`\n", count: 10_000))
    }
}
