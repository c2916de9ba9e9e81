extension EnvFile {
    /// A family of variables an env file may not set, with why (SPEC section 10). A
    /// repository's `.env.kontext` reaches the agent's environment before the agent asks
    /// whether the repository is trusted, so nothing in it may run code, change how programs
    /// start, or move the agent's configuration, trust store or network traffic.
    public struct RefusedVariableGroup: Sendable {
        /// A heading for the README and `kontext env`, e.g. "Dynamic loader".
        public var title: String
        /// Completes "NAME may not be set from an env file: …".
        public var reason: String
        /// Exact names, or prefixes written `NAME_*`.
        public var patterns: [String]
        /// Proxy variables are read in either case by curl, Python, Node and Go alike.
        public var matchesAnyCase: Bool

        init(_ title: String, _ reason: String, anyCase: Bool = false, _ patterns: [String]) {
            self.title = title
            self.reason = reason
            self.patterns = patterns
            self.matchesAnyCase = anyCase
        }

        public func matches(_ name: String) -> Bool {
            let name = matchesAnyCase ? name.uppercased() : name
            return patterns.contains { pattern in
                pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
            }
        }
    }

    /// Every variable an env file may not set; the one list the parser, the README and
    /// `kontext env` cite. Names match case-sensitively, as the OS does, except proxies.
    public static let refusedVariables: [RefusedVariableGroup] = [
        RefusedVariableGroup("Dynamic loader and library plug-ins", "it changes how programs load code", [
            "LD_*", "DYLD_*", "GLIBC_TUNABLES", "GCONV_PATH",
            "OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES",
            "GIO_EXTRA_MODULES", "GIO_MODULE_DIR", "GTK_MODULES", "GTK_PATH", "QT_PLUGIN_PATH",
        ]),
        RefusedVariableGroup("Language runtimes", "it makes a language runtime load or run code at start-up", [
            "NODE_OPTIONS", "NODE_PATH", "NODE_REPL_EXTERNAL_MODULE",
            "PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONWARNINGS",
            "PYTHONBREAKPOINT", "PYTHONPYCACHEPREFIX",
            "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB",
            "RUBYOPT", "RUBYLIB", "GEM_PATH", "GEM_HOME",
            "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH",
            "DOTNET_STARTUP_HOOKS", "DOTNET_ADDITIONAL_DEPS", "CORECLR_ENABLE_PROFILING", "CORECLR_PROFILER*",
            "LUA_INIT*", "LUA_PATH*", "LUA_CPATH*",
        ]),
        RefusedVariableGroup("Shells", "it changes which programs a shell runs or what it runs at start-up", [
            "PATH", "SHELL", "BASH_ENV", "ENV", "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS4",
            "ZDOTDIR", "SHELLOPTS", "BASHOPTS", "BASH_FUNC_*", "BASH_LOADABLES_PATH", "IFS", "FPATH", "CDPATH",
        ]),
        RefusedVariableGroup("Git and SSH", "it makes git or ssh run a program or read another configuration", [
            "GIT_CONFIG", "GIT_CONFIG_*", "GIT_DIR", "GIT_COMMON_DIR", "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR",
            "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_PROXY_COMMAND", "GIT_EXTERNAL_DIFF",
            "SSH_ASKPASS*", "SUDO_ASKPASS",
        ]),
        RefusedVariableGroup("Editors, pagers and browsers", "it names a program that other programs start for you", [
            "BROWSER", "EDITOR", "VISUAL", "SUDO_EDITOR", "FCEDIT", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR",
            "PAGER", "MANPAGER", "GIT_PAGER", "LESS", "LESSOPEN", "LESSCLOSE", "LESSEDIT", "LESSKEY", "LESSKEYIN",
        ]),
        RefusedVariableGroup("Configuration, trust store and agent",
                             "it moves where kontext, the agent or other programs find their configuration, consent records or keyring", [
            "HOME", "XDG_*", "DBUS_SESSION_BUS_ADDRESS", "KONTEXT_*", "CLAUDE_*",
            "ANTHROPIC_BASE_URL", "ANTHROPIC_BEDROCK_BASE_URL", "ANTHROPIC_VERTEX_BASE_URL",
        ]),
        RefusedVariableGroup("TLS trust", "it changes which servers programs trust, so traffic could be intercepted", [
            "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS", "NODE_TLS_REJECT_UNAUTHORIZED",
            "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_SSL_NO_VERIFY", "SSLKEYLOGFILE",
        ]),
        RefusedVariableGroup("Proxies (any case)", "it routes programs' traffic through a proxy of the project's choosing",
                             anyCase: true, [
            "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY",
        ]),
    ]

    /// The group that refuses `name`, or nil when an env file may set it.
    public static func refusal(forName name: String) -> RefusedVariableGroup? {
        refusedVariables.first { $0.matches(name) }
    }
}
