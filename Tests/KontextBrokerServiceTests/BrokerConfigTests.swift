import KontextBrokerService
import KontextBrokerStore
import KontextCore
import Testing

/// How broker.toml and the database URL resolve what they leave unsaid.
@Suite struct BrokerConfigTests {
    let issuer = "[[issuer]]\nissuer = \"https://login.example.com\"\naudiences = [\"kontext-broker\"]\n"

    @Test func anIssuerAdmitsNoUsersAndLimitsHaveDefaultsUnlessSaid() throws {
        let plain = try BrokerConfig.parse(issuer, path: "broker.toml")
        #expect(plain.issuers.first?.users == false)
        #expect(plain.limits.idleTimeout == 30)
        #expect(plain.limits.tokenRate == 20)
        #expect(plain.limits.tokenBurst == 100)
        #expect(plain.limits.clientAddressHeader == nil)
        let said = try BrokerConfig.parse(issuer + "users = true\n[limits]\nidle_timeout = 5\ntoken_rate = 0.5\ntoken_burst = 3\n"
                                          + "client_address_header = \"X-Forwarded-For\"\n", path: "broker.toml")
        #expect(said.issuers.first?.users == true)
        #expect(said.limits.idleTimeout == 5)
        #expect(said.limits.tokenRate == 0.5)
        #expect(said.limits.tokenBurst == 3)
        #expect(said.limits.clientAddressHeader == "X-Forwarded-For")
        #expect(throws: KontextError.self) { try BrokerConfig.parse("[limits]\nidle_timeout = 0\n", path: "broker.toml") }
        #expect(throws: KontextError.self) { try BrokerConfig.parse("[limits]\nrate = 5\n", path: "broker.toml") }
    }

    /// `[[service]]` binds hosts like hosts.toml does, checked the same way.
    @Test func serviceTablesBindHosts() throws {
        let config = try BrokerConfig.parse(issuer + "[[service]]\nname = \"deploy\"\nhosts = [\"api.deploy.example\", \"*.deploy.example\"]\nheaders = [\"X-Deploy-Key\"]\n",
                                            path: "broker.toml")
        #expect(config.hostBindings.map(\.service) == ["deploy"])
        #expect(config.hostBindings.first?.hosts == ["api.deploy.example", "*.deploy.example"])
        #expect(config.hostBindings.first?.headers == ["x-deploy-key"])
        for bad in ["[[service]]\nname = \"deploy\"\nhosts = []\n", "[[service]]\nname = \"de ploy\"\nhosts = [\"a\"]\n",
                    "[[service]]\nname = \"d\"\nhosts = [\"a\"]\nheaders = [\"bad header\"]\n",
                    "[[service]]\nname = \"d\"\nhosts = [\"a\"]\nport = 1\n", "service = 3\n"] {
            #expect(throws: KontextError.self, "\(bad)") { try BrokerConfig.parse(bad, path: "broker.toml") }
        }
    }

    @Test func plainHTTPIssuersOffLoopbackAreRefused() throws {
        #expect(throws: KontextError.self) {
            try BrokerConfig.parse("[[issuer]]\nissuer = \"http://login.example.com\"\naudiences = [\"a\"]\n", path: "broker.toml")
        }
        #expect(throws: KontextError.self) {
            try BrokerConfig.parse(issuer + "jwks_url = \"http://keys.example.com/jwks\"\n", path: "broker.toml")
        }
        _ = try BrokerConfig.parse("[[issuer]]\nissuer = \"http://127.0.0.1:9000\"\naudiences = [\"a\"]\n", path: "broker.toml")
    }

    @Test func userPrincipalsNameTheirIssuerUnambiguously() {
        #expect(PrincipalMapper.userPrincipal(issuer: "https://login.example.com/", subject: "alice") == "user:login.example.com:alice")
        #expect(PrincipalMapper.userPrincipal(issuer: "https://idp.example.com:8443/realms/dev", subject: "a:b")
            == "user:idp.example.com%3A8443/realms/dev:a:b")
        // A port is not a piece of the subject.
        #expect(PrincipalMapper.userPrincipal(issuer: "https://x.example:8443", subject: "alice")
            != PrincipalMapper.userPrincipal(issuer: "https://x.example", subject: "8443:alice"))
    }

    @Test func postgreSQLNeedsTLSOffLoopbackUnlessTheURLSaysOtherwise() {
        #expect(PostgresBrokerStore.sslMode(host: "db.internal", requested: nil) == "require")
        #expect(PostgresBrokerStore.sslMode(host: "10.0.0.5", requested: nil) == "require")
        #expect(PostgresBrokerStore.sslMode(host: "127.0.0.1", requested: nil) == "prefer")
        #expect(PostgresBrokerStore.sslMode(host: "localhost", requested: nil) == "prefer")
        #expect(PostgresBrokerStore.sslMode(host: "::1", requested: nil) == "prefer")
        #expect(PostgresBrokerStore.sslMode(host: "db.internal", requested: "disable") == "disable")
        #expect(PostgresBrokerStore.sslMode(host: "127.0.0.1", requested: "verify-full") == "verify-full")
    }
}
