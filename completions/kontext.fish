function __kontext_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __kontext_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __kontext_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __kontext_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __kontext_parse_tokens -S
    set -l unparsed_tokens (__kontext_tokens -pc)
    switch $unparsed_tokens[1]
    case 'kontext'
        __kontext_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'start'
            __kontext_parse_subcommand -r 1 'verbose' 'id-token-file=' 'agent=' 'agent-command=' 'mode=' 'env-file=' 'allow-partial' 'proxy' 'version' 'h/help'
        case 'run'
            __kontext_parse_subcommand -r 1 'verbose' 'id-token-file=' 'env-file=' 'allow-partial' 'proxy' 'version' 'h/help'
        case 'env'
            __kontext_parse_subcommand 0 'verbose' 'id-token-file=' 'env-file=' 'version' 'h/help'
        case 'hook'
            __kontext_parse_subcommand 1 'agent=' 'version' 'h/help'
        case 'login'
            __kontext_parse_subcommand 0 'verbose' 'device' 'no-browser' 'timeout=' 'version' 'h/help'
        case 'logout'
            __kontext_parse_subcommand 0 'verbose' 'version' 'h/help'
        case 'whoami'
            __kontext_parse_subcommand 0 'verbose' 'id-token-file=' 'version' 'h/help'
        case 'provider'
            __kontext_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'add'
                __kontext_parse_subcommand 1 'version' 'h/help'
            case 'list'
                __kontext_parse_subcommand 0 'version' 'h/help'
            case 'remove'
                __kontext_parse_subcommand 1 'version' 'h/help'
            end
        case 'audit'
            __kontext_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'sessions'
                __kontext_parse_subcommand 0 'limit=' 'remote' 'version' 'h/help'
            case 'tail'
                __kontext_parse_subcommand 0 'l/lines=' 'f/follow' 'version' 'h/help'
            case 'show'
                __kontext_parse_subcommand 1 'remote' 'version' 'h/help'
            case 'export'
                __kontext_parse_subcommand 0 'format=' 'session=' 'version' 'h/help'
            case 'verify'
                __kontext_parse_subcommand 1 'file=' 'remote' 'public-key=' 'witness-key=' 'version' 'h/help'
            case 'key'
                __kontext_parse_subcommand 0 'version' 'h/help'
            case 'ui'
                __kontext_parse_subcommand 0 'remote' 'no-browser' 'port=' 'version' 'h/help'
            end
        case 'trust'
            __kontext_parse_subcommand 1 'env-file=' 'list' 'revoke' 'version' 'h/help'
        case 'policy'
            __kontext_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'check'
                __kontext_parse_subcommand 0 'event=' 'agent=' 'version' 'h/help'
            case 'show'
                __kontext_parse_subcommand 0 'version' 'h/help'
            end
        case 'approve'
            __kontext_parse_subcommand 1 'list' 'remote' 'version' 'h/help'
        case 'deny'
            __kontext_parse_subcommand 1 'remote' 'version' 'h/help'
        case 'doctor'
            __kontext_parse_subcommand 0 'verbose' 'agent=' 'env-file=' 'version' 'h/help'
        case 'broker'
            __kontext_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'serve'
                __kontext_parse_subcommand 0 'config=' 'db=' 'listen=' 'log-level=' 'version' 'h/help'
            case 'provider'
                __kontext_parse_subcommand 0 'version' 'h/help'
                switch $unparsed_tokens[1]
                case 'add'
                    __kontext_parse_subcommand 1 'config=' 'db=' 'principal=' 'oauth' 'version' 'h/help'
                case 'list'
                    __kontext_parse_subcommand 0 'config=' 'db=' 'version' 'h/help'
                case 'remove'
                    __kontext_parse_subcommand 1 'config=' 'db=' 'principal=' 'version' 'h/help'
                case 'rekey'
                    __kontext_parse_subcommand 0 'config=' 'db=' 'version' 'h/help'
                end
            end
        case 'help'
            __kontext_parse_subcommand -r 1 'version'
        end
    end
end

function __kontext_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __kontext_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __kontext_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __kontext_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__kontext_tokens -p)
    if test -z "$(__kontext_tokens -t)"
        set -l index (count (__kontext_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'kontext' -f
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'start' -d 'Launch an AI coding agent with credentials injected and every hook checked and audited.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'run' -d 'Run a command with the env file\'s credentials in its environment.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'env' -d 'List the env file\'s variables, their placeholders and whether each resolves.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'hook' -d 'Called by agent hooks, not people: checks and records one hook event.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'login' -d 'Sign in to the OIDC issuer (remote mode) and keep the login in the OS keyring.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'logout' -d 'Revoke the login at the issuer (RFC 7009, when it offers revocation) and delete it from the keyring.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'whoami' -d 'Show who kontext acts as: subject, email, issuer and expiry (never a token).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'provider' -d 'Manage local mode\'s provider credentials in the OS keyring.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'audit' -d 'Read the local audit store.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'trust' -d 'Consent to this project\'s env file and policy, or list and revoke consents.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'policy' -d 'For people writing policy: judge a hook input, or show the layered policy.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'approve' -d 'Approve a call a policy held for approval, or list the approvals waiting.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'deny' -d 'Refuse a call a policy held for approval.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'doctor' -d 'Check configuration, issuer, keyring, audit store, policy and agent; say what to fix.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'broker' -d 'Run and administer the self-hosted broker (STS and audit backend).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" verbose' -l 'verbose' -d 'Say what kontext does on stderr (never a token or secret); also KONTEXT_DEBUG=1.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" id-token-file' -l 'id-token-file' -d 'A file holding this CI job\'s OIDC token (e.g. a Kubernetes projected service-account token): CI mode.' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" agent' -l 'agent' -d 'The agent: claude, codex.' -rfka 'claude codex'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" agent-command' -l 'agent-command' -d 'Launch this executable instead (its hooks are its own business).' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" mode' -l 'mode' -d 'observe records and never blocks, enforce applies the policy (default: KONTEXT_MODE, else observe).' -rfka 'observe enforce'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" env-file' -l 'env-file' -d 'The env file to read (default: .env.kontext).' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" allow-partial' -l 'allow-partial' -d 'Launch even if some placeholders cannot be resolved (their variables are left unset).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" proxy' -l 'proxy' -d 'Give the child handles instead of the credentials of services with bound hosts, and a loopback proxy that swaps them in only toward those hosts (also KONTEXT_PROXY=1).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext start" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext run" verbose' -l 'verbose' -d 'Say what kontext does on stderr (never a token or secret); also KONTEXT_DEBUG=1.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext run" id-token-file' -l 'id-token-file' -d 'A file holding this CI job\'s OIDC token (e.g. a Kubernetes projected service-account token): CI mode.' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext run" env-file' -l 'env-file' -d 'The env file to read (default: .env.kontext).' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext run" allow-partial' -l 'allow-partial' -d 'Launch even if some placeholders cannot be resolved (their variables are left unset).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext run" proxy' -l 'proxy' -d 'Give the child handles instead of the credentials of services with bound hosts, and a loopback proxy that swaps them in only toward those hosts (also KONTEXT_PROXY=1).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext run" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext run" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext env" verbose' -l 'verbose' -d 'Say what kontext does on stderr (never a token or secret); also KONTEXT_DEBUG=1.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext env" id-token-file' -l 'id-token-file' -d 'A file holding this CI job\'s OIDC token (e.g. a Kubernetes projected service-account token): CI mode.' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext env" env-file' -l 'env-file' -d 'The env file to read (default: .env.kontext).' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext env" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext env" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext hook" -eq 1' -fka 'pre-tool post-tool user-prompt session-start session-end stop'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext hook" agent' -l 'agent' -d 'The agent whose hook format to speak: claude, codex.' -rfka 'claude codex'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext hook" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext hook" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext login" verbose' -l 'verbose' -d 'Say what kontext does on stderr (never a token or secret); also KONTEXT_DEBUG=1.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext login" device' -l 'device' -d 'Use the device flow: print a URL and a code to approve from any device.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext login" no-browser' -l 'no-browser' -d 'Print the sign-in URL instead of opening a browser.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext login" timeout' -l 'timeout' -d 'How long to wait for the browser, in seconds.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext login" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext login" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext logout" verbose' -l 'verbose' -d 'Say what kontext does on stderr (never a token or secret); also KONTEXT_DEBUG=1.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext logout" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext logout" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext whoami" verbose' -l 'verbose' -d 'Say what kontext does on stderr (never a token or secret); also KONTEXT_DEBUG=1.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext whoami" id-token-file' -l 'id-token-file' -d 'A file holding this CI job\'s OIDC token (e.g. a Kubernetes projected service-account token): CI mode.' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext whoami" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext whoami" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext provider" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext provider" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext provider" -eq 1' -fa 'add' -d 'Store a credential; the secret is read from stdin or a no-echo prompt.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext provider" -eq 1' -fa 'list' -d 'List stored credentials by name (never their values).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext provider" -eq 1' -fa 'remove' -d 'Delete a stored credential.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext provider add" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext provider add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext provider list" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext provider list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext provider remove" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext provider remove" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext audit" -eq 1' -fa 'sessions' -d 'List sessions, newest first.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext audit" -eq 1' -fa 'tail' -d 'Print the latest events; --follow keeps printing new ones.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext audit" -eq 1' -fa 'show' -d 'Show one session and its events (ID or a unique prefix).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext audit" -eq 1' -fa 'export' -d 'Print every event as JSON lines or CSV.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext audit" -eq 1' -fa 'verify' -d 'Check the audit hash chain: of the local store, of an export file, or of the backend\'s copy.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext audit" -eq 1' -fa 'key' -d 'Print the public key that signs this machine\'s audit checkpoints.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext audit" -eq 1' -fa 'ui' -d 'Serve a read-only page of the audit on this machine (Ctrl-C stops it).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit sessions" limit' -l 'limit' -d 'Show at most this many.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit sessions" remote' -l 'remote' -d 'Read the audit backend (KONTEXT_AUDIT_URL) instead of the local store.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit sessions" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit sessions" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit tail" l lines' -l 'lines' -s 'l' -d 'How many recent events to print first.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit tail" f follow' -l 'follow' -s 'f' -d 'Keep printing events as they are recorded.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit tail" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit tail" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit show" remote' -l 'remote' -d 'Read the audit backend (KONTEXT_AUDIT_URL) instead of the local store.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit show" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit export" format' -l 'format' -d 'JSON lines or CSV.' -rfka 'jsonl csv'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit export" session' -l 'session' -d 'Only this session (id or prefix).' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit export" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit export" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit verify" file' -l 'file' -d 'An export (`kontext audit export --format jsonl`) to check instead of the store.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit verify" remote' -l 'remote' -d 'Ask the audit backend (KONTEXT_AUDIT_URL) for its verdict on the session it received.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit verify" public-key' -l 'public-key' -d 'The Ed25519 public key (base64) that must have signed the checkpoints, at least one of them; `kontext audit key` prints yours. Without it, the keyring\'s key (if any) must have signed those there are.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit verify" witness-key' -l 'witness-key' -d 'The broker\'s audit witness key (base64 Ed25519, from GET /v1/audit/witness-key or `verify --remote`): its certificate must bind the checkpoint key to the session, its countersignatures must match the chain, and it must have witnessed the final seal.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit verify" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit verify" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit key" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit key" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit ui" remote' -l 'remote' -d 'Read the audit backend (KONTEXT_AUDIT_URL) with your login instead of the local store.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit ui" no-browser' -l 'no-browser' -d 'Print the address without opening a browser.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit ui" port' -l 'port' -d 'Loopback port to listen on (default: any free one).' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit ui" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext audit ui" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext trust" env-file' -l 'env-file' -d 'The env file to trust (default: .env.kontext).' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext trust" list' -l 'list' -d 'List the trusted files and whether each still has the content you trusted.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext trust" revoke' -l 'revoke' -d 'Take back the consent for PATH (a file, or every trusted file under a directory); default: this project\'s files.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext trust" -eq 1' -F
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext trust" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext trust" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext policy" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext policy" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext policy" -eq 1' -fa 'check' -d 'Print the decision, layer, rule and risk the policy gives a hook input (read on stdin).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext policy" -eq 1' -fa 'show' -d 'Print the effective layered policy: each layer\'s rules, and the built-in ones.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext policy check" event' -l 'event' -d 'The hook event the input is for (only pre-tool is judged by policy).' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext policy check" agent' -l 'agent' -d 'The agent whose hook format the input is in: claude, codex.' -rfka 'claude codex'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext policy check" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext policy check" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext policy show" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext policy show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext approve" list' -l 'list' -d 'List the approvals waiting for you or for the agent\'s retry.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext approve" remote' -l 'remote' -d 'Approve through the broker (KONTEXT_AUDIT_URL) as one of its approvers: a teammate\'s agent\'s call.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext approve" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext approve" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext deny" remote' -l 'remote' -d 'Deny through the broker (KONTEXT_AUDIT_URL) as one of its approvers.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext deny" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext deny" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext doctor" verbose' -l 'verbose' -d 'Say what kontext does on stderr (never a token or secret); also KONTEXT_DEBUG=1.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext doctor" agent' -l 'agent' -d 'The agent to look for: claude, codex.' -rfka 'claude codex'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext doctor" env-file' -l 'env-file' -d 'The env file to check (default: .env.kontext).' -rF
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext doctor" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext doctor" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext broker" -eq 1' -fa 'serve' -d 'Serve the token exchange endpoint and the audit API until SIGTERM or SIGINT.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext broker" -eq 1' -fa 'provider' -d 'Manage the broker\'s vault of provider credentials (encrypted at rest).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker serve" config' -l 'config' -d 'The broker configuration (see README, Broker).' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker serve" db' -l 'db' -d 'sqlite:PATH or postgres://USER@HOST[:PORT]/DB[?sslmode=…] (default: KONTEXT_BROKER_DB, then db in broker.toml). Put a password in PGPASSWORD, not here.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker serve" listen' -l 'listen' -d 'Address to listen on (default: listen in broker.toml, else 127.0.0.1:8080); port 0 picks a free one.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker serve" log-level' -l 'log-level' -d 'The least severe level logged.' -rfka 'trace debug info notice warning error critical'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker serve" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker serve" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext broker provider" -eq 1' -fa 'add' -d 'Store a credential; the secret (or with --oauth the refresh token) is read from stdin or a no-echo prompt.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext broker provider" -eq 1' -fa 'list' -d 'List stored credentials (never their values).'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext broker provider" -eq 1' -fa 'remove' -d 'Delete a stored credential.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_positional "kontext broker provider" -eq 1' -fa 'rekey' -d 'Reseal every credential with the current (first) vault key, so older keys can be retired.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider add" config' -l 'config' -d 'The broker configuration (see README, Broker).' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider add" db' -l 'db' -d 'sqlite:PATH or postgres://USER@HOST[:PORT]/DB[?sslmode=…] (default: KONTEXT_BROKER_DB, then db in broker.toml). Put a password in PGPASSWORD, not here.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider add" principal' -l 'principal' -d 'The principal that owns it (e.g. user:alice, ci:acme/app); default: the organisation.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider add" oauth' -l 'oauth' -d 'An upstream OAuth connection: the secret is a refresh token the broker redeems at the [[provider]] token endpoint.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider add" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider list" config' -l 'config' -d 'The broker configuration (see README, Broker).' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider list" db' -l 'db' -d 'sqlite:PATH or postgres://USER@HOST[:PORT]/DB[?sslmode=…] (default: KONTEXT_BROKER_DB, then db in broker.toml). Put a password in PGPASSWORD, not here.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider list" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider remove" config' -l 'config' -d 'The broker configuration (see README, Broker).' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider remove" db' -l 'db' -d 'sqlite:PATH or postgres://USER@HOST[:PORT]/DB[?sslmode=…] (default: KONTEXT_BROKER_DB, then db in broker.toml). Put a password in PGPASSWORD, not here.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider remove" principal' -l 'principal' -d 'The principal that owns it (e.g. user:alice, ci:acme/app); default: the organisation.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider remove" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider remove" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider rekey" config' -l 'config' -d 'The broker configuration (see README, Broker).' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider rekey" db' -l 'db' -d 'sqlite:PATH or postgres://USER@HOST[:PORT]/DB[?sslmode=…] (default: KONTEXT_BROKER_DB, then db in broker.toml). Put a password in PGPASSWORD, not here.' -rfka ''
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider rekey" version' -l 'version' -d 'Show the version.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext broker provider rekey" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'kontext' -n '__kontext_should_offer_completions_for_flags_or_options "kontext help" version' -l 'version' -d 'Show the version.'
