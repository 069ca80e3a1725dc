import Testing
import TriageDecoding

@testable import TriageProtocols
@testable import TriageReports

/// The report side of `--redact`: every form prose gives an address or a name is replaced.
@Suite struct RedactorTests {
    @Test func addressesWhereverProsePutsThem() {
        let r = Redactor()
        let v6 = IPAddress("2001:db8:2::20")!
        let v4 = IPAddress("192.0.2.20")!
        _ = r.pseudonym(for: v6)
        _ = r.pseudonym(for: v4)
        #expect(r.apply("Connected to 2001:db8:2::20: done.") == "Connected to 2001:db8:ffff::1: done.")
        #expect(r.apply("to 2001:db8:2::20:3389 and [2001:db8:2::20]:3389") == "to 2001:db8:ffff::1:3389 and [2001:db8:ffff::1]:3389")
        #expect(r.apply("No answer from 192.0.2.20.") == "No answer from 198.18.0.2.")
        #expect(r.apply("192.0.2.201 and 2001:db8:2::200 are others") == "192.0.2.201 and 2001:db8:2::200 are others")
    }

    @Test func bothPartsOfACookie() {
        let r = Redactor()
        r.registerCookie("CORP\\bob")
        r.registerCookie("carol@corp.example")
        #expect(r.apply("cookie CORP\\bob") == "cookie domain-1\\user-1")
        #expect(r.apply("\"cookie\": \"CORP\\\\bob\"") == "\"cookie\": \"domain-1\\\\user-1\"")
        #expect(r.apply("carol@corp.example") == "user-2@host-1")
    }

    /// Kerberos names read with a key log: realms like domains, the principal's host like a
    /// host, a KRB-ERROR's client like a user; the service name stays.
    @Test func kerberosNames() {
        let r = Redactor()
        var m = KerberosMessage(kind: .krbError)
        m.realm = "CORP.EXAMPLE"
        m.serviceName = ["TERMSRV", "rds01.corp.example"]
        m.clientRealm = "CORP.EXAMPLE"
        m.clientName = ["alice"]
        r.registerKerberos(KerberosFacts(m))
        let out = r.apply("a ticket for TERMSRV/rds01.corp.example in realm CORP.EXAMPLE, client alice")
        #expect(out == "a ticket for TERMSRV/host-1 in realm domain-1, client user-1", "\(out)")
    }

    /// A one-letter user is replaced where it is a word, not in `e.g.` nor inside words.
    @Test func shortNamesOnlyAsWords() {
        let r = Redactor()
        r.registerCookie("e")
        #expect(r.apply("cookie e, (e.g. the server) mstshash=e.") == "cookie user-1, (e.g. the server) mstshash=user-1.")
    }

    @Test func certificateNameValues() {
        #expect(Redactor.nameValues("CN=rdp.example,O=Example\\, Inc.+OU=IT,C=US") == ["rdp.example", "Example\\, Inc.", "IT"])
        #expect(Redactor.nameValues("CN=ncalrpc:SERVR+L=TURNBKL") == ["ncalrpc:SERVR", "SERVR", "TURNBKL"])
    }
}
