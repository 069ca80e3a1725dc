import Foundation
import Testing
import TriageCapture
import TriageDecoding
@testable import TriageDiagnosis
@testable import TriageFlows
@testable import TriageProtocols

/// An NLA attempt built by hand: X.224 selecting CredSSP, a complete TLS handshake, CredSSP
/// up to `phase`, then the server's close; with what a key log would have read, or nothing.
enum BuildNLA {
    static func certificate(_ cn: String) -> CertificateFacts {
        CertificateFacts(
            subject: "CN=\(cn)", issuer: "CN=\(cn)", serialNumber: "01", notBefore: Timestamp(seconds: 1_600_000_000, nanos: 0),
            notAfter: Timestamp(seconds: 1_900_000_000, nanos: 0), selfSigned: true, keyType: "RSA", keyBits: 2048,
            subjectAlternativeNames: [], signatureAlgorithm: "sha256WithRSAEncryption", sha256: "00", inspectionProduct: nil)
    }

    static func attempt(
        tls13: Bool = false, certificateName: String? = nil, phase: CredSSPFacts.Phase = .authenticate, errorCode: UInt32? = nil,
        reset: Bool = false, decrypted: DecryptedFacts? = nil
    ) -> AttemptFacts {
        let fin = Build.fin(20, from: .server)
        let rst = Build.reset(20, from: .server, ttl: 117, sameSideTTL: 117)
        let tcp = Build.tcp(
            outcome: reset ? .reset : .closed, endedBy: .server, decisive: reset ? rst.at : fin.at, last: 21, resets: reset ? [rst] : [],
            clientSide: Build.side(ttl: 128, payload: 3000), serverSide: Build.side(ttl: 117, payload: 4000, fin: reset ? nil : fin))
        return Build.attempt(tcp) { rdp in
            rdp.connectionRequest = Build.request(4)
            rdp.connectionConfirm = ConnectionConfirmFacts(
                at: Build.at(6, 1600), selectedProtocol: .hybrid, flags: 0, failure: nil, noNegotiationData: false)
            var tls = TLSFacts()
            tls.clientHello = TLSFacts.ClientHello(
                at: Build.at(8, 1700), legacyVersion: 0x0303, supportedVersions: tls13 ? [0x0304, 0x0303] : [], serverName: nil,
                cipherSuites: [0x1302, 0xC030])
            tls.serverHello = TLSFacts.ServerHello(
                at: Build.at(10, 1800), legacyVersion: 0x0303, version: tls13 ? 0x0304 : 0x0303, cipherSuite: tls13 ? 0x1302 : 0xC030)
            if let certificateName, !tls13 { tls.certificates = [certificate(certificateName)] }
            tls.handshakeComplete = true
            rdp.tls = tls
            var c = CredSSPFacts()
            c.phase = phase
            c.records = [
                TLSFacts.RecordRun(at: Build.at(12, 1900), from: .client, contentType: 23, length: 80),
                TLSFacts.RecordRun(at: Build.at(14, 1950), from: .server, contentType: 23, length: 300),
                TLSFacts.RecordRun(at: Build.at(16, 1990), from: .client, contentType: 23, length: 900),
            ]
            c.errorCode = errorCode
            rdp.credssp = c
            rdp.decrypted = decrypted
        }
    }

    static func request(_ n: Int, from: Side, kerberos: KerberosMessage? = nil, negState: UInt8? = nil, errorCode: UInt32? = nil)
        -> TSRequestFacts
    {
        var spnego: SPNEGOFacts?
        if let negState {
            var t = SPNEGOToken(kind: .negTokenResp)
            t.negState = negState
            spnego = SPNEGOFacts(t)
        }
        return TSRequestFacts(
            at: Build.at(n, 1900), from: from, version: 6, negoTokens: 1, mechanism: kerberos == nil ? nil : .kerberos, ntlm: nil,
            spnego: spnego, kerberos: kerberos.map(KerberosFacts.init), authInfo: false, pubKeyAuth: false, clientNonce: from == .client,
            errorCode: errorCode)
    }

    static func apReq(_ spn: [String], realm: String = "CORP.EXAMPLE") -> KerberosMessage {
        var m = KerberosMessage(kind: .apReq)
        m.realm = realm
        m.serviceName = spn
        m.serviceNameType = 2
        return m
    }

    static func krbError(_ code: Int32) -> KerberosMessage {
        var m = KerberosMessage(kind: .krbError)
        m.errorCode = code
        m.realm = "CORP.EXAMPLE"
        m.serviceName = ["TERMSRV", "rds01.corp.example"]
        return m
    }

    /// A key log's view of a Kerberos logon: the client's AP-REQ, the server's answer.
    static func kerberos(_ spn: [String], error: Int32?) -> DecryptedFacts {
        var d = DecryptedFacts(status: .decrypted)
        d.tsRequests = [request(12, from: .client, kerberos: apReq(spn))]
        if let error { d.tsRequests.append(request(14, from: .server, kerberos: krbError(error), negState: 2)) }
        return d
    }
}

@Suite struct KerberosRuleTests {
    @Test func realmPrincipalAndSkewAreNamed() throws {
        let f = BuildNLA.attempt(certificateName: "rds01.corp.example", decrypted: BuildNLA.kerberos(["TERMSRV", "rds01.corp.example"], error: 37))
        let v = Classifier.classify(f)
        #expect(v.label == .credsspFailure && v.cause == .tlsCredSSP, "\(v.rule) \(v.label)")
        #expect(v.details.contains { $0.contains("TERMSRV/rds01.corp.example") && $0.contains("CORP.EXAMPLE") })
        #expect(v.details.contains { $0.contains("KRB_AP_ERR_SKEW") })
        #expect(v.evidence.contains { $0.frame == 14 && $0.what.contains("KRB_AP_ERR_SKEW") })
        #expect(v.evidence.contains { $0.frame == 14 && $0.what.contains("negState reject") })
        #expect(v.remediation.first?.contains("Synchronise time") == true)
        #expect(!v.details.contains { $0.hasPrefix("The ticket names") })
    }

    /// FACTS.md 6, resolution mismatch: the ticket names another host than the one that answered.
    @Test func principalForAnotherHostIsAResolutionMismatch() {
        let f = BuildNLA.attempt(certificateName: "rds02.corp.example", decrypted: BuildNLA.kerberos(["TERMSRV", "rds01.corp.example"], error: 41))
        let v = Classifier.classify(f)
        #expect(v.label == .credsspFailure && v.cause == .resolutionMismatch)
        #expect(v.details.contains { $0.contains("TERMSRV/rds01.corp.example") && $0.contains("calls itself rds02.corp.example") })
        #expect(v.details.contains { $0.contains("KRB_AP_ERR_MODIFIED") })
        #expect(v.remediation.first?.contains("rds01.corp.example resolves to this server") == true)
        #expect(v.remediation.contains { $0.contains("setspn -Q TERMSRV/name") })
    }

    /// The lab's kerberos-wrong-host: the server answers the client's first token, the
    /// AP-REQ, with KRB_AP_ERR_MODIFIED and a TSRequest errorCode; the client closes after it.
    @Test func errorCodeAfterTheAPReqIsTheServersRefusal() {
        var d = BuildNLA.kerberos(["termsrv", "rdp-old.corp.example"], error: 41)
        d.tsRequests[1].errorCode = 0x8009_0322
        var f = BuildNLA.attempt(certificateName: "rdp.corp.example", phase: .challenge, decrypted: d)
        f.tcp.endedBy = .client
        f.tcp.serverSide.fin = nil
        f.tcp.clientSide.fin = Build.fin(20, from: .client)
        f.tcp.decisive = f.tcp.clientSide.fin?.at
        let v = Classifier.classify(f)
        #expect(v.rule == "credssp-error-code")
        #expect(v.label == .credsspFailure && v.cause == .resolutionMismatch && v.endedBy == .server && v.stage == .credssp)
        #expect(v.confidence.level == .high)
        #expect(v.clientReport?.display == "0x807")
        #expect(v.summary.contains("Kerberos AP-REQ (frame 12)") && v.summary.contains("SEC_E_WRONG_PRINCIPAL (frame 14"))
        #expect(v.details.contains { $0.contains("The client's FIN (frame 20) came after the server's errorCode (frame 14)") })
        #expect(v.details.contains { $0.contains("calls itself rdp.corp.example") })
        // Without the key log the same close is the client's.
        f.rdp.decrypted = nil
        #expect(Classifier.classify(f).endedBy == .client)
    }

    static func dns(_ name: String, aliases: [String] = []) -> DNSResolution {
        DNSResolution(
            name: name, address: Build.server.address, ttl: 60, aliases: aliases, response: Build.at(3, 10), query: Build.at(2, 5),
            resolver: IPAddress("192.0.2.53")!, asker: Build.client.address)
    }

    /// A wrong DNS record: the client resolved rds01 and got the address of rds02, which answered.
    @Test func dnsRecordForTheWrongHost() {
        var f = BuildNLA.attempt(certificateName: "rds02.corp.example", decrypted: BuildNLA.kerberos(["TERMSRV", "rds01.corp.example"], error: 41))
        f.dns = [Self.dns("rds01.corp.example")]
        let v = Classifier.classify(f)
        #expect(v.cause == .resolutionMismatch)
        #expect(v.details.contains { $0.contains("DNS answered rds01.corp.example with this server's address (frame 3)") })
    }

    /// No name of the server's own (TLS 1.3, no NTLM), but DNS led the client here by another name.
    @Test func principalOtherThanTheResolvedName() {
        var f = BuildNLA.attempt(tls13: true, decrypted: BuildNLA.kerberos(["TERMSRV", "rds01.corp.example"], error: 41))
        f.dns = [Self.dns("rdp.corp.example", aliases: ["rds02.corp.example"])]
        let v = Classifier.classify(f)
        #expect(v.cause == .resolutionMismatch)
        #expect(v.details.contains { $0.contains("resolving rdp.corp.example, rds02.corp.example") })
        // The same name resolved: nothing to say.
        f.dns = [Self.dns("rds01.corp.example")]
        #expect(Classifier.classify(f).cause != .resolutionMismatch)
    }

    @Test func shortNameMatchesItsFQDN() {
        let v = Classifier.classify(BuildNLA.attempt(certificateName: "rds01.corp.example", decrypted: BuildNLA.kerberos(["TERMSRV", "RDS01"], error: nil)))
        #expect(v.cause != .resolutionMismatch)
        #expect(!v.details.contains { $0.hasPrefix("The ticket names") })
    }

    @Test func noKnownNameNoClaim() {
        // TLS 1.3: the certificate is not in the facts; no NTLM, no DNS: nothing to compare with.
        let v = Classifier.classify(BuildNLA.attempt(tls13: true, decrypted: BuildNLA.kerberos(["TERMSRV", "rds01.corp.example"], error: nil)))
        #expect(v.cause != .resolutionMismatch)
        #expect(v.details.contains { $0.contains("TERMSRV/rds01.corp.example") })
    }

    @Test func principalNamingTheServersAddressIsNoMismatch() {
        let same = Classifier.classify(
            BuildNLA.attempt(certificateName: "rds02.corp.example", decrypted: BuildNLA.kerberos(["TERMSRV", "198.51.100.20"], error: nil)))
        #expect(same.cause != .resolutionMismatch && !same.details.contains { $0.contains("an address other than") })
        let other = Classifier.classify(
            BuildNLA.attempt(certificateName: "rds02.corp.example", decrypted: BuildNLA.kerberos(["TERMSRV", "203.0.113.5"], error: nil)))
        #expect(other.details.contains { $0.contains("TERMSRV/203.0.113.5, an address other than the server's 198.51.100.20") })
    }

    @Test func twoDifferentFQDNsDoNotMatch() {
        #expect(!Classifier.nameMatches("rds01.corp.example", ["rds01.other.example"]))
        #expect(Classifier.nameMatches("rds01", ["rds01.other.example"]))
        #expect(Classifier.nameMatches("rds01.corp.example.", ["rds01.corp.example"]))
        #expect(!Classifier.nameMatches("rds1", ["rds01"]))
    }
}

/// `--reported` against the codes a key log makes visible (FACTS.md 1: the 0x807 family named
/// after the NTSTATUS; a Set Error Info is shown as the extended reason).
@Suite struct ReportedDecryptedTests {
    /// FACTS.md 1's table, as written there: the NTSTATUS that names each client code.
    static let factsTable: [(UInt32, UInt32)] = [
        (0xC000_006D, 0x807),  // logon failure
        (0xC000_0064, 0xA07),  // no such user
        (0xC000_0072, 0xB07),  // disabled
        (0xC000_006E, 0xC07),  // restricted
        (0xC000_0234, 0xD07),  // locked out
        (0xC000_0193, 0xE07),  // account expired
        (0xC000_0071, 0xF07),  // password expired
        (0xC000_0224, 0x1207),  // must change password
        (0x8009_0311, 0x1807),  // no authenticating authority
    ]

    @Test(arguments: factsTable) func errorCodeGivesTheNamedCode(_ status: UInt32, _ code: UInt32) throws {
        var d = DecryptedFacts(status: .decrypted)
        d.tsRequests = [BuildNLA.request(12, from: .client), BuildNLA.request(18, from: .server, errorCode: status)]
        let v = Classifier.classify(BuildNLA.attempt(errorCode: status, decrypted: d))
        #expect(v.label == .credsspFailure)
        let r = try #require(v.clientReport)
        #expect(r.code == .reason(code, extended: nil), "\(String(status, radix: 16)) gave \(r.display)")
        #expect(ReportedCode(String(code))?.matches(r) == true)
        #expect(ReportedCode("0x" + String(code, radix: 16))?.matches(r) == true)
        #expect(ReportedCode("0x904/0x7")?.matches(r) == false)
        if code != 0x807 { #expect(ReportedCode("0x807")?.matches(r) == false) }
    }

    @Test func withoutErrorCodeTheFamilyHead() throws {
        let v = Classifier.classify(BuildNLA.attempt(decrypted: DecryptedFacts(status: .decrypted)))
        #expect(v.clientReport?.code == .reason(0x807, extended: nil))
        #expect(ReportedCode("0x807")?.matches(v.clientReport) == true)
    }

    @Test func setErrorInfoIsTheExtendedReason() throws {
        var d = DecryptedFacts(status: .decrypted)
        d.errorInfo = ErrorInfoFacts(at: Build.at(19, 2500), code: 0x9)
        let v = Classifier.classify(BuildNLA.attempt(phase: .session, reset: true, decrypted: d))
        #expect(v.isFailure, "\(v.label)")
        let r = try #require(v.clientReport)
        #expect(r.code == .errorInfo(0x9))
        #expect(ReportedCode("0x904/0x9")?.matches(r) == true)
        // Not the client's 0x7 guess: a Set Error Info arrived.
        #expect(ReportedCode("0x904/0x7")?.matches(r) == false)
        // The disconnect reason beside it is not one FACTS.md names: a bare code never matches.
        #expect(ReportedCode("0x904")?.matches(r) == false)
    }

    @Test func serverDeniedStatedByTheServerStillReadsAs0x7() {
        let r = ClientReport(.errorInfo(0x7), meaning: "built")
        #expect(ReportedCode("0x904/0x7")?.matches(r) == true)
        #expect(ReportedCode("0x904/7")?.matches(r) == true)
        #expect(ReportedCode("0x904/0x9")?.matches(r) == false)
    }
}

@Suite struct HiddenFactsTests {
    @Test func keylessCredSSPFailureNamesErrorCodeAndAccount() throws {
        let f = BuildNLA.attempt()
        let v = Classifier.classify(f)
        #expect(v.label == .credsspFailure)
        let h = try #require(HiddenFacts.of(f, v))
        #expect(h.facts == [.credsspErrorCode, .account])
        #expect(h.sources == [.keyLog, .injectedSecrets, .windowsEvent4625])
        #expect(Knowledge.hiddenHow(h.sources).contains("editcap --inject-secrets tls,keys.txt in.pcap out.pcapng"))
        #expect(Knowledge.hiddenHow(h.sources).contains("4625"))
    }

    @Test func withKeysNothingIsHidden() {
        let f = BuildNLA.attempt(decrypted: DecryptedFacts(status: .decrypted))
        #expect(HiddenFacts.of(f, Classifier.classify(f)) == nil)
        // A key log without this connection's secrets hides the same as none.
        let g = BuildNLA.attempt(decrypted: DecryptedFacts(status: .noSecrets))
        #expect(HiddenFacts.of(g, Classifier.classify(g))?.facts == [.credsspErrorCode, .account])
    }

    @Test func sessionStageFailureHidesTheServersReason() throws {
        let f = BuildNLA.attempt(phase: .session, reset: true)
        let v = Classifier.classify(f)
        let h = try #require(HiddenFacts.of(f, v), "\(v.label) \(v.stage)")
        #expect(h.facts.contains(.serverErrorInfo))
        #expect(!h.sources.contains(.windowsEvent4625))
    }

    @Test func failureBeforeTLSHidesNothing() {
        let rst = Build.reset(2, from: .server, ttl: 117, sameSideTTL: nil, answersSYN: true)
        let f = Build.attempt(Build.tcp(established: false, outcome: .refused, endedBy: .server, decisive: rst.at, last: 2, resets: [rst]))
        #expect(HiddenFacts.of(f, Classifier.classify(f)) == nil)
    }
}
