import Testing
@testable import KontextEnvFile

/// SPEC section 10: an env file may not set variables that load code, change how programs
/// start, or redirect the agent's configuration and traffic.
@Suite struct RefusedVariableTests {
    func refusal(_ text: String) -> EnvFileSyntaxError? {
        do {
            _ = try EnvFile.parse(text, path: ".env.kontext")
            return nil
        } catch let error as EnvFileSyntaxError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test(arguments: [
        // Prefix families.
        "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH",
        "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_GLOBAL", "KONTEXT_POLICY", "KONTEXT_SOCKET",
        "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_SHELL_PREFIX", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_DIRS",
        "BASH_FUNC_ls", "SSH_ASKPASS_REQUIRE", "CORECLR_PROFILER_PATH", "LUA_INIT", "LUA_PATH_5_4",
        // Exact names from the issue.
        "NODE_OPTIONS", "PYTHONSTARTUP", "PYTHONPATH", "PERL5OPT", "RUBYOPT", "BASH_ENV", "ENV",
        "PROMPT_COMMAND", "GIT_SSH_COMMAND",
        // Code search paths and start-up hooks of language runtimes.
        "NODE_PATH", "NODE_REPL_EXTERNAL_MODULE", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONWARNINGS",
        "PYTHONBREAKPOINT", "PERL5LIB", "PERLLIB", "PERL5DB", "RUBYLIB", "GEM_PATH", "GEM_HOME",
        "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "DOTNET_STARTUP_HOOKS",
        "DOTNET_ADDITIONAL_DEPS", "CORECLR_ENABLE_PROFILING",
        // Loader and library plug-ins.
        "GCONV_PATH", "GLIBC_TUNABLES", "OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES",
        "GIO_EXTRA_MODULES", "GIO_MODULE_DIR", "GTK_MODULES", "QT_PLUGIN_PATH",
        // Shell start-up.
        "PATH", "SHELL", "ZDOTDIR", "SHELLOPTS", "BASHOPTS", "IFS", "PS0", "PS1", "PS2", "PS4", "FPATH",
        "CDPATH", "BASH_LOADABLES_PATH",
        // Git and SSH.
        "GIT_SSH", "GIT_EXEC_PATH", "GIT_ASKPASS", "SSH_ASKPASS", "SUDO_ASKPASS", "GIT_PROXY_COMMAND",
        "GIT_EXTERNAL_DIFF", "GIT_TEMPLATE_DIR", "GIT_DIR", "GIT_COMMON_DIR", "GIT_CONFIG",
        // Programs started on the user's behalf.
        "BROWSER", "EDITOR", "VISUAL", "PAGER", "MANPAGER", "GIT_PAGER", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR",
        "SUDO_EDITOR", "FCEDIT", "LESS", "LESSOPEN", "LESSCLOSE", "LESSKEYIN",
        // Where configuration, the trust store and the keyring are found.
        "HOME", "DBUS_SESSION_BUS_ADDRESS", "ANTHROPIC_BASE_URL", "ANTHROPIC_BEDROCK_BASE_URL",
        "ANTHROPIC_VERTEX_BASE_URL",
        // TLS trust.
        "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
        "NODE_TLS_REJECT_UNAUTHORIZED", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_SSL_NO_VERIFY", "SSLKEYLOGFILE",
        // Proxies, in either case.
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "Https_Proxy",
        "FTP_PROXY", "ftp_proxy",
    ])
    func refusedNameIsASyntaxErrorAtTheName(_ name: String) throws {
        let error = try #require(refusal("OK=1\n\(name)=./evil\n"), "\(name) was accepted")
        #expect(error.line == 2)
        #expect(error.column == 1)
        #expect(error.description.hasPrefix(".env.kontext:2:1: \(name) may not be set from an env file: "))
        #expect(!error.description.contains("\n"))
        #expect(EnvFile.refusal(forName: name) != nil)
    }

    @Test func columnIsTheNameAfterExportAndBlanks() throws {
        let error = try #require(refusal("# comment\n  export   LD_PRELOAD=./evil.so\n"))
        #expect((error.line, error.column) == (2, 12))
        #expect(error.description == ".env.kontext:2:12: LD_PRELOAD may not be set from an env file: it changes how programs load code")
    }

    @Test func refusalIsAUsageErrorWithAHint() throws {
        let error = try #require(refusal("NODE_OPTIONS=\"--require ./x.js\"\n"))
        let kontextError = error.kontextError
        #expect(kontextError.status == .usage)
        #expect(kontextError.message.hasPrefix(".env.kontext:1:1: NODE_OPTIONS may not be set from an env file"))
        #expect(kontextError.hint?.contains("nothing was launched") == true)
        #expect(kontextError.hint?.contains("remove NODE_OPTIONS") == true)
    }

    @Test func refusedEvenWithAPlaceholderValueOrEmpty() {
        #expect(refusal("GIT_ASKPASS=<<kontext:github>>\n") != nil)
        #expect(refusal("LD_PRELOAD=\n") != nil)
    }

    @Test func namesAreCaseSensitiveExceptProxies() {
        // The OS matches names exactly: `ld_preload` and `Path` load nothing.
        for name in ["ld_preload", "Path", "node_options", "home", "kontext_policy"] {
            #expect(refusal("\(name)=x\n") == nil, "\(name)")
        }
        // Programs read proxies in either case, so every case is refused.
        for name in ["http_proxy", "HTTP_PROXY", "hTtP_pRoXy"] {
            #expect(refusal("\(name)=http://10.0.0.1:3128\n") != nil, "\(name)")
        }
    }

    @Test(arguments: [
        "GITHUB_TOKEN", "LOG_LEVEL", "LD", "ENVIRONMENT", "MY_LD_PRELOAD", "NODE_ENV", "PYTHONUNBUFFERED",
        "DATABASE_URL", "ANTHROPIC_API_KEY", "GIT_AUTHOR_NAME", "KONTEXT", "PATHS", "HOMEPAGE_URL",
        "LDAP_URL", "ENV_NAME", "XDG", "NO_PROXY", "PROXY_URL", "JAVA_HOME", "LANG",
    ])
    func ordinaryNamesPass(_ name: String) throws {
        let file = try EnvFile.parse("\(name)=<<kontext:svc>>\n")
        #expect(file.variables.map(\.key) == [name])
        #expect(EnvFile.refusal(forName: name) == nil)
    }

    @Test func everyGroupHasPatternsAndAReason() {
        #expect(EnvFile.refusedVariables.count >= 6)
        for group in EnvFile.refusedVariables {
            #expect(!group.patterns.isEmpty && !group.reason.isEmpty && !group.title.isEmpty)
            for pattern in group.patterns {
                // A prefix family is written `NAME_*`; its prefix is itself refused.
                let sample = pattern.hasSuffix("*") ? String(pattern.dropLast()) + "X" : pattern
                #expect(EnvFile.refusal(forName: sample)?.title == group.title, "\(pattern)")
            }
        }
    }
}
